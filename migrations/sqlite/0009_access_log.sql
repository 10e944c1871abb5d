-- The access log (docs/api.md, "Roles and tokens"): one row per request to the
-- ledger's service, who asked what and how it was answered. Rows are only ever
-- inserted: the triggers below refuse UPDATE and DELETE, so no one, operations
-- included, edits what it says.
CREATE TABLE access_log (
    -- Increasing in the order rows were written, never reused (AUTOINCREMENT).
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    recorded_at TEXT    NOT NULL,
    -- The token's name and role; both NULL for a request without a valid token.
    principal   TEXT,
    role        TEXT CHECK (role IN ('gateway', 'operations', 'compliance', 'auditor', 'subscriber')),
    -- Method and route, or the command type: `POST /v1/commands place_order`.
    action      TEXT    NOT NULL,
    account     TEXT,
    status      INTEGER NOT NULL CHECK (status BETWEEN 100 AND 599),
    code        TEXT    NOT NULL,
    latency_us  INTEGER NOT NULL CHECK (latency_us >= 0),
    CHECK ((principal IS NULL) = (role IS NULL))
);

CREATE TRIGGER access_log_is_append_only_update BEFORE UPDATE ON access_log
BEGIN
    SELECT RAISE(ABORT, 'the access log is append-only');
END;

CREATE TRIGGER access_log_is_append_only_delete BEFORE DELETE ON access_log
BEGIN
    SELECT RAISE(ABORT, 'the access log is append-only');
END;
