-- Runs of scheduled rules, one row per slot, target and attempt, written before the run's
-- event is submitted. At start `steward serve` runs once a slot it missed while down
-- (catch_up = "once") and runs again an attempt whose incident was interrupted. A row with
-- attempt 0 and no incident marks when the scheduler started watching a rule.
CREATE TABLE schedule_runs (
    rule       TEXT    NOT NULL,
    slot_ms    BIGINT  NOT NULL,
    target     TEXT    NOT NULL,
    attempt    INTEGER NOT NULL,
    incident   TEXT,
    started_ms BIGINT  NOT NULL,
    PRIMARY KEY (rule, slot_ms, target, attempt)
);
