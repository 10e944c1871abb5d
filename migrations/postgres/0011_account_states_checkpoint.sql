-- The accounts projection now stores the account states at a checkpoint of their
-- own ('account_states' in projection_checkpoints), which lags 'accounts' while a
-- run holds the states in memory. A binary from before this migration would take
-- such states as current and lose events; with this migration applied it refuses
-- the database instead (it finds a migration it does not know). A database without
-- the row stored its states with every batch: they are at 'accounts' until the
-- next run writes the row, so no read model needs rebuilding.
DELETE FROM projection_checkpoints WHERE name = 'account_states';
