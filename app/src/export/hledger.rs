//! The journal as an hledger file (docs/export.md): accounts as docs/journal.md names
//! them, a `:` in a customer's id written `%3A` (hledger's separator of sub-accounts;
//! `%` is not allowed in ids, so no two ids meet), instrument codes as quoted
//! commodities (`"600000.SH"`), the customers' cash asserted with `0 CNY = BALANCE`
//! postings after each day's transactions.

use std::io::{self, Write};

use super::books::{Book, Commodity, Entry};
use super::{write_lines, write_provenance, Journal, Spelling};

/// A customer's id as a component of an hledger account name.
fn account_id(id: &str) -> String {
    id.replace(':', "%3A")
}

/// hledger's spelling of the journal's names.
pub(super) struct Hledger;

impl Spelling for Hledger {
    const INDENT: &'static str = "    ";

    fn account(book: &Book) -> String {
        book.path(account_id)
    }

    fn commodity(commodity: &Commodity) -> String {
        match commodity {
            Commodity::Cny => "CNY".to_owned(),
            Commodity::Shares(code) => format!("\"{code}\""),
        }
    }
}

pub(super) fn write(out: &mut dyn Write, journal: &Journal) -> io::Result<()> {
    write_provenance(out, journal)?;
    writeln!(out)?;
    writeln!(out, "commodity 1000.00 CNY")?;
    for held in journal.commodities.iter().filter(|c| **c != Commodity::Cny) {
        writeln!(out, "commodity {}", Hledger::commodity(held))?;
    }
    for book in &journal.books {
        writeln!(out, "account {}", Hledger::account(book))?;
    }
    if let Some((date, lines)) = &journal.opening {
        writeln!(out)?;
        writeln!(
            out,
            "{date} * opening balances  ; the balances the log gives before {date}"
        )?;
        write_lines::<Hledger>(out, lines)?;
    }
    for (date, day) in &journal.days {
        for entry in &day.entries {
            write_entry(out, entry)?;
        }
        if !day.closing_cash.is_empty() {
            writeln!(out)?;
            writeln!(out, "{date} * end of business day {date}: the customers' cash")?;
            for (id, cash) in &day.closing_cash {
                let book = Book::CustomerCash(id.clone());
                writeln!(out, "    {}  0 CNY = {cash:.2} CNY", Hledger::account(&book))?;
            }
        }
    }
    Ok(())
}

fn write_entry(out: &mut dyn Write, entry: &Entry) -> io::Result<()> {
    writeln!(out)?;
    writeln!(
        out,
        "{} * {} | {}  ; event:{}, account:{}, command:{}, position:{}",
        entry.date,
        entry.account_id,
        entry.narration,
        entry.event_type,
        entry.account_id,
        entry.command_id,
        entry.position
    )?;
    write_lines::<Hledger>(out, &entry.lines)
}
