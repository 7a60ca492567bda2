//! Aggregates narrowed to the keys a join keeps (`AggregateOnlyJoinedKeys`):
//! TPC-H Q2, Q17 and Q20 aggregate only the selected parts' rows, as
//! `analyst` and `admin`, every plan passing the plan checker; Q17's
//! per-part aggregate receives exactly the selected parts' line items. (The
//! answers of all 22 queries are compared with raw DataFusion's and
//! DuckDB's by the TPC-H benchmark, which `cargo test` runs at a small
//! scale.)

use std::sync::Arc;

use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use lakegate_engine::QuerySession;

use crate::plan_checker::check_plan;
use crate::tpch::{self, lake_context, queries, rows_of, tpch_engine};

/// The rows entering the partial aggregates of `plan` that group by
/// `column` (none when it never ran).
fn rows_grouped_by(plan: &Arc<dyn ExecutionPlan>, column: &str) -> usize {
    let here = plan
        .downcast_ref::<AggregateExec>()
        .filter(|a| *a.mode() == AggregateMode::Partial)
        .filter(|a| a.group_expr().expr().iter().any(|(_, name)| name == column))
        .and_then(|a| a.input().metrics())
        .and_then(|m| m.output_rows())
        .unwrap_or_default();
    here + plan
        .children()
        .into_iter()
        .map(|child| rows_grouped_by(child, column))
        .sum::<usize>()
}

/// The single number `sql` answers.
async fn count(session: &mut QuerySession, sql: &str) -> usize {
    let rows = rows_of(session, sql).await.unwrap();
    rows[0][0].parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn q17_aggregates_only_the_selected_parts_line_items() {
    let data_dir = tpch::lake().await;
    let engine = tpch_engine(data_dir, true).await;
    let (_, q17) = queries()
        .into_iter()
        .find(|(name, _)| name == "q17")
        .unwrap();
    for role in ["admin", "analyst"] {
        let mut session = engine.session(role, None).unwrap();
        let plan = session.physical_plan(&q17).await.unwrap();
        check_plan(&plan, false, false);
        let context = lake_context(data_dir).await;
        datafusion::physical_plan::collect(Arc::clone(&plan), context.task_ctx())
            .await
            .unwrap();
        let selected = count(
            &mut session,
            "SELECT count(*) FROM lineitem, part WHERE p_partkey = l_partkey \
             AND p_brand = 'Brand#23' AND p_container = 'MED BOX'",
        )
        .await;
        let all = count(&mut session, "SELECT count(*) FROM lineitem").await;
        // Only the subquery's aggregate groups by part: it receives the
        // selected parts' line items and no other.
        assert_eq!(rows_grouped_by(&plan, "l_partkey"), selected, "{role}");
        assert!(selected * 20 < all, "{role}: {selected} of {all}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_correlated_aggregates_of_q2_q17_and_q20_are_narrowed() {
    let data_dir = tpch::lake().await;
    let engine = tpch_engine(data_dir, true).await;
    for role in ["admin", "analyst"] {
        let mut session = engine.session(role, None).unwrap();
        for (name, sql) in queries() {
            let Ok(explained) = rows_of(&mut session, &format!("EXPLAIN {sql}")).await else {
                continue;
            };
            let narrowed = explained
                .iter()
                .flatten()
                .any(|cell| cell.contains("__joined_keys"));
            let expected = ["q02", "q17", "q20"].contains(&name.as_str());
            assert_eq!(narrowed, expected, "{name} as {role}: {explained:?}");
            check_plan(&session.physical_plan(&sql).await.unwrap(), false, false);
        }
    }
}
