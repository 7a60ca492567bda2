//! Fixtures shared by the test suites: the hand-written `shop` lake and the
//! generated TPC-DS demo lake, each as real Parquet files under a temporary
//! directory, loaded through the real catalog loader and engine.

#![allow(dead_code)] // each test binary uses part of this module

pub mod random_sql;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray,
};
use arrow::datatypes::{DataType, Field, Int64Type, Schema};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use lakegate::demo_data::{DEMO_LAYOUT, ensure_demo_data};
use lakegate_catalog::{Catalog, LoadOptions};
use lakegate_engine::{Engine, EngineOptions};
use parquet::arrow::ArrowWriter;

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Writes `batch` as one Parquet file `<dir>/<table>/part-0.parquet`.
pub fn write_parquet(dir: &Path, table: &str, batch: &RecordBatch) {
    let table_dir = dir.join(table);
    std::fs::create_dir_all(&table_dir).unwrap();
    let file = std::fs::File::create(table_dir.join("part-0.parquet")).unwrap();
    let mut writer = ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    writer.write(batch).unwrap();
    writer.close().unwrap();
}

fn strings(values: &[Option<&str>]) -> ArrayRef {
    Arc::new(StringArray::from(values.to_vec()))
}

fn days(date: &str) -> i32 {
    let (y, rest) = date.split_once('-').unwrap();
    let (m, d) = rest.split_once('-').unwrap();
    let (y, m, d): (i32, u32, u32) = (y.parse().unwrap(), m.parse().unwrap(), d.parse().unwrap());
    // Days from 1970-01-01 (proleptic Gregorian), Howard Hinnant's algorithm.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe as u32 * 365 + yoe as u32 / 4 - yoe as u32 / 100 + doy;
    era * 146_097 + doe as i32 - 719_468
}

/// The `shop` lake's customers (see tests/fixtures/shop/).
pub fn shop_customers() -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("email", DataType::Utf8, true),
        Field::new("phone", DataType::Utf8, true),
        Field::new("card", DataType::Utf8, true),
        Field::new("region", DataType::Utf8, true),
        Field::new("birth", DataType::Date32, true),
    ]));
    let birth: Vec<Option<i32>> = [
        Some("1990-04-12"),
        Some("1985-11-02"),
        Some("2001-01-30"),
        None,
        Some("1979-07-07"),
        Some("1995-03-03"),
    ]
    .iter()
    .map(|d| d.map(days))
    .collect();
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(vec![1, 2, 3, 4, 5, 6])),
            strings(&[
                Some("Alice Martin"),
                Some("Bob Stone"),
                Some("Chloé Dubois"),
                Some("Dan Wu"),
                Some("Eva"),
                Some("Frank Ocean"),
            ]),
            strings(&[
                Some("alice@example.com"),
                Some("bob@example.com"),
                Some("chloe@example.fr"),
                None,
                Some("eva@example.de"),
                Some("frank@example.com"),
            ]),
            strings(&[
                Some("+33 1 23 45 67 89"),
                Some("555-0101"),
                Some("+33 6 11 22 33 44"),
                Some("555-0199"),
                Some("1234"),
                Some("555-0123"),
            ]),
            strings(&[
                Some("4111111111111111"),
                Some("4222222222222222"),
                Some("4333333333333333"),
                Some("4444"),
                None,
                Some("4555555555555555"),
            ]),
            strings(&[
                Some("EU"),
                Some("US"),
                Some("EU"),
                Some("US"),
                Some("EU"),
                Some("APAC"),
            ]),
            Arc::new(Date32Array::from(birth)),
        ],
    )
    .unwrap()
}

/// The `shop` lake's orders: `a` runs 1..=10, so `10 / (a - 3)` fails on a = 3.
pub fn shop_orders() -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("order_id", DataType::Int64, false),
        Field::new("customer_id", DataType::Int64, false),
        Field::new("a", DataType::Int64, false),
        Field::new("amount", DataType::Float64, false),
        Field::new("note", DataType::Utf8, true),
    ]));
    let a: Vec<i64> = (1..=10).collect();
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(
                a.iter().map(|a| 100 + a).collect::<Vec<_>>(),
            )),
            Arc::new(Int64Array::from(
                a.iter().map(|a| (a - 1) % 6 + 1).collect::<Vec<_>>(),
            )),
            Arc::new(Int64Array::from(a.clone())),
            Arc::new(Float64Array::from(
                a.iter().map(|a| *a as f64 * 10.5).collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                a.iter().map(|a| format!("note-{a}")).collect::<Vec<_>>(),
            )),
        ],
    )
    .unwrap()
}

/// The `hr` database's salaries: only admin may see them.
pub fn hr_salaries() -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("salary", DataType::Int64, false),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(vec![1, 2])),
            Arc::new(Int64Array::from(vec![50_000, 70_000])),
        ],
    )
    .unwrap()
}

/// The shop lake: data in a temporary directory, engine over tests/fixtures/shop.
pub struct ShopLake {
    /// Keeps the data directory alive.
    pub dir: tempfile::TempDir,
    /// The engine.
    pub engine: Engine,
}

/// Writes the shop lake's Parquet files and builds an engine on its catalog.
pub async fn shop_lake() -> ShopLake {
    let dir = tempfile::tempdir().unwrap();
    write_shop_files(dir.path());
    let engine = engine_for(&shop_catalog(), dir.path()).await;
    ShopLake { dir, engine }
}

/// The shop lake with every table stored as a Delta table (version 0
/// holding the same rows), declared `format = "delta"` in a copy of the
/// shop catalog.
pub async fn shop_lake_delta() -> ShopLake {
    let dir = tempfile::tempdir().unwrap();
    write_delta(dir.path(), "customers", &shop_customers()).await;
    write_delta(dir.path(), "orders", &shop_orders()).await;
    write_delta(dir.path(), "salaries", &hr_salaries()).await;
    let catalog = delta_catalog(&shop_catalog(), &dir.path().join("catalog"));
    let engine = engine_for(&catalog, dir.path()).await;
    ShopLake { dir, engine }
}

/// The Delta table `<dir>/<table>/` read and written through the local
/// file system.
pub fn delta_location(dir: &Path, table: &str) -> lakegate_delta::DeltaLocation {
    let url = url::Url::from_directory_path(dir.join(table)).unwrap();
    let store = Arc::new(object_store::local::LocalFileSystem::new());
    lakegate_delta::DeltaLocation::new(store, &url).unwrap()
}

/// Creates the Delta table `<dir>/<table>/` holding `batch` as version 0.
pub async fn write_delta(dir: &Path, table: &str, batch: &RecordBatch) {
    let location = delta_location(dir, table);
    lakegate_delta::create(&location, vec![batch.clone()], Default::default())
        .await
        .unwrap();
}

/// Appends `batch` to the Delta table `<dir>/<table>/`: its next version.
pub async fn append_delta(dir: &Path, table: &str, batch: &RecordBatch) -> u64 {
    let location = delta_location(dir, table);
    lakegate_delta::append(&location, vec![batch.clone()], Default::default())
        .await
        .unwrap()
        .version
}

/// A copy of the catalog directory `from` in `to`, each of its tables
/// declared `format = "delta"`.
pub fn delta_catalog(from: &Path, to: &Path) -> PathBuf {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let text = text.replace("[[table]]\n", "[[table]]\nformat = \"delta\"\n");
        std::fs::write(to.join(path.file_name().unwrap()), text).unwrap();
    }
    to.to_path_buf()
}

/// Writes the shop lake's Parquet files under `dir`.
pub fn write_shop_files(dir: &Path) {
    write_parquet(dir, "customers", &shop_customers());
    write_parquet(dir, "orders", &shop_orders());
    write_parquet(dir, "salaries", &hr_salaries());
}

/// Where a test lake's audit log lives.
pub fn audit_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("audit")
}

/// Loads the catalog in `catalog_dir` over `data_dir` and builds an engine.
pub async fn engine_for(catalog_dir: &Path, data_dir: &Path) -> Engine {
    engine_with(catalog_dir, data_dir, test_engine_options(data_dir)).await
}

/// The tests' engine settings for a lake in `data_dir`.
pub fn test_engine_options(data_dir: &Path) -> EngineOptions {
    EngineOptions {
        // Fixed partitioning, so that plans in .slt files do not depend on
        // the machine's core count.
        target_partitions: 2,
        // `system.audit` reads the audit log a test server writes here.
        audit_dir: Some(audit_dir(data_dir)),
        // The test lakes' tables are a few rows: let dynamic filters reach
        // them, as they reach large tables.
        dynamic_filter_min_rows: 0,
        ..EngineOptions::default()
    }
}

/// Loads the catalog in `catalog_dir` over `data_dir` and builds an engine
/// with `options`.
pub async fn engine_with(catalog_dir: &Path, data_dir: &Path, options: EngineOptions) -> Engine {
    let load = LoadOptions {
        data_dir: data_dir.to_path_buf(),
        ..Default::default()
    };
    let catalog = Catalog::load(catalog_dir, &load)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    Engine::new(catalog, options)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The shop catalog's directory.
pub fn shop_catalog() -> PathBuf {
    repo_root().join("tests/fixtures/shop")
}

/// The TPC-DS scale the tests generate the demo lake at: small, but large
/// enough for every demo role to see rows.
pub const TEST_DEMO_SCALE: f64 = 0.01;

/// The demo lake at [`TEST_DEMO_SCALE`], generated once per build directory
/// and reused (generation is deterministic).
pub fn demo_data_dir() -> PathBuf {
    // The layout version is in the name: data in an older layout is not reused.
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("lakegate-demo-sf0.01-layout{DEMO_LAYOUT}"));
    // Test binaries may run concurrently (nextest): each generates into its
    // own directory and renames it into place; the first rename wins.
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if dir.join("tpc/_lakegate_demo.json").exists() {
            return;
        }
        let own = dir.with_extension(format!("partial-{}", std::process::id()));
        ensure_demo_data(&own, TEST_DEMO_SCALE, false).expect("demo data generates");
        if std::fs::rename(&own, &dir).is_err() {
            let _ = std::fs::remove_dir_all(&own);
        }
        assert!(
            dir.join("tpc/_lakegate_demo.json").exists(),
            "demo data in place"
        );
    });
    dir
}

/// An engine over the demo catalog and the test-scale demo lake.
pub async fn demo_lake() -> Engine {
    engine_for(&repo_root().join("catalog/demo"), &demo_data_dir()).await
}

/// Every cell of every row as text: NULL as `NULL`, the empty string as
/// `(empty)` (so that it cannot be confused with a missing cell).
pub fn cells_as_text(batches: &[RecordBatch]) -> Vec<Vec<String>> {
    let options = FormatOptions::default().with_null("NULL");
    let mut rows = Vec::new();
    for batch in batches {
        let formatters: Vec<ArrayFormatter> = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).unwrap())
            .collect();
        for row in 0..batch.num_rows() {
            rows.push(
                formatters
                    .iter()
                    .zip(batch.columns())
                    .map(|(f, column)| {
                        let text = f.value(row).to_string();
                        if text.is_empty() && !column.is_null(row) {
                            "(empty)".to_string()
                        } else {
                            text
                        }
                    })
                    .collect(),
            );
        }
    }
    rows
}

/// The first column (Int64) of `sql` in the shop database, as `user`
/// under `role`, sorted.
pub async fn shop_first_column(engine: &Engine, user: &str, role: &str, sql: &str) -> Vec<i64> {
    let mut session = engine.session(user, Some(role)).unwrap();
    session.use_database("shop").unwrap();
    let batches = session
        .execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .collect()
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    sorted_first_column_i64(&batches)
}

/// The first column of `batches` (an Int64 column), sorted: to compare
/// results whose row order is not defined.
pub fn sorted_first_column_i64(batches: &[RecordBatch]) -> Vec<i64> {
    let mut values: Vec<i64> = batches
        .iter()
        .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
        .collect();
    values.sort_unstable();
    values
}
