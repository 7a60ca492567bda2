//! Long statements answer correctly in process, under a role with a row
//! filter (a subquery) and masks: 100,000-term AND, OR, CASE, `+`, `||`
//! chains and a 100,000-branch UNION ALL. The expected answers come from
//! the role's own short queries over the same rows.

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use lakegate_engine::Engine;

use crate::common;

const TERMS: i64 = 100_000;

/// The single integer `sql` answers with, as ann under `analyst`.
async fn one_integer(engine: &Engine, sql: &str) -> i64 {
    let mut session = engine.session("ann", Some("analyst")).unwrap();
    session.use_database("shop").unwrap();
    let batches = session
        .execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{}...: {e}", &sql[..sql.len().min(80)]))
        .collect()
        .await
        .unwrap();
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
    let column = batches
        .iter()
        .find(|b| b.num_rows() == 1)
        .unwrap()
        .column(0)
        .clone();
    arrow::compute::cast(&column, &arrow::datatypes::DataType::Int64)
        .unwrap()
        .as_primitive::<Int64Type>()
        .value(0)
}

fn chain(terms: impl Iterator<Item = String>, operator: &str) -> String {
    terms.collect::<Vec<_>>().join(operator)
}

#[tokio::test]
async fn chains_of_100000_terms_answer_under_a_row_filter_and_masks() {
    let lake = common::shop_lake().await;
    let engine = &lake.engine;
    let visible = one_integer(engine, "SELECT count(*) FROM orders").await;
    let visible_sum = one_integer(engine, "SELECT sum(a) FROM orders").await;
    assert!(visible > 0);

    let ors = chain((1..=TERMS).map(|i| format!("a = {i}")), " OR ");
    let sql = format!("SELECT count(*) FROM orders WHERE {ors}");
    assert_eq!(one_integer(engine, &sql).await, visible, "OR chain");

    let ands = chain((1..=TERMS).map(|i| format!("a <> {}", i + 1000)), " AND ");
    let sql = format!("SELECT count(*) FROM orders WHERE {ands}");
    assert_eq!(one_integer(engine, &sql).await, visible, "AND chain");

    let whens = chain((1..=TERMS).map(|i| format!("WHEN a = {i} THEN {i}")), " ");
    let sql = format!("SELECT sum(CASE {whens} ELSE 0 END) FROM orders");
    assert_eq!(one_integer(engine, &sql).await, visible_sum, "CASE");

    let ones = chain((0..TERMS).map(|_| "1".to_string()), " + ");
    let sql = format!("SELECT max(a - a + {ones}) FROM orders");
    assert_eq!(one_integer(engine, &sql).await, TERMS, "+ chain");

    let letters = chain((0..TERMS).map(|_| "'x'".to_string()), " || ");
    let sql = format!("SELECT max(character_length(note || {letters})) FROM orders");
    // The analyst's `note` mask shows 'hidden' (6 characters) on every row ann sees.
    assert_eq!(one_integer(engine, &sql).await, TERMS + 6, "|| chain");
}

#[tokio::test]
async fn a_union_all_of_100000_queries_answers() {
    let lake = common::shop_lake().await;
    let branches = chain(
        (0..TERMS).map(|i| format!("SELECT {i} AS x")),
        " UNION ALL ",
    );
    let sql = format!("SELECT count(*) FROM ({branches}) AS t");
    assert_eq!(one_integer(&lake.engine, &sql).await, TERMS);
}
