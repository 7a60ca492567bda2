//! Writes: INSERT and bulk ingestion into a Parquet table under insert
//! grants. Rows a grant's check refuses, and values in columns outside a
//! grant's column list, refuse the whole statement and leave the table as
//! it was; the source of an INSERT ... SELECT reads under the writer's read
//! policy; the writer reads its own rows at once; an unfinished upload's
//! staging file is never read, and removed once abandoned; the byte limit
//! stops a write and nothing is written.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use lakegate_engine::{Engine, EngineOptions, ErrorCode};

use crate::common;

fn orders_schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("region", DataType::Utf8, true),
        Field::new("amount", DataType::Float64, true),
        Field::new("note", DataType::Utf8, true),
    ]))
}

fn write_orders(lake: &Path) {
    let batch = RecordBatch::try_new(
        orders_schema(),
        vec![
            Arc::new(Int64Array::from(vec![1, 2, 3])),
            Arc::new(StringArray::from(vec!["EU", "US", "EU"])),
            Arc::new(Float64Array::from(vec![10.0, 20.0, 30.0])),
            Arc::new(StringArray::from(vec![Some("first"), None, None])),
        ],
    )
    .unwrap();
    common::write_parquet(lake, "orders", &batch);
}

/// `eu_clerk` reads and writes EU orders (its writes must leave `note`
/// NULL); `reader` reads everything and writes nothing; `loader` writes
/// anything and reads nothing.
async fn engine(lake: &Path, options: EngineOptions) -> Engine {
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

[[role]]
name = "eu_clerk"

[[role]]
name = "reader"

[[role]]
name = "loader"

[[role]]
name = "copier"

[[user]]
name = "u"
may_assume = ["eu_clerk", "reader", "loader", "copier"]
default_role = "reader"

[[grant]]
name = "eu_reads"
role = "eu_clerk"
on = "sales.orders"
privileges = ["select"]
row_filter = "region = 'EU'"

[[grant]]
name = "eu_writes"
role = "eu_clerk"
on = "sales.orders"
privileges = ["insert"]
include_columns = ["id", "region", "amount"]
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

[[grant]]
name = "copier_reads"
role = "copier"
on = "sales.orders"
privileges = ["select"]
masks = {{ note = "redact" }}

[[grant]]
name = "copier_writes"
role = "copier"
on = "sales.orders"
privileges = ["insert"]
"#,
        lake = lake.display()
    );
    std::fs::write(catalog.path().join("catalog.toml"), toml).unwrap();
    common::engine_with(catalog.path(), lake, options).await
}

async fn ids(engine: &Engine, role: &str) -> Vec<i64> {
    let mut session = engine.session("u", Some(role)).unwrap();
    let batches = session
        .execute("SELECT id FROM sales.orders")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    common::sorted_first_column_i64(&batches)
}

async fn write(engine: &Engine, role: &str, sql: &str) -> Result<u64, (ErrorCode, String)> {
    let session = engine.session("u", Some(role)).unwrap();
    session
        .execute_write(sql, None)
        .await
        .map(|outcome| outcome.rows)
        .map_err(|e| (e.code(), e.to_string()))
}

fn objects(lake: &Path) -> usize {
    std::fs::read_dir(lake.join("orders")).unwrap().count()
}

#[tokio::test]
async fn inserts_are_checked_against_the_grant_and_commit_whole_or_not_at_all() {
    let lake = tempfile::tempdir().unwrap();
    write_orders(lake.path());
    let engine = engine(lake.path(), common::test_engine_options(lake.path())).await;
    // Read once, so that the listing and scan plan are kept.
    assert_eq!(ids(&engine, "reader").await, [1, 2, 3]);

    let session = engine.session("u", Some("eu_clerk")).unwrap();
    let outcome = session
        .execute_write(
            "INSERT INTO sales.orders (id, region, amount) VALUES (10, 'EU', 5.5), (11, 'EU', 6)",
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        (outcome.rows, outcome.grants.clone()),
        (2, vec!["eu_writes".to_string()])
    );
    assert!(outcome.bytes > 0);
    let object = outcome.object.expect("an object was committed");
    assert!(object.ends_with(".parquet"), "{object}");
    // The writer and every reader see the rows at once: the kept listing
    // and scan plans are not reused across a write.
    assert_eq!(ids(&engine, "eu_clerk").await, [1, 3, 10, 11]);
    assert_eq!(ids(&engine, "reader").await, [1, 2, 3, 10, 11]);

    let before = objects(lake.path());
    for (sql, expected) in [
        // A row outside the check.
        (
            "INSERT INTO sales.orders (id, region, amount) VALUES (12, 'US', 1)",
            "a row written to table 'sales.orders' is accepted by none of role 'eu_clerk''s \
             INSERT grants (eu_writes)",
        ),
        // One bad row among good ones refuses them all.
        (
            "INSERT INTO sales.orders (id, region, amount) VALUES (12, 'EU', 1), (13, NULL, 2)",
            "is accepted by none",
        ),
        // A column outside the grant's list.
        (
            "INSERT INTO sales.orders VALUES (14, 'EU', 1, 'a note')",
            "leave NULL the columns outside the grant's column list",
        ),
    ] {
        let (code, error) = write(&engine, "eu_clerk", sql).await.unwrap_err();
        assert_eq!(code, ErrorCode::PermissionDenied, "{sql}: {error}");
        assert!(error.contains(expected), "{sql}: {error}");
        assert!(error.contains("nothing was written"), "{error}");
    }
    assert_eq!(
        objects(lake.path()),
        before,
        "a refused write left an object"
    );
    assert_eq!(ids(&engine, "reader").await, [1, 2, 3, 10, 11]);

    // Without an insert grant: refused, as for a table that does not exist.
    for (role, sql) in [
        ("reader", "INSERT INTO sales.orders (id) VALUES (20)"),
        ("eu_clerk", "INSERT INTO sales.nothing (id) VALUES (20)"),
    ] {
        let (code, error) = write(&engine, role, sql).await.unwrap_err();
        assert_eq!(code, ErrorCode::PermissionDenied, "{error}");
        assert!(error.contains("needs INSERT on it"), "{error}");
    }

    // Malformed writes are told what is wrong.
    for (sql, expected) in [
        (
            "INSERT INTO sales.orders (id, region) VALUES (1)",
            "names 2 column(s) but gives 1",
        ),
        (
            "INSERT INTO sales.orders (id, colour) VALUES (1, 'x')",
            "no column 'colour'",
        ),
        (
            "INSERT INTO sales.orders (id, id) VALUES (1, 2)",
            "listed twice",
        ),
        (
            "INSERT INTO sales.orders (id) VALUES ('not a number')",
            "not a number",
        ),
        (
            "INSERT OVERWRITE sales.orders VALUES (1, 'EU', 1, NULL)",
            "INSERT OVERWRITE",
        ),
        ("SELECT 1", "this statement is a query"),
        ("DELETE FROM sales.orders", "read-only"),
    ] {
        let (_, error) = write(&engine, "loader", sql).await.unwrap_err();
        assert!(error.contains(expected), "{sql}: {error}");
    }
    // The clock reads as in a query: now() is the write's start.
    let stamped = write(
        &engine,
        "loader",
        "INSERT INTO sales.orders (id, note) VALUES (50, CAST(now() AS VARCHAR))",
    )
    .await
    .unwrap();
    assert_eq!(stamped, 1);
    // A NULL in a column the files declare NOT NULL.
    let (_, error) = write(
        &engine,
        "loader",
        "INSERT INTO sales.orders (region) VALUES ('EU')",
    )
    .await
    .unwrap_err();
    assert!(error.contains("id"), "{error}");
    assert_eq!(objects(lake.path()), before + 1);
}

#[tokio::test]
async fn one_refused_row_among_ten_thousand_refuses_them_all() {
    let lake = tempfile::tempdir().unwrap();
    write_orders(lake.path());
    let engine = engine(lake.path(), common::test_engine_options(lake.path())).await;
    let before = objects(lake.path());
    let (code, error) = write(
        &engine,
        "eu_clerk",
        "INSERT INTO sales.orders (id, region, amount) \
         SELECT value + 100, CASE WHEN value = 5000 THEN 'US' ELSE 'EU' END, 1.0 \
         FROM generate_series(1, 10000)",
    )
    .await
    .unwrap_err();
    assert_eq!(code, ErrorCode::PermissionDenied, "{error}");
    assert_eq!(objects(lake.path()), before);
    assert_eq!(ids(&engine, "reader").await, [1, 2, 3]);
    // The same rows, all in the check, are written whole.
    let written = write(
        &engine,
        "eu_clerk",
        "INSERT INTO sales.orders (id, region, amount) \
         SELECT value + 100, 'EU', 1.0 FROM generate_series(1, 10000)",
    )
    .await
    .unwrap();
    assert_eq!(written, 10_000);
    assert_eq!(objects(lake.path()), before + 1);
    assert_eq!(ids(&engine, "reader").await.len(), 10_003);
}

#[tokio::test]
async fn an_insert_select_reads_only_what_the_writer_may_read() {
    let lake = tempfile::tempdir().unwrap();
    write_orders(lake.path());
    let engine = engine(lake.path(), common::test_engine_options(lake.path())).await;
    // eu_clerk copies every order it can see: the EU ones only.
    let copied = write(
        &engine,
        "eu_clerk",
        "INSERT INTO sales.orders (id, region, amount) \
         SELECT id + 100, region, amount FROM sales.orders",
    )
    .await
    .unwrap();
    assert_eq!(copied, 2);
    assert_eq!(ids(&engine, "reader").await, [1, 2, 3, 101, 103]);
    // A masked value is copied as the writer reads it: masked.
    let copied = write(
        &engine,
        "copier",
        "INSERT INTO sales.orders SELECT id + 200, region, amount, note FROM sales.orders \
         WHERE id = 1",
    )
    .await
    .unwrap();
    assert_eq!(copied, 1);
    let mut session = engine.session("u", Some("reader")).unwrap();
    let notes = session
        .execute("SELECT note FROM sales.orders WHERE id IN (1, 201) ORDER BY id")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let notes = common::cells_as_text(&notes);
    assert_eq!(notes[0], ["first"]);
    assert_ne!(notes[1], ["first"], "the copy holds the stored value");
    let mut session = engine.session("u", Some("copier")).unwrap();
    let masked = session
        .execute("SELECT note FROM sales.orders WHERE id = 1")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_eq!(common::cells_as_text(&masked)[0], notes[1]);
    // loader may write but not read: its source is refused.
    let (code, error) = write(
        &engine,
        "loader",
        "INSERT INTO sales.orders SELECT * FROM sales.orders",
    )
    .await
    .unwrap_err();
    assert_eq!(code, ErrorCode::PermissionDenied);
    assert!(error.contains("may not read it"), "{error}");
    // Selecting nothing writes nothing.
    let none = write(
        &engine,
        "loader",
        "INSERT INTO sales.orders (id) SELECT 1 WHERE false",
    )
    .await
    .unwrap();
    assert_eq!(none, 0);
}

#[tokio::test]
async fn ingested_batches_are_matched_by_name_and_checked() {
    let lake = tempfile::tempdir().unwrap();
    write_orders(lake.path());
    let engine = engine(lake.path(), common::test_engine_options(lake.path())).await;
    let schema = Arc::new(Schema::new(vec![
        Field::new("region", DataType::Utf8, true),
        Field::new("id", DataType::Int32, true),
    ]));
    let batch = |regions: Vec<&str>, ids: Vec<i32>| {
        RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(StringArray::from(regions)),
                Arc::new(arrow::array::Int32Array::from(ids)),
            ],
        )
        .unwrap()
    };
    let session = engine.session("u", Some("eu_clerk")).unwrap();
    let outcome = session
        .ingest(
            Some("sales"),
            "orders",
            Arc::clone(&schema),
            vec![
                batch(vec!["EU"], vec![40]),
                batch(vec!["EU", "EU"], vec![41, 42]),
            ],
        )
        .await
        .unwrap();
    assert_eq!(outcome.rows, 3);
    assert_eq!(ids(&engine, "reader").await, [1, 2, 3, 40, 41, 42]);
    // One US row in the second batch: nothing of either batch is written.
    let error = session
        .ingest(
            Some("sales"),
            "orders",
            Arc::clone(&schema),
            vec![
                batch(vec!["EU"], vec![43]),
                batch(vec!["EU", "US"], vec![44, 45]),
            ],
        )
        .await
        .unwrap_err();
    assert!(error.to_string().contains("is accepted by none"), "{error}");
    assert_eq!(ids(&engine, "reader").await, [1, 2, 3, 40, 41, 42]);
    // A column the table does not have.
    let odd = Arc::new(Schema::new(vec![Field::new(
        "colour",
        DataType::Utf8,
        true,
    )]));
    let odd_batch = RecordBatch::try_new(
        Arc::clone(&odd),
        vec![Arc::new(StringArray::from(vec!["red"]))],
    )
    .unwrap();
    let error = session
        .ingest(Some("sales"), "orders", odd, vec![odd_batch])
        .await
        .unwrap_err();
    assert!(error.to_string().contains("no column 'colour'"), "{error}");
}

#[tokio::test]
async fn unfinished_uploads_are_never_read_and_the_byte_limit_writes_nothing() {
    let lake = tempfile::tempdir().unwrap();
    write_orders(lake.path());
    // What a crashed writer leaves on a local file system: a staging file
    // (`<name>#<n>`), never renamed into place.
    std::fs::write(
        lake.path().join("orders").join("part-9-crashed.parquet#1"),
        b"half a file",
    )
    .unwrap();
    let options = EngineOptions {
        max_write_bytes: 4096,
        ..common::test_engine_options(lake.path())
    };
    let engine = engine(lake.path(), options).await;
    assert_eq!(ids(&engine, "reader").await, [1, 2, 3]);
    let before = objects(lake.path());
    let (code, error) = write(
        &engine,
        "loader",
        "INSERT INTO sales.orders (id, note) \
         SELECT value, repeat('x', 100) || CAST(value AS VARCHAR) FROM generate_series(1, 100000)",
    )
    .await
    .unwrap_err();
    assert_eq!(code, ErrorCode::ResourceExhausted, "{error}");
    assert!(error.contains("--max-write-bytes"), "{error}");
    assert_eq!(objects(lake.path()), before);
    assert_eq!(ids(&engine, "reader").await, [1, 2, 3]);

    // A commit removes staging files older than an hour, not newer ones
    // (an upload still running).
    let old = lake.path().join("orders").join("part-9-crashed.parquet#1");
    let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    std::fs::File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(two_hours_ago)
        .unwrap();
    let running = lake.path().join("orders").join("part-10-running.parquet#2");
    std::fs::write(&running, b"a part").unwrap();
    assert_eq!(
        write(
            &engine,
            "loader",
            "INSERT INTO sales.orders (id) VALUES (4)"
        )
        .await,
        Ok(1)
    );
    assert!(!old.exists(), "the abandoned staging file was kept");
    assert!(running.exists(), "a recent staging file was removed");
    assert_eq!(ids(&engine, "reader").await, [1, 2, 3, 4]);
}

#[tokio::test]
async fn a_write_of_several_parts_commits_as_one_object() {
    let lake = tempfile::tempdir().unwrap();
    write_orders(lake.path());
    let engine = engine(lake.path(), common::test_engine_options(lake.path())).await;
    let before = objects(lake.path());
    // About 14 MB of Parquet (hex digests compress little): a multipart
    // upload of two 10 MiB parts on the local file system.
    let written = write(
        &engine,
        "loader",
        "INSERT INTO sales.orders (id, note) \
         SELECT value + 100, md5(CAST(value AS VARCHAR)) || md5(CAST(-value AS VARCHAR)) \
         FROM generate_series(1, 400000)",
    )
    .await
    .unwrap();
    assert_eq!(written, 400_000);
    assert_eq!(objects(lake.path()), before + 1);
    let size: u64 = std::fs::read_dir(lake.path().join("orders"))
        .unwrap()
        .map(|entry| entry.unwrap().metadata().unwrap().len())
        .sum();
    assert!(size > 10 * 1024 * 1024, "{size} bytes: one part only");
    assert_eq!(ids(&engine, "reader").await.len(), 400_003);
}
