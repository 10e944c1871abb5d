-- More read models of the accounts projection (money as exact decimal text).
CREATE TABLE trades (
    global_position INTEGER PRIMARY KEY,
    account_id      TEXT    NOT NULL,
    order_id        TEXT    NOT NULL,
    exec_id         TEXT    NOT NULL,
    instrument      TEXT    NOT NULL,
    side            TEXT    NOT NULL CHECK (side IN ('buy', 'sell')),
    trade_date      TEXT    NOT NULL,
    quantity        INTEGER NOT NULL,
    price           TEXT    NOT NULL,
    value           TEXT    NOT NULL,
    commission      TEXT    NOT NULL,
    stamp_duty      TEXT    NOT NULL,
    transfer_fee    TEXT    NOT NULL,
    handling_fee    TEXT    NOT NULL,
    regulatory_fee  TEXT    NOT NULL,
    fees            TEXT    NOT NULL,
    -- The customer's cash movement: -(value + fees) for a buy, value - fees for a sell.
    net_cash        TEXT    NOT NULL
);
CREATE INDEX trades_by_date ON trades (trade_date, account_id);

CREATE TABLE orders (
    account_id      TEXT    NOT NULL,
    order_id        TEXT    NOT NULL,
    instrument      TEXT    NOT NULL,
    side            TEXT    NOT NULL,
    quantity        INTEGER NOT NULL,
    limit_price     TEXT    NOT NULL,
    trade_date      TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    filled_quantity INTEGER NOT NULL,
    as_of_position  INTEGER NOT NULL,
    PRIMARY KEY (account_id, order_id)
);

-- Per trade date, account and instrument: what is owed to or by the depository.
CREATE TABLE clearing_obligations (
    trade_date     TEXT    NOT NULL,
    account_id     TEXT    NOT NULL,
    instrument     TEXT    NOT NULL,
    net_quantity   INTEGER NOT NULL,
    net_amount     TEXT    NOT NULL,
    fees           TEXT    NOT NULL,
    PRIMARY KEY (trade_date, account_id, instrument)
);

CREATE TABLE compliance_alerts (
    global_position INTEGER PRIMARY KEY,
    account_id      TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    direction       TEXT    NOT NULL,
    amount          TEXT    NOT NULL,
    threshold       TEXT    NOT NULL,
    bank_ref        TEXT    NOT NULL,
    recorded_at     TEXT    NOT NULL
);
