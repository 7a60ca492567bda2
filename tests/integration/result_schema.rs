//! Result schemas say what the policy did: a masked column's field carries
//! `lakegate.mask` metadata with the mask's name.

use std::collections::BTreeMap;

use lakegate_engine::MASK_METADATA_KEY;

use crate::common;

/// Runs `sql` as `role` and returns each result column's mask label.
async fn masks_of(
    lake: &common::ShopLake,
    role: &str,
    sql: &str,
) -> BTreeMap<String, Option<String>> {
    let mut session = lake.engine.session("ann", Some(role)).unwrap();
    let output = session.execute(sql).await.unwrap();
    output
        .schema
        .fields()
        .iter()
        .map(|f| {
            (
                f.name().clone(),
                f.metadata().get(MASK_METADATA_KEY).cloned(),
            )
        })
        .collect()
}

fn expected(pairs: &[(&str, Option<&str>)]) -> BTreeMap<String, Option<String>> {
    pairs
        .iter()
        .map(|(name, mask)| (name.to_string(), mask.map(str::to_string)))
        .collect()
}

#[tokio::test]
async fn masked_columns_carry_their_mask_name() {
    let lake = common::shop_lake().await;
    assert_eq!(
        masks_of(&lake, "analyst", "SELECT * FROM shop.customers").await,
        expected(&[
            ("id", None),
            ("name", Some("show_first_4")),
            ("email", Some("hash")),
            ("phone", Some("show_last_4")),
            ("region", None),
            ("birth", Some("year_only")),
        ])
    );
    assert_eq!(
        masks_of(&lake, "analyst", "SELECT amount, note FROM shop.orders").await,
        expected(&[
            ("amount", Some("nullify")),
            ("note", Some("note_redacted_unless_mine"))
        ])
    );
    assert_eq!(
        masks_of(&lake, "cells", "SELECT name, email, id FROM shop.customers").await,
        expected(&[
            ("name", Some("cell-level")),
            ("email", Some("cell-level")),
            ("id", None)
        ])
    );
}

/// The type of `shop.orders.note` as DESCRIBE shows it, as
/// information_schema and `arrow_typeof` give it inside the engine, and as
/// results carry it (schema, then every batch).
async fn text_types(engine: &lakegate_engine::Engine) -> [String; 4] {
    let mut session = engine.session("root", Some("admin")).unwrap();
    let described = session.execute("DESCRIBE shop.orders").await.unwrap();
    let described = common::cells_as_text(&described.collect().await.unwrap());
    let note = described.iter().find(|row| row[0] == "note").unwrap();
    let mut inside = Vec::new();
    for sql in [
        "SELECT data_type FROM information_schema.columns \
         WHERE table_name = 'orders' AND column_name = 'note'",
        "SELECT arrow_typeof(note) FROM shop.orders LIMIT 1",
    ] {
        let batches = session.execute(sql).await.unwrap().collect().await.unwrap();
        inside.push(common::cells_as_text(&batches)[0][0].clone());
    }
    assert_eq!(inside[0], inside[1], "information_schema and arrow_typeof");
    let output = session
        .execute("SELECT note FROM shop.orders")
        .await
        .unwrap();
    let promised = output.schema.field(0).data_type().to_string();
    let mut sent: Vec<String> = output
        .collect()
        .await
        .unwrap()
        .iter()
        .map(|batch| batch.schema().field(0).data_type().to_string())
        .collect();
    sent.dedup();
    assert_eq!(
        sent,
        std::slice::from_ref(&promised),
        "every batch as promised"
    );
    [
        note[1].clone(),
        inside[0].clone(),
        promised,
        sent[0].clone(),
    ]
}

/// Text is a view type inside the engine, whatever Arrow schema the files
/// embed (arrow-rs writes view types as such, pyarrow and Spark classic
/// ones), and leaves, described and sent, as the classic `Utf8`; with view
/// types kept, as `Utf8View` throughout.
#[tokio::test]
async fn text_leaves_as_classic_types_whatever_the_files_embed() {
    use arrow::array::{ArrayRef, RecordBatch};
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    let dir = tempfile::tempdir().unwrap();
    common::write_shop_files(dir.path());
    let classic_files = common::engine_for(&common::shop_catalog(), dir.path()).await;
    let expected = ["Utf8", "Utf8View", "Utf8", "Utf8"];
    assert_eq!(text_types(&classic_files).await, expected);

    // orders again, its note column written as Utf8View.
    let orders = common::shop_orders();
    let fields: Vec<Field> = orders
        .schema()
        .fields()
        .iter()
        .map(|f| match f.name().as_str() {
            "note" => Field::new("note", DataType::Utf8View, true),
            _ => f.as_ref().clone(),
        })
        .collect();
    let columns: Vec<ArrayRef> = orders
        .columns()
        .iter()
        .map(|c| match c.data_type() {
            DataType::Utf8 => arrow::compute::cast(c, &DataType::Utf8View).unwrap(),
            _ => Arc::clone(c),
        })
        .collect();
    let view_orders = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap();
    common::write_parquet(dir.path(), "orders", &view_orders);
    let view_files = common::engine_for(&common::shop_catalog(), dir.path()).await;
    assert_eq!(text_types(&view_files).await, expected);

    let options = lakegate_engine::EngineOptions {
        view_types: true,
        ..common::test_engine_options(dir.path())
    };
    let views = common::engine_with(&common::shop_catalog(), dir.path(), options).await;
    assert_eq!(text_types(&views).await, ["Utf8View"; 4]);
}
