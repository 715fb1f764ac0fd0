-- Incidents: what the trigger engine made of events. One row per (rule, event key) that
-- started a ladder, or per event key no rule answered (`unmatched`). A step is recorded
-- before it runs, keyed by (incident, step), so no step can run twice, even across restarts.
CREATE TABLE incidents (
    id           TEXT PRIMARY KEY,
    rule         TEXT,
    principal    TEXT,
    event_key    TEXT   NOT NULL,
    group_key    TEXT,
    status       TEXT   NOT NULL,
    -- 1 until the source reports the key resolved: repeats count here meanwhile.
    firing       BIGINT NOT NULL,
    opened_at_ms BIGINT NOT NULL,
    closed_at_ms BIGINT,
    close_reason TEXT,
    repeats      BIGINT NOT NULL DEFAULT 0,
    throttled    BIGINT NOT NULL DEFAULT 0,
    event        TEXT   NOT NULL,
    request_id   TEXT   NOT NULL
);
CREATE INDEX incidents_status ON incidents (status);
CREATE INDEX incidents_firing ON incidents (firing);
CREATE INDEX incidents_opened ON incidents (opened_at_ms);

CREATE TABLE incident_steps (
    incident_id    TEXT   NOT NULL,
    step           BIGINT NOT NULL,
    tool           TEXT   NOT NULL,
    args           TEXT   NOT NULL,
    started_at_ms  BIGINT NOT NULL,
    finished_at_ms BIGINT,
    approval_id    TEXT,
    result         TEXT,
    PRIMARY KEY (incident_id, step)
);

CREATE TABLE incident_timeline (
    id          BIGSERIAL PRIMARY KEY,
    incident_id TEXT   NOT NULL,
    at_ms       BIGINT NOT NULL,
    kind        TEXT   NOT NULL,
    entry       TEXT   NOT NULL
);
CREATE INDEX incident_timeline_incident ON incident_timeline (incident_id, id);

-- What each submitted request (one HTTP post) became, for `GET /requests/<id>`.
CREATE TABLE trigger_requests (
    request_id     TEXT PRIMARY KEY,
    received_at_ms BIGINT NOT NULL,
    accepted       TEXT   NOT NULL
);
