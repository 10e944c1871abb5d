-- Differences found by `ledger reconcile`, per trade date; a new run for a date replaces its rows.
CREATE TABLE reconciliation_breaks (
    trade_date DATE NOT NULL,
    kind       TEXT NOT NULL,
    account_id TEXT NOT NULL,
    instrument TEXT NOT NULL,
    ours       TEXT NOT NULL,
    theirs     TEXT NOT NULL,
    PRIMARY KEY (trade_date, kind, account_id, instrument)
);
