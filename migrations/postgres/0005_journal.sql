-- Double-entry postings of every event that moves money (chart of accounts: docs/journal.md).
-- Debits positive, credits negative; each event's lines sum to zero.
CREATE TABLE journal_entries (
    global_position BIGINT  NOT NULL,
    line            INTEGER NOT NULL,
    account_id      TEXT    NOT NULL,
    event_type      TEXT    NOT NULL,
    ledger_account  TEXT    NOT NULL,
    amount          NUMERIC(22, 2) NOT NULL,
    currency        TEXT    NOT NULL,
    PRIMARY KEY (global_position, line)
);
CREATE INDEX journal_by_ledger_account ON journal_entries (ledger_account);
