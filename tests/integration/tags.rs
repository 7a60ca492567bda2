//! Governing by tags through the engine: `catalog/demo-tags` (the demo
//! scenario with tag grants, a tag mask and tag row filters only), tables
//! governed the moment they are tagged and ungoverned the moment the tag
//! goes, tag masks reaching columns of any type, tag row filters refusing a
//! table that lacks their columns, and mistakes reported by file and entry.
//! (That every demo role's answers under tags equal its independently
//! materialised view is `oracle.rs`.)

use std::path::Path;

use lakegate_catalog::{Catalog, LoadOptions};
use lakegate_engine::Engine;

use crate::common;

/// A copy of `catalog/demo-tags` with `edit` applied to `file`.
fn edited_tag_catalog(file: &str, edit: impl Fn(String) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(common::repo_root().join("catalog/demo-tags")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let text = if name == file { edit(text) } else { text };
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

async fn engine(dir: &Path) -> Engine {
    common::engine_for(dir, &common::demo_data_dir()).await
}

/// The rows of `sql` as text, run by `user` under `role`.
async fn rows(
    engine: &Engine,
    user: &str,
    role: &str,
    sql: &str,
) -> Result<Vec<Vec<String>>, String> {
    let mut session = engine
        .session(user, Some(role))
        .map_err(|e| e.to_string())?;
    let stream = session.execute(sql).await.map_err(|e| e.to_string())?;
    let batches = stream.collect().await.map_err(|e| e.to_string())?;
    Ok(common::cells_as_text(&batches))
}

/// Asserts that `sql` is refused to `user` under `role` with an error
/// naming `naming` (the column or table it may not read).
async fn assert_refused(engine: &Engine, user: &str, role: &str, sql: &str, naming: &str) {
    let error = rows(engine, user, role, sql).await.unwrap_err();
    assert!(error.contains(naming), "{sql}: {error}");
}

async fn tables_of(engine: &Engine, user: &str, role: &str) -> Vec<String> {
    let rows = rows(
        engine,
        user,
        role,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'tpc' ORDER BY 1",
    )
    .await
    .unwrap();
    rows.into_iter().map(|mut r| r.remove(0)).collect()
}

#[tokio::test]
async fn each_role_sees_exactly_what_its_tags_match() {
    let lake = engine(&common::repo_root().join("catalog/demo-tags")).await;
    assert_eq!(
        tables_of(&lake, "tina", "electronics").await,
        ["dl_tpc_item"]
    );
    assert_eq!(
        tables_of(&lake, "tina", "sales").await,
        ["dl_tpc_web_sales"]
    );
    assert_eq!(
        tables_of(&lake, "david", "marketing").await,
        ["dl_tpc_customer"]
    );
    // Columns tagged pii = 'name' are not there; the e-mail is hashed.
    assert_refused(
        &lake,
        "david",
        "marketing",
        "SELECT c_first_name FROM dl_tpc_customer",
        "c_first_name",
    )
    .await;
    let emails = rows(
        &lake,
        "david",
        "marketing",
        "SELECT c_email_address FROM dl_tpc_customer WHERE c_email_address IS NOT NULL LIMIT 3",
    )
    .await
    .unwrap();
    assert_eq!(emails.len(), 3);
    for email in emails {
        assert!(
            email[0].len() == 64 && !email[0].contains('@'),
            "hashed: {email:?}"
        );
    }
    // Every item electronics sees is Electronics.
    let categories = rows(
        &lake,
        "tina",
        "electronics",
        "SELECT DISTINCT i_category FROM dl_tpc_item",
    )
    .await
    .unwrap();
    assert_eq!(categories, [["Electronics"]]);
}

#[tokio::test]
async fn a_table_is_governed_the_moment_it_is_tagged() {
    // A new table over the item files: untagged in a database tagged
    // `reference`, nobody but the administrator reads it.
    let new_table = r#"
[[table]]
database = "tpc"
name = "items_2027"
storage = "demo_lake"
path = "dl_tpc_item/"
"#;
    let untagged = edited_tag_catalog("catalog.toml", |text| format!("{text}\n{new_table}"));
    let lake = engine(untagged.path()).await;
    assert!(
        !tables_of(&lake, "tina", "electronics")
            .await
            .contains(&"items_2027".into())
    );
    assert_refused(
        &lake,
        "tina",
        "electronics",
        "SELECT count(*) FROM items_2027",
        "items_2027",
    )
    .await;

    // Tagged `domain = products`: readable at once, under the tag's filter.
    let tagged = edited_tag_catalog("catalog.toml", |text| {
        format!("{text}\n{new_table}tags = {{ domain = \"products\" }}\n")
    });
    let lake = engine(tagged.path()).await;
    let categories = rows(
        &lake,
        "tina",
        "electronics",
        "SELECT DISTINCT i_category FROM items_2027",
    )
    .await
    .unwrap();
    assert_eq!(categories, [["Electronics"]]);
    let all = rows(
        &lake,
        "admin",
        "lake_admin",
        "SELECT count(DISTINCT i_category) FROM items_2027",
    )
    .await
    .unwrap();
    assert_ne!(all, [["1"]], "the administrator sees every category");
}

#[tokio::test]
async fn a_tag_mask_never_shows_a_value_raw_whatever_the_column_type() {
    // `pii = 'email'` on a numeric column: `hash` does not fit a number, so
    // the column shows NULL, never the stored value.
    let lake_dir = edited_tag_catalog("catalog.toml", |text| {
        text.replace(
            "c_email_address = { pii = \"email\" }",
            "c_email_address = { pii = \"email\" }, c_birth_year = { pii = \"email\" }",
        )
    });
    let lake = engine(lake_dir.path()).await;
    let years = rows(
        &lake,
        "david",
        "marketing",
        "SELECT count(*), count(c_birth_year) FROM dl_tpc_customer",
    )
    .await
    .unwrap();
    assert_ne!(years[0][0], "0");
    assert_eq!(years[0][1], "0", "every masked birth year is NULL");
}

#[tokio::test]
async fn a_tag_row_filter_refuses_a_matching_table_without_its_columns() {
    // The electronics filter reads i_category; tag the customer table
    // `products` too (the role's grant then matches it): it has no
    // i_category, so it is refused, not served unfiltered.
    let lake_dir = edited_tag_catalog("catalog.toml", |text| {
        text.replace(
            "tags = { domain = \"customers\" }",
            "tags = { domain = \"products\" }",
        )
    });
    let lake = engine(lake_dir.path()).await;
    assert_eq!(
        tables_of(&lake, "tina", "electronics").await,
        ["dl_tpc_item"]
    );
    assert_refused(
        &lake,
        "tina",
        "electronics",
        "SELECT * FROM dl_tpc_customer",
        "dl_tpc_customer",
    )
    .await;
}

#[tokio::test]
async fn tag_mistakes_are_reported_with_their_file_and_entry() {
    let extra_grants = r#"
[[grant]]
name = "both"
role = "sales"
on = "tpc.dl_tpc_item"
tagged = "domain = 'sales'"
privileges = ["select"]

[[grant]]
name = "typo"
role = "sales"
tagged = "domian = 'sales'"
privileges = ["select"]

[[grant]]
name = "not_an_expression"
role = "sales"
tagged = "domain = sales"
privileges = ["select"]

[[tag_mask]]
name = "custom"
role = "marketing"
tagged = "pii = 'email'"
mask = "my_mask"

[[tag_row_filter]]
name = "broken"
role = "sales"
tagged = "domain = 'sales'"
row_filter = "ws_quantity >"
"#;
    let dir = edited_tag_catalog("grants.toml", |text| format!("{text}\n{extra_grants}"));
    let dir2 = dir.path().to_path_buf();
    std::fs::write(
        dir2.join("more.toml"),
        r#"
[[tag]]
key = "pii"
values = ["phone"]

[[tag]]
key = "tier"
values = []
"#,
    )
    .unwrap();
    let catalog = std::fs::read_to_string(dir2.join("catalog.toml"))
        .unwrap()
        .replace(
            "tags = { domain = \"sales\" }",
            "tags = { domain = \"saless\" }",
        )
        .replace("c_last_name = { pii", "c_lastname = { pii");
    std::fs::write(dir2.join("catalog.toml"), catalog).unwrap();
    let load = LoadOptions {
        data_dir: common::demo_data_dir(),
        ..Default::default()
    };
    let errors = Catalog::load(&dir2, &load).await.unwrap_err();
    let text = errors.to_string();
    for (file, wanted) in [
        (
            "grants.toml",
            "grant 'both': 'on' and 'tagged' are exclusive",
        ),
        ("grants.toml", "grant 'typo': unknown tag 'domian'"),
        (
            "grants.toml",
            "grant 'not_an_expression': tagged: tag expression:",
        ),
        ("grants.toml", "tag mask 'custom': unknown mask 'my_mask'"),
        (
            "grants.toml",
            "tag row filter 'broken': row filter does not parse",
        ),
        ("more.toml", "tag 'pii': duplicate name"),
        (
            "more.toml",
            "tag 'tier': values must name at least one value",
        ),
        (
            "catalog.toml",
            "table 'tpc.dl_tpc_web_sales': tag 'domain' has no value 'saless'",
        ),
        (
            "catalog.toml",
            "column_tags names unknown column 'c_lastname'",
        ),
    ] {
        let found = errors.0.iter().any(|e| {
            e.file.file_name().is_some_and(|f| f == file) && e.to_string().contains(wanted)
        });
        assert!(found, "expected {file}: {wanted} among:\n{text}");
    }
}

// ---------------------------------------------------------------------------
// Schema changes: tags follow a column's identity (its Parquet field id), a
// new column carries its table's tags, and a tagged column that is gone
// stops the catalog rather than leaving its values unmasked.
// ---------------------------------------------------------------------------

/// A `people` table's one file, with these (name, field id, values) text
/// columns; field ids as Iceberg and Spark write them.
fn write_people(lake: &Path, columns: &[(&str, i32, [&str; 2])]) {
    use std::collections::HashMap;
    use std::sync::Arc;

    use arrow::array::{ArrayRef, RecordBatch, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, id, _)| {
            Field::new(*name, DataType::Utf8, true).with_metadata(HashMap::from([(
                parquet::arrow::PARQUET_FIELD_ID_META_KEY.to_string(),
                id.to_string(),
            )]))
        })
        .collect();
    let arrays: Vec<ArrayRef> = columns
        .iter()
        .map(|(_, _, values)| Arc::new(StringArray::from(values.to_vec())) as ArrayRef)
        .collect();
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap();
    let _ = std::fs::remove_dir_all(lake.join("people"));
    common::write_parquet(lake, "people", &batch);
}

/// A catalog over `lake`: `people` tagged `domain = hr`, its column
/// `email` tagged `pii = email` (with its field id when `id` is given);
/// role `r` reads `domain = 'hr'` with `pii = 'email'` hashed.
fn people_catalog(lake: &Path, id: Option<i32>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let ids = id
        .map(|id| format!("column_ids = {{ email = {id} }}\n"))
        .unwrap_or_default();
    let catalog = format!(
        r#"
[[storage]]
name = "lake"
url = "{lake}"

[[tag]]
key = "domain"
values = ["hr"]

[[tag]]
key = "pii"
values = ["email"]

[[database]]
name = "hr"

[[table]]
database = "hr"
name = "people"
storage = "lake"
path = "people/"
tags = {{ domain = "hr" }}
column_tags = {{ email = {{ pii = "email" }} }}
{ids}
[[role]]
name = "r"

[[user]]
name = "u"
may_assume = ["r"]
default_role = "r"

[[grant]]
name = "hr_people"
role = "r"
tagged = "domain = 'hr'"
privileges = ["select"]

[[tag_mask]]
name = "emails_hashed"
role = "r"
tagged = "pii = 'email'"
mask = "hash"
"#,
        lake = lake.display()
    );
    std::fs::write(dir.path().join("catalog.toml"), catalog).unwrap();
    dir
}

async fn people_engine(catalog: &Path, lake: &Path) -> Result<Engine, String> {
    let load = LoadOptions {
        data_dir: lake.to_path_buf(),
        ..Default::default()
    };
    let catalog = Catalog::load(catalog, &load)
        .await
        .map_err(|e| e.to_string())?;
    Engine::new(catalog, common::test_engine_options(lake))
        .await
        .map_err(|e| e.to_string())
}

const SECRET: &str = "ann@example.com";

#[tokio::test]
async fn a_renamed_column_keeps_its_tags_by_field_id() {
    let lake = tempfile::tempdir().unwrap();
    write_people(
        lake.path(),
        &[
            ("name", 1, ["ann", "bob"]),
            ("email", 2, [SECRET, "bob@example.com"]),
        ],
    );
    let catalog = people_catalog(lake.path(), Some(2));
    let engine = people_engine(catalog.path(), lake.path()).await.unwrap();
    let emails = rows(&engine, "u", "r", "SELECT email FROM hr.people ORDER BY 1")
        .await
        .unwrap();
    assert!(emails.iter().all(|r| r[0].len() == 64), "{emails:?}");

    // The files now call field 2 `contact` and add `phone`: the tags (and
    // so the mask) follow field 2; `phone` carries the table's tags.
    write_people(
        lake.path(),
        &[
            ("name", 1, ["ann", "bob"]),
            ("contact", 2, [SECRET, "bob@example.com"]),
            ("phone", 3, ["555-0100", "555-0101"]),
        ],
    );
    let engine = people_engine(catalog.path(), lake.path()).await.unwrap();
    let all = rows(&engine, "u", "r", "SELECT * FROM hr.people ORDER BY name")
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
    for row in &all {
        assert_eq!(row.len(), 3, "name, contact and phone: {row:?}");
        assert!(
            row[1].len() == 64 && !row[1].contains('@'),
            "contact masked: {row:?}"
        );
        assert!(row[2].starts_with("555-"), "phone visible: {row:?}");
    }
    assert!(!format!("{all:?}").contains(SECRET));
}

#[tokio::test]
async fn a_tagged_column_that_is_gone_stops_the_catalog() {
    let lake = tempfile::tempdir().unwrap();
    // Renamed, and the catalog does not know the column's field id: the
    // tag names a column the table no longer has.
    write_people(
        lake.path(),
        &[
            ("name", 1, ["ann", "bob"]),
            ("contact", 2, [SECRET, "bob@example.com"]),
        ],
    );
    let error = people_engine(people_catalog(lake.path(), None).path(), lake.path())
        .await
        .expect_err("refused");
    assert!(
        error.contains("column_tags names unknown column 'email'"),
        "{error}"
    );

    // Dropped, then a new column re-added under the old name: not the
    // tagged column (another field id), so it is not taken for it.
    write_people(
        lake.path(),
        &[
            ("name", 1, ["ann", "bob"]),
            ("email", 7, [SECRET, "bob@example.com"]),
        ],
    );
    let error = people_engine(people_catalog(lake.path(), Some(2)).path(), lake.path())
        .await
        .expect_err("refused");
    assert!(error.contains("field id 2"), "{error}");
}

#[tokio::test]
async fn files_changed_under_a_running_engine_never_show_a_masked_value() {
    let lake = tempfile::tempdir().unwrap();
    write_people(
        lake.path(),
        &[
            ("name", 1, ["ann", "bob"]),
            ("email", 2, [SECRET, "bob@example.com"]),
        ],
    );
    let catalog = people_catalog(lake.path(), Some(2));
    let engine = people_engine(catalog.path(), lake.path()).await.unwrap();
    // The files are rewritten behind the running engine's back, the masked
    // column renamed and its values moved to a column of another name.
    write_people(
        lake.path(),
        &[
            ("name", 1, ["ann", "bob"]),
            ("contact", 2, [SECRET, "bob@example.com"]),
        ],
    );
    for sql in [
        "SELECT * FROM hr.people",
        "SELECT email FROM hr.people",
        "SELECT count(*) FROM hr.people WHERE email IS NOT NULL",
    ] {
        if let Ok(found) = rows(&engine, "u", "r", sql).await {
            assert!(!format!("{found:?}").contains(SECRET), "{sql}: {found:?}");
        }
    }
}
