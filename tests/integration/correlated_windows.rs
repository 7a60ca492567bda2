//! Correlated aggregates computed as windows (`CorrelatedAggregatesAsWindows`):
//! TPC-H Q17 (with a brand and container the small test lake has) reads
//! `lineitem` once, as `analyst` and `admin`: its
//! per-part average is a window over exactly the selected parts' line
//! items, the plan passes the plan checker, and the answer equals the same
//! question written with a grouped sum and count (which the rule leaves
//! alone). (The answers of all 22 queries are compared with raw
//! DataFusion's and DuckDB's by the TPC-H benchmark, which `cargo test`
//! runs at a small scale.)

use std::sync::Arc;

use datafusion::physical_plan::windows::{BoundedWindowAggExec, WindowAggExec};
use datafusion::physical_plan::{ExecutionPlan, displayable};

use crate::joined_keys::{BRAND, CONTAINER, Q17_BY_SUM_AND_COUNT};
use crate::plan_checker::check_plan;
use crate::tpch::{self, lake_context, queries, rows_of, tpch_engine};

/// The scans of `table`'s files in `plan`.
fn scans_of(plan: &Arc<dyn ExecutionPlan>, table: &str) -> usize {
    let line = displayable(plan.as_ref()).one_line().to_string();
    let here = line.starts_with("DataSourceExec") && line.contains(&format!("{table}/"));
    usize::from(here)
        + plan
            .children()
            .into_iter()
            .map(|child| scans_of(child, table))
            .sum::<usize>()
}

/// The rows entering the window operators of `plan` (none when it never
/// ran), and how many there are.
fn rows_into_windows(plan: &Arc<dyn ExecutionPlan>) -> (usize, usize) {
    let is_window = plan.downcast_ref::<WindowAggExec>().is_some()
        || plan.downcast_ref::<BoundedWindowAggExec>().is_some();
    let mut found = if is_window {
        let rows = plan.children()[0]
            .metrics()
            .and_then(|m| m.output_rows())
            .unwrap_or_default();
        (rows, 1)
    } else {
        (0, 0)
    };
    for child in plan.children() {
        let (rows, windows) = rows_into_windows(child);
        found.0 += rows;
        found.1 += windows;
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn q17_reads_lineitem_once_and_averages_only_the_selected_parts() {
    let data_dir = tpch::lake().await;
    let engine = tpch_engine(data_dir, true).await;
    let (_, q17) = queries()
        .into_iter()
        .find(|(name, _)| name == "q17")
        .unwrap();
    let q17 = q17.replace("Brand#23", BRAND).replace("MED BOX", CONTAINER);
    for role in ["admin", "analyst"] {
        let mut session = engine.session(role, None).unwrap();
        let plan = session.physical_plan(&q17).await.unwrap();
        check_plan(&plan, false, false);
        assert_eq!(scans_of(&plan, "lineitem"), 1, "{role}");
        let context = lake_context(data_dir).await;
        datafusion::physical_plan::collect(Arc::clone(&plan), context.task_ctx())
            .await
            .unwrap();
        let selected = rows_of(
            &mut session,
            &format!(
                "SELECT count(*) FROM lineitem, part WHERE p_partkey = l_partkey \
                 AND p_brand = '{BRAND}' AND p_container = '{CONTAINER}'"
            ),
        )
        .await
        .unwrap()[0][0]
            .parse::<usize>()
            .unwrap();
        assert!(selected > 0, "{role}");
        assert_eq!(rows_into_windows(&plan), (selected, 1), "{role}");

        let answer = rows_of(&mut session, &q17).await.unwrap();
        let by_sum_and_count = rows_of(&mut session, Q17_BY_SUM_AND_COUNT).await.unwrap();
        assert_eq!(answer, by_sum_and_count, "{role}");
        assert_ne!(answer[0][0], "NULL", "{role}: some line items are compared");
        let plan = session.physical_plan(Q17_BY_SUM_AND_COUNT).await.unwrap();
        assert_eq!(
            scans_of(&plan, "lineitem"),
            2,
            "{role}: sum and count stay an aggregate"
        );
    }
}
