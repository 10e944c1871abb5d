//! The ledger's PostgreSQL sessions plan every statement for its values
//! (`plan_cache_mode = force_custom_plan`): a generic plan cached while a table was
//! nearly empty would scan it whole as it grows. A URL that sets the mode keeps its own.

use ledger_eventstore::{connect, Database};
use ledger_testkit::{Backend, TestDatabase};

async fn plan_cache_mode(url: &str) -> String {
    let store = connect(url).await.unwrap();
    let Database::Postgres(pool) = store.database() else {
        panic!("{url} is not a PostgreSQL database");
    };
    sqlx::query_scalar("SHOW plan_cache_mode")
        .fetch_one(&pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn sessions_plan_each_statement_unless_the_url_says_otherwise() {
    let db = TestDatabase::fresh(Backend::Postgres).await;
    assert_eq!(plan_cache_mode(&db.url).await, "force_custom_plan");

    // The test URL already carries `options` (its schema): the mode is added to them.
    assert!(db.url.contains("options=-c%20search_path"), "{}", db.url);
    let own = db.url.replace("options=", "options=-c%20plan_cache_mode%3Dauto%20");
    assert_eq!(plan_cache_mode(&own).await, "auto");
}
