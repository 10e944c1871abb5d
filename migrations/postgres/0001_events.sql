-- The event log. Rows are only ever inserted: triggers below refuse UPDATE, DELETE and TRUNCATE.
CREATE TABLE events (
    -- Unique and increasing in commit order: appends hold one advisory lock, and the
    -- appender assigns last + 1, so positions have no holes.
    global_position BIGINT      PRIMARY KEY CHECK (global_position >= 1),
    aggregate_type  TEXT        NOT NULL,
    aggregate_id    TEXT        NOT NULL,
    -- 1, 2, 3, ... within one aggregate; the key of optimistic concurrency.
    sequence        BIGINT      NOT NULL CHECK (sequence >= 1),
    event_type      TEXT        NOT NULL,
    event_version   INTEGER     NOT NULL CHECK (event_version >= 1),
    payload         JSONB       NOT NULL,
    command_id      TEXT        NOT NULL,
    correlation_id  TEXT        NOT NULL,
    causation_id    TEXT        NOT NULL,
    actor           TEXT        NOT NULL,
    recorded_at     TIMESTAMPTZ NOT NULL,
    -- The hash chain (docs/events.md): the previous event's hash and this one's, SHA-256 hex.
    prev_hash       TEXT        NOT NULL,
    hash            TEXT        NOT NULL,
    -- The writing transaction: readers only take events below the oldest transaction
    -- still in flight, so an event that commits late is never skipped.
    transaction_id  XID8        NOT NULL DEFAULT pg_current_xact_id(),
    UNIQUE (aggregate_type, aggregate_id, sequence)
);

CREATE INDEX events_by_command ON events (command_id);

CREATE FUNCTION events_are_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are immutable';
END
$$;

CREATE TRIGGER events_are_immutable_row BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_are_immutable();

CREATE TRIGGER events_are_immutable_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_are_immutable();

-- The first outcome of every command id: the idempotency record.
CREATE TABLE command_outcomes (
    command_id     TEXT        PRIMARY KEY,
    status         TEXT        NOT NULL CHECK (status IN ('accepted', 'rejected')),
    code           TEXT,
    message        TEXT,
    event_count    BIGINT      NOT NULL CHECK (event_count >= 0),
    first_position BIGINT,
    last_position  BIGINT,
    recorded_at    TIMESTAMPTZ NOT NULL,
    CHECK ((status = 'rejected') = (code IS NOT NULL))
);
