//! Secured tables reuse their scan plans (per role, table and scan shape):
//! queries that run at the same time from one cached plan share no execution
//! state, and a table's new files show up once the file listing TTL passes.

use std::time::Duration;

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use futures::future::join_all;
use lakegate_catalog::{Catalog, LoadOptions};
use lakegate_engine::{Engine, EngineOptions};

use crate::common;

#[tokio::test]
async fn concurrent_queries_from_one_cached_scan_plan_each_read_every_row() {
    // Four files over two partitions: within one execution the partitions
    // share a queue of files. Were that queue shared between queries, one
    // query would take files from another and both would miss rows.
    let engine = common::demo_lake().await;
    let sql = "SELECT ws_order_number FROM dl_tpc_web_sales";
    let mut first = engine.session("tina", Some("sales")).unwrap();
    let expected = common::sorted_first_column_i64(
        &first.execute(sql).await.unwrap().collect().await.unwrap(),
    );
    assert!(!expected.is_empty());

    // Plan them all first (the later ones from the cached scan plan), then
    // run them all at once.
    let mut outputs = Vec::new();
    for _ in 0..8 {
        let mut session = engine.session("tina", Some("sales")).unwrap();
        outputs.push(session.execute(sql).await.unwrap());
    }
    let results = join_all(outputs.into_iter().map(|output| output.collect())).await;
    for batches in results {
        assert_eq!(common::sorted_first_column_i64(&batches.unwrap()), expected);
    }
}

async fn shop_engine(data_dir: &std::path::Path, file_listing_ttl: Duration) -> Engine {
    let catalog = Catalog::load(
        &common::repo_root().join("tests/fixtures/shop"),
        &LoadOptions {
            data_dir: data_dir.to_path_buf(),
            ..Default::default()
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let options = EngineOptions {
        target_partitions: 2,
        file_listing_ttl,
        ..EngineOptions::default()
    };
    Engine::new(catalog, options)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn auditor_count(engine: &Engine) -> i64 {
    let mut session = engine.session("ann", Some("auditor")).unwrap();
    let batches = session
        .execute("SELECT count(*) FROM shop.orders")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    batches[0].column(0).as_primitive::<Int64Type>().value(0)
}

#[tokio::test]
async fn new_files_show_up_once_the_listing_ttl_has_passed() {
    let lake = common::shop_lake().await;
    let ttl = Duration::from_millis(300);
    let engine = shop_engine(lake.dir.path(), ttl).await;
    let before = auditor_count(&engine).await;
    assert!(before > 0);

    // A second file with the same rows lands in the table's directory.
    let copy = lake.dir.path().join("orders/part-1.parquet");
    std::fs::copy(lake.dir.path().join("orders/part-0.parquet"), &copy).unwrap();
    // Within the TTL the cached file list may still answer; after it, the
    // new file is read.
    tokio::time::sleep(ttl + Duration::from_millis(100)).await;
    assert_eq!(auditor_count(&engine).await, 2 * before);
}
