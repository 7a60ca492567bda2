//! Delta Lake tables: read under the same policy as Parquet tables (the
//! shop .slt files run over both formats, see tests/sqllogictests.rs), read
//! at a version (`orders@v0`, `orders@<time>`) under the table's current
//! policy, and written by INSERT as one commit per statement: checked rows
//! only, the version recorded, concurrent writers all committed, and a
//! reader during writes seeing whole commits only.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use lakegate_engine::{Engine, ErrorCode};

use crate::common;

fn orders() -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("region", DataType::Utf8, true),
        Field::new("amount", DataType::Float64, true),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(vec![1, 2, 3])),
            Arc::new(StringArray::from(vec!["EU", "US", "EU"])),
            Arc::new(Float64Array::from(vec![10.0, 20.0, 30.0])),
        ],
    )
    .unwrap()
}

/// `eu_clerk` reads and writes EU orders; `reader` reads everything;
/// `loader` writes anything and reads nothing.
async fn engine(lake: &Path) -> (tempfile::TempDir, Engine) {
    let catalog = tempfile::tempdir().unwrap();
    let toml = format!(
        r#"
[[storage]]
name = "lake"
url = "{lake}"

[[database]]
name = "sales"

[[table]]
database = "sales"
name = "orders"
storage = "lake"
path = "orders/"
format = "delta"

[[role]]
name = "eu_clerk"

[[role]]
name = "reader"

[[role]]
name = "loader"

[[user]]
name = "u"
may_assume = ["eu_clerk", "reader", "loader"]
default_role = "reader"

[[grant]]
name = "eu_reads"
role = "eu_clerk"
on = "sales.orders"
privileges = ["select"]
row_filter = "region = 'EU'"
masks = {{ amount = "nullify" }}

[[grant]]
name = "eu_writes"
role = "eu_clerk"
on = "sales.orders"
privileges = ["insert"]
row_filter = "region = 'EU'"

[[grant]]
name = "reads_all"
role = "reader"
on = "sales.orders"
privileges = ["select"]

[[grant]]
name = "loads_all"
role = "loader"
on = "sales.orders"
privileges = ["insert"]
"#,
        lake = lake.display()
    );
    std::fs::write(catalog.path().join("catalog.toml"), toml).unwrap();
    let engine = common::engine_for(catalog.path(), lake).await;
    (catalog, engine)
}

async fn query(engine: &Engine, role: &str, sql: &str) -> Result<Vec<i64>, (ErrorCode, String)> {
    let mut session = engine.session("u", Some(role)).unwrap();
    let output = session
        .execute(sql)
        .await
        .map_err(|e| (e.code(), e.to_string()))?;
    let batches = output
        .collect()
        .await
        .map_err(|e| (e.code(), e.to_string()))?;
    Ok(common::sorted_first_column_i64(&batches))
}

async fn ids(engine: &Engine, role: &str, table: &str) -> Vec<i64> {
    query(engine, role, &format!("SELECT id FROM sales.{table}"))
        .await
        .unwrap()
}

/// The commits in the table's log.
fn commits(lake: &Path) -> usize {
    std::fs::read_dir(lake.join("orders/_delta_log"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "json")
        })
        .count()
}

#[tokio::test]
async fn versions_are_read_under_the_tables_current_policy() {
    let lake = tempfile::tempdir().unwrap();
    common::write_delta(lake.path(), "orders", &orders()).await;
    let (_catalog, engine) = engine(lake.path()).await;
    assert_eq!(ids(&engine, "eu_clerk", "orders").await, [1, 3]);
    // Delta commit times have millisecond precision.
    let before_write = chrono::Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;

    let session = engine.session("u", Some("eu_clerk")).unwrap();
    let outcome = session
        .execute_write(
            "INSERT INTO sales.orders VALUES (10, 'EU', 5.5), (11, 'EU', 6)",
            None,
        )
        .await
        .unwrap();
    assert_eq!((outcome.rows, outcome.version), (2, Some(1)));
    assert_eq!(outcome.grants, ["eu_writes"]);
    assert!(outcome.bytes > 0);
    let object = outcome.object.clone().expect("a data file was committed");
    assert!(object.ends_with(".parquet"), "{object}");
    assert_eq!(outcome.audit_record().version, Some(1));

    // The latest version, at once, for every reader.
    assert_eq!(ids(&engine, "eu_clerk", "orders").await, [1, 3, 10, 11]);
    assert_eq!(ids(&engine, "reader", "orders").await, [1, 2, 3, 10, 11]);
    // An earlier version, by number or by time, under the same policy:
    // its row filter and masks apply to old rows too.
    assert_eq!(ids(&engine, "eu_clerk", "\"orders@v0\"").await, [1, 3]);
    assert_eq!(ids(&engine, "reader", "\"orders@v0\"").await, [1, 2, 3]);
    assert_eq!(
        ids(&engine, "reader", "\"orders@v1\"").await,
        [1, 2, 3, 10, 11]
    );
    let at = before_write.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    assert_eq!(
        ids(&engine, "eu_clerk", &format!("\"orders@{at}\"")).await,
        [1, 3]
    );
    let masked = query(
        &engine,
        "eu_clerk",
        "SELECT count(*) FROM sales.\"orders@v0\" WHERE amount IS NULL",
    )
    .await
    .unwrap();
    assert_eq!(masked, [2], "the mask applies to an old version");

    // A version that does not exist, and a suffix naming none.
    let (code, error) = query(&engine, "reader", "SELECT id FROM sales.\"orders@v9\"")
        .await
        .unwrap_err();
    assert_eq!(code, ErrorCode::InvalidArgument, "{error}");
    assert!(error.contains("version 9"), "{error}");
    let (_, error) = query(
        &engine,
        "reader",
        "SELECT id FROM sales.\"orders@yesterday\"",
    )
    .await
    .unwrap_err();
    assert!(error.contains("names no version of a table"), "{error}");
    // A time before the first commit, and one still to come.
    for (at, expected) in [
        ("2000-01-01T00:00:00Z", "2000-01-01"),
        ("2999-01-01T00:00:00Z", "is in the future"),
    ] {
        let sql = format!("SELECT id FROM sales.\"orders@{at}\"");
        let (code, error) = query(&engine, "reader", &sql).await.unwrap_err();
        assert_eq!(code, ErrorCode::InvalidArgument, "{error}");
        assert!(error.contains(expected), "{error}");
    }
    // A role that may not read the table learns nothing from a versioned
    // name: the same answer as for a table that does not exist.
    let (_, hidden) = query(&engine, "loader", "SELECT id FROM sales.\"orders@v0\"")
        .await
        .unwrap_err();
    let (_, missing) = query(&engine, "loader", "SELECT id FROM sales.\"nothing@v0\"")
        .await
        .unwrap_err();
    assert_eq!(
        hidden.replace("orders", "nothing"),
        missing,
        "a hidden table's versions look like a missing table"
    );
}

#[tokio::test]
async fn a_refused_write_commits_no_version() {
    let lake = tempfile::tempdir().unwrap();
    common::write_delta(lake.path(), "orders", &orders()).await;
    let (_catalog, engine) = engine(lake.path()).await;
    let session = engine.session("u", Some("eu_clerk")).unwrap();
    let error = session
        .execute_write(
            "INSERT INTO sales.orders SELECT value + 100, CASE WHEN value = 5000 THEN 'US' \
             ELSE 'EU' END, 1.0 FROM generate_series(1, 10000)",
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), ErrorCode::PermissionDenied, "{error}");
    assert_eq!(commits(lake.path()), 1);
    assert_eq!(ids(&engine, "reader", "orders").await, [1, 2, 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_all_commit_and_readers_see_whole_commits() {
    const WRITERS: i64 = 3;
    const WRITES: i64 = 8;
    const ROWS: i64 = 500;
    let lake = tempfile::tempdir().unwrap();
    common::write_delta(lake.path(), "orders", &orders()).await;
    let (_catalog, engine) = engine(lake.path()).await;

    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let engine = engine.clone();
        let done = Arc::clone(&done);
        tokio::spawn(async move {
            let mut seen = Vec::new();
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                let count = query(&engine, "reader", "SELECT count(*) FROM sales.orders")
                    .await
                    .unwrap()[0];
                seen.push(count);
            }
            seen
        })
    };
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let engine = engine.clone();
        writers.push(tokio::spawn(async move {
            for write in 0..WRITES {
                let first = 1_000 + (writer * WRITES + write) * ROWS;
                let session = engine.session("u", Some("loader")).unwrap();
                let outcome = session
                    .execute_write(
                        &format!(
                            "INSERT INTO sales.orders SELECT value, 'EU', 1.0 \
                             FROM generate_series({first}, {}) ",
                            first + ROWS - 1
                        ),
                        None,
                    )
                    .await
                    .unwrap();
                assert_eq!(outcome.rows, ROWS as u64);
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let seen = reader.await.unwrap();

    let total = 3 + WRITERS * WRITES * ROWS;
    assert_eq!(
        query(&engine, "reader", "SELECT count(*) FROM sales.orders")
            .await
            .unwrap(),
        [total]
    );
    let distinct = query(
        &engine,
        "reader",
        "SELECT count(DISTINCT id) FROM sales.orders",
    )
    .await
    .unwrap();
    assert_eq!(distinct, [total], "no write was lost or doubled");
    assert_eq!(commits(lake.path()) as i64, 1 + WRITERS * WRITES);
    // Every count a reader saw is a whole number of commits.
    assert!(!seen.is_empty());
    for count in seen {
        assert_eq!(
            (count - 3) % ROWS,
            0,
            "a reader saw part of a commit: {count}"
        );
    }
}

#[tokio::test]
async fn a_parquet_table_has_no_versions() {
    let lake = common::shop_lake().await;
    let mut session = lake.engine.session("root", Some("admin")).unwrap();
    let Err(error) = session.execute("SELECT * FROM shop.\"orders@v0\"").await else {
        panic!("a version of a Parquet table was read");
    };
    assert_eq!(error.code(), ErrorCode::InvalidArgument, "{error}");
    assert!(
        error.to_string().contains("is not a Delta table"),
        "{error}"
    );
}
