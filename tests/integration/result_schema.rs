//! Result schemas say what the policy did: a masked column's field carries
//! `lakegate.mask` metadata with the mask's name.

use lakegate_engine::MASK_METADATA_KEY;

use crate::common;

#[tokio::test]
async fn masked_columns_carry_their_mask_name() {
    let lake = common::shop_lake().await;
    let mut session = lake.engine.session("ann", Some("analyst")).unwrap();
    let output = session
        .execute("SELECT * FROM shop.customers")
        .await
        .unwrap();
    let mask_of = |name: &str| {
        output
            .schema
            .field_with_name(name)
            .unwrap()
            .metadata()
            .get(MASK_METADATA_KEY)
            .cloned()
    };
    assert_eq!(mask_of("email").as_deref(), Some("hash"));
    assert_eq!(mask_of("phone").as_deref(), Some("show_last_4"));
    assert_eq!(mask_of("birth").as_deref(), Some("year_only"));
    assert_eq!(mask_of("id"), None);
    assert!(output.schema.field_with_name("card").is_err());

    let output = session
        .execute("SELECT amount, note FROM shop.orders")
        .await
        .unwrap();
    let mask_of = |name: &str| {
        output
            .schema
            .field_with_name(name)
            .unwrap()
            .metadata()
            .get(MASK_METADATA_KEY)
            .cloned()
    };
    assert_eq!(mask_of("amount").as_deref(), Some("nullify"));
    assert_eq!(
        mask_of("note").as_deref(),
        Some("note_redacted_unless_mine")
    );

    let mut session = lake.engine.session("ann", Some("cells")).unwrap();
    let output = session
        .execute("SELECT name, email FROM shop.customers")
        .await
        .unwrap();
    let metadata = |name: &str| {
        output
            .schema
            .field_with_name(name)
            .unwrap()
            .metadata()
            .get(MASK_METADATA_KEY)
            .cloned()
    };
    assert_eq!(metadata("name").as_deref(), Some("cell-level"));
    assert_eq!(metadata("email").as_deref(), Some("cell-level"));
}
