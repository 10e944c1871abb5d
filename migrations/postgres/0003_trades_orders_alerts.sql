-- More read models of the accounts projection (typed columns for psql and BI tools).
CREATE TABLE trades (
    global_position BIGINT PRIMARY KEY,
    account_id      TEXT    NOT NULL,
    order_id        TEXT    NOT NULL,
    exec_id         TEXT    NOT NULL,
    instrument      TEXT    NOT NULL,
    side            TEXT    NOT NULL CHECK (side IN ('buy', 'sell')),
    trade_date      DATE    NOT NULL,
    quantity        BIGINT  NOT NULL,
    price           NUMERIC(22, 4)    NOT NULL,
    value           NUMERIC(22, 2)    NOT NULL,
    commission      NUMERIC(22, 2)    NOT NULL,
    stamp_duty      NUMERIC(22, 2)    NOT NULL,
    transfer_fee    NUMERIC(22, 2)    NOT NULL,
    handling_fee    NUMERIC(22, 2)    NOT NULL,
    regulatory_fee  NUMERIC(22, 2)    NOT NULL,
    fees            NUMERIC(22, 2)    NOT NULL,
    -- The customer's cash movement: -(value + fees) for a buy, value - fees for a sell.
    net_cash        NUMERIC(22, 2)    NOT NULL
);
CREATE INDEX trades_by_date ON trades (trade_date, account_id);

CREATE TABLE orders (
    account_id      TEXT    NOT NULL,
    order_id        TEXT    NOT NULL,
    instrument      TEXT    NOT NULL,
    side            TEXT    NOT NULL,
    quantity        BIGINT  NOT NULL,
    limit_price     NUMERIC(22, 4)    NOT NULL,
    trade_date      DATE    NOT NULL,
    status          TEXT    NOT NULL,
    filled_quantity BIGINT  NOT NULL,
    as_of_position  BIGINT  NOT NULL,
    PRIMARY KEY (account_id, order_id)
);

-- Per trade date, account and instrument: what is owed to or by the depository.
CREATE TABLE clearing_obligations (
    trade_date     DATE    NOT NULL,
    account_id     TEXT    NOT NULL,
    instrument     TEXT    NOT NULL,
    net_quantity   BIGINT  NOT NULL,
    net_amount     NUMERIC(22, 2)    NOT NULL,
    fees           NUMERIC(22, 2)    NOT NULL,
    PRIMARY KEY (trade_date, account_id, instrument)
);

CREATE TABLE compliance_alerts (
    global_position BIGINT PRIMARY KEY,
    account_id      TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    direction       TEXT    NOT NULL,
    amount          NUMERIC(22, 2)    NOT NULL,
    threshold       NUMERIC(22, 2)    NOT NULL,
    bank_ref        TEXT    NOT NULL,
    recorded_at     TIMESTAMPTZ NOT NULL
);
