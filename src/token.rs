//! `ledger token create` and `ledger token list`: the bearer tokens of ledger.toml.

use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;
use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};
use ledger_app::access::{create_token, list_tokens, Role, TokenSummary};
use ledger_app::DEFAULT_CONFIG_FILE;

#[derive(Debug, Subcommand)]
pub enum TokenAction {
    /// Make a token, add its entry (its SHA-256, never the token) to the configuration
    /// file (created if missing, comments kept), and print the token once, alone on the last line.
    Create {
        /// What the token may do: gateway, operations, compliance, auditor or subscriber (docs/api.md).
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Who holds it, unique in the file; shown in the access log and `token list`.
        #[arg(long)]
        name: String,
        /// Limit the token to this account (repeat for several); every account when left out.
        #[arg(long = "account", value_name = "ACCOUNT")]
        accounts: Vec<String>,
    },
    /// The tokens of the configuration file: name, role, accounts, created (never a hash).
    List {
        /// Print one JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
}

fn parse_role(text: &str) -> Result<Role, String> {
    text.parse()
        .map_err(|_| format!("expected one of gateway, operations, compliance, auditor, subscriber, not {text:?}"))
}

/// Runs a token action on the file `--config` names, else ledger.toml in the working directory.
pub fn run(action: TokenAction, config: Option<&Path>) -> anyhow::Result<ExitCode> {
    let path = config.unwrap_or(Path::new(DEFAULT_CONFIG_FILE));
    match action {
        TokenAction::Create { role, name, accounts } => {
            let created = create_token(path, &name, role, &accounts, chrono::Utc::now())?;
            println!(
                "Created token {:?} ({role}, {}) in {}.",
                created.summary.name,
                accounts_text(&created.summary),
                path.display()
            );
            println!(
                "It is shown this once and stored only as its SHA-256; revoke it by deleting its [[tokens]] entry."
            );
            println!("{}", created.token);
        }
        TokenAction::List { json } => {
            let tokens = list_tokens(path)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&tokens)?);
            } else {
                println!("{}", token_table(&tokens));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn accounts_text(token: &TokenSummary) -> String {
    token
        .accounts
        .as_ref()
        .map_or_else(|| "every account".to_owned(), |accounts| accounts.join(", "))
}

fn token_table(tokens: &[TokenSummary]) -> Table {
    let mut table = Table::new();
    table.load_style(UTF8_BORDERS_ONLY);
    table.set_header(["name", "role", "accounts", "created"]);
    for token in tokens {
        table.add_row([
            token.name.clone(),
            token.role.to_string(),
            accounts_text(token),
            token.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ]);
    }
    table
}
