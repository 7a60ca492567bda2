//! A user predicate the policy lets through (leakproof, over columns the
//! role sees raw) is applied once, by the secured scan beneath the barrier,
//! with no copy of it above; any other predicate stays above the barrier.
//! Either way the answer is the policy's, and the audit names every column
//! the query read, those it only filters on included.

use std::sync::Arc;

use arrow::array::Int64Array;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::{ExecutionPlan, displayable};
use lakegate_engine::{PolicyBarrierExec, QuerySession};

use crate::common;
use crate::plan_checker::check_plan;

/// The predicates of the filters above the barriers of `plan`.
fn filters_above_barriers(plan: &Arc<dyn ExecutionPlan>) -> Vec<String> {
    if plan.is::<PolicyBarrierExec>() {
        return Vec::new();
    }
    let mut found: Vec<String> = plan
        .downcast_ref::<FilterExec>()
        .map(|filter| filter.predicate().to_string())
        .into_iter()
        .collect();
    for child in plan.children() {
        found.extend(filters_above_barriers(child));
    }
    found
}

/// `auditor` (rows with `a > 5`) on the shop lake.
async fn auditor(lake: &common::ShopLake) -> QuerySession {
    let mut session = lake.engine.session("ann", Some("auditor")).unwrap();
    session.use_database("shop").unwrap();
    session
}

/// The first column of `sql`'s answer, sorted, and the columns audited as
/// read from its one table.
async fn answer(session: &mut QuerySession, sql: &str) -> (Vec<i64>, Vec<String>) {
    let output = session.execute(sql).await.unwrap();
    let columns = output.reads[0].columns.clone();
    let mut ids: Vec<i64> = output
        .collect()
        .await
        .unwrap()
        .iter()
        .flat_map(|batch| {
            let ids = batch.column(0).as_any().downcast_ref::<Int64Array>();
            ids.unwrap().values().to_vec()
        })
        .collect();
    ids.sort();
    (ids, columns)
}

#[tokio::test]
async fn a_leakproof_predicate_runs_once_beneath_the_barrier() {
    let lake = common::shop_lake().await;
    let mut session = auditor(&lake).await;
    let sql = "SELECT order_id FROM orders WHERE a <= 7";
    let plan = session.physical_plan(sql).await.unwrap();
    check_plan(&plan, false, false);
    let shown = displayable(plan.as_ref()).indent(true).to_string();
    assert!(
        filters_above_barriers(&plan).is_empty(),
        "no copy of the predicate above the barrier:\n{shown}"
    );
    assert!(shown.contains("a@2 <= 7"), "applied beneath it:\n{shown}");

    let (ids, columns) = answer(&mut session, sql).await;
    assert_eq!(ids, [106, 107]);
    // `a` is only filtered on, by the scan itself: still a column read.
    assert_eq!(columns, ["order_id", "a"]);
}

#[tokio::test]
async fn a_predicate_that_could_fail_stays_above_the_barrier() {
    let lake = common::shop_lake().await;
    let mut session = auditor(&lake).await;
    // Beneath the row filter this would divide by zero on the hidden `a = 3`.
    let sql = "SELECT order_id FROM orders WHERE 10 / (a - 3) > 0";
    let plan = session.physical_plan(sql).await.unwrap();
    check_plan(&plan, false, false);
    let above = filters_above_barriers(&plan);
    assert!(
        above.iter().any(|predicate| predicate.contains("10 /")),
        "{}",
        displayable(plan.as_ref()).indent(true)
    );

    let (ids, columns) = answer(&mut session, sql).await;
    assert_eq!(ids, [106, 107, 108, 109, 110]);
    assert_eq!(columns, ["order_id", "a"]);
}
