//! The query's clock: `now()` and `current_date()` are the moment each query
//! starts, in user SQL and in policies alike, one value for the whole plan;
//! plans kept across queries (statement plans, scan plans) never freeze it.

use std::time::Duration;

use arrow::array::{Array, AsArray};
use arrow::datatypes::TimestampNanosecondType;
use lakegate_engine::QuerySession;

use crate::common;

/// The first row of a query's result, every column as text.
async fn first_row(session: &mut QuerySession, sql: &str) -> Vec<String> {
    let batches = session.execute(sql).await.unwrap().collect().await.unwrap();
    common::cells_as_text(&batches).swap_remove(0)
}

/// `now()` of one query, in nanoseconds since the epoch.
async fn now_of(session: &mut QuerySession) -> i64 {
    let batches = session
        .execute("SELECT now()")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let column = batches[0]
        .column(0)
        .as_primitive::<TimestampNanosecondType>();
    assert!(!column.is_null(0));
    column.value(0)
}

fn wall_clock_nanos() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    since_epoch.as_nanos() as i64
}

#[tokio::test]
async fn now_is_the_start_of_each_query() {
    let lake = common::shop_lake().await;
    let mut session = lake.engine.session("root", None).unwrap();
    let before = wall_clock_nanos();
    let first = now_of(&mut session).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    // The same text again: its plan comes from the statement cache.
    let second = now_of(&mut session).await;
    let after = wall_clock_nanos();
    assert!(before <= first && first < second && second <= after);
    assert!(second - first >= 20_000_000, "{first} then {second}");

    let row = first_row(
        &mut session,
        "SELECT now() = now(), CAST(now() AS DATE) = current_date()",
    )
    .await;
    assert_eq!(row, ["true", "true"]);
}

#[tokio::test]
async fn a_policy_reading_the_clock_is_evaluated_for_each_query() {
    let lake = common::shop_lake().await;
    // `recent`: a row filter on current_date() (the rows of a > 5, as the
    // auditor's) and the note masked as the query's start time.
    let count = "SELECT count(*) FROM shop.orders";
    let mut recent = lake.engine.session("ann", Some("recent")).unwrap();
    let mut auditor = lake.engine.session("ann", Some("auditor")).unwrap();
    let rows = first_row(&mut recent, count).await;
    assert_eq!(rows, first_row(&mut auditor, count).await);
    assert_ne!(rows, ["0"]);

    // The mask and the user's now() are one clock; the next query has its
    // own (its scan is planned again, not reused with a frozen time).
    let stamped = "SELECT note, CAST(now() AS VARCHAR) FROM shop.orders LIMIT 1";
    let first = first_row(&mut recent, stamped).await;
    assert_eq!(first[0], first[1]);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let second = first_row(&mut recent, stamped).await;
    assert_eq!(second[0], second[1]);
    assert!(second[0] > first[0], "{first:?} then {second:?}");
}
