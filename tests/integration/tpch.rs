//! The TPC-H lake the engine tests share: scale 0.01 (generated once per
//! build directory), the benchmark's catalog and its 22 queries, and
//! answers compared as sorted text.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::physical_plan::{ExecutionPlan, displayable};
use datafusion::prelude::SessionContext;
use lakegate::tpch_data::{TPCH_LAYOUT, ensure_tpch_data};
use lakegate_catalog::{Catalog, LoadOptions};
use lakegate_engine::{Engine, EngineOptions, QuerySession};
use tokio::sync::OnceCell;

use crate::common;

/// The TPC-H lake's data directory.
pub(crate) async fn lake() -> &'static Path {
    static LAKE: OnceCell<PathBuf> = OnceCell::const_new();
    LAKE.get_or_init(|| async {
        let data_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("tpch-sf0.01-layout{TPCH_LAYOUT}"));
        let generating = data_dir.clone();
        tokio::task::spawn_blocking(move || ensure_tpch_data(&generating, 0.01))
            .await
            .unwrap()
            .expect("TPC-H data");
        data_dir
    })
    .await
}

/// The benchmark's catalog (`analyst` under a policy, `admin` unrestricted).
pub(crate) fn tpch_catalog() -> PathBuf {
    common::repo_root().join("catalog/tpch")
}

/// An engine over the TPC-H lake on two partitions, joins reordered by
/// estimate or kept as written.
pub(crate) async fn tpch_engine(data_dir: &Path, reorder_joins: bool) -> Engine {
    let options = EngineOptions {
        target_partitions: 2,
        reorder_joins,
        ..EngineOptions::default()
    };
    common::engine_with(&tpch_catalog(), data_dir, options).await
}

/// The text of the query named `name` (`q01` ...).
pub(crate) fn query(name: &str) -> String {
    queries()
        .into_iter()
        .find(|(found, _)| found == name)
        .unwrap_or_else(|| panic!("no TPC-H query {name}"))
        .1
}

/// The 22 queries, by name (`q01` ...), in order.
pub(crate) fn queries() -> Vec<(String, String)> {
    let dir = common::repo_root().join("benches/tpch/queries");
    let mut queries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "sql"))
        .map(|path| {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&path).unwrap())
        })
        .collect();
    queries.sort();
    queries
}

/// A result's rows as text, sorted; numbers that are not integers rounded
/// to 6 significant digits (a sum over partial sums adds in another order).
pub(crate) async fn rows_of(
    session: &mut QuerySession,
    sql: &str,
) -> Result<Vec<Vec<String>>, String> {
    let output = session.execute(sql).await.map_err(|e| e.to_string())?;
    let batches = output.collect().await.map_err(|e| e.to_string())?;
    let mut rows: Vec<Vec<String>> = common::cells_as_text(&batches)
        .into_iter()
        .map(|row| {
            row.into_iter()
                .map(|cell| match cell.parse::<f64>() {
                    Ok(number) if cell.contains('.') => format!("{number:.6e}"),
                    _ => cell,
                })
                .collect()
        })
        .collect();
    rows.sort();
    Ok(rows)
}

/// A context that reads the TPC-H lake's storage location, to run a plan.
pub(crate) async fn lake_context(data_dir: &Path) -> SessionContext {
    let load = LoadOptions {
        data_dir: data_dir.to_path_buf(),
        ..Default::default()
    };
    let catalog = Catalog::load(&tpch_catalog(), &load).await.unwrap();
    let context = SessionContext::new();
    for location in catalog.storage.values() {
        context.register_object_store(&location.registry_url(), Arc::clone(&location.store));
    }
    context
}

/// `value` summed over every operator of `plan`.
pub(crate) fn sum_over(
    plan: &Arc<dyn ExecutionPlan>,
    value: &dyn Fn(&Arc<dyn ExecutionPlan>) -> usize,
) -> usize {
    value(plan)
        + plan
            .children()
            .into_iter()
            .map(|child| sum_over(child, value))
            .sum::<usize>()
}

/// The rows `plan` returned (none when it never ran).
pub(crate) fn output_rows(plan: &Arc<dyn ExecutionPlan>) -> usize {
    plan.metrics()
        .and_then(|m| m.output_rows())
        .unwrap_or_default()
}

/// Whether `plan` is a scan of `table`'s files.
pub(crate) fn is_scan_of(plan: &Arc<dyn ExecutionPlan>, table: &str) -> bool {
    let line = displayable(plan.as_ref()).one_line().to_string();
    line.starts_with("DataSourceExec") && line.contains(&format!("{table}/"))
}

/// The rows each scan of `table`'s files in `plan` returned (none when
/// it never ran).
pub(crate) fn rows_read(plan: &Arc<dyn ExecutionPlan>, table: &str) -> usize {
    sum_over(plan, &|node| {
        if is_scan_of(node, table) {
            output_rows(node)
        } else {
            0
        }
    })
}
