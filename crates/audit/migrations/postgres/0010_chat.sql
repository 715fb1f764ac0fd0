-- Chat sessions of the HTTP API and the console: the conversation's turns (what the
-- planner replays) as JSON, owned by the principal that opened the session.
CREATE TABLE chat_sessions (
    id             TEXT PRIMARY KEY,
    principal      TEXT   NOT NULL,
    turns          TEXT   NOT NULL,
    updated_at_ms  BIGINT NOT NULL
);
