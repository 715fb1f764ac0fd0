-- The HTTP intake (steward serve). Bearer tokens are stored as the SHA-256 of the token
-- only; each is bound to one principal, may expire and can be revoked (kept as history).
CREATE TABLE server_tokens (
    id             TEXT PRIMARY KEY,
    hash           TEXT   NOT NULL UNIQUE,
    principal      TEXT   NOT NULL,
    created_at_ms  BIGINT NOT NULL,
    expires_at_ms  BIGINT,
    revoked_at_ms  BIGINT
);

-- Signed webhook deliveries seen in the last 24 h ("<hook>\n<delivery id>"), with the
-- first answer given, so a redelivery gets that answer and runs nothing again.
CREATE TABLE server_deliveries (
    key             TEXT PRIMARY KEY,
    request_id      TEXT   NOT NULL,
    response        TEXT   NOT NULL,
    received_at_ms  BIGINT NOT NULL
);
CREATE INDEX server_deliveries_received ON server_deliveries (received_at_ms);

-- Who made each accepted request, so GET /v1/requests/{id} admits its maker.
CREATE TABLE server_requests (
    request_id      TEXT PRIMARY KEY,
    principal       TEXT   NOT NULL,
    source          TEXT   NOT NULL,
    received_at_ms  BIGINT NOT NULL
);
