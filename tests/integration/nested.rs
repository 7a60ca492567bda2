//! Nested data (a struct with a nested struct, a list of structs): row
//! filters read nested fields; a struct or list column is excluded or masked
//! whole (directly or by a tag); grants include and exclude single nested
//! fields, masks and tags apply to them (`customer.email`, `orders.item`),
//! on every read path (SQL, EXPLAIN, GetTables, prepared statements, plain
//! Flight); and the barrier keeps predicates on nested fields above the
//! policy.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, Float64Array, Int64Array, ListArray, RecordBatch, StringArray, StructArray,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, Fields, Schema};
use lakegate_engine::Engine;

use crate::common;

const HIDDEN_EMAIL: &str = "oslo-secret@example.com";

/// `people`: id, customer {name, email, address {city}}, orders [{item, price}].
fn write_people(lake: &Path) {
    let address = Fields::from(vec![Field::new("city", DataType::Utf8, true)]);
    let customer = Fields::from(vec![
        Field::new("name", DataType::Utf8, true),
        Field::new("email", DataType::Utf8, true),
        Field::new("address", DataType::Struct(address.clone()), true),
    ]);
    let order = Fields::from(vec![
        Field::new("item", DataType::Utf8, true),
        Field::new("price", DataType::Float64, true),
    ]);
    let cities: ArrayRef = Arc::new(StringArray::from(vec!["Oslo", "Lima", "Lima"]));
    let customers = StructArray::new(
        customer.clone(),
        vec![
            Arc::new(StringArray::from(vec!["ann", "bob", "cy"])) as ArrayRef,
            Arc::new(StringArray::from(vec![
                HIDDEN_EMAIL,
                "bob@example.com",
                "cy@example.com",
            ])),
            Arc::new(StructArray::new(address, vec![cities], None)),
        ],
        None,
    );
    let orders = ListArray::new(
        Arc::new(Field::new_struct("item", order.clone(), true)),
        OffsetBuffer::from_lengths([2, 1, 0]),
        Arc::new(StructArray::new(
            order.clone(),
            vec![
                Arc::new(StringArray::from(vec!["pen", "ink", "pad"])) as ArrayRef,
                Arc::new(Float64Array::from(vec![1.5, 2.0, 3.0])),
            ],
            None,
        )),
        None,
    );
    let schema = Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("customer", DataType::Struct(customer), true),
        Field::new("orders", orders.data_type().clone(), true),
    ]);
    let batch = RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(Int64Array::from(vec![1, 2, 3])),
            Arc::new(customers),
            Arc::new(orders),
        ],
    )
    .unwrap();
    common::write_parquet(lake, "people", &batch);
}

/// Role `lima` reads the customers living in Lima, without their orders;
/// role `masked` sees `customer` nullified by its grant; role `tagged` sees
/// it nullified by a tag mask on `pii = 'contact'`.
async fn engine(lake: &Path) -> Engine {
    let catalog = tempfile::tempdir().unwrap();
    let toml = format!(
        r#"
[[storage]]
name = "lake"
url = "{lake}"

[[tag]]
key = "pii"
values = ["contact"]

[[database]]
name = "crm"

[[table]]
database = "crm"
name = "people"
storage = "lake"
path = "people/"
column_tags = {{ customer = {{ pii = "contact" }} }}

[[role]]
name = "lima"

[[role]]
name = "masked"

[[role]]
name = "tagged"

[[role]]
name = "everything"

[[user]]
name = "u"
may_assume = ["lima", "masked", "tagged", "everything"]
default_role = "lima"

[[grant]]
name = "lima_people"
role = "lima"
on = "crm.people"
privileges = ["select"]
exclude_columns = ["orders"]
row_filter = "customer['address']['city'] = 'Lima'"

[[grant]]
name = "masked_people"
role = "masked"
on = "crm.people"
privileges = ["select"]
masks = {{ customer = "nullify" }}

[[grant]]
name = "tagged_people"
role = "tagged"
on = "crm.people"
privileges = ["select"]

[[grant]]
name = "everything_people"
role = "everything"
on = "crm.people"
privileges = ["select"]

[[tag_mask]]
name = "contacts_nulled"
role = "tagged"
tagged = "pii = 'contact'"
mask = "nullify"
"#,
        lake = lake.display()
    );
    std::fs::write(catalog.path().join("catalog.toml"), toml).unwrap();
    common::engine_for(catalog.path(), lake).await
}

async fn rows(engine: &Engine, role: &str, sql: &str) -> Result<Vec<Vec<String>>, String> {
    let mut session = engine.session("u", Some(role)).map_err(|e| e.to_string())?;
    let stream = session.execute(sql).await.map_err(|e| e.to_string())?;
    let batches = stream.collect().await.map_err(|e| e.to_string())?;
    Ok(common::cells_as_text(&batches))
}

#[tokio::test]
async fn row_filters_read_nested_fields_and_whole_nested_columns_are_governed() {
    let lake = tempfile::tempdir().unwrap();
    write_people(lake.path());
    let engine = engine(lake.path()).await;

    // A row filter on customer.address.city: only Lima's customers.
    let names = rows(
        &engine,
        "lima",
        "SELECT customer['name'] FROM crm.people ORDER BY id",
    )
    .await
    .unwrap();
    assert_eq!(names, [["bob"], ["cy"]]);
    // The excluded list of structs is absent, as a column is.
    let error = rows(&engine, "lima", "SELECT orders FROM crm.people")
        .await
        .unwrap_err();
    assert!(error.contains("orders"), "{error}");
    let all = rows(&engine, "lima", "SELECT * FROM crm.people")
        .await
        .unwrap();
    assert!(all.iter().all(|row| row.len() == 2), "{all:?}");
    assert!(!format!("{all:?}").contains(HIDDEN_EMAIL));

    // Masked whole (by a grant, or by a tag on the column): every nested
    // field reads NULL; the list of structs is untouched.
    for role in ["masked", "tagged"] {
        let seen = rows(
            &engine,
            role,
            "SELECT customer['email'], customer['address']['city'], orders[1]['item'] \
             FROM crm.people ORDER BY id",
        )
        .await
        .unwrap();
        assert_eq!(seen.len(), 3, "{role}");
        for row in &seen {
            assert_eq!(&row[..2], ["NULL", "NULL"], "{role}: {row:?}");
        }
        assert_eq!(seen[0][2], "pen", "{role}");
    }
}

#[tokio::test]
async fn predicates_on_nested_fields_stay_above_the_policy() {
    let lake = tempfile::tempdir().unwrap();
    write_people(lake.path());
    let engine = engine(lake.path()).await;
    // Leak-barrier probes on a hidden row's nested field: a division by
    // zero or a failing cast that fires only on Oslo's e-mail would reveal
    // it if evaluated beneath the row filter. Above the barrier they see
    // Lima's rows only, and succeed.
    for sql in [
        format!(
            "SELECT count(*) FROM crm.people WHERE 1 / (CASE WHEN customer['email'] = '{HIDDEN_EMAIL}' \
             THEN 0 ELSE 1 END) = 1"
        ),
        format!(
            "SELECT count(*) FROM crm.people WHERE CASE WHEN customer['email'] = '{HIDDEN_EMAIL}' \
             THEN CAST(customer['name'] AS INT) ELSE 1 END = 1"
        ),
    ] {
        let counted = rows(&engine, "lima", &sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        assert_eq!(counted, [["2"]], "{sql}");
    }
}

/// Policies on single nested fields, one role each:
/// * `fields` includes `id`, `customer.name`, `customer.address` (so its
///   `city`) and `orders.price`: e-mails and order items are absent;
/// * `untagged` reads what no `pii` tag marks (`customer.email` and
///   `orders.item` are tagged): the same view as `fields`;
/// * `hashed` reads everything, `customer.email` hashed and `orders.item`
///   redacted by its grant; `tag_hashed` the same by a tag mask (hash);
/// * `cells` reads e-mails only in Oslo's rows (cell-level);
/// * `presence` is granted only `customer.email`, nullified: the whole
///   `customer` is NULL, so not even its presence shows.
async fn fields_engine(lake: &Path) -> Engine {
    let catalog = tempfile::tempdir().unwrap();
    std::fs::write(
        catalog.path().join("catalog.toml"),
        fields_catalog(&lake.display().to_string()),
    )
    .unwrap();
    common::engine_for(catalog.path(), lake).await
}

fn fields_catalog(lake: &str) -> String {
    format!(
        r#"
[[storage]]
name = "lake"
url = "{lake}"

[[tag]]
key = "pii"
values = ["email"]

[[database]]
name = "crm"

[[table]]
database = "crm"
name = "people"
storage = "lake"
path = "people/"
column_tags = {{ "customer.email" = {{ pii = "email" }}, "orders.item" = {{ pii = "email" }} }}

[[role]]
name = "fields"
[[role]]
name = "untagged"
[[role]]
name = "hashed"
[[role]]
name = "tag_hashed"
[[role]]
name = "cells"
[[role]]
name = "presence"

[[user]]
name = "ann"
password_hash = "{ANN_HASH}"
may_assume = ["fields", "untagged", "hashed", "tag_hashed", "cells", "presence"]
default_role = "fields"

[[user]]
name = "u"
may_assume = ["fields", "untagged", "hashed", "tag_hashed", "cells", "presence"]

[[grant]]
name = "fields_people"
role = "fields"
on = "crm.people"
privileges = ["select"]
include_columns = ["id", "customer.name", "customer.address", "orders.price"]

[[grant]]
name = "untagged_columns"
role = "untagged"
tagged = "pii IS NULL"
privileges = ["select"]

[[grant]]
name = "hashed_people"
role = "hashed"
on = "crm.people"
privileges = ["select"]
masks = {{ "customer.email" = "hash", "orders.item" = "redact" }}

[[grant]]
name = "tag_hashed_people"
role = "tag_hashed"
on = "crm.people"
privileges = ["select"]

[[tag_mask]]
name = "emails_hashed"
role = "tag_hashed"
tagged = "pii = 'email'"
mask = "hash"

[[grant]]
name = "cells_without_email"
role = "cells"
on = "crm.people"
privileges = ["select"]
exclude_columns = ["customer.email"]

[[grant]]
name = "cells_oslo"
role = "cells"
on = "crm.people"
privileges = ["select"]
row_filter = "customer['address']['city'] = 'Oslo'"

[[grant]]
name = "presence_email"
role = "presence"
on = "crm.people"
privileges = ["select"]
include_columns = ["id", "customer.email"]
masks = {{ "customer.email" = "nullify" }}
"#
    )
}

/// `ann`'s password hash (`ann-pass`), as in the shop lake.
const ANN_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$LAWtCmX8ZTKZ87OObJ+AOQ$vxivZ/51MmtgjLCGLTFhhg6djH13WwGhPu216XekDQ4";

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

async fn schema_of(engine: &Engine, role: &str, sql: &str) -> arrow::datatypes::SchemaRef {
    let mut session = engine.session("u", Some(role)).unwrap();
    session.execute(sql).await.unwrap().schema
}

/// The fields of a struct column, or of the structs in a list column.
fn field_names(data_type: &DataType) -> Vec<String> {
    match data_type {
        DataType::Struct(fields) => fields.iter().map(|f| f.name().clone()).collect(),
        DataType::List(element) | DataType::LargeList(element) => field_names(element.data_type()),
        other => panic!("not nested: {other}"),
    }
}

#[tokio::test]
async fn grants_include_and_exclude_nested_fields() {
    let lake = tempfile::tempdir().unwrap();
    write_people(lake.path());
    let engine = fields_engine(lake.path()).await;
    for role in ["fields", "untagged"] {
        let seen = rows(&engine, role, "SELECT * FROM crm.people ORDER BY id")
            .await
            .unwrap();
        let expected = [
            [
                "1",
                "{name: ann, address: {city: Oslo}}",
                "[{price: 1.5}, {price: 2.0}]",
            ],
            ["2", "{name: bob, address: {city: Lima}}", "[{price: 3.0}]"],
            ["3", "{name: cy, address: {city: Lima}}", "[]"],
        ];
        assert_eq!(seen, expected, "{role}");
        let schema = schema_of(&engine, role, "SELECT * FROM crm.people").await;
        let customer = schema.field_with_name("customer").unwrap();
        assert_eq!(
            field_names(customer.data_type()),
            ["name", "address"],
            "{role}"
        );
        let orders = schema.field_with_name("orders").unwrap();
        assert_eq!(field_names(orders.data_type()), ["price"], "{role}");
        // An excluded field gets the answer an excluded column gets.
        let column = rows(&engine, role, "SELECT nosuch FROM crm.people")
            .await
            .unwrap_err();
        for sql in [
            "SELECT customer['email'] FROM crm.people",
            "SELECT orders[1]['item'] FROM crm.people",
            "SELECT count(*) FROM crm.people WHERE customer['email'] IS NOT NULL",
        ] {
            let error = rows(&engine, role, sql).await.unwrap_err();
            assert!(!error.contains(HIDDEN_EMAIL), "{error}");
            assert!(
                error.starts_with("No field named email.")
                    || error.starts_with("No field named item."),
                "{role}: {sql}: {error} (an excluded column: {column})"
            );
            assert!(column.starts_with("No field named nosuch."), "{column}");
        }
        // EXPLAIN shows no hidden field or value.
        let explained = rows(&engine, role, "EXPLAIN VERBOSE SELECT * FROM crm.people")
            .await
            .unwrap();
        let explained = format!("{explained:?}");
        assert!(!explained.contains("email"), "{role}: {explained}");
        assert!(!explained.contains("'item'"), "{role}: {explained}");
    }
}

#[tokio::test]
async fn masks_and_tags_apply_to_nested_fields() {
    let lake = tempfile::tempdir().unwrap();
    write_people(lake.path());
    let engine = fields_engine(lake.path()).await;
    let sql = "SELECT customer['email'], customer['name'], orders[1]['item'], orders[1]['price'] \
               FROM crm.people ORDER BY id";
    let hashed = rows(&engine, "hashed", sql).await.unwrap();
    assert_eq!(
        hashed,
        [
            [
                sha256_hex(HIDDEN_EMAIL),
                "ann".into(),
                "REDACTED".into(),
                "1.5".into()
            ],
            [
                sha256_hex("bob@example.com"),
                "bob".into(),
                "REDACTED".into(),
                "3.0".into()
            ],
            [
                sha256_hex("cy@example.com"),
                "cy".into(),
                "NULL".into(),
                "NULL".into()
            ],
        ]
    );
    let tag_hashed = rows(&engine, "tag_hashed", sql).await.unwrap();
    assert_eq!(tag_hashed[0][0], sha256_hex(HIDDEN_EMAIL));
    assert_eq!(tag_hashed[0][2], sha256_hex("pen"));
    // Result schemas carry the masked fields' masks.
    let schema = schema_of(&engine, "hashed", "SELECT customer, orders FROM crm.people").await;
    assert_eq!(
        schema.field(0).metadata()["lakegate.mask"],
        "email: hash",
        "{schema:?}"
    );
    assert_eq!(schema.field(1).metadata()["lakegate.mask"], "item: redact");

    // Cell-level: e-mails in Oslo's rows only.
    let cells = rows(
        &engine,
        "cells",
        "SELECT customer['email'], customer['name'] FROM crm.people ORDER BY id",
    )
    .await
    .unwrap();
    assert_eq!(
        cells,
        [[HIDDEN_EMAIL, "ann"], ["NULL", "bob"], ["NULL", "cy"]]
    );

    // A struct of which nothing shows is NULL, not a struct of NULLs.
    let presence = rows(
        &engine,
        "presence",
        "SELECT id, customer FROM crm.people ORDER BY id",
    )
    .await
    .unwrap();
    assert_eq!(presence, [["1", "NULL"], ["2", "NULL"], ["3", "NULL"]]);
}

#[tokio::test]
async fn predicates_on_masked_and_hidden_nested_fields_stay_above_the_policy() {
    let lake = tempfile::tempdir().unwrap();
    write_people(lake.path());
    let engine = fields_engine(lake.path()).await;
    // A division by zero or a failing cast firing only on a hidden value
    // would reveal it if evaluated beneath the masks; above them it never
    // meets one.
    let probes = [
        (
            "hashed",
            format!(
                "SELECT count(*) FROM crm.people WHERE 1 / (CASE WHEN customer['email'] = \
             '{HIDDEN_EMAIL}' THEN 0 ELSE 1 END) = 1"
            ),
        ),
        (
            "hashed",
            "SELECT count(*) FROM crm.people WHERE CASE WHEN orders[1]['item'] = 'pen' \
             THEN CAST(orders[1]['item'] AS INT) ELSE 1 END = 1"
                .to_string(),
        ),
        (
            "tag_hashed",
            "SELECT count(*) FROM crm.people WHERE CASE WHEN orders[1]['item'] = 'ink' \
             OR orders[2]['item'] = 'ink' THEN CAST(orders[2]['item'] AS INT) ELSE 1 END = 1"
                .to_string(),
        ),
        (
            "cells",
            "SELECT count(*) FROM crm.people WHERE 1 / (CASE WHEN customer['email'] = \
             'bob@example.com' THEN 0 ELSE 1 END) = 1"
                .to_string(),
        ),
    ];
    for (role, sql) in probes {
        let counted = rows(&engine, role, &sql)
            .await
            .unwrap_or_else(|e| panic!("{role}: {sql}: {e}"));
        assert_eq!(counted, [["3"]], "{role}: {sql}");
    }
}

#[tokio::test]
async fn every_flight_read_path_serves_the_roles_nested_view() {
    use arrow::ipc::convert::try_schema_from_ipc_buffer;
    use arrow_flight::FlightDescriptor;
    use arrow_flight::flight_service_client::FlightServiceClient;
    use arrow_flight::sql::CommandGetTables;
    use futures::TryStreamExt;

    let lake = tempfile::tempdir().unwrap();
    write_people(lake.path());
    let engine = fields_engine(lake.path()).await;
    let server =
        crate::flight::serve_lake(common::ShopLake { dir: lake, engine }, Default::default()).await;
    let customer_fields =
        |schema: &Schema| field_names(schema.field_with_name("customer").unwrap().data_type());

    // GetTables with schemas.
    let mut client = crate::flight::sql_client(server.addr, "ann", Some("fields")).await;
    let request = CommandGetTables {
        include_schema: true,
        ..Default::default()
    };
    let info = client.get_tables(request).await.unwrap();
    let batches = crate::flight::results(&mut client, &info).await;
    let schemas = batches[0]
        .column_by_name("table_schema")
        .unwrap()
        .as_any()
        .downcast_ref::<arrow::array::BinaryArray>()
        .unwrap();
    let listed = try_schema_from_ipc_buffer(schemas.value(0)).unwrap();
    assert_eq!(customer_fields(&listed), ["name", "address"]);

    // A statement and a prepared statement.
    let batches = crate::flight::query(&mut client, "SELECT * FROM crm.people").await;
    assert_eq!(customer_fields(&batches[0].schema()), ["name", "address"]);
    assert!(!format!("{batches:?}").contains(HIDDEN_EMAIL));
    let mut prepared = client
        .prepare("SELECT customer, orders FROM crm.people".into(), None)
        .await
        .unwrap();
    assert_eq!(
        customer_fields(prepared.dataset_schema().unwrap()),
        ["name", "address"]
    );
    let info = prepared.execute().await.unwrap();
    let batches = crate::flight::results(&mut client, &info).await;
    assert_eq!(
        field_names(batches[0].schema().field(1).data_type()),
        ["price"]
    );
    assert!(!format!("{batches:?}").contains("pen"));

    // Plain Flight: the table's path as descriptor, for GetSchema and DoGet.
    let mut raw = FlightServiceClient::new(crate::flight::channel(server.addr).await);
    let path = FlightDescriptor::new_path(vec!["crm".into(), "people".into()]);
    let schema = raw
        .get_schema(signed(path.clone(), "hashed"))
        .await
        .unwrap()
        .into_inner();
    let schema = Schema::try_from(&schema).unwrap();
    assert_eq!(customer_fields(&schema), ["name", "email", "address"]);
    let info = raw
        .get_flight_info(signed(path, "hashed"))
        .await
        .unwrap()
        .into_inner();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let stream = raw
        .do_get(signed(ticket, "hashed"))
        .await
        .unwrap()
        .into_inner();
    let batches: Vec<RecordBatch> =
        arrow_flight::decode::FlightRecordBatchStream::new_from_flight_data(
            stream.map_err(arrow_flight::error::FlightError::from),
        )
        .try_collect()
        .await
        .unwrap();
    let text = format!("{:?}", common::cells_as_text(&batches));
    assert!(!text.contains(HIDDEN_EMAIL), "{text}");
    assert!(text.contains(&sha256_hex(HIDDEN_EMAIL)), "{text}");
}

/// `message` signed in as `ann` under `role`, for raw Flight calls.
fn signed<T>(message: T, role: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let metadata = request.metadata_mut();
    let authorization = crate::flight::basic("ann", "ann-pass");
    metadata.insert("authorization", authorization.parse().unwrap());
    metadata.insert(lakegate_flight::ROLE_HEADER, role.parse().unwrap());
    request
}

/// A `people` file whose struct `customer` holds `name` (field id 11) and
/// the e-mail (field id 12) under `email_name`.
fn write_customers_with_field_ids(lake: &Path, email_name: &str) {
    use std::collections::HashMap;
    let with_id = |field: Field, id: i32| {
        field.with_metadata(HashMap::from([(
            parquet::arrow::PARQUET_FIELD_ID_META_KEY.to_string(),
            id.to_string(),
        )]))
    };
    let fields = Fields::from(vec![
        with_id(Field::new("name", DataType::Utf8, true), 11),
        with_id(Field::new(email_name, DataType::Utf8, true), 12),
    ]);
    let customers = StructArray::new(
        fields.clone(),
        vec![
            Arc::new(StringArray::from(vec!["ann", "bob"])) as ArrayRef,
            Arc::new(StringArray::from(vec![HIDDEN_EMAIL, "bob@example.com"])),
        ],
        None,
    );
    let schema = Schema::new(vec![
        with_id(Field::new("id", DataType::Int64, false), 1),
        with_id(Field::new("customer", DataType::Struct(fields), true), 10),
    ]);
    let batch = RecordBatch::try_new(
        Arc::new(schema),
        vec![Arc::new(Int64Array::from(vec![1, 2])), Arc::new(customers)],
    )
    .unwrap();
    let _ = std::fs::remove_dir_all(lake.join("people"));
    common::write_parquet(lake, "people", &batch);
}

#[tokio::test]
async fn a_renamed_nested_field_keeps_its_tags_by_field_id() {
    let lake = tempfile::tempdir().unwrap();
    write_customers_with_field_ids(lake.path(), "email");
    let catalog = tempfile::tempdir().unwrap();
    let toml = format!(
        r#"
[[storage]]
name = "lake"
url = "{lake}"

[[tag]]
key = "pii"
values = ["email"]

[[database]]
name = "crm"

[[table]]
database = "crm"
name = "people"
storage = "lake"
path = "people/"
column_tags = {{ "customer.email" = {{ pii = "email" }} }}
column_ids = {{ "customer.email" = 12 }}

[[role]]
name = "r"

[[user]]
name = "u"
may_assume = ["r"]
default_role = "r"

[[grant]]
name = "people"
role = "r"
on = "crm.people"
privileges = ["select"]

[[tag_mask]]
name = "emails_hashed"
role = "r"
tagged = "pii = 'email'"
mask = "hash"
"#,
        lake = lake.path().display()
    );
    std::fs::write(catalog.path().join("catalog.toml"), toml).unwrap();
    let engine = common::engine_for(catalog.path(), lake.path()).await;
    let before = rows(
        &engine,
        "r",
        "SELECT customer['email'] FROM crm.people ORDER BY id",
    )
    .await
    .unwrap();
    assert_eq!(before[0][0], sha256_hex(HIDDEN_EMAIL));

    // The files now call field 12 `contact`: its tag, and so its mask,
    // follow it.
    write_customers_with_field_ids(lake.path(), "contact");
    let engine = common::engine_for(catalog.path(), lake.path()).await;
    let after = rows(&engine, "r", "SELECT customer FROM crm.people ORDER BY id")
        .await
        .unwrap();
    assert!(!format!("{after:?}").contains(HIDDEN_EMAIL), "{after:?}");
    assert!(after[0][0].contains(&sha256_hex(HIDDEN_EMAIL)), "{after:?}");
}
