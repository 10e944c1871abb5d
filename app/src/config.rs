//! The ledger's configuration file, `ledger.toml`: who the broker is (printed on
//! every statement), how statements are made, and the bearer tokens of the service
//! (`[[tokens]]`, hashes only: [`crate::access`]). One section per concern, so later
//! ones (a server's listen address) are new optional sections beside these.
//!
//! Which file is read: the one named (`--config FILE` or `LEDGER_CONFIG`), which must
//! exist and parse; else `./ledger.toml` when present (it must parse too); else the
//! built-in defaults, whose broker says plainly that it is a placeholder.
//! Unknown keys are refused, so a misspelt key is said instead of silently ignored.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::access::Tokens;
use crate::AppError;

/// The file read when none is named, in the working directory.
pub const DEFAULT_CONFIG_FILE: &str = "ledger.toml";

/// The whole file. Every section is optional and has defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub broker: BrokerConfig,
    #[serde(default)]
    pub statement: StatementConfig,
    /// `[[tokens]]`: who may use the service, as what role (`ledger token create` adds them).
    #[serde(default)]
    pub tokens: Tokens,
    #[serde(default)]
    pub events: EventsConfig,
}

/// `[events]`: how the log's events are named to other systems.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsConfig {
    /// The CloudEvents `source` of every event (docs/events.md, "The envelope"): a URI
    /// reference naming this ledger, distinct for each ledger whose events meet.
    #[serde(default = "default_source")]
    pub source: String,
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self {
            source: default_source(),
        }
    }
}

fn default_source() -> String {
    crate::stream::DEFAULT_SOURCE.to_owned()
}

/// Longest `[events] source`.
pub const MAX_SOURCE_CHARS: usize = 256;

/// `[broker]`: the brokerage a statement comes from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerConfig {
    pub name: String,
    pub address: String,
    /// The customer service phone, when the broker wants one printed.
    #[serde(default)]
    pub phone: Option<String>,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            name: "示例证券 Example Securities (set [broker] in ledger.toml)".to_owned(),
            address: "示例地址 Example address (set [broker] address in ledger.toml)".to_owned(),
            phone: None,
        }
    }
}

/// `[statement]`: how statements are made.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatementConfig {
    /// A TrueType/OpenType font (or collection) with Chinese glyphs, for PDF statements.
    /// When left out, the first of [`DEFAULT_PDF_FONTS`] that exists is used.
    #[serde(default)]
    pub pdf_font: Option<PathBuf>,
    /// Which font of a collection (.ttc) `pdf_font` names; 0 for a single font.
    #[serde(default)]
    pub pdf_font_index: u32,
    /// How many days the customer has to report a discrepancy, as the disclaimer says.
    #[serde(default = "default_discrepancy_days")]
    pub discrepancy_days: u32,
}

impl Default for StatementConfig {
    fn default() -> Self {
        Self {
            pdf_font: None,
            pdf_font_index: 0,
            discrepancy_days: default_discrepancy_days(),
        }
    }
}

fn default_discrepancy_days() -> u32 {
    7
}

/// Fonts looked for, in order, when `[statement] pdf_font` is not set, with the index of the
/// font used in each collection: Debian's WenQuanYi Micro Hei (package fonts-wqy-microhei)
/// and Noto Sans CJK SC (package fonts-noto-cjk, whose third font is the Simplified Chinese one).
pub const DEFAULT_PDF_FONTS: [(&str, u32); 2] = [
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0),
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 2),
];

/// Reads the configuration: the file named, else `./ledger.toml` when present, else the defaults.
pub fn load_config(named: Option<&Path>) -> Result<Config, AppError> {
    match named {
        Some(path) => read_config_file(path),
        None => {
            let path = Path::new(DEFAULT_CONFIG_FILE);
            if path.exists() {
                read_config_file(path)
            } else {
                Ok(Config::default())
            }
        }
    }
}

fn read_config_file(path: &Path) -> Result<Config, AppError> {
    let text = std::fs::read_to_string(path).map_err(|cause| AppError::ConfigUnreadable {
        path: path.display().to_string(),
        cause,
    })?;
    config_from_toml(&text).map_err(|reason| AppError::InvalidConfig {
        path: path.display().to_string(),
        reason,
    })
}

/// Parses the text of a configuration file; the error is toml's own sentence (line, column, key).
pub fn config_from_toml(text: &str) -> Result<Config, String> {
    let config: Config = toml::from_str(text).map_err(|e| e.to_string().trim_end().to_owned())?;
    check_source(&config.events.source)?;
    Ok(config)
}

/// A CloudEvents source is a non-empty URI reference: printable ASCII, no spaces.
fn check_source(source: &str) -> Result<(), String> {
    let printable = source.bytes().all(|b| b.is_ascii_graphic());
    if source.is_empty() || source.len() > MAX_SOURCE_CHARS || !printable {
        return Err(format!(
            "[events] source {source:?} is not a URI reference: 1 to {MAX_SOURCE_CHARS} printable ASCII characters without spaces, such as \"urn:ledger:sh-01\""
        ));
    }
    Ok(())
}
