//! Test tool (a): the differential oracle.
//!
//! For each demo role, the role's visible view of every table it may read is
//! materialised *independently of Lakegate*: read from the raw Parquet with
//! the parquet crate, then filtered and masked by plain Rust code written from
//! the demo scenario's text (DESIGN §4). A generated set of queries (joins,
//! outer joins, subqueries, CTEs, set operations, aggregates, windows,
//! ORDER BY/LIMIT) then runs twice: through Lakegate under the role, and
//! through plain DataFusion over the materialised views. The results must be
//! equal (as sorted rows, unless the query orders them). Each role runs
//! under `catalog/demo` (per-table grants) and under `catalog/demo-tags`
//! (the same scenario governed by tags alone): both must match the view.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch, StringArray};
use arrow::compute::{cast, concat_batches, filter_record_batch};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use sha2::{Digest, Sha256};

use crate::common;

/// Reads a demo table's raw Parquet files.
fn raw_table(table: &str) -> RecordBatch {
    let dir = common::demo_data_dir().join("tpc").join(table);
    let mut batches = Vec::new();
    let mut schema = None;
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for path in files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
    {
        let file = std::fs::File::open(path).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            schema = Some(batch.schema());
            batches.push(batch);
        }
    }
    concat_batches(&schema.unwrap(), &batches).unwrap()
}

fn column_as_i64(batch: &RecordBatch, name: &str) -> Vec<Option<i64>> {
    let column = cast(batch.column_by_name(name).unwrap(), &DataType::Int64).unwrap();
    let column = column.as_primitive::<arrow::datatypes::Int64Type>();
    (0..column.len())
        .map(|i| column.is_valid(i).then(|| column.value(i)))
        .collect()
}

fn column_as_strings(batch: &RecordBatch, name: &str) -> Vec<Option<String>> {
    let column = cast(batch.column_by_name(name).unwrap(), &DataType::Utf8).unwrap();
    let column = column.as_string::<i32>();
    (0..column.len())
        .map(|i| column.is_valid(i).then(|| column.value(i).to_string()))
        .collect()
}

/// The address keys in CA, OR and WA: what the `sales` row filter admits.
pub fn west_coast_address_keys() -> BTreeSet<i64> {
    let addresses = raw_table("dl_tpc_customer_address");
    let keys = column_as_i64(&addresses, "ca_address_sk");
    let states = column_as_strings(&addresses, "ca_state");
    keys.into_iter()
        .zip(states)
        .filter_map(|(k, s)| match (k, s.as_deref()) {
            (Some(k), Some("CA" | "OR" | "WA")) => Some(k),
            _ => None,
        })
        .collect()
}

fn keep_rows(batch: &RecordBatch, keep: Vec<bool>) -> RecordBatch {
    filter_record_batch(batch, &BooleanArray::from(keep)).unwrap()
}

/// marketing's view of dl_tpc_customer: three name columns dropped, e-mail hashed.
fn marketing_customer() -> RecordBatch {
    let raw = raw_table("dl_tpc_customer");
    let hidden = ["c_salutation", "c_first_name", "c_last_name"];
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (field, column) in raw.schema().fields().iter().zip(raw.columns()) {
        if hidden.contains(&field.name().as_str()) {
            continue;
        }
        if field.name() == "c_email_address" {
            let hashed: StringArray = column_as_strings(&raw, "c_email_address")
                .into_iter()
                .map(|e| e.map(|e| hex::encode(Sha256::digest(e.as_bytes()))))
                .collect();
            fields.push(Field::new(field.name(), DataType::Utf8, true));
            columns.push(Arc::new(hashed));
        } else {
            fields.push(field.as_ref().clone());
            columns.push(Arc::clone(column));
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
}

/// sales' view of dl_tpc_web_sales: rows billed to a CA/OR/WA address.
fn sales_web_sales() -> RecordBatch {
    let raw = raw_table("dl_tpc_web_sales");
    let allowed = west_coast_address_keys();
    let keep = column_as_i64(&raw, "ws_bill_addr_sk")
        .into_iter()
        .map(|k| k.is_some_and(|k| allowed.contains(&k)))
        .collect();
    keep_rows(&raw, keep)
}

/// electronics' view of dl_tpc_item: Electronics items only.
fn electronics_item() -> RecordBatch {
    let raw = raw_table("dl_tpc_item");
    let keep = column_as_strings(&raw, "i_category")
        .into_iter()
        .map(|c| c.as_deref() == Some("Electronics"))
        .collect();
    keep_rows(&raw, keep)
}

/// Rows as text, sorted unless `ordered`.
fn rows_of(batches: &[RecordBatch], ordered: bool) -> Vec<String> {
    let mut rows: Vec<String> = common::cells_as_text(batches)
        .into_iter()
        .map(|cells| cells.join(" | "))
        .collect();
    if !ordered {
        rows.sort();
    }
    rows
}

/// A small deterministic generator (no dependency needed for test variety).
struct Lcg(u64);
impl Lcg {
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        &items[(self.0 >> 33) as usize % items.len()]
    }
}

/// Queries over `t` with key `k`, grouping columns `g` and value columns `v`.
/// `order` is a unique ordering of the table's rows (its key columns), so
/// that ORDER BY ... LIMIT has one right answer.
fn generate_queries(
    t: &str,
    k: &str,
    order: &str,
    g: &[&str],
    v: &[&str],
    seed: u64,
) -> Vec<(String, bool)> {
    let mut rng = Lcg(seed);
    let mut queries = vec![
        (format!("SELECT * FROM {t}"), false),
        (format!("SELECT count(*) FROM {t}"), false),
        (format!("SELECT * FROM {t} ORDER BY {order} LIMIT 7"), true),
        (
            format!("SELECT {k} FROM {t} ORDER BY {order} DESC LIMIT 3 OFFSET 2"),
            true,
        ),
    ];
    for _ in 0..12 {
        let g1 = rng.pick(g);
        let v1 = rng.pick(v);
        let v2 = rng.pick(v);
        let n = rng.pick(&[2, 3, 5, 7]);
        let template = rng.pick(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        let query = match template {
            0 => (
                format!("SELECT {g1}, count(*), count(DISTINCT {v1}) FROM {t} GROUP BY {g1}"),
                false,
            ),
            1 => (
                format!("SELECT min({v1}), max({v1}), count({v2}) FROM {t}"),
                false,
            ),
            2 => (
                format!(
                    "SELECT a.{k}, b.{k} FROM {t} a LEFT JOIN {t} b ON a.{k} = b.{k} + {n} WHERE a.{k} % 11 = 0"
                ),
                false,
            ),
            3 => (
                format!(
                    "WITH x AS (SELECT {g1} AS g, {v1} AS v FROM {t} WHERE {k} % {n} = 0) SELECT g, count(*), count(v) FROM x GROUP BY g"
                ),
                false,
            ),
            4 => (
                format!(
                    "SELECT {k} FROM {t} WHERE {g1} IN (SELECT {g1} FROM {t} WHERE {k} % {n} = 1) AND {k} % 13 = 0"
                ),
                false,
            ),
            5 => (
                format!(
                    "SELECT {g1} FROM {t} WHERE {k} % 2 = 0 UNION SELECT {g1} FROM {t} WHERE {k} % 3 = 0"
                ),
                false,
            ),
            6 => (
                format!("SELECT {g1} FROM {t} INTERSECT SELECT {g1} FROM {t} WHERE {k} % {n} = 0"),
                false,
            ),
            7 => (
                format!(
                    "SELECT {k}, row_number() OVER (PARTITION BY {g1} ORDER BY {order}) FROM {t} WHERE {k} % 17 = 0"
                ),
                false,
            ),
            8 => (
                format!(
                    "SELECT {g1} AS g, {v1} AS v FROM {t} o WHERE EXISTS (SELECT 1 FROM {t} i WHERE i.{g1} = o.{g1} AND i.{k} < o.{k}) ORDER BY {order} LIMIT 20"
                ),
                true,
            ),
            _ => (
                format!(
                    "SELECT {g1}, count(*) AS n FROM {t} GROUP BY {g1} HAVING count(*) > {n} ORDER BY n DESC, {g1} LIMIT 5"
                ),
                true,
            ),
        };
        queries.push(query);
    }
    queries
}

async fn compare(
    user: &str,
    role: &str,
    table: &str,
    view: RecordBatch,
    queries: Vec<(String, bool)>,
) {
    let reference = SessionContext::new();
    let provider = MemTable::try_new(view.schema(), vec![vec![view]]).unwrap();
    reference.register_table(table, Arc::new(provider)).unwrap();
    for catalog in ["catalog/demo", "catalog/demo-tags"] {
        let dir = common::repo_root().join(catalog);
        let engine = common::engine_for(&dir, &common::demo_data_dir()).await;
        let mut session = engine.session(user, Some(role)).unwrap();
        compare_session(&mut session, &reference, catalog, role, &queries).await;
    }
}

async fn compare_session(
    session: &mut lakegate_engine::QuerySession,
    reference: &SessionContext,
    catalog: &str,
    role: &str,
    queries: &[(String, bool)],
) {
    let mut non_empty = 0;
    for (sql, ordered) in queries {
        let expected = reference
            .sql(sql)
            .await
            .unwrap()
            .collect()
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        let got = session
            .execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{catalog}: {role}: {sql}: {e}"))
            .collect()
            .await
            .unwrap_or_else(|e| panic!("{catalog}: {role}: {sql}: {e}"));
        let (expected, got) = (rows_of(&expected, *ordered), rows_of(&got, *ordered));
        if !expected.is_empty() {
            non_empty += 1;
        }
        assert_eq!(got, expected, "{catalog}: {role}: {sql}");
    }
    assert!(
        non_empty * 2 > queries.len(),
        "too many empty results to be a meaningful test"
    );
}

#[tokio::test]
async fn marketing_matches_its_materialised_view() {
    let queries = generate_queries(
        "dl_tpc_customer",
        "c_customer_sk",
        "c_customer_sk",
        &[
            "c_birth_country",
            "c_preferred_cust_flag",
            "c_birth_month",
            "c_email_address",
        ],
        &[
            "c_email_address",
            "c_birth_year",
            "c_customer_id",
            "c_login",
        ],
        7,
    );
    compare(
        "david",
        "marketing",
        "dl_tpc_customer",
        marketing_customer(),
        queries,
    )
    .await;
}

#[tokio::test]
async fn sales_matches_its_materialised_view() {
    let queries = generate_queries(
        "dl_tpc_web_sales",
        "ws_order_number",
        "ws_order_number, ws_item_sk",
        &["ws_bill_addr_sk", "ws_web_site_sk", "ws_ship_mode_sk"],
        &[
            "ws_net_paid",
            "ws_quantity",
            "ws_item_sk",
            "ws_bill_addr_sk",
        ],
        11,
    );
    compare(
        "tina",
        "sales",
        "dl_tpc_web_sales",
        sales_web_sales(),
        queries,
    )
    .await;
}

#[tokio::test]
async fn electronics_matches_its_materialised_view() {
    let queries = generate_queries(
        "dl_tpc_item",
        "i_item_sk",
        "i_item_sk",
        &["i_brand", "i_class", "i_category", "i_manufact_id"],
        &["i_current_price", "i_item_id", "i_brand_id", "i_color"],
        13,
    );
    compare(
        "tina",
        "electronics",
        "dl_tpc_item",
        electronics_item(),
        queries,
    )
    .await;
}
