-- Calls waiting for a human. An approval is bound to the exact arguments by args_hash;
-- expired requests can never run. Rows survive restarts; answered rows are kept as history.
CREATE TABLE approvals (
    id              TEXT PRIMARY KEY,
    tool            TEXT   NOT NULL,
    args            TEXT   NOT NULL,
    args_hash       TEXT   NOT NULL,
    principal       TEXT   NOT NULL,
    origin          TEXT   NOT NULL,
    intent_text     TEXT,
    untrusted       BIGINT NOT NULL,
    reason          TEXT   NOT NULL,
    policies        TEXT   NOT NULL,
    plan            TEXT   NOT NULL,
    approvers       TEXT   NOT NULL,
    requested_at_ms BIGINT NOT NULL,
    expires_at_ms   BIGINT NOT NULL,
    state           TEXT   NOT NULL,
    answered_by     TEXT,
    answered_at_ms  BIGINT,
    answer_reason   TEXT
);
CREATE INDEX approvals_state ON approvals (state);
