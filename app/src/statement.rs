//! A customer's statement (对账单) for a period of trade dates: the period clamped to
//! what the ledger has reached, built, then rendered as HTML, CSV or PDF.

use std::path::Path;

use chrono::{DateTime, NaiveDate, Utc};
use ledger_domain::MarketRules;
use ledger_eventstore::EventStore;
use ledger_projections::business_date::BusinessDates;
use ledger_projections::statement::{
    build_statement, render_csv, render_html, render_pdf, Broker, PdfFont, PeriodClamp, StatementContext,
};
use serde::{Deserialize, Serialize};

use crate::access::{name_for, Role};
use crate::config::{Config, StatementConfig, DEFAULT_PDF_FONTS};
use crate::AppError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatementFormat {
    /// A page to read or print.
    Html,
    /// UTF-8 with a byte-order mark, so that Excel shows its Chinese text.
    Csv,
    /// A4 landscape, its font embedded; needs a font with Chinese glyphs ([`load_pdf_font`]).
    Pdf,
    /// The statement's fields as one JSON object (amounts as strings), for programs.
    Json,
}

/// Which statement to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatementRequest<'a> {
    pub account_id: &'a str,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub format: StatementFormat,
    /// The role of the service it is made for: the customer's name is masked unless the
    /// role sees personal data. `None`: the customer's own copy (`ledger statement`),
    /// name in full. The id number is masked on every statement.
    pub shown_to: Option<Role>,
}

/// The statement of an account for trade dates `from..=to`, rendered, generated now.
pub async fn statement(
    store: &dyn EventStore,
    rules: &MarketRules,
    config: &Config,
    request: StatementRequest<'_>,
) -> Result<Vec<u8>, AppError> {
    statement_at((store, rules), config, request, Utc::now()).await
}

/// [`statement`], saying it was generated at `generated_at`.
pub async fn statement_at(
    (store, rules): (&dyn EventStore, &MarketRules),
    config: &Config,
    request: StatementRequest<'_>,
    generated_at: DateTime<Utc>,
) -> Result<Vec<u8>, AppError> {
    let StatementRequest {
        account_id,
        from,
        to,
        format,
        shown_to,
    } = request;
    if from > to {
        return Err(AppError::InvalidInput(format!(
            "the period starts on {from}, after its end on {to}"
        )));
    }
    // The font first: a PDF that cannot be written is said before any work is done.
    let font = match format {
        StatementFormat::Pdf => Some(load_pdf_font(&config.statement)?),
        StatementFormat::Html | StatementFormat::Csv | StatementFormat::Json => None,
    };
    let dates = BusinessDates::of_log(store, &rules.calendar).await?;
    let (to, clamp) = clamp_period(dates.latest(store).await?, from, to)?;
    let context = StatementContext {
        broker: Broker {
            name: config.broker.name.clone(),
            address: config.broker.address.clone(),
            phone: config.broker.phone.clone(),
        },
        generated_at,
        discrepancy_days: config.statement.discrepancy_days,
        clamp,
    };
    let Some(mut statement) = build_statement((store, &dates), account_id, (from, to), context).await? else {
        return Err(AppError::UnknownAccount(account_id.to_owned()));
    };
    if let Some(role) = shown_to {
        statement.customer_name = name_for(role, &statement.customer_name);
    }
    Ok(match (format, font) {
        (StatementFormat::Pdf, Some(font)) => render_pdf(&statement, &font)
            .map_err(|e| AppError::PdfFont(format!("cannot write the PDF statement: {e}")))?,
        (StatementFormat::Csv, _) => render_csv(&statement).into_bytes(),
        (StatementFormat::Json, _) => serde_json::to_vec(&statement).map_err(|e| AppError::Output {
            what: "the JSON statement",
            cause: e.into(),
        })?,
        _ => render_html(&statement).into_bytes(),
    })
}

/// The period's end, clamped to the last business date the ledger has reached; a period
/// that starts after that date is refused.
fn clamp_period(
    reached: Option<NaiveDate>,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<(NaiveDate, Option<PeriodClamp>), AppError> {
    match reached {
        Some(reached) if from > reached => Err(AppError::PeriodNotReached { from, reached }),
        Some(reached) if to > reached => Ok((
            reached,
            Some(PeriodClamp {
                requested_to: to,
                reached,
            }),
        )),
        _ => Ok((to, None)),
    }
}

/// The font PDF statements are written with: `[statement] pdf_font` when set, else the
/// first of [`DEFAULT_PDF_FONTS`] installed. Missing or unusable, it is an error that says
/// which package to install or which key to set.
pub fn load_pdf_font(config: &StatementConfig) -> Result<PdfFont, AppError> {
    let (path, index) = match &config.pdf_font {
        Some(path) => (path.as_path(), config.pdf_font_index),
        None => DEFAULT_PDF_FONTS
            .iter()
            .map(|(path, index)| (Path::new(*path), *index))
            .find(|(path, _)| path.exists())
            .ok_or_else(|| {
                AppError::PdfFont(format!(
                    "no font with Chinese glyphs for the PDF statement: none of {} exists; install the Debian \
                     package fonts-wqy-microhei (or fonts-noto-cjk), or set [statement] pdf_font in ledger.toml",
                    DEFAULT_PDF_FONTS.map(|(path, _)| path).join(", ")
                ))
            })?,
    };
    let bytes = std::fs::read(path).map_err(|cause| {
        AppError::PdfFont(format!(
            "cannot read the PDF statement's font {} ([statement] pdf_font in ledger.toml): {cause}",
            path.display()
        ))
    })?;
    PdfFont::new(bytes, index).map_err(|cause| {
        AppError::PdfFont(format!(
            "the PDF statement's font {} cannot be used: {cause}; set [statement] pdf_font in ledger.toml \
             to a TrueType/OpenType font with Chinese glyphs",
            path.display()
        ))
    })
}
