//! `conjunctions`: what evaluating a filter's `AND` chain costs, DataFusion's
//! binary tree (with its pre-selection short circuit) against Lakegate's
//! `NarrowingConjunction` (`crates/lakegate-engine/src/conjunctions.rs`) at
//! several narrowing thresholds.
//!
//! The filters are those DataFusion plans over TPC-H's `lineitem` for Q6,
//! Q12, Q14 and Q19 (the conjunctions of each query's `WHERE` on that
//! table), the batches those of its scan beneath the filter, decoded once
//! and kept in memory, so that only the predicate's evaluation is timed.
//! Every evaluation is checked equal to the tree's, row for row. Each
//! round times every variant once, in an order that rotates per round;
//! medians of the rounds, and their ratios to the tree, are printed and
//! written to `$CARGO_TARGET_DIR/bench-results/conjunctions.json`.
//!
//! `cargo bench --workspace --bench conjunctions` runs it at scale 1 (15
//! rounds); under `cargo test`, once at scale 0.01.

#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::array::{AsArray, BooleanArray, RecordBatch};
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::physical_expr::{PhysicalExpr, split_conjunction};
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::{ExecutionPlan, collect};
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use lakegate::tpch_data::table_dir;
use lakegate_engine::{EngineOptions, NARROW_BELOW, NarrowingConjunction};
use serde_json::json;
use support::{env_or, median, results_dir, tpch_lake};

/// The queries' conditions on `lineitem` alone.
const FILTERS: [(&str, &str); 4] = [
    (
        "Q06",
        "l_shipdate >= DATE '1994-01-01' AND l_shipdate < DATE '1995-01-01' \
         AND l_discount BETWEEN 0.05 AND 0.07 AND l_quantity < 24",
    ),
    (
        "Q12",
        "l_shipmode IN ('MAIL', 'SHIP') AND l_commitdate < l_receiptdate \
         AND l_shipdate < l_commitdate AND l_receiptdate >= DATE '1994-01-01' \
         AND l_receiptdate < DATE '1995-01-01'",
    ),
    (
        "Q14",
        "l_shipdate >= DATE '1995-09-01' AND l_shipdate < DATE '1995-10-01'",
    ),
    (
        "Q19",
        "l_shipmode IN ('AIR', 'AIR REG') AND l_shipinstruct = 'DELIVER IN PERSON' \
         AND l_quantity BETWEEN 1 AND 30",
    ),
];

/// The narrowing thresholds compared (0: every term on the whole batch).
const SHARES: [f64; 4] = [0.0, 0.1, NARROW_BELOW, 0.35];

/// The filter's predicate and its input's batches, in memory.
async fn filter_and_batches(
    context: &SessionContext,
    condition: &str,
) -> (Arc<dyn PhysicalExpr>, Vec<RecordBatch>) {
    let sql = format!("SELECT count(*) FROM lineitem WHERE {condition}");
    let plan = context
        .sql(&sql)
        .await
        .unwrap()
        .create_physical_plan()
        .await
        .unwrap();
    let mut found: Option<(Arc<dyn PhysicalExpr>, Arc<dyn ExecutionPlan>)> = None;
    plan.apply(|node| {
        if let Some(filter) = node.downcast_ref::<FilterExec>() {
            found = Some((Arc::clone(filter.predicate()), Arc::clone(filter.input())));
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    })
    .unwrap();
    let (predicate, input) = found.expect("the query filters lineitem");
    let batches = collect(input, context.task_ctx()).await.unwrap();
    (predicate, batches)
}

/// Evaluates `predicate` over every batch; the selected rows.
fn evaluate(predicate: &dyn PhysicalExpr, batches: &[RecordBatch]) -> Vec<BooleanArray> {
    batches
        .iter()
        .map(|batch| {
            let value = predicate.evaluate(batch).unwrap();
            value
                .into_array(batch.num_rows())
                .unwrap()
                .as_boolean()
                .clone()
        })
        .collect()
}

async fn run(full: bool) {
    let scale: f64 = env_or("LAKEGATE_TPCH_SCALE", if full { 1.0 } else { 0.01 });
    let rounds: usize = env_or("LAKEGATE_CONJUNCTION_ROUNDS", if full { 15 } else { 1 });
    let data_dir = tpch_lake(scale);
    let options = EngineOptions::default();
    let context = SessionContext::new_with_config(options.session_config());
    let lineitem = table_dir(&data_dir, "lineitem");
    context
        .register_parquet(
            "lineitem",
            lineitem.to_str().unwrap(),
            ParquetReadOptions::default(),
        )
        .await
        .unwrap();

    let mut report = Vec::new();
    println!(
        "\nTPC-H scale {scale}, {rounds} rounds: median ms to evaluate each query's lineitem filter over the whole table, and the ratio to DataFusion's tree\n"
    );
    println!(
        "| filter | rows kept | tree | {} |",
        SHARES.map(|s| format!("narrowing below {s}")).join(" | ")
    );
    println!("| --- | ---: | ---: |{}", " ---: |".repeat(SHARES.len()));
    for (name, condition) in FILTERS {
        let (tree, batches) = filter_and_batches(&context, condition).await;
        let terms: Vec<_> = split_conjunction(&tree).into_iter().cloned().collect();
        let narrowing: Vec<Arc<dyn PhysicalExpr>> = SHARES
            .iter()
            .map(|&share| {
                Arc::new(NarrowingConjunction::narrowing_below(terms.clone(), share).unwrap()) as _
            })
            .collect();
        let expected = evaluate(tree.as_ref(), &batches);
        for variant in &narrowing {
            assert_eq!(
                evaluate(variant.as_ref(), &batches),
                expected,
                "{name}: {variant}"
            );
        }
        let kept: usize = expected.iter().map(|b| b.true_count()).sum();

        let variants: Vec<&Arc<dyn PhysicalExpr>> =
            std::iter::once(&tree).chain(&narrowing).collect();
        let mut samples = vec![Vec::new(); variants.len()];
        for round in 0..rounds {
            for offset in 0..variants.len() {
                let at = (round + offset) % variants.len();
                let started = Instant::now();
                std::hint::black_box(evaluate(variants[at].as_ref(), &batches));
                samples[at].push(started.elapsed().as_secs_f64() * 1000.0);
            }
        }
        let medians: Vec<f64> = samples.iter_mut().map(|s| median(s)).collect();
        let ratios: Vec<f64> = medians[1..].iter().map(|m| m / medians[0]).collect();
        println!(
            "| {name} | {kept} | {:.2} | {} |",
            medians[0],
            medians[1..]
                .iter()
                .zip(&ratios)
                .map(|(m, r)| format!("{m:.2} ({r:.2})"))
                .collect::<Vec<_>>()
                .join(" | ")
        );
        report.push(json!({
            "filter": name,
            "condition": condition,
            "rows": batches.iter().map(|b| b.num_rows()).sum::<usize>(),
            "rows_kept": kept,
            "tree_ms": medians[0],
            "narrowing": SHARES.iter().zip(&medians[1..]).zip(&ratios).map(|((share, ms), ratio)| {
                json!({"narrow_below": share, "ms": ms, "vs_tree": ratio})
            }).collect::<Vec<_>>(),
        }));
    }
    let path = results_dir().join("conjunctions.json");
    let document = json!({"scale": scale, "rounds": rounds, "filters": report});
    std::fs::write(&path, serde_json::to_string_pretty(&document).unwrap()).unwrap();
    println!("\nresults in {}", path.display());
}

fn main() {
    // `cargo bench` passes --bench; `cargo test` runs the small check.
    let full = std::env::args().any(|a| a == "--bench");
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(run(full));
}
