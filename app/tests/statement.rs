//! Statements built from a ledger, on every backend: instrument names, market value
//! at the close or the last fill, total assets, the commission each fill of a
//! multi-fill order was charged, the period clamped to what the ledger has reached.

#![allow(clippy::too_many_lines)]

use std::sync::Arc;

use chrono::NaiveDate;
use ledger_app::{Config, EventStore, Ledger, StatementFormat, StatementRequest, Status};
use ledger_testkit::{TestDatabase, BACKENDS};

const LINES: &[&str] = &[
    r#"{"type": "list_instrument", "command_id": "L1", "instrument": "600000.SH", "name": "浦发银行 SPDB", "board": "main", "risk_level": 1}"#,
    r#"{"type": "list_instrument", "command_id": "L2", "instrument": "601398.SH", "name": "工商银行 ICBC", "board": "main", "risk_level": 1}"#,
    r#"{"type": "set_prev_close", "command_id": "P1", "instrument": "600000.SH", "trade_date": "2024-03-04", "price": "10.00"}"#,
    r#"{"type": "set_prev_close", "command_id": "P2", "instrument": "601398.SH", "trade_date": "2024-03-04", "price": "5.00"}"#,
    r#"{"type": "open_account", "command_id": "A1", "account_id": "A0001", "customer_name": "张三", "id_number": "110101199003071234", "risk_level": 5}"#,
    r#"{"type": "open_account", "command_id": "A2", "account_id": "A0002", "customer_name": "李四", "id_number": "110101199003075678", "risk_level": 5}"#,
    r#"{"type": "deposit", "command_id": "D1", "account_id": "A0001", "amount": "1000000", "bank_ref": "B1"}"#,
    r#"{"type": "place_order", "command_id": "O1", "account_id": "A0001", "order_id": "O1", "instrument": "600000.SH", "side": "buy", "quantity": 30000, "price": "10.00", "trade_date": "2024-03-04"}"#,
    r#"{"type": "fill", "command_id": "F1", "account_id": "A0001", "order_id": "O1", "exec_id": "E1", "quantity": 1000, "price": "10.00"}"#,
    r#"{"type": "fill", "command_id": "F2", "account_id": "A0001", "order_id": "O1", "exec_id": "E2", "quantity": 1000, "price": "10.00"}"#,
    r#"{"type": "fill", "command_id": "F3", "account_id": "A0001", "order_id": "O1", "exec_id": "E3", "quantity": 2000, "price": "10.00"}"#,
    r#"{"type": "fill", "command_id": "F4", "account_id": "A0001", "order_id": "O1", "exec_id": "E4", "quantity": 100, "price": "10.00"}"#,
    r#"{"type": "place_order", "command_id": "O2", "account_id": "A0001", "order_id": "O2", "instrument": "601398.SH", "side": "buy", "quantity": 1000, "price": "5.10", "trade_date": "2024-03-04"}"#,
    r#"{"type": "fill", "command_id": "F5", "account_id": "A0001", "order_id": "O2", "exec_id": "E5", "quantity": 1000, "price": "5.05"}"#,
    r#"{"type": "set_prev_close", "command_id": "P3", "instrument": "600000.SH", "trade_date": "2024-03-05", "price": "10.50"}"#,
];

fn date(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

async fn ledger_with_fills(db: &TestDatabase) -> Arc<dyn EventStore> {
    let store = ledger_app::open_store(&db.url).await.unwrap();
    let rules = Arc::new(ledger_app::load_rules(None).unwrap());
    let mut ledger = Ledger::new(Arc::clone(&store), rules);
    let at = chrono::DateTime::parse_from_rfc3339("2024-03-04T01:30:00Z")
        .unwrap()
        .to_utc();
    ledger.set_clock(move || at);
    let answers = ledger_app::run_lines(&mut ledger, "test", 1, LINES.iter().copied(), |_| {})
        .await
        .unwrap();
    for answer in &answers {
        assert_eq!(answer.status, Status::Accepted, "{answer:?}");
    }
    store
}

async fn csv_of(store: &dyn EventStore, account_id: &str, from: &str, to: &str) -> String {
    let request = StatementRequest {
        account_id,
        from: date(from),
        to: date(to),
        format: StatementFormat::Csv,
        shown_to: None,
    };
    String::from_utf8(
        ledger_app::statement(
            store,
            &ledger_app::MarketRules::china_a_share().unwrap(),
            &Config::default(),
            request,
        )
        .await
        .unwrap(),
    )
    .unwrap()
}

/// The fields of the CSV's lines of one section.
fn section<'a>(csv: &'a str, name: &str) -> Vec<Vec<&'a str>> {
    csv.lines()
        .filter(|line| line.starts_with(&format!("{name},")))
        .map(|line| line.split(',').collect())
        .collect()
}

#[tokio::test]
async fn each_fill_shows_the_commission_it_was_charged() {
    for backend in BACKENDS {
        let db = TestDatabase::fresh(backend).await;
        let store = ledger_with_fills(&db).await;
        let csv = csv_of(store.as_ref(), "A0001", "2024-03-04", "2024-03-04").await;
        let fills: Vec<(&str, &str)> = section(&csv, "movement")
            .iter()
            .filter(|m| m[4] == "600000.SH")
            .map(|m| (m[6], m[8]))
            .collect();
        // Rate 0.025%, at least 5.00 per order: 10000 pays the minimum, 20000 owes 5.00 in all
        // (nothing more), 40000 owes 10.00 (5.00 more), 41000 owes 10.25 (0.25 more).
        assert_eq!(
            fills,
            vec![("1000", "5.00"), ("1000", "0.00"), ("2000", "5.00"), ("100", "0.25")],
            "{backend:?}\n{csv}"
        );
        let html = ledger_app::statement(
            store.as_ref(),
            &ledger_app::MarketRules::china_a_share().unwrap(),
            &Config::default(),
            StatementRequest {
                account_id: "A0001",
                from: date("2024-03-04"),
                to: date("2024-03-04"),
                format: StatementFormat::Html,
                shown_to: None,
            },
        )
        .await
        .unwrap();
        let html = String::from_utf8(html).unwrap();
        assert!(html.contains("later fills of the same order may show 0.00 or a small increment"));
    }
}

#[tokio::test]
async fn positions_carry_names_and_market_value_at_the_close_or_the_last_fill() {
    for backend in BACKENDS {
        let db = TestDatabase::fresh(backend).await;
        let store = ledger_with_fills(&db).await;
        let csv = csv_of(store.as_ref(), "A0001", "2024-03-04", "2024-03-04").await;
        let movements = section(&csv, "movement");
        assert!(
            movements.iter().any(|m| m[4] == "601398.SH" && m[5] == "工商银行 ICBC"),
            "{csv}"
        );
        let positions = section(&csv, "position");
        // 600000.SH closed 2024-03-04 at 10.50 (the previous close of 2024-03-05);
        // 601398.SH has no close yet: its last fill, 5.05.
        assert_eq!(
            positions,
            vec![
                vec![
                    "position",
                    "600000.SH",
                    "浦发银行 SPDB",
                    "4100",
                    "41012.88",
                    "10.0031",
                    "10.50",
                    "收盘价 close",
                    "43050.00"
                ],
                vec![
                    "position",
                    "601398.SH",
                    "工商银行 ICBC",
                    "1000",
                    "5055.32",
                    "5.0553",
                    "5.05",
                    "最新成交价 last fill",
                    "5050.00"
                ],
            ],
            "{backend:?}\n{csv}"
        );
        let summary = &section(&csv, "summary")[0];
        let closing: rust_decimal::Decimal = summary[9].parse().unwrap();
        assert_eq!(summary[10], "48100.00", "{csv}");
        let total_assets: rust_decimal::Decimal = summary[11].parse().unwrap();
        assert_eq!(total_assets, closing + rust_decimal::Decimal::from(48100), "{csv}");
    }
}

#[tokio::test]
async fn a_period_past_what_the_ledger_has_reached_is_clamped_and_one_after_it_refused() {
    for backend in BACKENDS {
        let db = TestDatabase::fresh(backend).await;
        let store = ledger_with_fills(&db).await;
        // The latest trade date the log names is 2024-03-05 (the previous close set for it).
        let csv = csv_of(store.as_ref(), "A0001", "2024-03-01", "2024-03-31").await;
        let summary = &section(&csv, "summary")[0];
        assert_eq!(
            (summary[5], summary[6], summary[7]),
            ("2024-03-01", "2024-03-05", "2024-03-31"),
            "{backend:?}\n{csv}"
        );
        // At the close of 2024-03-05 no close is known: both at their last fill.
        assert!(
            section(&csv, "position").iter().all(|p| p[7] == "最新成交价 last fill"),
            "{csv}"
        );

        let request = StatementRequest {
            account_id: "A0001",
            from: date("2024-03-06"),
            to: date("2024-03-31"),
            format: StatementFormat::Html,
            shown_to: None,
        };
        let error = ledger_app::statement(
            store.as_ref(),
            &ledger_app::MarketRules::china_a_share().unwrap(),
            &Config::default(),
            request,
        )
        .await
        .unwrap_err();
        assert_eq!(error.code(), "period_not_reached", "{backend:?}");
        assert!(
            error.to_string().contains("2024-03-06") && error.to_string().contains("2024-03-05"),
            "{error}"
        );
    }
}

#[tokio::test]
async fn an_account_without_movements_or_positions_says_none() {
    for backend in BACKENDS {
        let db = TestDatabase::fresh(backend).await;
        let store = ledger_with_fills(&db).await;
        let request = StatementRequest {
            account_id: "A0002",
            from: date("2024-03-04"),
            to: date("2024-03-05"),
            format: StatementFormat::Html,
            shown_to: None,
        };
        let html = ledger_app::statement(
            store.as_ref(),
            &ledger_app::MarketRules::china_a_share().unwrap(),
            &Config::default(),
            request,
        )
        .await
        .unwrap();
        let html = String::from_utf8(html).unwrap();
        assert_eq!(html.matches("<p class=none>无 none</p>").count(), 2, "{html}");
        assert!(html.contains("李四") && html.contains("1101**********5678"), "{html}");
    }
}

#[tokio::test]
async fn a_pdf_without_a_font_says_which_package_to_install_or_which_key_to_set() {
    let db = TestDatabase::fresh(BACKENDS[0]).await;
    let store = ledger_with_fills(&db).await;
    let mut config = Config::default();
    config.statement.pdf_font = Some("/nonexistent/font.ttc".into());
    let request = StatementRequest {
        account_id: "A0001",
        from: date("2024-03-04"),
        to: date("2024-03-05"),
        format: StatementFormat::Pdf,
        shown_to: None,
    };
    let error = ledger_app::statement(
        store.as_ref(),
        &ledger_app::MarketRules::china_a_share().unwrap(),
        &config,
        request,
    )
    .await
    .unwrap_err();
    assert_eq!(error.code(), "pdf_font_missing");
    assert!(
        error.to_string().contains("/nonexistent/font.ttc") && error.to_string().contains("pdf_font"),
        "{error}"
    );
    config.statement.pdf_font = None;
    let pdf = ledger_app::statement(
        store.as_ref(),
        &ledger_app::MarketRules::china_a_share().unwrap(),
        &config,
        request,
    )
    .await
    .unwrap();
    assert!(pdf.starts_with(b"%PDF"));
}
