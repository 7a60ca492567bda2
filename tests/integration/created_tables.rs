//! Tables created by their users (`CREATE TABLE ... AS`): written under
//! the creator's read policy, declared through a SQLite policy store and
//! owned by the creating role; two creators racing for one name both write,
//! one is declared and the other's objects are removed (Parquet and Delta
//! alike); a bad statement writes nothing.

use std::path::Path;

use lakegate_admin::{Actor, Administration, CreatedTable as Declared};
use lakegate_catalog::{Catalog, CatalogFile, LoadOptions};
use lakegate_engine::{CreatedTable, Engine, ErrorCode};
use lakegate_store::PolicyStore;

use crate::common;

/// The shop lake's catalog, plus: `analyst` may create tables in `shop`,
/// whose new tables go under `created/`.
fn catalog_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(common::shop_catalog()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    let grants = dir.path().join("creators.toml");
    std::fs::write(
        grants,
        r#"
[[grant]]
name = "shop_tables"
role = "analyst"
on = "shop.*"
privileges = ["create_table"]
"#,
    )
    .unwrap();
    // The database's place for new tables.
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let placed = text.replace(
            "[[database]]\nname = \"shop\"\n",
            "[[database]]\nname = \"shop\"\nstorage = \"lake\"\npath = \"created/\"\n",
        );
        std::fs::write(&path, placed).unwrap();
    }
    dir
}

/// An engine over the shop lake administered through a new SQLite store
/// holding the catalog.
async fn administered(lake: &Path, store_dir: &Path) -> (Engine, std::sync::Arc<Administration>) {
    let catalog = catalog_dir();
    let files = Catalog::parse(catalog.path()).unwrap();
    let sections = CatalogFile::merged(files.into_iter().map(|(_, file)| file));
    let store = PolicyStore::open(&format!(
        "sqlite://{}",
        store_dir.join("policy.db").display()
    ))
    .await
    .unwrap();
    store.apply(&sections).await.unwrap();
    let engine = common::engine_for(catalog.path(), lake).await;
    let load = LoadOptions {
        data_dir: lake.to_path_buf(),
        ..Default::default()
    };
    let administration = Administration::new(store, engine.clone(), load);
    (engine, administration)
}

fn declared(created: &CreatedTable) -> Declared {
    Declared {
        name: created.table.clone(),
        storage: created.storage.clone(),
        path: created.path.clone(),
        format: created.format,
    }
}

fn files_under(dir: &Path) -> Vec<String> {
    if !dir.exists() {
        return Vec::new();
    }
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else {
            found.push(path.display().to_string());
        }
    }
    found
}

async fn create(engine: &Engine, sql: &str) -> CreatedTable {
    let session = engine.session("ann", Some("analyst")).unwrap();
    session
        .create_table_as(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .expect("the table did not exist")
}

#[tokio::test]
async fn racing_creators_leave_one_table_and_no_stray_objects() {
    let lake = common::shop_lake().await;
    let store_dir = tempfile::tempdir().unwrap();
    let (engine, administration) = administered(lake.dir.path(), store_dir.path()).await;
    let actor = Actor {
        user: "ann".into(),
        role: "analyst".into(),
    };
    let lake_url = format!("file://{}", lake.dir.path().display());
    for format in ["PARQUET", "DELTA"] {
        let name = format!("copy_{}", format.to_lowercase());
        // Both pass every check before either is declared, and both write.
        let first = create(
            &engine,
            &format!(
                "CREATE TABLE shop.{name} STORED AS {format} LOCATION '{lake_url}/race/{name}_a/' \
                 AS SELECT id, name FROM shop.customers"
            ),
        )
        .await;
        let second = create(
            &engine,
            &format!(
                "CREATE TABLE shop.{name} STORED AS {format} LOCATION '{lake_url}/race/{name}_b/' \
                 AS SELECT id FROM shop.customers"
            ),
        )
        .await;
        let second_dir = lake.dir.path().join(format!("race/{name}_b"));
        assert!(!files_under(&second_dir).is_empty());
        administration
            .register_created_table(&actor, &declared(&first))
            .await
            .unwrap();
        let refused = administration
            .register_created_table(&actor, &declared(&second))
            .await
            .unwrap_err();
        assert!(refused.to_string().contains("exists already"), "{refused}");
        second.discard().await;
        assert_eq!(files_under(&second_dir), Vec::<String>::new(), "{format}");

        // The owner reads exactly what it could read when it copied;
        // another role sees nothing of it.
        let mut session = engine.session("ann", Some("analyst")).unwrap();
        let copied = session
            .execute(&format!("SELECT id, name FROM shop.{name} ORDER BY id"))
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let read = session
            .execute("SELECT id, name FROM shop.customers ORDER BY id")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        assert_eq!(
            common::cells_as_text(&copied),
            common::cells_as_text(&read),
            "{format}"
        );
        let mut other = engine.session("ann", Some("cells")).unwrap();
        let error = other
            .execute(&format!("SELECT * FROM shop.{name}"))
            .await
            .expect_err("another role reads nothing of it");
        assert_eq!(error.code(), ErrorCode::PermissionDenied, "{error}");
    }
}

#[tokio::test]
async fn refused_creations_write_nothing() {
    let lake = common::shop_lake().await;
    let store_dir = tempfile::tempdir().unwrap();
    let (engine, _administration) = administered(lake.dir.path(), store_dir.path()).await;
    let session = engine.session("ann", Some("analyst")).unwrap();
    let before = files_under(lake.dir.path());
    for (sql, expected) in [
        (
            "CREATE TABLE shop.t (id BIGINT) AS SELECT 1",
            "this form of CREATE TABLE",
        ),
        (
            "CREATE OR REPLACE TABLE shop.t AS SELECT 1 AS x",
            "this form of CREATE TABLE",
        ),
        (
            "CREATE TABLE shop.t STORED AS ORC AS SELECT 1 AS x",
            "STORED AS PARQUET or DELTA",
        ),
        (
            "CREATE TABLE shop.\"a-b\" AS SELECT 1 AS x",
            "only letters, digits and '_'",
        ),
        (
            "CREATE TABLE shop.orders AS SELECT 1 AS x",
            "table 'shop.orders' exists already",
        ),
        (
            "CREATE TABLE hr.t AS SELECT 1 AS x",
            "may not create tables in it: that needs CREATE_TABLE on it",
        ),
        (
            // The query reads under the role: a table it may not read is
            // missing, and nothing is written.
            "CREATE TABLE shop.t AS SELECT * FROM hr.salaries",
            "does not exist or role 'analyst' may not read it",
        ),
        ("CREATE TABLE shop.t AS SELECT 1 / 0 AS x", "Divide by zero"),
    ] {
        let error = session
            .create_table_as(sql)
            .await
            .err()
            .unwrap_or_else(|| panic!("{sql} ran"));
        assert!(error.to_string().contains(expected), "{sql}: {error}");
    }
    assert_eq!(files_under(lake.dir.path()), before);
    // A statement that stops midway (here: a row that fails to compute
    // after others were written) leaves no object either.
    let error = session
        .create_table_as(
            "CREATE TABLE shop.t AS SELECT CASE WHEN id > 2 THEN 1 / (id - id) ELSE id END AS x \
             FROM shop.customers",
        )
        .await
        .expect_err("refused");
    assert!(error.to_string().contains("Divide by zero"), "{error}");
    assert_eq!(files_under(lake.dir.path()), before);
}
