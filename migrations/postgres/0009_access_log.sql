-- The access log (docs/api.md, "Roles and tokens"): one row per request to the
-- ledger's service, who asked what and how it was answered. Rows are only ever
-- inserted: the triggers below refuse UPDATE, DELETE and TRUNCATE, so no one,
-- operations included, edits what it says.
CREATE TABLE access_log (
    -- Increasing in the order rows were written (one writer batch at a time).
    id          BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    recorded_at TIMESTAMPTZ NOT NULL,
    -- The token's name and role; both NULL for a request without a valid token.
    principal   TEXT,
    role        TEXT CHECK (role IN ('gateway', 'operations', 'compliance', 'auditor', 'subscriber')),
    -- Method and route, or the command type: `POST /v1/commands place_order`.
    action      TEXT        NOT NULL,
    account     TEXT,
    status      BIGINT      NOT NULL CHECK (status BETWEEN 100 AND 599),
    code        TEXT        NOT NULL,
    latency_us  BIGINT      NOT NULL CHECK (latency_us >= 0),
    CHECK ((principal IS NULL) = (role IS NULL))
);

CREATE FUNCTION access_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the access log is append-only';
END
$$;

CREATE TRIGGER access_log_is_append_only_row BEFORE UPDATE OR DELETE ON access_log
    FOR EACH ROW EXECUTE FUNCTION access_log_is_append_only();

CREATE TRIGGER access_log_is_append_only_truncate BEFORE TRUNCATE ON access_log
    FOR EACH STATEMENT EXECUTE FUNCTION access_log_is_append_only();
