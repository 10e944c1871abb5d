-- The account a command named, kept with its outcome: refusals write no event,
-- and compliance must still see who was refused (suitability).
ALTER TABLE command_outcomes ADD COLUMN account_id TEXT;
CREATE INDEX command_outcomes_by_code ON command_outcomes (code) WHERE code IS NOT NULL;

-- compliance_alerts holds two kinds now: an AML flag is an event (global_position),
-- a suitability refusal is a command outcome (command_id). Keyed for both.
ALTER TABLE compliance_alerts DROP CONSTRAINT compliance_alerts_pkey;
ALTER TABLE compliance_alerts ADD COLUMN alert_id TEXT;
UPDATE compliance_alerts SET alert_id = 'event:' || global_position;
ALTER TABLE compliance_alerts
    ALTER COLUMN alert_id SET NOT NULL,
    ADD PRIMARY KEY (alert_id),
    ADD CONSTRAINT compliance_alerts_event_once UNIQUE (global_position),
    ALTER COLUMN global_position DROP NOT NULL,
    ALTER COLUMN direction DROP NOT NULL,
    ALTER COLUMN amount DROP NOT NULL,
    ALTER COLUMN threshold DROP NOT NULL,
    ALTER COLUMN bank_ref DROP NOT NULL,
    ADD COLUMN command_id TEXT,
    ADD COLUMN message TEXT,
    ADD CONSTRAINT compliance_alert_kind CHECK (kind IN ('large_cash_movement', 'suitability_refused')),
    ADD CONSTRAINT compliance_alert_source CHECK (
        ((kind = 'large_cash_movement') = (global_position IS NOT NULL))
        AND ((kind = 'suitability_refused') = (command_id IS NOT NULL)));
CREATE INDEX compliance_alerts_by_account ON compliance_alerts (account_id);
