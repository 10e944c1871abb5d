//! Bearer tokens: made from the operating system's random source, stored only as their
//! SHA-256, and checked in constant time.
//!
//! A token is [`TOKEN_PREFIX`] and 64 hex digits (256 random bits), so a leaked one is
//! recognisable in a log or a repository scan. ledger.toml keeps `[[tokens]]` entries
//! ([`TokenEntry`]); whoever reads the file learns names and roles, never a token.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::log::Caller;
use super::roles::{may, Action, CommandType, Read, Role};
use super::AccessError;

/// What every token starts with.
pub const TOKEN_PREFIX: &str = "lgr_";
/// Random bytes in a token: 256 bits.
pub const TOKEN_RANDOM_BYTES: usize = 32;
/// Longest bearer value looked at; anything longer is refused unhashed (a token is 68 bytes).
pub const MAX_BEARER_BYTES: usize = 256;
/// Longest token name, in characters (names appear in the access log and `token list`).
pub const MAX_TOKEN_NAME_CHARS: usize = 64;

/// A SHA-256 digest of a token, written as 64 lowercase hex digits in ledger.toml.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    /// The hash of a presented token.
    pub fn of(token: &str) -> TokenHash {
        TokenHash(Sha256::digest(token.as_bytes()).into())
    }

    /// Parses 64 hex digits.
    pub fn from_hex(text: &str) -> Result<TokenHash, String> {
        let mut bytes = [0_u8; 32];
        hex::decode_to_slice(text, &mut bytes)
            .map_err(|_| format!("sha256 must be 64 hex digits (the SHA-256 of the token), not {text:?}"))?;
        Ok(TokenHash(bytes))
    }

    pub fn to_hex(self) -> String {
        hex::encode(self.0)
    }

    /// Equality that takes the same time wherever the digests differ.
    fn matches(&self, other: &TokenHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl std::fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenHash({})", self.to_hex())
    }
}

impl<'de> Deserialize<'de> for TokenHash {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        TokenHash::from_hex(&text).map_err(serde::de::Error::custom)
    }
}

/// One `[[tokens]]` entry of ledger.toml.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    /// Who holds it: unique in the file, shown in the access log.
    pub name: String,
    pub role: Role,
    /// The SHA-256 of the token, hex.
    pub sha256: TokenHash,
    /// When present, the only accounts the token may see or act on.
    #[serde(default)]
    pub accounts: Option<Vec<String>>,
    pub created_at: DateTime<Utc>,
}

/// Every token of the configuration (`[[tokens]]`), checked once when the file is read:
/// names unique, no hash twice.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tokens(Vec<TokenEntry>);

impl<'de> Deserialize<'de> for Tokens {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Tokens::new(Vec::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

impl Tokens {
    /// Checks the entries: a name and a hash each once, names non-empty and bounded, accounts valid ids.
    pub fn new(entries: Vec<TokenEntry>) -> Result<Tokens, String> {
        for (index, entry) in entries.iter().enumerate() {
            check_name(&entry.name)?;
            let earlier = &entries[..index];
            if earlier.iter().any(|e| e.name == entry.name) {
                return Err(format!("two tokens are named {:?}: names must be unique", entry.name));
            }
            if earlier.iter().any(|e| e.sha256 == entry.sha256) {
                return Err(format!("token {:?} has the same sha256 as another token", entry.name));
            }
            for account in entry.accounts.iter().flatten() {
                ledger_domain::ids::AccountId::parse(account)
                    .map_err(|e| format!("token {:?}: account {account:?}: {e}", entry.name))?;
            }
        }
        Ok(Tokens(entries))
    }

    pub fn entries(&self) -> &[TokenEntry] {
        &self.0
    }
}

/// A token name: 1 to [`MAX_TOKEN_NAME_CHARS`] characters, none a control character.
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_TOKEN_NAME_CHARS || name.chars().any(char::is_control) || name.trim() != name {
        return Err(format!(
            "a token name is 1 to {MAX_TOKEN_NAME_CHARS} characters without control characters or \
             surrounding spaces, not {name:?}"
        ));
    }
    Ok(())
}

/// Who made a request, once its token is known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    pub name: String,
    pub role: Role,
    /// The accounts the token is limited to; `None`: every account.
    pub accounts: Option<Vec<String>>,
}

impl Principal {
    /// Whether this principal may see or act on account `id`.
    pub fn may_see_account(&self, id: &str) -> bool {
        self.accounts
            .as_ref()
            .is_none_or(|accounts| accounts.iter().any(|a| a == id))
    }

    /// Who it is, as the access log records it.
    pub fn caller(&self) -> Caller {
        Caller {
            name: self.name.clone(),
            role: self.role,
        }
    }

    /// Whether its role may do `action` ([`may`]).
    pub fn may(&self, action: Action) -> bool {
        may(self.role, action)
    }

    /// `forbidden` unless its role may do `action` and, when the action is about an
    /// account, the token may see that account.
    pub fn authorize(&self, action: Action, account: Option<&str>) -> Result<(), AccessError> {
        let forbidden = |what: String| AccessError::Forbidden {
            principal: self.name.clone(),
            role: self.role,
            what,
        };
        if !self.may(action) {
            return Err(forbidden(action.to_string()));
        }
        match account {
            Some(id) if !self.may_see_account(id) => Err(forbidden(format!("{action} of account {id}"))),
            _ => Ok(()),
        }
    }
}

impl Principal {
    /// `forbidden` unless its role may submit `command` and the token may act on what it
    /// names: a token limited to accounts sends commands of one of its accounts, never a
    /// command that acts on no account in particular (`account` `None`: listing an
    /// instrument, a previous close, the end of a day, a settlement), which moves every
    /// account's day, or the market's.
    pub fn authorize_submit(&self, command: CommandType, account: Option<&str>) -> Result<(), AccessError> {
        let action = Action::Submit(command);
        self.authorize(action, account)?;
        match (&self.accounts, account) {
            (Some(_), None) => Err(AccessError::Forbidden {
                principal: self.name.clone(),
                role: self.role,
                what: format!("{action}, which names no account (the token is limited to accounts)"),
            }),
            _ => Ok(()),
        }
    }

    /// `forbidden` unless its role may read `read` and the token may see what it reads:
    /// a token limited to accounts reads about one of its accounts (`account`), never a
    /// read that spans every account (`account` `None`: a page of all balances, the
    /// events, the clearing report of a date).
    pub fn authorize_read(&self, read: Read, account: Option<&str>) -> Result<(), AccessError> {
        self.authorize(Action::Read(read), account)?;
        match (&self.accounts, account) {
            (Some(_), None) => Err(AccessError::Forbidden {
                principal: self.name.clone(),
                role: self.role,
                what: format!(
                    "{} of every account (the token is limited to accounts: name one of them)",
                    Action::Read(read)
                ),
            }),
            _ => Ok(()),
        }
    }
}

/// A new token: the prefix and 256 bits of the operating system's random source, in hex.
pub fn new_token() -> Result<String, AccessError> {
    let mut bytes = [0_u8; TOKEN_RANDOM_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| AccessError::Random(e.to_string()))?;
    Ok(format!("{TOKEN_PREFIX}{}", hex::encode(bytes)))
}

/// The token of an `Authorization` header value, `Bearer TOKEN` (the scheme in any case).
pub fn bearer_token(header_value: &str) -> Option<&str> {
    let (scheme, token) = header_value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The principal a bearer token stands for. A missing, oversized or unknown token is
/// `unauthenticated`, one answer for all three. Every entry is compared, in constant
/// time, so the time taken does not tell how much of a hash matched or which entry did.
pub fn authenticate(tokens: &Tokens, bearer: Option<&str>) -> Result<Principal, AccessError> {
    let bearer = bearer.filter(|b| !b.is_empty() && b.len() <= MAX_BEARER_BYTES);
    let Some(bearer) = bearer else {
        return Err(AccessError::Unauthenticated);
    };
    let presented = TokenHash::of(bearer);
    let mut found = None;
    for entry in tokens.entries() {
        if entry.sha256.matches(&presented) {
            found = Some(entry);
        }
    }
    let entry = found.ok_or(AccessError::Unauthenticated)?;
    Ok(Principal {
        name: entry.name.clone(),
        role: entry.role,
        accounts: entry.accounts.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, role: Role, token: &str, accounts: Option<Vec<String>>) -> TokenEntry {
        TokenEntry {
            name: name.to_owned(),
            role,
            sha256: TokenHash::of(token),
            accounts,
            created_at: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
        }
    }

    #[test]
    fn a_new_token_is_prefixed_random_and_256_bits() {
        let a = new_token().unwrap();
        let b = new_token().unwrap();
        assert_ne!(a, b);
        let digits = a.strip_prefix(TOKEN_PREFIX).unwrap();
        assert_eq!(digits.len(), 2 * TOKEN_RANDOM_BYTES);
        assert!(digits.bytes().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    }

    #[test]
    fn the_hash_is_sha256_in_hex() {
        // SHA-256("abc"), FIPS 180-2's test vector.
        let expected = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(TokenHash::of("abc").to_hex(), expected);
        assert_eq!(TokenHash::from_hex(expected).unwrap(), TokenHash::of("abc"));
        assert!(TokenHash::from_hex("abc").is_err());
        assert!(TokenHash::from_hex(&"g".repeat(64)).is_err());
    }

    #[test]
    fn authentication_finds_the_principal_or_says_unauthenticated() {
        let gateway = new_token().unwrap();
        let auditor = new_token().unwrap();
        let tokens = Tokens::new(vec![
            entry("gw-1", Role::Gateway, &gateway, Some(vec!["A0001".to_owned()])),
            entry("audit", Role::Auditor, &auditor, None),
        ])
        .unwrap();
        let principal = authenticate(&tokens, Some(&gateway)).unwrap();
        assert_eq!((principal.name.as_str(), principal.role), ("gw-1", Role::Gateway));
        assert!(principal.may_see_account("A0001"));
        assert!(!principal.may_see_account("A0002"));
        let place = Action::Submit(crate::access::CommandType::PlaceOrder);
        assert_eq!(principal.authorize(place, Some("A0001")), Ok(()));
        assert_eq!(
            principal.authorize(place, Some("A0002")).unwrap_err().code(),
            "forbidden"
        );
        assert_eq!(
            principal.authorize_submit(CommandType::PlaceOrder, Some("A0001")),
            Ok(())
        );
        let limited_operations = Principal {
            role: Role::Operations,
            ..principal.clone()
        };
        let no_account = limited_operations.authorize_submit(CommandType::EndOfDay, None);
        assert_eq!(
            no_account.unwrap_err().code(),
            "forbidden",
            "a limited token closes no day"
        );
        let balances = Action::Read(crate::access::Read::Balances);
        assert_eq!(principal.authorize(balances, None).unwrap_err().code(), "forbidden");
        let principal = authenticate(&tokens, Some(&auditor)).unwrap();
        assert!(principal.may_see_account("A0002"), "no list: every account");
        assert_eq!(principal.authorize(balances, Some("A0002")), Ok(()));
        for bad in [None, Some(""), Some("lgr_00"), Some(&gateway[..gateway.len() - 1])] {
            let error = authenticate(&tokens, bad).unwrap_err();
            assert_eq!(error.code(), "unauthenticated");
        }
        let oversized = format!("{gateway}{}", "0".repeat(MAX_BEARER_BYTES));
        assert_eq!(
            authenticate(&tokens, Some(&oversized)).unwrap_err().code(),
            "unauthenticated"
        );
        // The hash stored is not the token: presenting the hash itself fails.
        let hash = TokenHash::of(&gateway).to_hex();
        assert!(authenticate(&tokens, Some(&hash)).is_err());
    }

    #[test]
    fn duplicate_names_or_hashes_and_bad_accounts_are_refused() {
        let a = entry("x", Role::Gateway, "t1", None);
        let same_name = entry("x", Role::Auditor, "t2", None);
        assert!(Tokens::new(vec![a.clone(), same_name])
            .unwrap_err()
            .contains("two tokens"));
        let same_hash = entry("y", Role::Auditor, "t1", None);
        assert!(Tokens::new(vec![a.clone(), same_hash])
            .unwrap_err()
            .contains("same sha256"));
        let bad_account = entry("z", Role::Gateway, "t3", Some(vec!["A 1".to_owned()]));
        assert!(Tokens::new(vec![bad_account]).is_err());
        assert!(Tokens::new(vec![entry("", Role::Gateway, "t4", None)]).is_err());
    }

    #[test]
    fn the_bearer_scheme_is_read_in_any_case() {
        assert_eq!(bearer_token("Bearer lgr_ab"), Some("lgr_ab"));
        assert_eq!(bearer_token("bearer  lgr_ab "), Some("lgr_ab"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("lgr_ab"), None);
    }

    #[test]
    fn a_token_limited_to_accounts_reads_only_about_them() {
        let limited = Principal {
            name: "audit-a1".to_owned(),
            role: Role::Auditor,
            accounts: Some(vec!["A1".to_owned()]),
        };
        assert!(limited.authorize_read(Read::Balances, Some("A1")).is_ok());
        assert!(limited.authorize_read(Read::Balances, Some("A2")).is_err());
        let every = limited.authorize_read(Read::Balances, None).unwrap_err();
        assert_eq!(every.code(), "forbidden");
        assert!(every.to_string().contains("every account"), "{every}");
        let unlimited = Principal {
            accounts: None,
            ..limited.clone()
        };
        assert!(unlimited.authorize_read(Read::Events, None).is_ok());
        let operations = Principal {
            role: Role::Operations,
            ..unlimited
        };
        assert!(operations.authorize_read(Read::Events, None).is_err(), "the role first");
    }
}
