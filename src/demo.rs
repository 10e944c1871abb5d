//! `ledger demo` (being written).
use ledger_domain::MarketRules;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Debug, clap::Args)]
pub struct DemoArgs {}

pub async fn run(_args: DemoArgs, _rules: Arc<MarketRules>) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not yet")
}
