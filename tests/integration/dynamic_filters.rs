//! Dynamic filters and the policy barrier: a filter a join, a top-k sort or
//! an aggregate makes while the query runs passes beneath a barrier only when
//! it reads nothing but bare columns the role sees raw (see
//! `leakproof_dynamic_filter` in the engine's barrier), and the answers stay
//! those of the policy.

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::physical_expr::expressions::{DynamicFilterPhysicalExpr, lit};
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::{ExecutionPlan, displayable};
use lakegate_engine::{Engine, EngineOptions, PolicyBarrierExec};
use lakegate_policy::TableName;

use crate::common;
use crate::plan_checker::{check_plan, consumed_dynamic_filters};

/// For each barrier in `plan`, its table and the columns of every dynamic
/// filter beneath it (`?` for an input that is not a bare column).
fn filters_beneath_barriers(plan: &Arc<dyn ExecutionPlan>) -> Vec<(String, Vec<String>)> {
    if let Some(barrier) = plan.downcast_ref::<PolicyBarrierExec>() {
        return consumed_dynamic_filters(plan.children()[0])
            .into_iter()
            .map(|inputs| {
                let names = inputs
                    .into_iter()
                    .map(|input| input.unwrap_or_else(|| "?".into()))
                    .collect();
                (barrier.table().table.clone(), names)
            })
            .collect();
    }
    plan.children()
        .into_iter()
        .flat_map(filters_beneath_barriers)
        .collect()
}

/// The dynamic filters beneath the barriers of `sql`'s plan for `role`,
/// after the plan checker has passed it.
async fn filters_of(engine: &Engine, role: &str, sql: &str) -> Vec<(String, Vec<String>)> {
    let mut session = engine.session("ann", Some(role)).unwrap();
    session.use_database("shop").unwrap();
    let plan = session
        .physical_plan(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    check_plan(&plan, false, false);
    let filters = filters_beneath_barriers(&plan);
    println!(
        "{sql}:\n{}{filters:?}",
        displayable(plan.as_ref()).indent(true)
    );
    filters
}

/// `sql`'s first column for `role`, sorted.
async fn answer(engine: &Engine, role: &str, sql: &str) -> Vec<i64> {
    common::shop_first_column(engine, "ann", role, sql).await
}

fn filter_on(table: &str, columns: &[&str]) -> (String, Vec<String>) {
    (
        table.to_string(),
        columns.iter().map(|c| c.to_string()).collect(),
    )
}

#[tokio::test]
async fn a_joins_filter_on_a_raw_key_runs_beneath_the_barrier_with_the_same_rows() {
    let lake = common::shop_lake().await;
    // auditor: orders with a > 5 (a filter with no join of its own, so a
    // dynamic filter beneath the barrier can only come from above);
    // customer_id is raw.
    let sql =
        "SELECT o.order_id FROM orders o JOIN (VALUES (1), (2), (3)) v(x) ON o.customer_id = v.x";
    let filters = filters_of(&lake.engine, "auditor", sql).await;
    assert!(
        filters.contains(&filter_on("orders", &["customer_id"])),
        "the join's filter stays above the barrier: {filters:?}"
    );
    // Orders 6..=10 belong to customers 6, 1, 2, 3, 4: 107, 108, 109.
    assert_eq!(answer(&lake.engine, "auditor", sql).await, [107, 108, 109]);
    assert_eq!(
        answer(&lake.engine, "auditor", sql).await,
        answer(
            &lake.engine,
            "auditor",
            "SELECT order_id FROM orders WHERE customer_id IN (1, 2, 3)"
        )
        .await
    );
}

#[tokio::test]
async fn a_scan_estimated_under_the_threshold_takes_no_dynamic_filter() {
    let lake = common::shop_lake().await;
    // The engine's default: a few rows are below one batch, where a filter
    // that skips row groups could skip nothing.
    let options = EngineOptions {
        dynamic_filter_min_rows: lakegate_engine::DEFAULT_DYNAMIC_FILTER_MIN_ROWS,
        ..common::test_engine_options(lake.dir.path())
    };
    let engine = common::engine_with(&common::shop_catalog(), lake.dir.path(), options).await;
    let sql =
        "SELECT o.order_id FROM orders o JOIN (VALUES (1), (2), (3)) v(x) ON o.customer_id = v.x";
    let filters = filters_of(&engine, "auditor", sql).await;
    assert!(filters.is_empty(), "{filters:?}");
    assert_eq!(answer(&engine, "auditor", sql).await, [107, 108, 109]);
}

#[tokio::test]
async fn a_top_k_filter_on_a_raw_column_runs_beneath_the_barrier() {
    let lake = common::shop_lake().await;
    // auditor: orders with a > 5.
    let sql = "SELECT a FROM orders ORDER BY a LIMIT 2";
    let filters = filters_of(&lake.engine, "auditor", sql).await;
    assert!(
        filters.contains(&filter_on("orders", &["a"])),
        "the top-k filter stays above the barrier: {filters:?}"
    );
    assert_eq!(answer(&lake.engine, "auditor", sql).await, [6, 7]);
}

#[tokio::test]
async fn no_filter_on_a_masked_column_or_an_expression_passes_the_barrier() {
    let lake = common::shop_lake().await;
    // analyst's orders: note has a custom mask, amount is nullified. The
    // filters of `a + 1` and `10 / (a - 3)` would compute on hidden rows
    // (auditor does not see a = 3): refused for their shape.
    // (The analyst's orders policy makes its own filter on customer_id, from
    // its subquery beneath the barrier; only filters on the query's key count.
    // Top-k sorts stand in where a join would build on the small secured
    // side: their filter always goes towards the scan.)
    for (role, key, sql) in [
        (
            "analyst",
            "note",
            "SELECT order_id FROM orders ORDER BY note LIMIT 2",
        ),
        (
            "analyst",
            "amount",
            "SELECT o.order_id FROM orders o JOIN (VALUES (1.0), (2.0)) v(x) ON o.amount = v.x",
        ),
        (
            "analyst",
            "a",
            "SELECT o.order_id FROM orders o JOIN (VALUES (2), (8)) v(x) ON o.a + 1 = v.x",
        ),
        (
            "auditor",
            "a",
            "SELECT a FROM orders ORDER BY 10 / (a - 3) LIMIT 2",
        ),
        // cells: name is NULL in the rows only the US grant admits, email is
        // redacted there: neither is raw in every row.
        (
            "cells",
            "name",
            "SELECT id FROM customers ORDER BY name LIMIT 1",
        ),
        (
            "cells",
            "email",
            "SELECT id FROM customers ORDER BY email LIMIT 1",
        ),
    ] {
        let filters = filters_of(&lake.engine, role, sql).await;
        assert!(
            filters
                .iter()
                .all(|(_, inputs)| inputs.iter().all(|input| input != key && input != "?")),
            "{sql}: a dynamic filter on {key} beneath a barrier: {filters:?}"
        );
    }
    // The division's top-k runs above: the hidden row a = 3 never reaches it.
    assert_eq!(
        answer(
            &lake.engine,
            "auditor",
            "SELECT a FROM orders ORDER BY 10 / (a - 3) DESC, a LIMIT 2"
        )
        .await,
        [6, 7]
    );
    // A column raw in every row for cells (id) still takes the filter.
    let sql = "SELECT id FROM customers ORDER BY id DESC LIMIT 1";
    let filters = filters_of(&lake.engine, "cells", sql).await;
    assert!(
        filters.contains(&filter_on("customers", &["id"])),
        "{filters:?}"
    );
    // Customer 6 (APAC) is hidden from cells: 5 is the largest it sees.
    assert_eq!(answer(&lake.engine, "cells", sql).await, [5]);
}

#[test]
fn the_checker_catches_a_dynamic_filter_from_above_on_a_column_not_seen_raw() {
    // A barrier over a filter reading `note`, which the role does not see
    // raw, and which nothing beneath the barrier produced.
    let schema = Arc::new(arrow::datatypes::Schema::new(vec![
        arrow::datatypes::Field::new("note", arrow::datatypes::DataType::Utf8, true),
    ]));
    let note = datafusion::physical_expr::expressions::col("note", &schema).unwrap();
    let dynamic = Arc::new(DynamicFilterPhysicalExpr::new(vec![note], lit(true)));
    let filtered: Arc<dyn ExecutionPlan> =
        Arc::new(FilterExec::try_new(dynamic, Arc::new(EmptyExec::new(schema))).unwrap());
    let plan_with = |raw: &[&str]| -> Arc<dyn ExecutionPlan> {
        let raw: BTreeSet<String> = raw.iter().map(|c| c.to_string()).collect();
        Arc::new(PolicyBarrierExec::new(
            TableName::new("shop", "orders"),
            "analyst".into(),
            Arc::new(raw),
            Arc::clone(&filtered),
        ))
    };
    // Raw: a leakproof filter, accepted.
    check_plan(&plan_with(&["note"]), false, false);
    // Not raw: caught.
    let hiding = plan_with(&[]);
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        check_plan(&hiding, false, false)
    }));
    assert!(
        caught.is_err(),
        "the checker accepted a masked column's filter"
    );
}
