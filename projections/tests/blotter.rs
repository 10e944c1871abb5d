//! The blotter's readers of `orders` and `trades`, on both backends: filters, a stable
//! order, bounded pages that together return every row exactly once.

use std::path::Path;
use std::sync::Arc;

use chrono::NaiveDate;
use ledger_commands::{Ledger, LineRunner};
use ledger_domain::MarketRules;
use ledger_eventstore::{connect, EventStore};
use ledger_projections::tables::{
    read_orders, read_trades, run_accounts, OrderFilter, OrderRecord, RunOptions, TradeFilter, TradeRecord,
    MAX_ORDER_ROWS, MAX_TRADE_ROWS, OPEN_ORDER_STATUSES,
};
use ledger_testkit::{TestDatabase, BACKENDS};
use rust_decimal_macros::dec;

/// The worked example's lines before its first end_of_day (line 94).
const DAY_ONE_LINES: usize = 92;

async fn exec(store: Arc<dyn EventStore>, lines: &[String]) {
    let mut ledger = Ledger::new(store, Arc::new(MarketRules::china_a_share().unwrap()));
    let mut runner = LineRunner::new(&mut ledger, "test");
    for (index, line) in lines.iter().enumerate() {
        runner.push(index as u64 + 1, line).await.unwrap();
    }
    runner.flush().await.unwrap();
}

fn example() -> Vec<String> {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/conformance/two-days.jsonl");
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn date(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

/// A store holding `lines` run, with the read models caught up.
async fn projected(db: &TestDatabase, lines: &[String]) -> Arc<dyn EventStore> {
    let store = connect(&db.url).await.unwrap();
    exec(Arc::clone(&store), lines).await;
    run_accounts(store.as_ref(), RunOptions::default(), |_| {})
        .await
        .unwrap();
    store
}

async fn all_orders(store: &dyn EventStore, filter: OrderFilter, page_rows: usize) -> Vec<OrderRecord> {
    let mut filter = OrderFilter {
        limit: page_rows,
        ..filter
    };
    let mut rows = Vec::new();
    loop {
        let page = read_orders(store, &filter).await.unwrap();
        assert!(page.len() <= page_rows);
        let Some(last) = page.last() else { return rows };
        filter.after = Some(last.key());
        rows.extend(page);
    }
}

async fn all_trades(store: &dyn EventStore, filter: TradeFilter, page_rows: usize) -> Vec<TradeRecord> {
    let mut filter = TradeFilter {
        limit: page_rows,
        ..filter
    };
    let mut rows = Vec::new();
    loop {
        let page = read_trades(store, &filter).await.unwrap();
        assert!(page.len() <= page_rows);
        let Some(last) = page.last() else { return rows };
        filter.after = Some(last.global_position);
        rows.extend(page);
    }
}

#[tokio::test]
async fn orders_are_read_in_key_order_filtered_and_paged_exactly_once() {
    let mut answers = Vec::new();
    for backend in BACKENDS {
        let db = TestDatabase::fresh(backend).await;
        let store = projected(&db, &example()).await;
        let every = read_orders(store.as_ref(), &OrderFilter::default()).await.unwrap();
        // 44 orders placed, 13 refused before they were recorded.
        assert_eq!(every.len(), 31, "{backend:?}");
        assert!(
            every.windows(2).all(|w| w[0].key() < w[1].key()),
            "{backend:?}: key order"
        );
        for page_rows in [1, 4, 31, MAX_ORDER_ROWS] {
            assert_eq!(
                all_orders(store.as_ref(), OrderFilter::default(), page_rows).await,
                every,
                "{backend:?}: pages of {page_rows}"
            );
        }

        let a0004 = OrderFilter {
            account_id: Some("A0004".to_owned()),
            trade_date: Some(date("2024-03-04")),
            ..OrderFilter::default()
        };
        let kept: Vec<OrderRecord> = every
            .iter()
            .filter(|o| o.account_id == "A0004" && o.trade_date == date("2024-03-04"))
            .cloned()
            .collect();
        assert!(!kept.is_empty());
        assert_eq!(all_orders(store.as_ref(), a0004, 2).await, kept, "{backend:?}");
        let second_day = OrderFilter {
            trade_date: Some(date("2024-03-05")),
            ..OrderFilter::default()
        };
        assert_eq!(read_orders(store.as_ref(), &second_day).await.unwrap().len(), 14);

        // O000001: 1,188 of 1,200 filled, a cancel asked but never confirmed, so the rest expired.
        let first = &every[0];
        assert_eq!((first.order_id.as_str(), first.status.as_str()), ("O000001", "expired"));
        assert_eq!((first.quantity, first.filled_quantity), (1200, 1188));
        assert_eq!(
            first.limit_price_cny.to_string(),
            "5.29",
            "{backend:?}: two decimals on both"
        );

        // Both days are closed: nothing is open any more.
        let open = OrderFilter {
            open_only: true,
            ..OrderFilter::default()
        };
        assert!(read_orders(store.as_ref(), &open).await.unwrap().is_empty());
        let none = OrderFilter {
            limit: 0,
            ..OrderFilter::default()
        };
        assert!(read_orders(store.as_ref(), &none).await.unwrap().is_empty());
        answers.push(serde_json::to_string(&every).unwrap());
    }
    assert_eq!(answers[0], answers[1], "the backends answer alike, byte for byte");
}

#[tokio::test]
async fn open_orders_are_those_that_can_still_be_filled() {
    for backend in BACKENDS {
        let db = TestDatabase::fresh(backend).await;
        let store = projected(&db, &example()[..DAY_ONE_LINES]).await;
        let open = OrderFilter {
            open_only: true,
            ..OrderFilter::default()
        };
        let rows = read_orders(store.as_ref(), &open).await.unwrap();
        let ids: Vec<&str> = rows.iter().map(|o| o.order_id.as_str()).collect();
        assert_eq!(
            ids,
            ["O000001", "O000004", "O000018", "O000019", "O000022", "O000010"],
            "{backend:?}"
        );
        assert!(rows.iter().all(|o| OPEN_ORDER_STATUSES.contains(&o.status.as_str())));
        let every = read_orders(store.as_ref(), &OrderFilter::default()).await.unwrap();
        assert!(every.len() > rows.len(), "{backend:?}: the others are final");
    }
}

#[tokio::test]
async fn trades_are_read_in_log_order_filtered_and_paged_exactly_once() {
    let mut answers = Vec::new();
    for backend in BACKENDS {
        let db = TestDatabase::fresh(backend).await;
        let store = projected(&db, &example()).await;
        let every = read_trades(store.as_ref(), &TradeFilter::default()).await.unwrap();
        assert_eq!(every.len(), 34, "{backend:?}: the worked example books 34 fills");
        assert!(every.windows(2).all(|w| w[0].global_position < w[1].global_position));
        for page_rows in [1, 5, 34, MAX_TRADE_ROWS] {
            assert_eq!(
                all_trades(store.as_ref(), TradeFilter::default(), page_rows).await,
                every,
                "{backend:?}: pages of {page_rows}"
            );
        }

        // A0001's first fill: 876 x 5.25 = 4599.00, fees 5.30, so 4604.30 paid.
        let first = &every[0];
        assert_eq!(
            (first.account_id.as_str(), first.exec_id.as_str()),
            ("A0001", "E000001")
        );
        assert_eq!(first.price_cny.to_string(), "5.25", "{backend:?}");
        assert_eq!(first.value_cny.to_string(), "4599.00");
        assert_eq!(first.fees_cny, dec!(5.30));
        assert_eq!(first.fees.total_cny(), first.fees_cny);
        assert_eq!(first.net_cash_cny.to_string(), "-4604.30");

        for (account, day, expected) in [
            (Some("A0002"), None, 14),
            (None, Some("2024-03-04"), 23),
            (None, Some("2024-03-05"), 11),
            (Some("A0003"), None, 0),
        ] {
            let filter = TradeFilter {
                account_id: account.map(str::to_owned),
                trade_date: day.map(date),
                ..TradeFilter::default()
            };
            let kept: Vec<TradeRecord> = every
                .iter()
                .filter(|t| account.is_none_or(|a| t.account_id == a) && day.is_none_or(|d| t.trade_date == date(d)))
                .cloned()
                .collect();
            assert_eq!(kept.len(), expected, "{backend:?}: {account:?} {day:?}");
            assert_eq!(all_trades(store.as_ref(), filter, 3).await, kept, "{backend:?}");
        }
        answers.push(serde_json::to_string(&every).unwrap());
    }
    assert_eq!(answers[0], answers[1], "the backends answer alike, byte for byte");
}
