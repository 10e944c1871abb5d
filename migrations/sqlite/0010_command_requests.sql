-- The HTTP API's idempotency keys (docs/api.md, "HTTP API"): the digest of the
-- canonical request body first sent under each command id, so that the same key
-- with another body is refused (`idempotency_key_reused`) even after a restart.
-- Rows are only inserted, never changed; a command id the engine answered
-- `malformed` (never recorded, its id still free) has its row removed again.
CREATE TABLE command_requests (
    command_id  TEXT PRIMARY KEY,
    body_sha256 TEXT NOT NULL
);
