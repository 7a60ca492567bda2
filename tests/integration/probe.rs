//! Test tool (b): `probe(x)` records every value it is called with and returns
//! true. Wherever it is placed in user SQL (WHERE, SELECT, JOIN ON, GROUP BY,
//! window, HAVING), it must only ever see values the role may see.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use arrow::array::{Array, BooleanArray};
use arrow::datatypes::DataType;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use lakegate_engine::QuerySession;

use crate::common;

/// Values seen by a probe, shared with the test.
type Seen = Arc<Mutex<Vec<String>>>;

#[derive(Debug)]
struct Probe {
    seen: Seen,
    signature: Signature,
}

impl PartialEq for Probe {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.seen, &other.seen)
    }
}
impl Eq for Probe {}
impl std::hash::Hash for Probe {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        Arc::as_ptr(&self.seen).hash(state);
    }
}

impl ScalarUDFImpl for Probe {
    fn name(&self) -> &str {
        "probe"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let array = args.args[0].to_array(args.number_rows)?;
        let formatter =
            ArrayFormatter::try_new(array.as_ref(), &FormatOptions::default().with_null("NULL"))?;
        let mut seen = self.seen.lock().unwrap();
        for i in 0..array.len() {
            seen.push(formatter.value(i).to_string());
        }
        Ok(ColumnarValue::Array(Arc::new(BooleanArray::from(
            vec![true; array.len()],
        ))))
    }
}

/// Registers a fresh probe in `session` and returns what it will see.
fn install_probe(session: &mut QuerySession) -> Seen {
    let seen: Seen = Arc::default();
    session.register_function(ScalarUDF::new_from_impl(Probe {
        seen: Arc::clone(&seen),
        // Volatile: the planner may neither fold it nor treat it as pure.
        signature: Signature::any(1, Volatility::Volatile),
    }));
    seen
}

/// Runs each query with the probe and returns the set of values seen.
async fn probe_values(session: &mut QuerySession, queries: &[&str]) -> BTreeSet<String> {
    let seen = install_probe(session);
    for sql in queries {
        session
            .execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .collect()
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    let values = seen.lock().unwrap();
    values.iter().cloned().collect()
}

/// Places of the probe around column `c` of table `t`.
fn placements(t: &str, c: &str, key: &str) -> Vec<String> {
    vec![
        format!("SELECT * FROM {t} WHERE probe({c})"),
        format!("SELECT probe({c}) FROM {t}"),
        format!("SELECT count(*) FROM {t} WHERE {key} IS NOT NULL AND probe({c})"),
        format!("SELECT count(*) FROM {t} x JOIN {t} y ON x.{key} = y.{key} AND probe(x.{c})"),
        format!("SELECT probe({c}), count(*) FROM {t} GROUP BY probe({c})"),
        format!("SELECT count(*) FROM {t} GROUP BY {key} HAVING probe(max({c}))"),
        format!("SELECT probe(first_value({c}) OVER (ORDER BY {key})) FROM {t}"),
        format!("SELECT * FROM {t} WHERE probe({c}) LIMIT 1"),
        format!("WITH x AS (SELECT {c} FROM {t}) SELECT count(*) FROM x WHERE probe({c})"),
        format!("SELECT count(*) FROM {t} WHERE {key} IN (SELECT {key} FROM {t} WHERE probe({c}))"),
    ]
}

#[tokio::test]
async fn probe_sees_only_visible_rows_and_masked_values() {
    let lake = common::shop_lake().await;

    // auditor: orders with a > 5.
    let mut session = lake.engine.session("ann", Some("auditor")).unwrap();
    session.use_database("shop").unwrap();
    let queries = placements("orders", "a", "order_id");
    let queries: Vec<&str> = queries.iter().map(String::as_str).collect();
    let seen = probe_values(&mut session, &queries).await;
    let visible: BTreeSet<String> = (6..=10).map(|a| a.to_string()).collect();
    assert!(!seen.is_empty());
    assert!(seen.is_subset(&visible), "probe saw {seen:?}");

    // analyst: hashed e-mails of EU customers only.
    let mut session = lake.engine.session("ann", Some("analyst")).unwrap();
    session.use_database("shop").unwrap();
    let queries = placements("customers", "email", "id");
    let queries: Vec<&str> = queries.iter().map(String::as_str).collect();
    let seen = probe_values(&mut session, &queries).await;
    let visible: BTreeSet<String> = [
        "ff8d9819fc0e12bf0d24892e45987e249a28dce836a85cad60e28eaaa8c6d976",
        "3aecc87626178b908c819df18dc147679739607e6f55ea519c0c875c32b36637",
        "1704ee0c1c0c2ac0445d3f7042d2707f2616e054eab3c0fe645dd48a4cea25db",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert!(!seen.is_empty());
    assert!(seen.is_subset(&visible), "probe saw {seen:?}");

    // analyst, the region column: EU only.
    let queries = placements("customers", "region", "id");
    let queries: Vec<&str> = queries.iter().map(String::as_str).collect();
    let seen = probe_values(&mut session, &queries).await;
    assert_eq!(seen, BTreeSet::from(["EU".to_string()]));
}

#[tokio::test]
async fn probe_on_demo_roles() {
    let engine = common::demo_lake().await;

    let mut session = engine.session("tina", Some("electronics")).unwrap();
    let queries = placements("dl_tpc_item", "i_category", "i_item_sk");
    let queries: Vec<&str> = queries.iter().map(String::as_str).collect();
    let seen = probe_values(&mut session, &queries).await;
    assert_eq!(seen, BTreeSet::from(["Electronics".to_string()]));

    let mut session = engine.session("david", None).unwrap();
    let queries = placements("dl_tpc_customer", "c_email_address", "c_customer_sk");
    let queries: Vec<&str> = queries.iter().map(String::as_str).collect();
    let seen = probe_values(&mut session, &queries).await;
    assert!(seen.len() > 10);
    for value in &seen {
        let is_digest = value.len() == 64 && value.chars().all(|c| c.is_ascii_hexdigit());
        assert!(
            is_digest || value == "NULL",
            "probe saw a raw e-mail: {value}"
        );
    }

    let allowed = crate::oracle::west_coast_address_keys();
    let mut session = engine.session("tina", Some("sales")).unwrap();
    let queries = placements("dl_tpc_web_sales", "ws_bill_addr_sk", "ws_order_number");
    let queries: Vec<&str> = queries.iter().map(String::as_str).collect();
    let seen = probe_values(&mut session, &queries).await;
    assert!(seen.len() > 10);
    for value in &seen {
        let key: i64 = value
            .parse()
            .unwrap_or_else(|_| panic!("probe saw {value}"));
        assert!(
            allowed.contains(&key),
            "probe saw address {key} outside CA/OR/WA"
        );
    }
}
