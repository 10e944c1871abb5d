//! The journal as a Beancount file (docs/export.md). Beancount wants capitalised
//! account components of letters, digits and dashes, and commodities that start with a
//! letter, so: `liabilities:tax:stamp_duty` is written `Liabilities:Tax:Stamp-Duty`; a
//! customer's id is kept when it already is such a component without dashes (`A1`,
//! `C000123`) and is otherwise written `X-` then the id with every other character as
//! `-` and two hexadecimal digits (`a.1` is `X-a-2E1`), so that no two ids meet;
//! `600000.SH` is `SH600000`. A `balance` directive checks an account at the start of
//! its date, so the cash at the end of a business day is asserted on the next date.

use std::io::{self, Write};

use chrono::NaiveDate;

use super::books::{Book, Commodity, Entry};
use super::{write_lines, write_provenance, Journal, Spelling};

/// A customer's id as a Beancount account component.
fn account_id(id: &str) -> String {
    let mut chars = id.chars();
    let valid_start = chars
        .next()
        .is_some_and(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    if valid_start && chars.all(|c| c.is_ascii_alphanumeric()) {
        return id.to_owned();
    }
    let mut escaped = String::from("X-");
    for c in id.chars() {
        if c.is_ascii_alphanumeric() {
            escaped.push(c);
        } else {
            let mut bytes = [0; 4];
            for byte in c.encode_utf8(&mut bytes).bytes() {
                escaped.push_str(&format!("-{byte:02X}"));
            }
        }
    }
    escaped
}

/// Beancount's spelling of the journal's names.
pub(super) struct Beancount;

impl Spelling for Beancount {
    const INDENT: &'static str = "  ";

    fn account(book: &Book) -> String {
        book.path(account_id)
            .split(':')
            .map(capitalised_component)
            .collect::<Vec<_>>()
            .join(":")
    }

    /// `600000.SH` is `SH600000`: the exchange first, as Beancount's commodities start with a letter.
    fn commodity(commodity: &Commodity) -> String {
        match commodity {
            Commodity::Cny => "CNY".to_owned(),
            Commodity::Shares(code) => match code.split_once('.') {
                Some((digits, exchange)) => format!("{exchange}{digits}"),
                None => format!("X{}", code.replace(|c: char| !c.is_ascii_alphanumeric(), "")),
            },
        }
    }
}

/// `stamp_duty` is `Stamp-Duty`: each word capitalised, dashes between them.
fn capitalised_component(component: &str) -> String {
    component
        .split('_')
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// A string in double quotes, its quotes and backslashes escaped.
fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

pub(super) fn write(out: &mut dyn Write, journal: &Journal) -> io::Result<()> {
    write_provenance(out, journal)?;
    writeln!(out, "option \"title\" \"Brokerage ledger\"")?;
    writeln!(out, "option \"operating_currency\" \"CNY\"")?;
    let Some(first) = journal.first_date() else {
        return Ok(());
    };
    writeln!(out)?;
    for held in &journal.commodities {
        writeln!(out, "{first} commodity {}", Beancount::commodity(held))?;
        if let Commodity::Shares(code) = held {
            writeln!(out, "  code: {}", quoted(code))?;
        }
    }
    for book in &journal.books {
        writeln!(out, "{first} open {}", Beancount::account(book))?;
    }
    if let Some((date, lines)) = &journal.opening {
        writeln!(out)?;
        writeln!(
            out,
            "{date} * \"opening balances\" {}",
            quoted(&format!("the balances the log gives before {date}"))
        )?;
        write_lines::<Beancount>(out, lines)?;
    }
    for (date, day) in &journal.days {
        for entry in &day.entries {
            write_entry(out, entry)?;
        }
        if !day.closing_cash.is_empty() {
            writeln!(out)?;
            writeln!(out, "; the customers' cash at the end of business day {date}")?;
            let next = date.succ_opt().unwrap_or(NaiveDate::MAX);
            for (id, cash) in &day.closing_cash {
                let book = Book::CustomerCash(id.clone());
                writeln!(out, "{next} balance {}  {cash:.2} CNY", Beancount::account(&book))?;
            }
        }
    }
    Ok(())
}

fn write_entry(out: &mut dyn Write, entry: &Entry) -> io::Result<()> {
    writeln!(out)?;
    writeln!(
        out,
        "{} * {} {}",
        entry.date,
        quoted(&entry.account_id),
        quoted(&entry.narration)
    )?;
    writeln!(out, "  event: {}", quoted(&entry.event_type))?;
    writeln!(out, "  account: {}", quoted(&entry.account_id))?;
    writeln!(out, "  command: {}", quoted(&entry.command_id))?;
    writeln!(out, "  position: {}", entry.position)?;
    write_lines::<Beancount>(out, &entry.lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_are_already_components_are_kept_and_the_others_escaped_apart() {
        assert_eq!(account_id("A1"), "A1");
        assert_eq!(account_id("000123"), "000123");
        assert_eq!(account_id("a1"), "X-a1");
        assert_eq!(account_id("A-1"), "X-A-2D1");
        assert_eq!(account_id("A_1"), "X-A-5F1");
        assert_eq!(account_id("A:1/2.3"), "X-A-3A1-2F2-2E3");
        // An id spelled like an escaped one is escaped itself: the two stay apart.
        assert_ne!(account_id("X-A-2D1"), account_id("A-1"));
    }

    #[test]
    fn house_accounts_are_capitalised_words_and_codes_start_with_the_exchange() {
        assert_eq!(
            Beancount::account(&Book::House("liabilities:tax:stamp_duty".into())),
            "Liabilities:Tax:Stamp-Duty"
        );
        assert_eq!(
            Beancount::account(&Book::CustomerCash("a.1".into())),
            "Liabilities:Customers:X-a-2E1:Cash"
        );
        assert_eq!(Beancount::commodity(&Commodity::Shares("600000.SH".into())), "SH600000");
        assert_eq!(Beancount::commodity(&Commodity::Shares("430047.BJ".into())), "BJ430047");
    }
}
