//! Bulk ingestion into a Delta table: ADBC's `adbc_ingest` through
//! Lakegate (every row checked against the writer's insert grant, then one
//! commit) against the `deltalake` library writing the same Arrow data
//! straight to a table of its own, in one run.
//!
//! ```text
//!   D   deltalake (Python, PyPI): write_deltalake(table, mode="append"), zstd
//!   L   Lakegate over Flight SQL on loopback: cursor.adbc_ingest(..., mode="append")
//!       into `out.web_sales_copy`, format = "delta", as the lake administrator
//! ```
//!
//! The data: the demo's `dl_tpc_web_sales` (TPC-DS web_sales, 719,384 rows at
//! scale 1), read into memory once by the client. Variants run back to back
//! in an order rotated each iteration; the first iteration is not counted.
//! Reported: the medians and L/D (target ≤ 1.2). Each variant's table is
//! checked to hold every row written, at the version expected.
//!
//! Run: `cargo bench --bench ingest` (release; demo data at scale 1, shared
//! with the `wire` benchmark). Results: `$CARGO_TARGET_DIR/bench-results/
//! ingest.json`. Under `cargo test` it runs once at a tiny scale, as a test
//! that both variants write every row.

use std::path::Path;
use std::sync::Arc;

use arrow::array::RecordBatch;
use lakegate::demo_data::{DEMO_LAYOUT, ensure_demo_data};
use lakegate_catalog::{Catalog, LoadOptions};
use lakegate_engine::{Engine, EngineOptions};
use lakegate_flight::{EnvelopeKey, LakegateFlightService, ServiceOptions, bind, serve_on};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

#[path = "support/mod.rs"]
mod support;
use support::{python, python_if_present, repo_root, results_dir};

/// The table ingested into, beside the demo catalog's (its location's URL
/// is formatted in).
const COPY_TABLE: &str = r#"
[[database]]
name = "out"

[[storage]]
name = "out"
url = "{out_dir}"

[[table]]
database = "out"
name = "web_sales_copy"
storage = "out"
path = "web_sales_copy/"
format = "delta"

[[grant]]
name = "admin_ingests"
role = "lake_admin"
on = "out.web_sales_copy"
privileges = ["insert"]
"#;

/// An empty Delta table of web_sales' columns at `dir/web_sales_copy/`.
async fn create_copy_table(web_sales: &Path, dir: &Path) {
    let first = std::fs::read_dir(web_sales)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "parquet"))
        .expect("web_sales has a Parquet file");
    let reader =
        ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(first).unwrap()).unwrap();
    let empty = RecordBatch::new_empty(Arc::clone(reader.schema()));
    let table = dir.join("web_sales_copy");
    std::fs::create_dir_all(&table).unwrap();
    let url = url::Url::from_directory_path(&table).unwrap();
    let store = Arc::new(object_store::local::LocalFileSystem::new());
    let location = lakegate_delta::DeltaLocation::new(store, &url).unwrap();
    lakegate_delta::create(&location, vec![empty], Default::default())
        .await
        .expect("the copy table is created");
}

/// The demo catalog plus [`COPY_TABLE`] in `out_dir`, in a directory of
/// its own.
async fn engine(data_dir: &Path, out_dir: &Path, catalog_dir: &Path) -> Engine {
    std::fs::create_dir_all(catalog_dir).unwrap();
    for entry in std::fs::read_dir(repo_root().join("catalog/demo")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, catalog_dir.join(path.file_name().unwrap())).unwrap();
    }
    let copy_table = COPY_TABLE.replace("{out_dir}", &out_dir.display().to_string());
    std::fs::write(catalog_dir.join("ingest.toml"), copy_table).unwrap();
    let load = LoadOptions {
        data_dir: data_dir.to_path_buf(),
        ..Default::default()
    };
    let catalog = Catalog::load(catalog_dir, &load)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    Engine::new(catalog, EngineOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn run(full: bool) {
    let Some(python) = (if full {
        Some(python())
    } else {
        python_if_present()
    }) else {
        println!("ingest: no test virtualenv, skipped");
        return;
    };
    let scale = if full { 1.0 } else { 0.01 };
    // The same directory as the wire benchmark's: generated once for both.
    let data_dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("wire-demo-sf{scale}-layout{DEMO_LAYOUT}"));
    ensure_demo_data(&data_dir, scale, false).expect("demo data");
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("ingest-out-sf{scale}"));
    let _ = std::fs::remove_dir_all(&out_dir);
    let web_sales = data_dir.join("tpc/dl_tpc_web_sales");
    create_copy_table(&web_sales, &out_dir).await;
    let engine = engine(&data_dir, &out_dir, &work.path().join("catalog")).await;
    let (listener, address) = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let service =
        LakegateFlightService::new(engine, EnvelopeKey::random(), ServiceOptions::default());
    tokio::spawn(serve_on(listener, service, futures::future::pending()));

    let iterations = if full { 6 } else { 2 };
    let mut client = std::process::Command::new(python);
    client
        .arg(repo_root().join("benches/ingest_client.py"))
        .args(["--lakegate", &format!("grpc://{address}")])
        .arg("--parquet")
        .arg(&web_sales)
        .arg("--copy")
        .arg(out_dir.join("web_sales_copy"))
        .arg("--baseline")
        .arg(work.path().join("baseline"))
        .args(["--iterations", &iterations.to_string()])
        .arg("--out")
        .arg(results_dir().join("ingest.json"));
    let status = tokio::task::spawn_blocking(move || client.status())
        .await
        .unwrap()
        .expect("the client runs");
    assert!(status.success(), "the benchmark client failed");
    let _ = std::fs::remove_dir_all(&out_dir);
}

fn main() {
    // `cargo bench` passes --bench; `cargo test` runs a small smoke test.
    let full = std::env::args().any(|a| a == "--bench");
    tokio::runtime::Runtime::new().unwrap().block_on(run(full));
}
