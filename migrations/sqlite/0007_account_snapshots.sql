-- The accounts projection now keeps each account's state as a versioned
-- AccountSnapshot instead of the aggregate's private serialization. The read
-- models are disposable: empty them and their checkpoints here, and the next
-- run (`ledger projections run`, or any read-out) rebuilds them from the log.
-- reconciliation_breaks is not a projection of the log and is kept.
DELETE FROM account_balances;
DELETE FROM positions;
DELETE FROM projection_account_state;
DELETE FROM trades;
DELETE FROM orders;
DELETE FROM clearing_obligations;
DELETE FROM compliance_alerts;
DELETE FROM journal_entries;
DELETE FROM projection_checkpoints WHERE name IN ('accounts', 'refusal_alerts');
