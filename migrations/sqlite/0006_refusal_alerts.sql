-- The account a command named, kept with its outcome: refusals write no event,
-- and compliance must still see who was refused (suitability).
ALTER TABLE command_outcomes ADD COLUMN account_id TEXT;
CREATE INDEX command_outcomes_by_code ON command_outcomes (code) WHERE code IS NOT NULL;

-- compliance_alerts holds two kinds now: an AML flag is an event (global_position),
-- a suitability refusal is a command outcome (command_id). Rebuilt with a key for both.
CREATE TABLE compliance_alerts_v2 (
    alert_id        TEXT    PRIMARY KEY,  -- 'event:<global_position>' or 'command:<command_id>'
    kind            TEXT    NOT NULL CHECK (kind IN ('large_cash_movement', 'suitability_refused')),
    account_id      TEXT    NOT NULL,
    global_position INTEGER UNIQUE,       -- the LargeCashMovementFlagged event; NULL for a refusal
    command_id      TEXT,                 -- the refused command; NULL for an AML flag
    direction       TEXT,
    amount          TEXT,
    threshold       TEXT,
    bank_ref        TEXT,
    message         TEXT,
    recorded_at     TEXT    NOT NULL,
    CHECK ((kind = 'large_cash_movement') = (global_position IS NOT NULL)),
    CHECK ((kind = 'suitability_refused') = (command_id IS NOT NULL))
);
INSERT INTO compliance_alerts_v2 (alert_id, kind, account_id, global_position, direction, amount, threshold,
                                  bank_ref, recorded_at)
SELECT 'event:' || global_position, kind, account_id, global_position, direction, amount, threshold, bank_ref,
       recorded_at
FROM compliance_alerts;
DROP TABLE compliance_alerts;
ALTER TABLE compliance_alerts_v2 RENAME TO compliance_alerts;
CREATE INDEX compliance_alerts_by_account ON compliance_alerts (account_id);
