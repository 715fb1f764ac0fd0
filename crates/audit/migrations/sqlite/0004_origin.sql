-- The origin engine's stored products (bills of materials as JSON, see ORIGIN.md "Input")
-- and supplier declarations (one row per supplier, part and period).
CREATE TABLE origin_products (
    id            TEXT PRIMARY KEY,
    body          TEXT   NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
CREATE TABLE origin_declarations (
    supplier   TEXT NOT NULL,
    part       TEXT NOT NULL,
    hs         TEXT NOT NULL,
    origin     TEXT NOT NULL,
    kind       TEXT NOT NULL,
    valid_from TEXT NOT NULL,
    valid_to   TEXT NOT NULL,
    issued_on  TEXT,
    PRIMARY KEY (supplier, part, valid_from)
);
CREATE INDEX origin_declarations_part ON origin_declarations (part);
