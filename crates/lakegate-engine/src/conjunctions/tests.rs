//! A narrowing conjunction answers as DataFusion's `AND` chain, row for
//! row and null for null, whatever share of rows each term keeps; the rule
//! puts it in filters and the plan reads as before.

use datafusion::arrow::array::{ArrayRef, Int64Array};
use datafusion::arrow::datatypes::Field;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::logical_expr::Operator;
use datafusion::physical_expr::conjunction;
use datafusion::physical_expr::expressions::{BinaryExpr, Literal, binary, col, lit};
use datafusion::prelude::SessionContext;

use super::*;

/// `rows` rows of nullable Int64 columns `a`, `b` and `c`, each value in
/// 0..100 and about one in ten null, from a fixed seed.
fn batch(rows: usize, seed: u64) -> RecordBatch {
    let mut state = seed;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) % 1000
    };
    let mut column = || -> ArrayRef {
        Arc::new(Int64Array::from_iter((0..rows).map(|_| {
            let value = next();
            (value >= 100).then_some((value % 100) as i64)
        })))
    };
    let schema = Schema::new(
        ["a", "b", "c"]
            .map(|n| Field::new(n, DataType::Int64, true))
            .to_vec(),
    );
    let columns = vec![column(), column(), column()];
    RecordBatch::try_new(Arc::new(schema), columns).unwrap()
}

fn compare(name: &str, op: Operator, value: i64, schema: &Schema) -> Arc<dyn PhysicalExpr> {
    binary(col(name, schema).unwrap(), op, lit(value), schema).unwrap()
}

/// Both evaluations of `terms` over `batch`, as Boolean arrays.
fn both(terms: Vec<Arc<dyn PhysicalExpr>>, batch: &RecordBatch) -> (BooleanArray, BooleanArray) {
    let chain = conjunction(terms.clone());
    let narrowing = NarrowingConjunction::try_new(terms).unwrap();
    let rows = batch.num_rows();
    let expected = boolean(chain.evaluate(batch).unwrap(), rows).unwrap();
    let actual = boolean(narrowing.evaluate(batch).unwrap(), rows).unwrap();
    (expected, actual)
}

#[test]
fn every_row_and_null_is_the_and_chains_at_every_selectivity() {
    let batch = batch(8192, 7);
    let schema = batch.schema();
    // The first term keeps 1 % to all of the rows, so that later terms are
    // evaluated both narrowed and whole; the last one reads two columns.
    for keep in [1, 5, 15, 20, 25, 50, 100] {
        let terms = vec![
            compare("a", Operator::Lt, keep, &schema),
            compare("b", Operator::GtEq, 30, &schema),
            compare("c", Operator::NotEq, 4, &schema),
            binary(
                col("a", &schema).unwrap(),
                Operator::LtEq,
                col("c", &schema).unwrap(),
                &schema,
            )
            .unwrap(),
        ];
        let (expected, actual) = both(terms, &batch);
        assert_eq!(actual, expected, "keeping {keep} %");
        assert!(
            actual.null_count() > 0,
            "keeping {keep} %: nulls are compared"
        );
    }
}

#[test]
fn constant_terms_and_no_rows_left() {
    let batch = batch(1000, 11);
    let schema = batch.schema();
    let null: Arc<dyn PhysicalExpr> =
        Arc::new(Literal::new(datafusion::common::ScalarValue::Boolean(None)));
    for terms in [
        vec![compare("a", Operator::Lt, 10, &schema), Arc::clone(&null)],
        vec![Arc::clone(&null), compare("a", Operator::Lt, 10, &schema)],
        vec![compare("a", Operator::Lt, 10, &schema), lit(true)],
        // Nothing is left after the first term.
        vec![
            compare("a", Operator::Gt, 1000, &schema),
            compare("b", Operator::Lt, 50, &schema),
        ],
    ] {
        let (expected, actual) = both(terms, &batch);
        assert_eq!(actual, expected);
    }
}

#[tokio::test]
async fn the_rule_narrows_filters_and_their_display_is_unchanged() {
    let context = SessionContext::new();
    context.register_batch("t", batch(20_000, 3)).unwrap();
    let sql = "SELECT count(*), sum(c) FROM t WHERE a < 10 AND b >= 30 AND (c = 4 OR c IS NULL)";
    let frame = context.sql(sql).await.unwrap();
    let plan = frame.clone().create_physical_plan().await.unwrap();
    let narrowed = NarrowFilterConjunctions
        .optimize(Arc::clone(&plan), &ConfigOptions::default())
        .unwrap();
    let display = |plan: &Arc<dyn ExecutionPlan>| {
        datafusion::physical_plan::displayable(plan.as_ref())
            .indent(true)
            .to_string()
    };
    assert_eq!(display(&narrowed), display(&plan));
    let predicates = filter_predicates(&narrowed);
    assert_eq!(predicates.len(), 1, "{}", display(&narrowed));
    for predicate in predicates {
        assert!(predicate.downcast_ref::<NarrowingConjunction>().is_some());
        assert!(predicate.downcast_ref::<BinaryExpr>().is_none());
    }
    // The plan's operators keep their execution state: the answer without
    // the rule comes from a plan of its own.
    let expected = frame.collect().await.unwrap();
    let actual = datafusion::physical_plan::collect(narrowed, context.task_ctx())
        .await
        .unwrap();
    assert_eq!(actual, expected);
}

#[tokio::test]
async fn a_filter_whose_equality_the_plan_relies_on_keeps_its_and_tree() {
    // `a = 5` makes `a` constant after the filter, which DataFusion reads
    // only from an `AND` tree: such a filter is left as it is.
    let context = SessionContext::new();
    context.register_batch("t", batch(20_000, 5)).unwrap();
    let sql = "SELECT a, b FROM t WHERE a = 5 AND b > 3 ORDER BY a, b";
    let plan = context
        .sql(sql)
        .await
        .unwrap()
        .create_physical_plan()
        .await
        .unwrap();
    let narrowed = NarrowFilterConjunctions
        .optimize(Arc::clone(&plan), &ConfigOptions::default())
        .unwrap();
    let predicates = filter_predicates(&narrowed);
    assert_eq!(predicates.len(), 1);
    for predicate in predicates {
        assert!(predicate.downcast_ref::<BinaryExpr>().is_some());
    }
}

/// The predicates of `plan`'s filters.
fn filter_predicates(plan: &Arc<dyn ExecutionPlan>) -> Vec<Arc<dyn PhysicalExpr>> {
    let mut predicates = Vec::new();
    plan.apply(|node| {
        if let Some(filter) = node.downcast_ref::<FilterExec>() {
            predicates.push(Arc::clone(filter.predicate()));
        }
        Ok(TreeNodeRecursion::Continue)
    })
    .unwrap();
    predicates
}
