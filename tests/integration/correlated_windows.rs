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

use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::windows::{BoundedWindowAggExec, WindowAggExec};

use crate::joined_keys::{BRAND, CONTAINER, q17_by_sum_and_count, selected_line_items};
use crate::plan_checker::check_plan;
use crate::tpch::{self, is_scan_of, lake_context, output_rows, rows_of, sum_over, tpch_engine};

/// The window operators of `plan`.
fn windows(plan: &Arc<dyn ExecutionPlan>) -> Vec<&Arc<dyn ExecutionPlan>> {
    let mut found = Vec::new();
    if plan.downcast_ref::<WindowAggExec>().is_some()
        || plan.downcast_ref::<BoundedWindowAggExec>().is_some()
    {
        found.push(plan);
    }
    for child in plan.children() {
        found.extend(windows(child));
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn q17_reads_lineitem_once_and_averages_only_the_selected_parts() {
    let data_dir = tpch::lake().await;
    let engine = tpch_engine(data_dir, true).await;
    let q17 = tpch::query("q17");
    let q17 = q17.replace("Brand#23", BRAND).replace("MED BOX", CONTAINER);
    for role in ["admin", "analyst"] {
        let mut session = engine.session(role, None).unwrap();
        let plan = session.physical_plan(&q17).await.unwrap();
        check_plan(&plan, false, false);
        let lineitem_scans =
            |plan| sum_over(plan, &|node| usize::from(is_scan_of(node, "lineitem")));
        assert_eq!(lineitem_scans(&plan), 1, "{role}");
        let context = lake_context(data_dir).await;
        datafusion::physical_plan::collect(Arc::clone(&plan), context.task_ctx())
            .await
            .unwrap();
        let selected = selected_line_items(&mut session).await;
        assert!(selected > 0, "{role}");
        // One window, given exactly the selected parts' line items.
        let windows = windows(&plan);
        assert_eq!(windows.len(), 1, "{role}");
        assert_eq!(output_rows(windows[0].children()[0]), selected, "{role}");

        let answer = rows_of(&mut session, &q17).await.unwrap();
        let by_sum_and_count = rows_of(&mut session, &q17_by_sum_and_count())
            .await
            .unwrap();
        assert_eq!(answer, by_sum_and_count, "{role}");
        assert_ne!(answer[0][0], "NULL", "{role}: some line items are compared");
        let plan = session
            .physical_plan(&q17_by_sum_and_count())
            .await
            .unwrap();
        assert_eq!(
            lineitem_scans(&plan),
            2,
            "{role}: sum and count stay an aggregate"
        );
    }
}
