//! The table cache (`EngineOptions::table_cache_bytes`): a table scanned once
//! is read from memory afterwards, with the same answers for every role
//! (policies apply above it as above the files), partition filters still
//! filter, changed files are read again, and a table larger than the cache
//! is never kept.

use std::path::Path;
use std::time::{Duration, Instant};

use datafusion::physical_plan::displayable;
use lakegate_engine::{Engine, EngineOptions};

use crate::common;
use crate::storage::{events_engine_with, write_partitioned};

const MIB: usize = 1024 * 1024;

/// Settings with a table cache of `bytes` and a short file listing TTL (so
/// that restricted roles' scan plans, kept for the TTL, are planned again).
fn cached_options(data_dir: &Path, bytes: usize) -> EngineOptions {
    EngineOptions {
        table_cache_bytes: bytes,
        file_listing_ttl: Duration::from_millis(200),
        ..common::test_engine_options(data_dir)
    }
}

/// An engine over the shop lake with a table cache of `bytes`.
async fn cached_shop_engine(lake: &common::ShopLake, bytes: usize) -> Engine {
    let data_dir = lake.dir.path();
    common::engine_with(
        &common::shop_catalog(),
        data_dir,
        cached_options(data_dir, bytes),
    )
    .await
}

/// Whether `sql`, as `user` under `role`, reads its table from memory.
async fn reads_memory(engine: &Engine, (user, role): (&str, &str), sql: &str) -> bool {
    let mut session = engine.session(user, Some(role)).unwrap();
    let plan = session.physical_plan(sql).await.unwrap();
    let text = displayable(plan.as_ref()).indent(true).to_string();
    // A memory source shows its partitions' sizes; a Parquet scan its files.
    assert!(
        text.contains("partition_sizes") != text.contains("file_groups"),
        "{text}"
    );
    text.contains("partition_sizes")
}

/// Waits (up to 30 s) until the background load has kept the table `sql`
/// reads.
async fn until_in_memory(engine: &Engine, who: (&str, &str), sql: &str) {
    let started = Instant::now();
    while !reads_memory(engine, who, sql).await {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never cached: {sql}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every row of `sql` as text, as `user` under `role`.
async fn answer(engine: &Engine, (user, role): (&str, &str), sql: &str) -> Vec<Vec<String>> {
    let mut session = engine.session(user, Some(role)).unwrap();
    let batches = session.execute(sql).await.unwrap().collect().await.unwrap();
    common::cells_as_text(&batches)
}

const ROOT: (&str, &str) = ("root", "admin");

/// Queries under restricted and unrestricted roles, ordered so that answers
/// compare exactly.
const QUERIES: [((&str, &str), &str); 6] = [
    (
        ("ann", "analyst"),
        "SELECT * FROM shop.customers ORDER BY id",
    ),
    (
        ("ann", "analyst"),
        "SELECT o.order_id, c.email, o.amount FROM shop.orders o \
         JOIN shop.customers c ON o.customer_id = c.id ORDER BY 1",
    ),
    (("ann", "cells"), "SELECT * FROM shop.customers ORDER BY id"),
    (
        ("ann", "auditor"),
        "SELECT * FROM shop.orders WHERE a < 9 ORDER BY order_id",
    ),
    (
        ROOT,
        "SELECT * FROM shop.orders WHERE a > 3 ORDER BY order_id LIMIT 4",
    ),
    (
        ROOT,
        "SELECT region, count(*) FROM shop.customers GROUP BY 1 ORDER BY 1",
    ),
];

#[tokio::test]
async fn a_scanned_table_is_read_from_memory_with_the_same_answers_for_every_role() {
    let lake = common::shop_lake().await;
    let cached = cached_shop_engine(&lake, 64 * MIB).await;
    // Checking the catalog at start-up plans every policy: it loads nothing.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!reads_memory(&cached, ("ann", "analyst"), QUERIES[0].1).await);
    let mut expected = Vec::new();
    for (who, sql) in QUERIES {
        let uncached = answer(&lake.engine, who, sql).await;
        assert!(!uncached.is_empty(), "{sql}");
        // The first scans read the files (and start loading the tables).
        assert_eq!(answer(&cached, who, sql).await, uncached, "{sql}");
        expected.push(uncached);
    }
    for table in ["shop.customers", "shop.orders"] {
        until_in_memory(&cached, ROOT, &format!("SELECT * FROM {table}")).await;
    }
    // Restricted roles' scan plans are planned again after the TTL, over
    // the kept batches, beneath their policies.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for ((who, sql), expected) in QUERIES.iter().zip(&expected) {
        assert!(reads_memory(&cached, *who, sql).await, "{sql}");
        assert_eq!(&answer(&cached, *who, sql).await, expected, "{sql}");
    }
}

#[tokio::test]
async fn partition_filters_still_filter_a_table_read_from_memory() {
    let lake = tempfile::tempdir().unwrap();
    write_partitioned(lake.path());
    let engine = events_engine_with(lake.path(), cached_options(lake.path(), 64 * MIB)).await;
    let admin = ("ann", "admin");
    let one_year = "SELECT id FROM lake.events WHERE year = 2024 ORDER BY id";
    let expected: Vec<Vec<String>> = (0..20).map(|i| vec![(202400 + i).to_string()]).collect();
    assert_eq!(answer(&engine, admin, one_year).await, expected);
    until_in_memory(&engine, admin, "SELECT id FROM lake.events").await;
    assert!(reads_memory(&engine, admin, one_year).await);
    assert_eq!(answer(&engine, admin, one_year).await, expected);
    // The role's row filter on the partition column.
    let recent = answer(&engine, ("ann", "recent"), "SELECT id FROM lake.events").await;
    assert_eq!(recent.len(), 40);
    assert!(
        recent.iter().all(|row| row[0].as_str() >= "202500"),
        "{recent:?}"
    );
}

#[tokio::test]
async fn a_table_whose_files_change_is_read_again() {
    let lake = common::shop_lake().await;
    let engine = cached_shop_engine(&lake, 64 * MIB).await;
    // Rows, not count(*): DataFusion answers that from file statistics.
    let rows = "SELECT order_id FROM shop.orders";
    let before = answer(&engine, ROOT, rows).await.len();
    until_in_memory(&engine, ROOT, rows).await;

    // Another file of the same rows: the table's files are a new set once
    // the listing TTL has passed, read from the files, then kept again.
    let copy = lake.dir.path().join("orders/part-1.parquet");
    std::fs::copy(lake.dir.path().join("orders/part-0.parquet"), copy).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!reads_memory(&engine, ROOT, rows).await);
    assert_eq!(answer(&engine, ROOT, rows).await.len(), 2 * before);
    until_in_memory(&engine, ROOT, rows).await;
    assert_eq!(answer(&engine, ROOT, rows).await.len(), 2 * before);
}

#[tokio::test]
async fn a_table_larger_than_the_cache_is_never_kept() {
    let lake = common::shop_lake().await;
    // Far less than the orders table decodes to.
    let engine = cached_shop_engine(&lake, 128).await;
    let sql = "SELECT * FROM shop.orders ORDER BY order_id";
    let expected = answer(&lake.engine, ROOT, sql).await;
    for _ in 0..3 {
        assert_eq!(answer(&engine, ROOT, sql).await, expected);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!reads_memory(&engine, ROOT, sql).await);
    }
}
