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
