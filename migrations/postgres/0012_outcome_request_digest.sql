-- The HTTP API's request digests move into the outcomes: the SHA-256 of the
-- canonical request body a command was decided for is now a column of its
-- outcome, written in the append's own transaction, instead of a row of
-- `command_requests` written and committed on its own before the batch (one
-- more commit and one more index a command). A command id is bound to a body
-- exactly when its outcome is recorded; a command-file line keeps no body
-- (NULL). Digests of command ids that have an outcome are carried over; a row
-- without one (a batch whose commit failed after the binding) bound nothing
-- that was recorded, and goes.
ALTER TABLE command_outcomes ADD COLUMN request_sha256 TEXT;
UPDATE command_outcomes SET request_sha256 =
    (SELECT r.body_sha256 FROM command_requests r WHERE r.command_id = command_outcomes.command_id);
DROP TABLE command_requests;
