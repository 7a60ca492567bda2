//! Writes: what checking written rows costs, and what Lakegate's write
//! path costs against DataFusion writing the same rows, in one run.
//!
//! ```text
//!   A   DataFusion: SELECT * FROM lineitem written as one Parquet file (zstd 1)
//!   U   Lakegate: INSERT INTO out.copy SELECT * FROM tpch.lineitem, as a role
//!       whose insert grant checks nothing (one Parquet object, zstd 1)
//!   K   the same INSERT as a role whose insert grant carries a check every
//!       row passes (`l_quantity > 0 AND l_shipdate >= DATE '1992-01-01'`)
//! ```
//!
//! Variants run back to back in an order rotated each iteration; the first
//! iteration warms caches and is not counted. Reported: the medians, K/U
//! (what the check costs; target ≤ 1.05) and U/A (the write path against
//! DataFusion's own). Every written copy is checked to hold lineitem's row
//! count, then removed.
//!
//! Run: `cargo bench --bench writes` (release, TPC-H scale 1, 5 measured
//! iterations; `LAKEGATE_WRITES_SCALE`, `LAKEGATE_WRITES_ITERATIONS` change
//! them). Results: `$CARGO_TARGET_DIR/bench-results/writes.json`. Under
//! `cargo test` it runs once at scale 0.01, as a test that each variant
//! writes every row.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use datafusion::config::TableParquetOptions;
use datafusion::dataframe::DataFrameWriteOptions;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::prelude::{SessionConfig, SessionContext};
use lakegate::tpch_data::table_dir;
use lakegate_catalog::{Catalog, LoadOptions};
use lakegate_engine::{Engine, EngineOptions};
use parquet::arrow::ArrowWriter;
use serde_json::json;

#[path = "support/mod.rs"]
mod support;
use support::{env_or, median, results_dir, tpch_lake};

const CATALOG: &str = r#"
[catalog]
name = "lakegate"

[[storage]]
name = "tpch"
url = "${tpch_dir}"

[[storage]]
name = "out"
url = "${data_dir}/out"

[[database]]
name = "tpch"

[[database]]
name = "out"

[[table]]
database = "tpch"
name = "lineitem"
storage = "tpch"
path = "lineitem/"

[[table]]
database = "out"
name = "copy"
storage = "out"
path = "copy/"

[[role]]
name = "plain"

[[role]]
name = "checked"

[[user]]
name = "bench"
may_assume = ["plain", "checked"]
default_role = "plain"

[[grant]]
name = "plain_reads"
role = "plain"
on = "tpch.lineitem"
privileges = ["select"]

[[grant]]
name = "plain_writes"
role = "plain"
on = "out.copy"
privileges = ["insert"]

[[grant]]
name = "checked_reads"
role = "checked"
on = "tpch.lineitem"
privileges = ["select"]

[[grant]]
name = "checked_writes"
role = "checked"
on = "out.copy"
privileges = ["insert"]
row_filter = "l_quantity > 0 AND l_shipdate >= DATE '1992-01-01'"
"#;

/// The target table's directory, holding only its empty first file.
fn reset_copy(out: &Path) {
    for entry in std::fs::read_dir(out).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().is_some_and(|n| n != "part-0.parquet") {
            std::fs::remove_file(path).unwrap();
        }
    }
}

fn written_rows(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let file = std::fs::File::open(entry.unwrap().path()).unwrap();
            parquet::file::reader::SerializedFileReader::new(file)
                .map(|reader| {
                    use parquet::file::reader::FileReader;
                    reader.metadata().file_metadata().num_rows() as usize
                })
                .unwrap()
        })
        .sum()
}

async fn datafusion_copy(data_dir: &Path, target: &Path) {
    let ctx = SessionContext::new_with_config(SessionConfig::new());
    let url = ListingTableUrl::parse(format!(
        "file://{}/",
        table_dir(data_dir, "lineitem").display()
    ))
    .unwrap();
    let options =
        ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let schema = options.infer_schema(&ctx.state(), &url).await.unwrap();
    let config = ListingTableConfig::new(url)
        .with_listing_options(options)
        .with_schema(schema);
    ctx.register_table("lineitem", Arc::new(ListingTable::try_new(config).unwrap()))
        .unwrap();
    let mut parquet = TableParquetOptions::default();
    parquet.global.compression = Some("zstd(1)".into());
    ctx.sql("SELECT * FROM lineitem")
        .await
        .unwrap()
        .write_parquet(
            target.to_str().unwrap(),
            DataFrameWriteOptions::new().with_single_file_output(true),
            Some(parquet),
        )
        .await
        .unwrap();
}

async fn lakegate_copy(engine: &Engine, role: &str) -> u64 {
    let session = engine.session("bench", Some(role)).unwrap();
    session
        .execute_write("INSERT INTO out.copy SELECT * FROM tpch.lineitem", None)
        .await
        .unwrap()
        .rows
}

async fn run(full: bool) {
    let scale: f64 = env_or("LAKEGATE_WRITES_SCALE", if full { 1.0 } else { 0.01 });
    let iterations: usize = env_or("LAKEGATE_WRITES_ITERATIONS", if full { 5 } else { 1 });
    let data_dir = tpch_lake(scale);
    let lineitem_rows = written_rows(&table_dir(&data_dir, "lineitem"));

    // The write target: an empty file with lineitem's columns.
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out").join("copy");
    std::fs::create_dir_all(&out).unwrap();
    let first = std::fs::read_dir(table_dir(&data_dir, "lineitem"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "parquet"))
        .unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        std::fs::File::open(first).unwrap(),
    )
    .unwrap();
    let schema = Arc::clone(reader.schema());
    let empty = std::fs::File::create(out.join("part-0.parquet")).unwrap();
    ArrowWriter::try_new(empty, schema, None)
        .unwrap()
        .close()
        .unwrap();
    let catalog_dir = work.path().join("catalog");
    std::fs::create_dir_all(&catalog_dir).unwrap();
    let tpch = data_dir.join("tpch");
    let catalog = CATALOG.replace("${tpch_dir}", tpch.to_str().unwrap());
    std::fs::write(catalog_dir.join("catalog.toml"), catalog).unwrap();
    let load = LoadOptions {
        data_dir: work.path().to_path_buf(),
        ..Default::default()
    };
    let catalog = Catalog::load(&catalog_dir, &load)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let engine = Engine::new(catalog, EngineOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let baseline_file = work.path().join("datafusion.parquet");

    let variants = ["A", "U", "K"];
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    for iteration in 0..=iterations {
        for turn in 0..variants.len() {
            let v = (turn + iteration) % variants.len();
            let started = Instant::now();
            let written = match variants[v] {
                "A" => {
                    datafusion_copy(&data_dir, &baseline_file).await;
                    let file = std::fs::File::open(&baseline_file).unwrap();
                    use parquet::file::reader::FileReader;
                    parquet::file::reader::SerializedFileReader::new(file)
                        .unwrap()
                        .metadata()
                        .file_metadata()
                        .num_rows() as usize
                }
                "U" => lakegate_copy(&engine, "plain").await as usize,
                _ => lakegate_copy(&engine, "checked").await as usize,
            };
            let elapsed = started.elapsed().as_secs_f64();
            assert_eq!(
                written, lineitem_rows,
                "variant {} wrote every row",
                variants[v]
            );
            reset_copy(&out);
            let _ = std::fs::remove_file(&baseline_file);
            if iteration > 0 || iterations == 1 && !full {
                times[v].push(elapsed);
            }
        }
    }
    let medians: Vec<f64> = times.iter_mut().map(|t| median(t)).collect();
    let (a, u, k) = (medians[0], medians[1], medians[2]);
    println!(
        "writes, TPC-H lineitem scale {scale} ({lineitem_rows} rows), median of {iterations}:"
    );
    println!("  A DataFusion          {a:8.3} s");
    println!("  U Lakegate, no check  {u:8.3} s   U/A {:.3}", u / a);
    println!(
        "  K Lakegate, checked   {k:8.3} s   K/U {:.3} (target <= 1.05)",
        k / u
    );
    let report = json!({
        "benchmark": "writes",
        "scale": scale,
        "rows": lineitem_rows,
        "iterations": iterations,
        "median_s": {"A": a, "U": u, "K": k},
        "check_over_plain": k / u,
        "plain_over_datafusion": u / a,
    });
    std::fs::write(
        results_dir().join("writes.json"),
        serde_json::to_string_pretty(&report).unwrap(),
    )
    .unwrap();
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
