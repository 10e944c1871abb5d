-- The event log. Rows are only ever inserted: triggers below refuse UPDATE and DELETE.
CREATE TABLE events (
    -- Unique, increasing, never reused (AUTOINCREMENT): the order of the whole log.
    global_position INTEGER PRIMARY KEY AUTOINCREMENT,
    aggregate_type  TEXT    NOT NULL,
    aggregate_id    TEXT    NOT NULL,
    -- 1, 2, 3, ... within one aggregate; the key of optimistic concurrency.
    sequence        INTEGER NOT NULL CHECK (sequence >= 1),
    event_type      TEXT    NOT NULL,
    event_version   INTEGER NOT NULL CHECK (event_version >= 1),
    payload         TEXT    NOT NULL,
    command_id      TEXT    NOT NULL,
    correlation_id  TEXT    NOT NULL,
    causation_id    TEXT    NOT NULL,
    actor           TEXT    NOT NULL,
    recorded_at     TEXT    NOT NULL,
    -- The hash chain (docs/events.md): the previous event's hash and this one's, SHA-256 hex.
    prev_hash       TEXT    NOT NULL,
    hash            TEXT    NOT NULL,
    UNIQUE (aggregate_type, aggregate_id, sequence)
);

CREATE INDEX events_by_command ON events (command_id);

CREATE TRIGGER events_are_immutable_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are immutable');
END;

CREATE TRIGGER events_are_immutable_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are immutable');
END;

-- The first outcome of every command id: the idempotency record.
-- Accepted commands point at their events; refused ones wrote no event.
CREATE TABLE command_outcomes (
    command_id     TEXT    PRIMARY KEY,
    status         TEXT    NOT NULL CHECK (status IN ('accepted', 'rejected')),
    code           TEXT,
    message        TEXT,
    event_count    INTEGER NOT NULL CHECK (event_count >= 0),
    first_position INTEGER,
    last_position  INTEGER,
    recorded_at    TEXT    NOT NULL,
    CHECK ((status = 'rejected') = (code IS NOT NULL))
);
