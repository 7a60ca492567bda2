//! Every built-in mask over random columns with NULLs (a property test): a
//! mask never changes whether a value is NULL (but `nullify`, whose value is
//! always NULL), and each shows what its definition says, for text of any
//! length and alphabet, dates and timestamps.

use std::sync::Arc;

use arrow::array::{
    Array, AsArray, Date32Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Date32Type, Field, Schema, TimeUnit, TimestampMicrosecondType};
use proptest::prelude::*;
use sha2::{Digest, Sha256};

use crate::common;

/// One role per built-in mask, masking every column it fits.
const CATALOG: &str = r#"
[catalog]
name = "lakegate"
default_database = "m"

[[storage]]
name = "lake"
url = "${data_dir}"

[[database]]
name = "m"

[[table]]
database = "m"
name = "t"
storage = "lake"
path = "t/"

[[role]]
name = "redact"
[[role]]
name = "hash"
[[role]]
name = "show_first_4"
[[role]]
name = "show_last_4"
[[role]]
name = "year_only"
[[role]]
name = "nullify"

[[user]]
name = "u"
password_hash = "$argon2id$v=19$m=19456,t=2,p=1$LAWtCmX8ZTKZ87OObJ+AOQ$vxivZ/51MmtgjLCGLTFhhg6djH13WwGhPu216XekDQ4"
may_assume = ["redact", "hash", "show_first_4", "show_last_4", "year_only", "nullify"]

[[grant]]
name = "redact"
role = "redact"
on = "m.t"
privileges = ["select"]
masks = { s = "redact" }

[[grant]]
name = "hash"
role = "hash"
on = "m.t"
privileges = ["select"]
masks = { s = "hash" }

[[grant]]
name = "show_first_4"
role = "show_first_4"
on = "m.t"
privileges = ["select"]
masks = { s = "show_first_4" }

[[grant]]
name = "show_last_4"
role = "show_last_4"
on = "m.t"
privileges = ["select"]
masks = { s = "show_last_4" }

[[grant]]
name = "year_only"
role = "year_only"
on = "m.t"
privileges = ["select"]
masks = { d = "year_only", ts = "year_only" }

[[grant]]
name = "nullify"
role = "nullify"
on = "m.t"
privileges = ["select"]
masks = { s = "nullify", d = "nullify", ts = "nullify" }
"#;

/// The columns of one generated table.
#[derive(Debug, Clone)]
struct Columns {
    s: Vec<Option<String>>,
    d: Vec<Option<i32>>,
    ts: Vec<Option<i64>>,
}

fn text() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        1 => Just(None),
        1 => Just(Some(String::new())),
        4 => "[a-z@.]{1,6}".prop_map(Some),
        4 => "[a-zA-Z0-9 éü€😀+-]{0,30}".prop_map(Some),
    ]
}

fn columns() -> impl Strategy<Value = Columns> {
    (1usize..60).prop_flat_map(|rows| {
        (
            proptest::collection::vec(text(), rows),
            proptest::collection::vec(proptest::option::of(-20_000i32..40_000), rows),
            proptest::collection::vec(
                proptest::option::of(-1_000_000_000_000_000i64..2_000_000_000_000_000),
                rows,
            ),
        )
            .prop_map(|(s, d, ts)| Columns { s, d, ts })
    })
}

fn batch(columns: &Columns) -> RecordBatch {
    let rows = columns.s.len() as i64;
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("s", DataType::Utf8, true),
        Field::new("d", DataType::Date32, true),
        Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, None), true),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from_iter_values(0..rows)),
            Arc::new(StringArray::from(columns.s.clone())),
            Arc::new(Date32Array::from(columns.d.clone())),
            Arc::new(TimestampMicrosecondArray::from(columns.ts.clone())),
        ],
    )
    .unwrap()
}

/// What `mask` shows for the text `value` (present).
fn masked_text(mask: &str, value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    let n = chars.len();
    match mask {
        "redact" => "REDACTED".into(),
        "hash" => hex::encode(Sha256::digest(value.as_bytes())),
        "show_first_4" if n <= 4 => "X".repeat(n),
        "show_first_4" => chars[..4].iter().collect::<String>() + &"X".repeat(n - 4),
        "show_last_4" if n <= 4 => "X".repeat(n),
        "show_last_4" => "X".repeat(n - 4) + &chars[n - 4..].iter().collect::<String>(),
        other => panic!("not a text mask: {other}"),
    }
}

/// January 1st of the year of `days` since 1970-01-01, as days.
fn year_start(days: i32) -> i32 {
    let date = Date32Type::to_naive_date_opt(days).expect("a date in range");
    let first = chrono::NaiveDate::from_ymd_opt(chrono::Datelike::year(&date), 1, 1).unwrap();
    Date32Type::from_naive_date(first)
}

async fn check(columns: Columns) {
    let dir = tempfile::tempdir().unwrap();
    common::write_parquet(dir.path(), "t", &batch(&columns));
    let catalog = dir.path().join("catalog");
    std::fs::create_dir_all(&catalog).unwrap();
    std::fs::write(catalog.join("catalog.toml"), CATALOG).unwrap();
    let engine = common::engine_for(&catalog, dir.path()).await;
    for mask in [
        "redact",
        "hash",
        "show_first_4",
        "show_last_4",
        "year_only",
        "nullify",
    ] {
        let mut session = engine.session("u", Some(mask)).unwrap();
        let batches = session
            .execute("SELECT s, d, ts FROM t ORDER BY id")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let batch = arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
        let s = batch.column(0).as_string::<i32>();
        let d = batch.column(1).as_primitive::<Date32Type>();
        let ts = batch.column(2).as_primitive::<TimestampMicrosecondType>();
        for row in 0..batch.num_rows() {
            let (stored_s, stored_d, stored_ts) =
                (&columns.s[row], columns.d[row], columns.ts[row]);
            if mask == "nullify" {
                assert!(s.is_null(row) && d.is_null(row) && ts.is_null(row));
                continue;
            }
            assert_eq!(s.is_null(row), stored_s.is_none(), "{mask} row {row}: s");
            assert_eq!(d.is_null(row), stored_d.is_none(), "{mask} row {row}: d");
            assert_eq!(ts.is_null(row), stored_ts.is_none(), "{mask} row {row}: ts");
            match (mask, stored_s) {
                ("year_only", Some(value)) => assert_eq!(s.value(row), value),
                (_, Some(value)) => {
                    assert_eq!(
                        s.value(row),
                        masked_text(mask, value),
                        "{mask} of {value:?}"
                    )
                }
                (_, None) => {}
            }
            if mask == "year_only" {
                if let Some(days) = stored_d {
                    assert_eq!(d.value(row), year_start(days), "year of day {days}");
                }
                if let Some(micros) = stored_ts {
                    let year = chrono::Datelike::year(
                        &chrono::DateTime::from_timestamp_micros(micros).unwrap(),
                    );
                    let start = chrono::NaiveDate::from_ymd_opt(year, 1, 1)
                        .unwrap()
                        .and_hms_opt(0, 0, 0)
                        .unwrap()
                        .and_utc()
                        .timestamp_micros();
                    assert_eq!(ts.value(row), start, "year of {micros}");
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 12,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn masks_keep_nulls_and_show_what_they_say(columns in columns()) {
        tokio::runtime::Runtime::new().unwrap().block_on(check(columns));
    }
}
