-- Read models, rebuilt from the log at will. SQLite has no decimal type: money is
-- TEXT holding the exact decimal ("1005.06"), never a float.
CREATE TABLE projection_checkpoints (
    name     TEXT    PRIMARY KEY,
    position INTEGER NOT NULL CHECK (position >= 0)
);

-- The accounts projection's working state: each account's aggregate state as JSON.
CREATE TABLE projection_account_state (
    account_id TEXT PRIMARY KEY,
    state      TEXT NOT NULL
);

CREATE TABLE account_balances (
    account_id     TEXT    NOT NULL,
    currency       TEXT    NOT NULL,
    available      TEXT    NOT NULL,
    frozen         TEXT    NOT NULL,
    unsettled      TEXT    NOT NULL,
    withdrawable   TEXT    NOT NULL,
    as_of_position INTEGER NOT NULL,
    PRIMARY KEY (account_id, currency)
);

CREATE TABLE positions (
    account_id     TEXT    NOT NULL,
    instrument     TEXT    NOT NULL,
    quantity       INTEGER NOT NULL,
    frozen         INTEGER NOT NULL,
    sellable       INTEGER NOT NULL,
    cost           TEXT    NOT NULL,
    avg_cost       TEXT    NOT NULL,
    as_of_position INTEGER NOT NULL,
    PRIMARY KEY (account_id, instrument)
);
