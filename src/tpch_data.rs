//! Benchmark data: the eight TPC-H tables, generated in-process with
//! `tpchgen-arrow` and written as Parquet under `<data-dir>/tpch/<table>/`,
//! the layout `catalog/tpch` reads.
//!
//! The large tables are written as several files, one per generator part
//! (`tpchgen` splits a table into independent parts), so that generation
//! runs on every core and scans split by file as a lake's would. Generation
//! is skipped when the directory already holds the tables at the requested
//! scale and in this layout (recorded in `<data-dir>/tpch/_lakegate_tpch.json`,
//! written last).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use tpchgen::generators::{
    CustomerGenerator, LineItemGenerator, NationGenerator, OrderGenerator, PartGenerator,
    PartSuppGenerator, RegionGenerator, SupplierGenerator,
};
use tpchgen_arrow::{
    CustomerArrow, LineItemArrow, NationArrow, OrderArrow, PartArrow, PartSuppArrow, RegionArrow,
    SupplierArrow,
};

use crate::parquet_files::{GenerateError, Generation, PartialParquetFile};

/// The TPC-H tables and how many files each is written as.
pub const TPCH_TABLES: [(&str, usize); 8] = [
    ("region", 1),
    ("nation", 1),
    ("supplier", 1),
    ("customer", 1),
    ("part", 1),
    ("partsupp", 2),
    ("orders", 2),
    ("lineitem", 4),
];

/// The version of the files' layout; data written in another is regenerated.
pub const TPCH_LAYOUT: u64 = 2;

fn marker(data_dir: &Path) -> PathBuf {
    data_dir.join("tpch").join("_lakegate_tpch.json")
}

/// The directory of one TPC-H table under `data_dir`.
pub fn table_dir(data_dir: &Path, table: &str) -> PathBuf {
    data_dir.join("tpch").join(table)
}

/// Rows written per table, in [`TPCH_TABLES`] order (empty when reused).
pub type RowsWritten = Vec<(&'static str, usize)>;

/// Makes sure the TPC-H tables exist under `data_dir` at `scale`; returns
/// whether they were generated now, and the rows written per table.
pub fn ensure_tpch_data(
    data_dir: &Path,
    scale: f64,
) -> Result<(Generation, RowsWritten), GenerateError> {
    if !(scale > 0.0 && scale.is_finite()) {
        return Err(GenerateError::Generate {
            table: "tpch".into(),
            message: format!("the scale factor must be a positive number, not {scale}"),
        });
    }
    let marker = marker(data_dir);
    if let Ok(text) = std::fs::read_to_string(&marker)
        && let Ok(recorded) = serde_json::from_str::<serde_json::Value>(&text)
        && recorded["scale"].as_f64() == Some(scale)
        && recorded["layout"].as_u64() == Some(TPCH_LAYOUT)
    {
        return Ok((Generation::Reused, Vec::new()));
    }
    let write_error = |path: &Path, e: &dyn std::fmt::Display| GenerateError::Write {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let _ = std::fs::remove_file(&marker);
    for (table, _) in TPCH_TABLES {
        let dir = table_dir(data_dir, table);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| write_error(&dir, &e))?;
        }
        std::fs::create_dir_all(&dir).map_err(|e| write_error(&dir, &e))?;
    }

    // One job per (table, part), largest first, shared by one worker per core.
    let mut jobs: Vec<(&'static str, usize, usize)> = TPCH_TABLES
        .iter()
        .flat_map(|&(table, parts)| (0..parts).map(move |part| (table, part, parts)))
        .collect();
    jobs.reverse();
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|scope| {
        for _ in 0..workers.min(jobs.len()) {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(table, part, parts)) = jobs.get(index) else {
                        break;
                    };
                    let result = write_part(data_dir, table, scale, part, parts);
                    results
                        .lock()
                        .expect("no worker panics holding the lock")
                        .push((table, result));
                }
            });
        }
    });
    let mut rows: RowsWritten = TPCH_TABLES.iter().map(|t| (t.0, 0)).collect();
    for (table, result) in results.into_inner().expect("workers are done") {
        let written = result?;
        let entry = rows.iter_mut().find(|(name, _)| *name == table);
        entry.expect("every job's table is listed").1 += written;
    }

    let recorded = serde_json::json!({
        "scale": scale,
        "layout": TPCH_LAYOUT,
        "tables": rows.iter().map(|(t, n)| serde_json::json!({"table": t, "rows": n})).collect::<Vec<_>>(),
    });
    std::fs::write(&marker, recorded.to_string()).map_err(|e| write_error(&marker, &e))?;
    Ok((Generation::Generated, rows))
}

type Batches = Box<dyn Iterator<Item = Result<RecordBatch, ArrowError>>>;

/// The generator of one part (0-based) of `parts` of a table.
fn generator(table: &str, scale: f64, part: usize, parts: usize) -> Option<(SchemaRef, Batches)> {
    // tpchgen numbers parts from 1.
    let (part, parts) = (part as i32 + 1, parts as i32);
    Some(match table {
        "region" => (
            RegionArrow::schema_ref(),
            Box::new(RegionArrow::new(RegionGenerator::new(scale, part, parts))),
        ),
        "nation" => (
            NationArrow::schema_ref(),
            Box::new(NationArrow::new(NationGenerator::new(scale, part, parts))),
        ),
        "supplier" => (
            SupplierArrow::schema_ref(),
            Box::new(SupplierArrow::new(SupplierGenerator::new(
                scale, part, parts,
            ))),
        ),
        "customer" => (
            CustomerArrow::schema_ref(),
            Box::new(CustomerArrow::new(CustomerGenerator::new(
                scale, part, parts,
            ))),
        ),
        "part" => (
            PartArrow::schema_ref(),
            Box::new(PartArrow::new(PartGenerator::new(scale, part, parts))),
        ),
        "partsupp" => (
            PartSuppArrow::schema_ref(),
            Box::new(PartSuppArrow::new(PartSuppGenerator::new(
                scale, part, parts,
            ))),
        ),
        "orders" => (
            OrderArrow::schema_ref(),
            Box::new(OrderArrow::new(OrderGenerator::new(scale, part, parts))),
        ),
        "lineitem" => (
            LineItemArrow::schema_ref(),
            Box::new(LineItemArrow::new(LineItemGenerator::new(
                scale, part, parts,
            ))),
        ),
        _ => return None,
    })
}

/// Generates one part of a table into `part-<part>.parquet`; returns its rows.
fn write_part(
    data_dir: &Path,
    table: &str,
    scale: f64,
    part: usize,
    parts: usize,
) -> Result<usize, GenerateError> {
    let generate_error = |message: String| GenerateError::Generate {
        table: table.to_string(),
        message,
    };
    let (schema, batches) = generator(table, scale, part, parts)
        .ok_or_else(|| generate_error("not a TPC-H table".into()))?;
    let path = table_dir(data_dir, table).join(format!("part-{part}.parquet"));
    let write_error = |message: String| GenerateError::Write {
        path: path.clone(),
        message,
    };
    let mut file = PartialParquetFile::create(&path, schema).map_err(write_error)?;
    let mut rows = 0;
    for batch in batches {
        let batch = batch.map_err(|e| generate_error(e.to_string()))?;
        rows += batch.num_rows();
        file.write(&batch).map_err(write_error)?;
    }
    file.finish().map_err(write_error)?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_every_table_once_and_reuses_it() {
        let dir = tempfile::tempdir().unwrap();
        let (generation, rows) = ensure_tpch_data(dir.path(), 0.001).unwrap();
        assert_eq!(generation, Generation::Generated);
        let rows: std::collections::BTreeMap<_, _> = rows.into_iter().collect();
        // Fixed by the TPC-H definition, whatever the scale.
        assert_eq!(rows["region"], 5);
        assert_eq!(rows["nation"], 25);
        // 150,000 customers and 1,500,000 orders per unit of scale.
        assert_eq!(rows["customer"], 150);
        assert_eq!(rows["orders"], 1500);
        for (table, parts) in TPCH_TABLES {
            let files = std::fs::read_dir(table_dir(dir.path(), table))
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .filter(|name| name.ends_with(".parquet"))
                .count();
            assert_eq!(files, parts, "{table}");
        }
        let (generation, _) = ensure_tpch_data(dir.path(), 0.001).unwrap();
        assert_eq!(generation, Generation::Reused);
    }

    #[test]
    fn refuses_a_scale_that_is_not_positive() {
        let dir = tempfile::tempdir().unwrap();
        let error = ensure_tpch_data(dir.path(), 0.0).unwrap_err();
        assert!(error.to_string().contains("positive"), "{error}");
    }
}
