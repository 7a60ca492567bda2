//! A catalog with errors never serves: loading reports every problem with its
//! file and the offending name, and the `lakegate catalog check` command
//! prints them and fails.

use std::path::Path;

use lakegate_catalog::{Catalog, CatalogErrors, LoadOptions};
use lakegate_engine::{Engine, EngineOptions};

use crate::common;

/// Copies the shop catalog into a temporary directory, applies `edit` to
/// `file`'s text, and loads it (catalog, then engine checks).
async fn load_edited(file: &str, edit: impl Fn(String) -> String) -> Result<Engine, CatalogErrors> {
    let lake = common::shop_lake().await;
    let catalog_dir = edited_shop_catalog(file, edit);
    let options = LoadOptions {
        data_dir: lake.dir.path().to_path_buf(),
        ..Default::default()
    };
    let catalog = Catalog::load(catalog_dir.path(), &options).await?;
    Engine::new(catalog, EngineOptions::default()).await
}

/// A copy of the shop catalog in a temporary directory, `edit` applied to
/// `file`'s text.
fn edited_shop_catalog(file: &str, edit: impl Fn(String) -> String) -> tempfile::TempDir {
    let catalog_dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(common::repo_root().join("tests/fixtures/shop")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let text = if name == file { edit(text) } else { text };
        std::fs::write(catalog_dir.path().join(name), text).unwrap();
    }
    catalog_dir
}

fn assert_reported(errors: &CatalogErrors, file: &str, entry: &str, message: &str) {
    let found = errors.0.iter().any(|e| {
        Path::new(&e.file).file_name().is_some_and(|f| f == file)
            && e.entry.contains(entry)
            && e.message.contains(message)
    });
    assert!(
        found,
        "expected `{file}: {entry}: …{message}…` among:\n{errors}"
    );
}

fn append(extra: &'static str) -> impl Fn(String) -> String {
    move |text| format!("{text}\n{extra}\n")
}

#[tokio::test]
async fn structural_errors_are_all_reported_with_file_and_name() {
    let errors = load_edited(
        "grants.toml",
        append(
            r#"
[[grant]]
name = "bad_table"
role = "analyst"
on = "shop.no_such_table"
privileges = ["select"]

[[grant]]
name = "bad_column"
role = "analyst"
on = "shop.orders"
privileges = ["select"]
exclude_columns = ["no_such_column"]

[[grant]]
name = "bad_role"
role = "no_such_role"
on = "shop.orders"
privileges = ["select"]

[[grant]]
name = "both_lists"
role = "analyst"
on = "shop.orders"
privileges = ["select"]
include_columns = ["a"]
exclude_columns = ["note"]

[[grant]]
name = "bad_mask_name"
role = "analyst"
on = "shop.orders"
privileges = ["select"]
masks = { note = "scramble" }

[[grant]]
name = "auditor_orders"
role = "auditor"
on = "shop.orders"
privileges = ["select"]

[[grant]]
name = "bad_privilege"
role = "auditor"
on = "shop.orders"
privileges = ["delete"]
"#,
        ),
    )
    .await
    .unwrap_err();
    assert_reported(
        &errors,
        "grants.toml",
        "grant 'bad_table'",
        "unknown table 'shop.no_such_table'",
    );
    assert_reported(
        &errors,
        "grants.toml",
        "grant 'bad_column'",
        "unknown column 'no_such_column'",
    );
    assert_reported(
        &errors,
        "grants.toml",
        "grant 'bad_role'",
        "unknown role 'no_such_role'",
    );
    assert_reported(&errors, "grants.toml", "grant 'both_lists'", "exclusive");
    assert_reported(
        &errors,
        "grants.toml",
        "grant 'bad_mask_name'",
        "unknown mask 'scramble'",
    );
    assert_reported(
        &errors,
        "grants.toml",
        "grant 'auditor_orders'",
        "duplicate name",
    );
    assert_reported(
        &errors,
        "grants.toml",
        "grant 'bad_privilege'",
        "unknown privilege 'delete'",
    );
}

#[tokio::test]
async fn reserved_database_names_are_refused() {
    let errors = load_edited(
        "catalog.toml",
        append("[[database]]\nname = \"system\"\n\n[[database]]\nname = \"INFORMATION_SCHEMA\""),
    )
    .await
    .unwrap_err();
    assert_reported(&errors, "catalog.toml", "database 'system'", "reserved");
    assert_reported(
        &errors,
        "catalog.toml",
        "database 'INFORMATION_SCHEMA'",
        "reserved",
    );
}

#[tokio::test]
async fn principal_errors_are_reported() {
    let errors = load_edited(
        "principals.toml",
        append(
            r#"
[[user]]
name = "zed"
password_hash = "not-a-hash"
may_assume = ["no_such_role"]
default_role = "admin"

[[role]]
name = "analyst"
"#,
        ),
    )
    .await
    .unwrap_err();
    assert_reported(&errors, "principals.toml", "user 'zed'", "Argon2");
    assert_reported(
        &errors,
        "principals.toml",
        "user 'zed'",
        "unknown role 'no_such_role'",
    );
    assert_reported(
        &errors,
        "principals.toml",
        "user 'zed'",
        "default_role 'admin' is not a role the user may assume",
    );
    assert_reported(
        &errors,
        "principals.toml",
        "role 'analyst'",
        "duplicate name",
    );
}

#[tokio::test]
async fn planner_checked_errors_are_reported() {
    let errors = load_edited(
        "grants.toml",
        append(
            r#"
[[grant]]
name = "filter_does_not_parse"
role = "auditor"
on = "shop.customers"
privileges = ["select"]
row_filter = "region = 'EU' AND"

[[grant]]
name = "filter_not_boolean"
role = "nobody"
on = "shop.customers"
privileges = ["select"]
row_filter = "id + 1"

[[grant]]
name = "filter_escapes"
role = "describer"
on = "shop.orders"
privileges = ["select"]
row_filter = "true) OR (true"

[[grant]]
name = "mask_wrong_type"
role = "admin"
on = "shop.orders"
privileges = ["select"]
masks = { a = "hash" }

[[grant]]
name = "custom_mask_wrong_type"
role = "cells"
on = "shop.orders"
privileges = ["select"]
masks = { a = { name = "texty", expression = "'xx'" } }

[[grant]]
name = "filter_unknown_column"
role = "analyst"
on = "hr.salaries"
privileges = ["select"]
row_filter = "no_such_column > 1"
"#,
        ),
    )
    .await
    .unwrap_err();
    assert_reported(
        &errors,
        "grants.toml",
        "grant 'filter_does_not_parse'",
        "row_filter is invalid",
    );
    assert_reported(
        &errors,
        "grants.toml",
        "grant 'filter_not_boolean'",
        "not a boolean expression",
    );
    assert_reported(
        &errors,
        "grants.toml",
        "grant 'filter_escapes'",
        "row_filter is invalid",
    );
    assert_reported(
        &errors,
        "grants.toml",
        "grant 'mask_wrong_type'",
        "needs a text column",
    );
    assert_reported(
        &errors,
        "grants.toml",
        "grant 'custom_mask_wrong_type'",
        "returns Utf8",
    );
    assert_reported(
        &errors,
        "grants.toml",
        "grant 'filter_unknown_column'",
        "no_such_column",
    );
}

#[tokio::test]
async fn the_shop_and_demo_catalogs_are_valid() {
    common::shop_lake().await;
    common::demo_lake().await;
}

#[tokio::test]
async fn an_unreachable_location_is_one_error_and_the_rest_is_still_checked() {
    // A location with a wrong URL holding two tables, grants on them, a row
    // filter elsewhere reading one of them, and a misspelt column in a row
    // filter on a table that loads.
    let lake = common::shop_lake().await;
    let catalog_dir = edited_shop_catalog("", |text| text);
    let extra = r#"
[[storage]]
name = "archive"
url = "${data_dir}/no-such-archive"

[[table]]
database = "shop"
name = "old_orders"
storage = "archive"
path = "orders/"

[[table]]
database = "shop"
name = "old_customers"
storage = "archive"
path = "customers/"

[[grant]]
name = "old_orders_for_analysts"
role = "analyst"
on = "shop.old_orders"
privileges = ["select"]
include_columns = ["id"]
row_filter = "id > 1"

[[grant]]
name = "orders_also_archived"
role = "analyst"
on = "shop.orders"
privileges = ["select"]
row_filter = "id IN (SELECT id FROM old_orders)"

[[grant]]
name = "misspelt"
role = "analyst"
on = "shop.customers"
privileges = ["select"]
row_filter = "regoin = 'EU'"
"#;
    let path = catalog_dir.path().join("extra.toml");
    std::fs::write(&path, extra).unwrap();
    let load = LoadOptions {
        data_dir: lake.dir.path().to_path_buf(),
        ..Default::default()
    };
    let errors = Engine::check_catalog(catalog_dir.path(), &load, EngineOptions::default())
        .await
        .map(drop)
        .unwrap_err();
    assert_reported(
        &errors,
        "extra.toml",
        "storage 'archive'",
        "none of its 2 tables (shop.old_orders, shop.old_customers) can be read at file://",
    );
    assert_reported(&errors, "extra.toml", "grant 'misspelt'", "regoin");
    assert_eq!(errors.0.len(), 2, "nothing else, nothing twice:\n{errors}");
}

#[tokio::test]
async fn write_grants_load_and_misplaced_ones_are_reported() {
    let writes = r#"
[[grant]]
name = "orders_writes"
role = "analyst"
on = "shop.orders"
privileges = ["insert"]
include_columns = ["a"]
row_filter = "a > 0"

[[grant]]
name = "shop_tables"
role = "analyst"
on = "shop.*"
privileges = ["create_table"]
"#;
    let engine = load_edited("grants.toml", append(writes)).await.unwrap();
    let snapshot = engine.snapshot();
    let policy = &snapshot.catalog().policy;
    let orders = lakegate_policy::TableName::new("shop", "orders");
    let columns = snapshot.catalog().tables[&orders].policy_columns();
    let access = policy.write_access("analyst", &orders, &columns).unwrap();
    assert_eq!(access.grant_names(), ["orders_writes"]);
    assert_eq!(access.grants[0].columns, ["a"]);
    assert!(policy.may_create_table("analyst", "shop"));
    assert!(!policy.may_create_table("analyst", "hr"));
    // The insert grant checks what is written; the other writes are refused,
    // each naming the privilege and whether it is held.
    let mut session = engine.session("ann", Some("analyst")).unwrap();
    for (sql, expected) in [
        (
            "INSERT INTO shop.orders (a) VALUES (0)",
            "a row written to table 'shop.orders' is accepted by none of role 'analyst''s \
             INSERT grants (orders_writes)",
        ),
        (
            "CREATE TABLE shop.copy AS SELECT 1",
            "role 'analyst' holds CREATE_TABLE on database 'shop', but",
        ),
        (
            "INSERT INTO shop.customers VALUES (1)",
            "table 'shop.customers' does not exist or role 'analyst' may not insert into it: \
             that needs INSERT on it",
        ),
        (
            "CREATE TABLE hr.copy AS SELECT 1",
            "database 'hr' does not exist or role 'analyst' may not create tables in it",
        ),
    ] {
        let error = match session.execute(sql).await {
            Ok(_) => panic!("{sql} ran"),
            Err(error) => error,
        };
        assert_eq!(
            error.code(),
            lakegate_engine::ErrorCode::PermissionDenied,
            "{sql}"
        );
        assert!(error.to_string().starts_with(expected), "{sql}: {error}");
    }

    let errors = load_edited(
        "grants.toml",
        append(
            r#"
[[grant]]
name = "create_on_a_table"
role = "analyst"
on = "shop.orders"
privileges = ["create_table"]

[[grant]]
name = "write_typo"
role = "nobody"
on = "shop.orders"
privileges = ["write"]
"#,
        ),
    )
    .await
    .unwrap_err();
    assert_reported(
        &errors,
        "grants.toml",
        "grant 'create_on_a_table'",
        "create_table is granted on a database",
    );
    assert_reported(
        &errors,
        "grants.toml",
        "grant 'write_typo'",
        "expected select, describe, insert, create_table",
    );
    let check = load_edited(
        "grants.toml",
        append(
            r#"
[[grant]]
name = "check_not_boolean"
role = "nobody"
on = "shop.orders"
privileges = ["insert"]
row_filter = "a + 1"
"#,
        ),
    )
    .await
    .unwrap_err();
    assert_reported(
        &check,
        "grants.toml",
        "grant 'check_not_boolean'",
        "not a boolean expression",
    );
}
