//! Storage locations: per-location settings are checked (secrets never
//! inline, settings only where they apply), Hive-style partition columns
//! prune what is read and work in grants, and a location that fails while a
//! query runs is named in the error. The S3 side (a real S3-compatible server,
//! several credentials, faults) is `tests/python/test_s3.py`.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use lakegate_catalog::{Catalog, LoadOptions};
use lakegate_engine::{Engine, EngineError, EngineOptions, QuerySession};
use parquet::arrow::ArrowWriter;

use crate::common;

const PRINCIPALS: &str = r#"
[[database]]
name = "lake"

[[role]]
name = "admin"

[[role]]
name = "recent"

[[user]]
name = "ann"
password_hash = "$argon2id$v=19$m=19456,t=2,p=1$LAWtCmX8ZTKZ87OObJ+AOQ$vxivZ/51MmtgjLCGLTFhhg6djH13WwGhPu216XekDQ4"
may_assume = ["admin", "recent"]
default_role = "admin"

[[grant]]
name = "admin_all"
role = "admin"
on = "*"
privileges = ["select"]

[[grant]]
name = "recent_only"
role = "recent"
on = "lake.events"
privileges = ["select"]
row_filter = "year >= 2025"
"#;

/// Writes `events` as Hive partitions `year=2023..=2026`, two files each, with
/// `id` values that encode their year.
pub(crate) fn write_partitioned(root: &Path) {
    let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
    for year in 2023..=2026_i64 {
        let dir = root.join(format!("events/year={year}"));
        std::fs::create_dir_all(&dir).unwrap();
        for part in 0..2_i64 {
            let ids: Vec<i64> = (0..10).map(|i| year * 100 + part * 10 + i).collect();
            let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(ids))])
                .unwrap();
            let file = std::fs::File::create(dir.join(format!("part-{part}.parquet"))).unwrap();
            let mut writer = ArrowWriter::try_new(file, schema.clone(), None).unwrap();
            writer.write(&batch).unwrap();
            writer.close().unwrap();
        }
    }
}

async fn load(catalog_text: &str, data_dir: &Path) -> Result<Catalog, String> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("catalog.toml"), catalog_text).unwrap();
    Catalog::load(
        dir.path(),
        &LoadOptions {
            data_dir: data_dir.to_path_buf(),
            ..Default::default()
        },
    )
    .await
    .map_err(|e| e.to_string())
}

async fn events_engine(data_dir: &Path) -> Engine {
    events_engine_with(data_dir, EngineOptions::default()).await
}

/// The partitioned `lake.events` table over `data_dir` (see
/// [`write_partitioned`]), with `options`.
pub(crate) async fn events_engine_with(data_dir: &Path, options: EngineOptions) -> Engine {
    let text = format!(
        "{PRINCIPALS}\n[[storage]]\nname = \"local\"\nurl = \"${{data_dir}}\"\n\n\
         [[table]]\ndatabase = \"lake\"\nname = \"events\"\nstorage = \"local\"\npath = \"events/\"\n\
         partition_columns = [{{ name = \"year\", type = \"int\" }}]\n"
    );
    let catalog = load(&text, data_dir)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    Engine::new(catalog, options)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The sorted first column of `sql`'s result in `session`.
async fn ids(session: &mut QuerySession, sql: &str) -> Vec<i64> {
    let batches = session.execute(sql).await.unwrap().collect().await.unwrap();
    common::sorted_first_column_i64(&batches)
}

#[tokio::test]
async fn partition_columns_are_queryable_prune_reads_and_work_in_row_filters() {
    let lake = tempfile::tempdir().unwrap();
    write_partitioned(lake.path());
    let engine = events_engine(lake.path()).await;
    let requests = || engine.storage_requests("local").unwrap();

    let mut admin = engine.session("ann", Some("admin")).unwrap();
    admin.use_database("lake").unwrap();
    assert_eq!(
        ids(&mut admin, "SELECT id, year FROM events").await.len(),
        80
    );

    let before = requests();
    let one_year = ids(&mut admin, "SELECT id FROM events WHERE year = 2024").await;
    let pruned = requests() - before;
    assert_eq!(one_year, (0..20).map(|i| 202400 + i).collect::<Vec<_>>());
    let before = requests();
    ids(&mut admin, "SELECT id FROM events").await;
    let whole = requests() - before;
    assert!(
        pruned.gets * 2 <= whole.gets,
        "one year of four reads at most half the objects: {pruned:?} vs {whole:?}"
    );

    // The role's row filter on the partition column.
    let mut recent = engine.session("ann", Some("recent")).unwrap();
    recent.use_database("lake").unwrap();
    let seen = ids(&mut recent, "SELECT id, year FROM events").await;
    assert_eq!(seen.len(), 40);
    assert!(seen.iter().all(|id| *id >= 202500), "{seen:?}");
}

#[tokio::test]
async fn a_file_gone_while_serving_fails_the_query_naming_the_location() {
    let lake = tempfile::tempdir().unwrap();
    write_partitioned(lake.path());
    let engine = events_engine(lake.path()).await;
    let mut admin = engine.session("ann", Some("recent")).unwrap();
    admin.use_database("lake").unwrap();
    // The listing is cached (file listing TTL); the file it names is gone.
    admin
        .execute("SELECT count(*) FROM events")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    std::fs::remove_file(lake.path().join("events/year=2025/part-1.parquet")).unwrap();
    let error = match admin.execute("SELECT id FROM events").await {
        Ok(output) => output.collect().await.unwrap_err(),
        Err(e) => e,
    };
    match &error {
        EngineError::Storage(message) => {
            assert!(message.contains("storage location 'local'"), "{message}")
        }
        other => panic!("expected a storage error, got {other:?}"),
    }
}

#[tokio::test]
async fn storage_settings_are_checked() {
    let lake = tempfile::tempdir().unwrap();
    let cases = [
        (
            "name = \"s\"\nurl = \"s3://bucket/x\"\ncredentials = \"variables\"\nsecret_access_key = \"hunter2\"",
            "'secret_access_key' would put a secret in the catalog; name the environment variable holding it with 'secret_access_key_env'",
        ),
        (
            "name = \"s\"\nurl = \"${data_dir}\"\nregion = \"eu-west-1\"",
            "setting 'region' does not apply to local files",
        ),
        (
            "name = \"s\"\nurl = \"gs://bucket/x\"\nregion = \"eu-west-1\"",
            "setting 'region' does not apply to Google Cloud Storage locations",
        ),
        (
            "name = \"s\"\nurl = \"s3://bucket/x\"\ncredentials = \"magic\"",
            "credentials 'magic' is not one of: 'environment', 'profile', 'variables', 'web-identity', 'anonymous'",
        ),
        (
            "name = \"s\"\nurl = \"s3://bucket/x\"\ncredentials = \"variables\"\n\
             access_key_id_env = \"LAKEGATE_TEST_NEVER_SET_1\"\nsecret_access_key_env = \"LAKEGATE_TEST_NEVER_SET_2\"",
            "environment variable 'LAKEGATE_TEST_NEVER_SET_1' (named by 'access_key_id_env') is not set",
        ),
        (
            "name = \"s\"\nurl = \"s3://bucket/x\"\naccess_key_id_env = \"K\"",
            "setting 'access_key_id_env' needs credentials = 'variables' (not 'environment')",
        ),
        (
            "name = \"s\"\nurl = \"s3://bucket/x\"\ncredentials = \"profile\"\nprofile = \"lakegate-test-no-such-profile\"",
            "profile 'lakegate-test-no-such-profile' is not in",
        ),
        (
            "name = \"s\"\nurl = \"s3://bucket/x\"\nprofile = \"p\"",
            "setting 'profile' needs credentials = 'profile' (not 'environment')",
        ),
        (
            "name = \"s\"\nurl = \"s3://bucket/x\"\nrequest_timeout = \"soon\"",
            "request_timeout 'soon'",
        ),
        (
            "name = \"s\"\nurl = \"s3://bucket/x\"\nkms_key_id = \"k\"",
            "'kms_key_id' and 'bucket_key' need encryption = 'sse-kms'",
        ),
        (
            "name = \"s\"\nurl = \"s3://bucket/x\"\naddressing = \"sideways\"",
            "addressing 'sideways' is not 'path' or 'virtual-hosted'",
        ),
        (
            "name = \"two words\"\nurl = \"${data_dir}\"",
            "a storage name may hold only letters, digits, '_' and '-'",
        ),
        (
            "name = \"s\"\nurl = \"ftp://host/x\"",
            "storage scheme 'ftp' is not supported",
        ),
    ];
    for (storage, expected) in cases {
        let text = format!("{PRINCIPALS}\n[[storage]]\n{storage}\n");
        let error = load(&text, lake.path()).await.unwrap_err();
        assert!(
            error.contains(expected),
            "for\n{storage}\nexpected '{expected}' in:\n{error}"
        );
        assert!(!error.contains("hunter2"), "{error}");
    }
}

#[tokio::test]
async fn partition_columns_are_checked() {
    let lake = tempfile::tempdir().unwrap();
    write_partitioned(lake.path());
    let table = |columns: &str| {
        format!(
            "{PRINCIPALS}\n[[storage]]\nname = \"local\"\nurl = \"${{data_dir}}\"\n\n\
             [[table]]\ndatabase = \"lake\"\nname = \"events\"\nstorage = \"local\"\npath = \"events/\"\n\
             partition_columns = [{columns}]\n"
        )
    };
    let cases = [
        (
            "{ name = \"year\", type = \"money\" }",
            "type 'money' is not one of string, int, bigint, date, boolean",
        ),
        (
            "{ name = \"year\", type = \"int\" }, { name = \"year\", type = \"int\" }",
            "partition column 'year' declared twice",
        ),
        (
            "{ name = \"id\", type = \"int\" }",
            "partition column 'id' is also stored in the files",
        ),
    ];
    for (columns, expected) in cases {
        let error = load(&table(columns), lake.path()).await.unwrap_err();
        assert!(
            error.contains(expected),
            "expected '{expected}' in:\n{error}"
        );
    }
}
