-- The local inbox: notifications for people (the `notify` tool, incidents that paused or
-- gave up). `steward notifications` reads it; the next issue adds channels and an outbox.
CREATE TABLE notifications (
    id       TEXT PRIMARY KEY,
    at_ms    BIGINT NOT NULL,
    severity TEXT   NOT NULL,
    message  TEXT   NOT NULL,
    source   TEXT   NOT NULL,
    incident TEXT,
    read_at_ms BIGINT
);
CREATE INDEX notifications_at ON notifications (at_ms);
