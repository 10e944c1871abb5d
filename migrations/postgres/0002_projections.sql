-- Read models, rebuilt from the log at will: plain typed tables for psql and BI tools.
CREATE TABLE projection_checkpoints (
    name     TEXT   PRIMARY KEY,
    position BIGINT NOT NULL CHECK (position >= 0)
);

-- The accounts projection's working state: each account's aggregate state as JSON.
CREATE TABLE projection_account_state (
    account_id TEXT PRIMARY KEY,
    state      TEXT NOT NULL
);

CREATE TABLE account_balances (
    account_id     TEXT           NOT NULL,
    currency       TEXT           NOT NULL,
    available      NUMERIC(22, 2) NOT NULL,
    frozen         NUMERIC(22, 2) NOT NULL,
    unsettled      NUMERIC(22, 2) NOT NULL,
    withdrawable   NUMERIC(22, 2) NOT NULL,
    as_of_position BIGINT         NOT NULL,
    PRIMARY KEY (account_id, currency)
);

CREATE TABLE positions (
    account_id     TEXT           NOT NULL,
    instrument     TEXT           NOT NULL,
    quantity       BIGINT         NOT NULL,
    frozen         BIGINT         NOT NULL,
    sellable       BIGINT         NOT NULL,
    cost           NUMERIC(22, 2) NOT NULL,
    avg_cost       NUMERIC(22, 4) NOT NULL,
    as_of_position BIGINT         NOT NULL,
    PRIMARY KEY (account_id, instrument)
);
