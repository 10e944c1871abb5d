//! The blotter's use cases (`orders`, `trades`) on every backend: they catch up by
//! themselves, filter, page every row exactly once, and refuse unbounded pages.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::NaiveDate;
use ledger_app::{
    EventStore, Ledger, OrderFilter, OrderRecord, TradeFilter, TradeRecord, MAX_ORDER_ROWS, MAX_TRADE_ROWS,
};
use ledger_testkit::{TestDatabase, BACKENDS};

const TWO_DAYS: &str = include_str!("../../tests/conformance/two-days.jsonl");
/// The worked example's first day, up to (not including) its end_of_day line.
const DAY_ONE_LINES: usize = 92;

fn date(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

async fn open(db: &TestDatabase) -> (Arc<dyn EventStore>, Ledger) {
    let store = ledger_app::open_store(&db.url).await.unwrap();
    let rules = Arc::new(ledger_app::load_rules(None).unwrap());
    (Arc::clone(&store), Ledger::new(store, rules))
}

async fn run(ledger: &mut Ledger, lines: &[&str]) {
    ledger_app::run_lines(ledger, "test", 1, lines.iter().copied(), |_| {})
        .await
        .unwrap();
}

async fn paged_orders(store: &dyn EventStore, filter: &OrderFilter, page_rows: usize) -> Vec<OrderRecord> {
    let mut filter = OrderFilter {
        limit: page_rows,
        ..filter.clone()
    };
    let mut rows = Vec::new();
    loop {
        let page = ledger_app::orders(store, &filter).await.unwrap();
        let Some(last) = page.last() else { return rows };
        filter.after = Some(last.key());
        rows.extend(page);
    }
}

async fn paged_trades(store: &dyn EventStore, filter: &TradeFilter, page_rows: usize) -> Vec<TradeRecord> {
    let mut filter = TradeFilter {
        limit: page_rows,
        ..filter.clone()
    };
    let mut rows = Vec::new();
    loop {
        let page = ledger_app::trades(store, &filter).await.unwrap();
        let Some(last) = page.last() else { return rows };
        filter.after = Some(last.global_position);
        rows.extend(page);
    }
}

#[tokio::test]
async fn the_blotter_after_a_batch_sees_the_batch_without_a_catch_up() {
    for backend in BACKENDS {
        let db = TestDatabase::fresh(backend).await;
        let (store, mut ledger) = open(&db).await;
        let day_one: Vec<&str> = TWO_DAYS.lines().take(DAY_ONE_LINES).collect();
        run(&mut ledger, &day_one).await;
        assert_eq!(ledger_app::read_models_checkpoint(store.as_ref()).await.unwrap(), 0);

        let orders = ledger_app::orders(store.as_ref(), &OrderFilter::default())
            .await
            .unwrap();
        assert_eq!(orders.len(), 17, "{backend:?}");
        let trades = ledger_app::trades(store.as_ref(), &TradeFilter::default())
            .await
            .unwrap();
        assert_eq!(trades.len(), 22, "{backend:?}");

        // And a second batch, the day's close, is seen by the next query too.
        run(
            &mut ledger,
            &TWO_DAYS.lines().skip(DAY_ONE_LINES).take(2).collect::<Vec<_>>(),
        )
        .await;
        let open = OrderFilter {
            open_only: true,
            ..OrderFilter::default()
        };
        assert!(ledger_app::orders(store.as_ref(), &open).await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn the_blotter_filters_and_pages_every_row_exactly_once() {
    for backend in BACKENDS {
        let db = TestDatabase::fresh(backend).await;
        let (store, mut ledger) = open(&db).await;
        run(&mut ledger, &TWO_DAYS.lines().collect::<Vec<_>>()).await;

        let every_order = ledger_app::orders(store.as_ref(), &OrderFilter::default())
            .await
            .unwrap();
        let paged = paged_orders(store.as_ref(), &OrderFilter::default(), 3).await;
        assert_eq!(paged, every_order, "{backend:?}");
        let keys: BTreeSet<_> = paged.iter().map(OrderRecord::key).collect();
        assert_eq!(keys.len(), 31, "{backend:?}: each order once");

        let a0002 = OrderFilter {
            account_id: Some("A0002".to_owned()),
            trade_date: Some(date("2024-03-05")),
            ..OrderFilter::default()
        };
        let kept = paged_orders(store.as_ref(), &a0002, 2).await;
        assert!(!kept.is_empty());
        assert!(kept
            .iter()
            .all(|o| o.account_id == "A0002" && o.trade_date == date("2024-03-05")));

        let every_trade = ledger_app::trades(store.as_ref(), &TradeFilter::default())
            .await
            .unwrap();
        let paged = paged_trades(store.as_ref(), &TradeFilter::default(), 4).await;
        assert_eq!(paged, every_trade, "{backend:?}");
        let positions: BTreeSet<u64> = paged.iter().map(|t| t.global_position).collect();
        assert_eq!(positions.len(), 34, "{backend:?}: each trade once");

        let second_day = TradeFilter {
            trade_date: Some(date("2024-03-05")),
            ..TradeFilter::default()
        };
        let of_the_day = ledger_app::trades_of(store.as_ref(), date("2024-03-05")).await.unwrap();
        let kept = paged_trades(store.as_ref(), &second_day, 4).await;
        let kept_positions: Vec<u64> = kept.iter().map(|t| t.global_position).collect();
        let day_positions: Vec<u64> = of_the_day.iter().map(|t| t.global_position).collect();
        assert_eq!(
            kept_positions, day_positions,
            "{backend:?}: the same trades as trades_of"
        );
    }
}

#[tokio::test]
async fn a_page_of_no_rows_or_above_the_bound_is_invalid_input() {
    for backend in BACKENDS {
        let db = TestDatabase::fresh(backend).await;
        let (store, _) = open(&db).await;
        for limit in [0, MAX_ORDER_ROWS + 1] {
            let filter = OrderFilter {
                limit,
                ..OrderFilter::default()
            };
            let error = ledger_app::orders(store.as_ref(), &filter).await.unwrap_err();
            assert_eq!(error.code(), "invalid_input", "{backend:?}: {error}");
            assert!(error.to_string().contains(&MAX_ORDER_ROWS.to_string()), "{error}");
        }
        for limit in [0, MAX_TRADE_ROWS + 1] {
            let filter = TradeFilter {
                limit,
                ..TradeFilter::default()
            };
            let error = ledger_app::trades(store.as_ref(), &filter).await.unwrap_err();
            assert_eq!(error.code(), "invalid_input", "{backend:?}: {error}");
        }
        let bounded = OrderFilter {
            limit: MAX_ORDER_ROWS,
            ..OrderFilter::default()
        };
        assert!(ledger_app::orders(store.as_ref(), &bounded).await.unwrap().is_empty());
    }
}
