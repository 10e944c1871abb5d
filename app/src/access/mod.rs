//! Who may do what: roles and their permission matrix ([`roles`]), bearer tokens and the
//! principal they stand for ([`tokens`], kept in ledger.toml by [`token_file`]), the
//! masking of personal data ([`masking`]) and the append-only access log ([`log`]).
//! The HTTP server authenticates each request with [`authenticate`], asks [`may`], and
//! records every request with [`AccessLog::record_batch`]; docs/api.md, "Roles and
//! tokens", is the public description of all of it.

pub mod log;
pub mod masking;
pub mod roles;
pub mod token_file;
pub mod tokens;

pub use log::{
    read_access_log, AccessEntry, AccessLog, AccessRecord, Caller, MAX_ACCESS_LOG_PAGE, MAX_ROWS_PER_INSERT,
};
pub use masking::{id_number_for, mask_id_number, mask_name, name_for, payload_for, sees_personal_data};
pub use roles::{may, Action, CommandType, Read, Role, COMMAND_ROLES, READ_ROLES};
pub use token_file::{create_token, list_tokens, CreatedToken, TokenSummary};
pub use tokens::{
    authenticate, bearer_token, new_token, Principal, TokenEntry, TokenHash, Tokens, MAX_BEARER_BYTES,
    MAX_TOKEN_NAME_CHARS, TOKEN_PREFIX, TOKEN_RANDOM_BYTES,
};

/// Why a request is not let through, or a token cannot be made. Each has a stable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    /// No bearer token, or one that is no configured token's (one answer for both, on purpose).
    #[error("a valid bearer token is required (Authorization: Bearer lgr_…); see `ledger token create`")]
    Unauthenticated,
    /// The token is valid but its role may not do this, or it is limited to other accounts.
    #[error("{principal} ({role}) may not {what}")]
    Forbidden {
        principal: String,
        role: Role,
        what: String,
    },
    /// `ledger token create` was given a name that a token of the file already has.
    #[error("a token named {0:?} already exists; choose another name (revoking a token is deleting its entry)")]
    DuplicateName(String),
    /// A token name or account the configuration cannot hold.
    #[error("{0}")]
    InvalidToken(String),
    /// The operating system's random source failed.
    #[error("cannot read the operating system's random source: {0}")]
    Random(String),
}

impl AccessError {
    /// The stable code of this kind of error.
    pub fn code(&self) -> &'static str {
        match self {
            AccessError::Unauthenticated => "unauthenticated",
            AccessError::Forbidden { .. } => "forbidden",
            AccessError::DuplicateName(_) => "duplicate_token_name",
            AccessError::InvalidToken(_) => "invalid_input",
            AccessError::Random(_) => "random_unavailable",
        }
    }
}
