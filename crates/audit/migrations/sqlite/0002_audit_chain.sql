-- Replaces 0001's audit_log, which predates the request-path fields and was never written to.
-- The hash covers only `seq`, `prev_hash` and `entry` (the canonical JSON, stored exactly as
-- hashed). `at_ms`, `kind` and `refers_to` are copies of entry fields kept as columns so
-- `open_begins` and time filters need no JSON parsing; `verify` checks them against `entry`.
-- `seq` is the primary key: two writers can never both claim the next sequence number.
DROP TABLE IF EXISTS audit_log;
CREATE TABLE audit_log (
    seq        INTEGER PRIMARY KEY,
    at_ms      INTEGER NOT NULL,
    kind       TEXT,
    refers_to  INTEGER,
    entry      TEXT    NOT NULL,
    prev_hash  TEXT    NOT NULL,
    hash       TEXT    NOT NULL
);
CREATE INDEX audit_log_refers_to ON audit_log (refers_to) WHERE refers_to IS NOT NULL;
CREATE INDEX audit_log_begins ON audit_log (seq) WHERE kind = 'exec_begin';
