-- Append-only, hash-chained audit log. `hash` covers prev_hash and every other column.
CREATE TABLE audit_log (
    seq        INTEGER PRIMARY KEY,
    at_ms      INTEGER NOT NULL,
    kind       TEXT    NOT NULL,
    intent_id  TEXT,
    payload    TEXT    NOT NULL,
    prev_hash  TEXT    NOT NULL,
    hash       TEXT    NOT NULL UNIQUE
);
CREATE INDEX audit_log_intent ON audit_log (intent_id);
