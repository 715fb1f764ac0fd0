-- The notification outbox: one row per notification and push channel (a webhook, Slack),
-- written in the same transaction as the notification, so nothing is sent that was not
-- stored first and nothing stored is forgotten across a restart. `steward serve` delivers
-- due rows and retries failures with backoff; receivers dedupe on the notification id.
CREATE TABLE deliveries (
    notification    TEXT   NOT NULL,
    channel         TEXT   NOT NULL,
    state           TEXT   NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_at_ms      BIGINT NOT NULL,
    created_ms      BIGINT NOT NULL,
    delivered_at_ms BIGINT,
    last_error      TEXT,
    PRIMARY KEY (notification, channel)
);
CREATE INDEX deliveries_due ON deliveries (state, next_at_ms);
