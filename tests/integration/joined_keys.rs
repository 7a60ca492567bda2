//! Aggregates narrowed to the keys a join keeps (`AggregateOnlyJoinedKeys`):
//! TPC-H Q2 and Q20 aggregate only the selected parts' rows, as `analyst`
//! and `admin`, every plan passing the plan checker; Q17 written with a
//! per-part sum and count (Q17 itself computes its average as a window,
//! `correlated_windows`) gives its aggregate exactly the selected parts'
//! line items. (The
//! answers of all 22 queries are compared with raw DataFusion's and
//! DuckDB's by the TPC-H benchmark, which `cargo test` runs at a small
//! scale.)

use std::sync::Arc;

use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use lakegate_engine::QuerySession;

use crate::plan_checker::check_plan;
use crate::tpch::{self, lake_context, output_rows, queries, rows_of, sum_over, tpch_engine};

/// The rows entering the partial aggregates of `plan` that group by
/// `column` (none when it never ran).
fn rows_grouped_by(plan: &Arc<dyn ExecutionPlan>, column: &str) -> usize {
    sum_over(plan, &|node| {
        node.downcast_ref::<AggregateExec>()
            .filter(|a| *a.mode() == AggregateMode::Partial)
            .filter(|a| a.group_expr().expr().iter().any(|(_, name)| name == column))
            .map_or(0, |a| output_rows(a.input()))
    })
}

/// Q17's parameters for the test lake: at scale 0.01 no part is
/// `Brand#23` in a `MED BOX`; these are the brand and container with the
/// most line items.
pub(crate) const BRAND: &str = "Brand#45";
pub(crate) const CONTAINER: &str = "MED JAR";

/// TPC-H Q17 with the per-part average written as a grouped sum and
/// count (`l_quantity < 0.2 * total / n` exactly when
/// `5 * n * l_quantity < total`), for the parts of [`BRAND`] in
/// [`CONTAINER`].
pub(crate) fn q17_by_sum_and_count() -> String {
    format!(
        "SELECT sum(l_extendedprice) / 7.0 AS avg_yearly \
         FROM lineitem, part, \
              (SELECT l_partkey AS k, sum(l_quantity) AS total, count(l_quantity) AS n \
               FROM lineitem GROUP BY l_partkey) per_part \
         WHERE p_partkey = l_partkey AND per_part.k = p_partkey \
           AND p_brand = '{BRAND}' AND p_container = '{CONTAINER}' \
           AND 5 * per_part.n * l_quantity < per_part.total"
    )
}

/// The single number `sql` answers.
async fn count(session: &mut QuerySession, sql: &str) -> usize {
    let rows = rows_of(session, sql).await.unwrap();
    rows[0][0].parse().unwrap()
}

/// The line items of the parts of [`BRAND`] in [`CONTAINER`] the
/// session's role sees.
pub(crate) async fn selected_line_items(session: &mut QuerySession) -> usize {
    let sql = format!(
        "SELECT count(*) FROM lineitem, part WHERE p_partkey = l_partkey \
         AND p_brand = '{BRAND}' AND p_container = '{CONTAINER}'"
    );
    count(session, &sql).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn q17s_per_part_sum_aggregates_only_the_selected_parts_line_items() {
    let data_dir = tpch::lake().await;
    let engine = tpch_engine(data_dir, true).await;
    for role in ["admin", "analyst"] {
        let mut session = engine.session(role, None).unwrap();
        let plan = session
            .physical_plan(&q17_by_sum_and_count())
            .await
            .unwrap();
        check_plan(&plan, false, false);
        let context = lake_context(data_dir).await;
        datafusion::physical_plan::collect(Arc::clone(&plan), context.task_ctx())
            .await
            .unwrap();
        let selected = selected_line_items(&mut session).await;
        let all = count(&mut session, "SELECT count(*) FROM lineitem").await;
        // Only the per-part aggregate groups by part: it receives the
        // selected parts' line items and no other.
        assert_eq!(rows_grouped_by(&plan, "l_partkey"), selected, "{role}");
        assert!(
            selected > 0 && selected * 20 < all,
            "{role}: {selected} of {all}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_correlated_aggregates_of_q2_and_q20_are_narrowed() {
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
            let expected = ["q02", "q20"].contains(&name.as_str());
            assert_eq!(narrowed, expected, "{name} as {role}: {explained:?}");
            check_plan(&session.physical_plan(&sql).await.unwrap(), false, false);
        }
    }
}
