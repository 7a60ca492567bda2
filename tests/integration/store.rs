//! The policy store: a catalog applied to a store loads to the same catalog
//! (same answers for every role), re-applying changes nothing, the store
//! survives being reopened, and a first administrator is created only in an
//! empty store. SQLite always; PostgreSQL too when the test script runs one
//! (`LAKEGATE_TEST_POSTGRES`, the URL of a user who may create databases).

use std::path::PathBuf;

use lakegate_catalog::{Catalog, CatalogFile, LoadOptions};
use lakegate_engine::{Engine, EngineOptions};
use lakegate_store::{ADMIN_ROLE, PolicyStore, SCHEMA_VERSION};

use crate::common;

/// New empty stores: a SQLite file, and a new PostgreSQL database when
/// there is a server. The directory keeps the SQLite file alive.
async fn empty_stores(dir: &std::path::Path) -> Vec<String> {
    let mut urls = vec![format!("sqlite://{}", dir.join("policy.db").display())];
    if let Ok(base) = std::env::var("LAKEGATE_TEST_POSTGRES") {
        let base = base.trim_end_matches('/');
        // One database per call: the tests run at once.
        static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("lakegate_store_{}_{call}", std::process::id());
        let admin = format!("{base}/postgres");
        for sql in [
            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            format!("CREATE DATABASE {name}"),
        ] {
            let done = std::process::Command::new("psql")
                .args([admin.as_str(), "-qc", &sql])
                .status()
                .expect("psql runs");
            assert!(done.success(), "{sql}");
        }
        urls.push(format!("{base}/{name}"));
    }
    urls
}

/// The shop catalog's sections, as one file's.
fn shop_sections() -> CatalogFile {
    let files = Catalog::parse(&common::shop_catalog()).unwrap();
    CatalogFile::merged(files.into_iter().map(|(_, file)| file))
}

async fn engine_of(catalog: Catalog, data_dir: &std::path::Path) -> Engine {
    Engine::new(catalog, common::test_engine_options(data_dir))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// What each shop role sees of every table, or the refusal, as text.
async fn answers(engine: &Engine) -> Vec<Vec<Vec<String>>> {
    let mut all = Vec::new();
    for (user, role) in [("ann", "analyst"), ("ann", "cells"), ("root", "admin")] {
        for sql in [
            "SELECT * FROM shop.customers ORDER BY id",
            "SELECT * FROM shop.orders ORDER BY order_id",
        ] {
            let mut session = engine.session(user, Some(role)).unwrap();
            all.push(match session.execute(sql).await {
                Ok(output) => common::cells_as_text(&output.collect().await.unwrap()),
                Err(refused) => vec![vec![refused.to_string()]],
            });
        }
    }
    all
}

#[tokio::test]
async fn a_catalog_in_a_store_answers_as_its_files_and_survives_reopening() {
    let lake = common::shop_lake().await;
    let expected = answers(&lake.engine).await;
    let dir = tempfile::tempdir().unwrap();
    let load = LoadOptions {
        data_dir: lake.dir.path().to_path_buf(),
        ..Default::default()
    };
    for url in empty_stores(dir.path()).await {
        let store = PolicyStore::open(&url).await.unwrap();
        assert_eq!(store.version().await.unwrap(), 0, "{url}");
        assert!(!store.has_users().await.unwrap());

        let sections = shop_sections();
        let applied = store.apply(&sections).await.unwrap();
        assert!(applied.changed > 0);
        assert_eq!(applied.version, 1, "one change, one version");
        // Policy as code: applying the same files again changes nothing.
        let again = store.apply(&sections).await.unwrap();
        assert_eq!((again.changed, again.version), (0, 1), "{url}");

        let label = PathBuf::from(store.url());
        // Reopened, as after a restart: the same content at the same version.
        drop(store);
        let store = PolicyStore::open(&url).await.unwrap();
        let stored = store.load().await.unwrap();
        assert_eq!(stored.version, 1);
        let catalog = Catalog::from_shared_files(vec![(label, stored.content)], dir.path(), &load)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            answers(&engine_of(catalog, lake.dir.path()).await).await,
            expected
        );

        // A changed entry replaces its stored one and bumps the version once.
        let mut changed = shop_sections();
        changed.grant.retain(|g| g.role == "analyst");
        for grant in &mut changed.grant {
            grant.row_filter = Some("1 = 0".into());
        }
        let applied = store.apply(&changed).await.unwrap();
        assert_eq!(applied.version, 2);
        assert_eq!(applied.changed, changed.grant.len());
        let stored = store.load().await.unwrap();
        assert_eq!(stored.content.grant.len(), shop_sections().grant.len());

        // Users exist: no bootstrap.
        let refused = store.bootstrap_admin("mallory", "x").await.unwrap_err();
        assert!(
            refused.to_string().contains("has users already"),
            "{refused}"
        );
    }
}

#[tokio::test]
async fn the_first_administrator_of_an_empty_store_holds_everything() {
    let lake = common::shop_lake().await;
    let dir = tempfile::tempdir().unwrap();
    for url in empty_stores(dir.path()).await {
        let store = PolicyStore::open(&url).await.unwrap();
        let mut sections = shop_sections();
        sections.user.clear();
        sections.group.clear();
        store.apply(&sections).await.unwrap();
        assert!(!store.has_users().await.unwrap());
        let hash = lakegate_catalog::hash_password("first-pass");
        store.bootstrap_admin("root2", &hash).await.unwrap();

        let load = LoadOptions {
            data_dir: lake.dir.path().to_path_buf(),
            ..Default::default()
        };
        let stored = store.load().await.unwrap();
        let label = PathBuf::from(store.url());
        let catalog = Catalog::from_shared_files(vec![(label, stored.content)], dir.path(), &load)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(catalog.verify_password("root2", "first-pass"));
        let engine = Engine::new(catalog, EngineOptions::default())
            .await
            .unwrap();
        let mut session = engine.session("root2", None).unwrap();
        let batches = session
            .execute("SELECT current_role() AS r, count(*) AS n FROM hr.salaries")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let rows = common::cells_as_text(&batches);
        assert_eq!(rows[0][0], ADMIN_ROLE);
    }
}

#[tokio::test]
async fn a_store_of_a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("policy.db").display());
    let store = PolicyStore::open(&url).await.unwrap();
    drop(store);
    // What a newer Lakegate would have recorded.
    let connection = format!("{url}?mode=rw");
    let newer = SCHEMA_VERSION + 1;
    let script = format!("INSERT INTO store_schema (version) VALUES ({newer})");
    sqlx_exec(&connection, &script).await;
    let error = PolicyStore::open(&url).await.unwrap_err().to_string();
    assert!(error.contains("newer than this Lakegate knows"), "{error}");
}

async fn sqlx_exec(url: &str, sql: &str) {
    use sqlx::Connection;
    let mut connection = sqlx::SqliteConnection::connect(url).await.unwrap();
    sqlx::query(sql).execute(&mut connection).await.unwrap();
}

#[tokio::test]
async fn servers_opening_a_new_store_at_once_migrate_it_once() {
    let dir = tempfile::tempdir().unwrap();
    for url in empty_stores(dir.path()).await {
        let opening: Vec<_> = (0..4).map(|_| PolicyStore::open(&url)).collect();
        for store in futures::future::join_all(opening).await {
            let store = store.unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(store.version().await.unwrap(), 0);
        }
    }
}

/// A handle that has read the store once reads later versions as what
/// changed since (entries written, removed, removed and made again, and the
/// catalog settings): after every change it holds exactly what a new handle
/// reading the whole store holds.
#[tokio::test]
async fn reading_what_changed_gives_what_reading_everything_gives() {
    let dir = tempfile::tempdir().unwrap();
    for url in empty_stores(dir.path()).await {
        let writer = PolicyStore::open(&url).await.unwrap();
        let reader = PolicyStore::open(&url).await.unwrap();
        writer.apply(&shop_sections()).await.unwrap();
        assert_eq!(reader.load().await.unwrap().version, 1);

        let steps: [fn(&mut CatalogFile); 5] = [
            // A grant removed.
            |c| {
                c.grant.pop();
            },
            // A grant changed and one added.
            |c| {
                c.grant[0].row_filter = Some("1 = 0".into());
                let mut added = c.grant[0].clone();
                added.name = "added".into();
                c.grant.push(added);
            },
            // The added grant removed, then made again.
            |c| c.grant.retain(|g| g.name != "added"),
            |c| {
                let mut added = c.grant[0].clone();
                added.name = "added".into();
                c.grant.push(added);
            },
            // Settings removed; a user changed.
            |c| {
                c.catalog = None;
                c.user[0].may_assume.clear();
            },
        ];
        for (step, edit) in steps.iter().enumerate() {
            let change = writer.begin_change().await.unwrap();
            let mut content = (*change.current().content).clone();
            edit(&mut content);
            let applied = change.commit(content).await.unwrap();
            assert_eq!(applied.version, step as i64 + 2, "{url}");
            let read = reader.load().await.unwrap();
            let whole = PolicyStore::open(&url).await.unwrap().load().await.unwrap();
            assert_eq!(read.version, applied.version, "{url}");
            assert_eq!(read.content, whole.content, "{url}: step {step}");
        }

        // A handle further behind than the removals the store keeps reads
        // it whole: a removal it would otherwise miss is not missed.
        let behind = reader.load().await.unwrap().version;
        let change = writer.begin_change().await.unwrap();
        let mut content = (*change.current().content).clone();
        content.grant.retain(|g| g.name != "added");
        let forgotten = change.commit(content).await.unwrap().version;
        sqlx::any::install_default_drivers();
        let raw = sqlx::AnyPool::connect(&url).await.unwrap();
        for sql in [
            format!("DELETE FROM policy_removed WHERE removed_at <= {forgotten}"),
            format!("UPDATE policy_version SET removals_since = {forgotten}"),
        ] {
            sqlx::query(&sql).execute(&raw).await.unwrap();
        }
        raw.close().await;
        let change = writer.begin_change().await.unwrap();
        let mut content = (*change.current().content).clone();
        content.role[0].description = "changed".into();
        change.commit(content).await.unwrap();
        let read = reader.load().await.unwrap();
        assert!(read.version > behind + 1);
        assert!(
            read.content.grant.iter().all(|g| g.name != "added"),
            "{url}"
        );
        let whole = PolicyStore::open(&url).await.unwrap().load().await.unwrap();
        assert_eq!(read.content, whole.content, "{url}");
    }
}

#[tokio::test]
async fn tags_and_tag_policies_survive_the_store() {
    let tag_catalog = common::repo_root().join("catalog/demo-tags");
    let files = Catalog::parse(&tag_catalog).unwrap();
    let sections = CatalogFile::merged(files.into_iter().map(|(_, file)| file));
    let data_dir = common::demo_data_dir();
    let questions = [
        (
            "tina",
            "electronics",
            "SELECT count(*), min(i_category), max(i_category) FROM tpc.dl_tpc_item",
        ),
        ("tina", "sales", "SELECT count(*) FROM tpc.dl_tpc_web_sales"),
        (
            "david",
            "marketing",
            "SELECT c_email_address FROM tpc.dl_tpc_customer ORDER BY c_customer_sk LIMIT 5",
        ),
    ];
    let ask = async |engine: &Engine| {
        let mut all = Vec::new();
        for (user, role, sql) in questions {
            let mut session = engine.session(user, Some(role)).unwrap();
            let output = session.execute(sql).await.unwrap();
            all.push(common::cells_as_text(&output.collect().await.unwrap()));
        }
        all
    };
    let expected = ask(&common::engine_for(&tag_catalog, &data_dir).await).await;
    let dir = tempfile::tempdir().unwrap();
    let load = LoadOptions {
        data_dir: data_dir.clone(),
        ..Default::default()
    };
    for url in empty_stores(dir.path()).await {
        let store = PolicyStore::open(&url).await.unwrap();
        store.apply(&sections).await.unwrap();
        let stored = store.load().await.unwrap();
        let names = |file: &CatalogFile| {
            let mut names: Vec<String> = file.tag.iter().map(|t| format!("tag {t:?}")).collect();
            names.extend(file.tag_mask.iter().map(|m| format!("mask {m:?}")));
            names.extend(file.tag_row_filter.iter().map(|f| format!("filter {f:?}")));
            names.extend(
                file.table
                    .iter()
                    .map(|t| format!("{:?} {:?}", t.tags, t.column_tags)),
            );
            names.extend(file.database.iter().map(|d| format!("{:?}", d.tags)));
            names.sort();
            names
        };
        assert_eq!(names(&stored.content), names(&sections), "{url}");
        let label = PathBuf::from(store.url());
        let catalog = Catalog::from_shared_files(vec![(label, stored.content)], dir.path(), &load)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            ask(&engine_of(catalog, &data_dir).await).await,
            expected,
            "{url}"
        );
    }
}
