//! Filters' conjunctions evaluated narrowing (`NarrowFilterConjunctions`):
//! TPC-H Q6's and Q19's filters are narrowing conjunctions as `admin` and
//! `analyst`, and their plans pass the plan checker. (Their answers are
//! compared with plain DataFusion's and DuckDB's by the TPC-H benchmark,
//! which `cargo test` runs at a small scale; the benchmark `conjunctions`
//! checks and times the evaluation itself.)

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::physical_plan::filter::FilterExec;
use lakegate_engine::NarrowingConjunction;

use crate::plan_checker::check_plan;
use crate::tpch::{self, queries, tpch_engine};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn q6_and_q19_filter_lineitem_narrowing() {
    let data_dir = tpch::lake().await;
    let engine = tpch_engine(data_dir, true).await;
    for (name, sql) in queries()
        .into_iter()
        .filter(|(name, _)| name == "q06" || name == "q19")
    {
        for role in ["admin", "analyst"] {
            let mut session = engine.session(role, None).unwrap();
            let plan = session.physical_plan(&sql).await.unwrap();
            check_plan(&plan, false, false);
            let mut narrowing = 0;
            plan.apply(|node| {
                if let Some(filter) = node.downcast_ref::<FilterExec>()
                    && filter
                        .predicate()
                        .downcast_ref::<NarrowingConjunction>()
                        .is_some()
                {
                    narrowing += 1;
                }
                Ok(TreeNodeRecursion::Continue)
            })
            .unwrap();
            // Q19 filters `part` too.
            let filtered_tables = if name == "q19" { 2 } else { 1 };
            assert_eq!(narrowing, filtered_tables, "{name} as {role}");
        }
    }
}
