//! The rule within Lakegate's optimizer, over small tables that report
//! their row counts: where a correlated aggregate becomes a window (one scan
//! of its table, the same answer) and where it is left alone (the same
//! plan as without the rule).

use datafusion::prelude::SessionContext;

use super::*;
use crate::test_tables::{counted, optimizing_context, plan_and_answer};

/// Parts, suppliers and line items (reporting TPC-H's row counts at scale
/// 1); part 1 is listed twice (both rows
/// selected, so each of its line items is joined twice), part 4 is
/// selected without line items, supplier 1 is listed twice, and some keys
/// and quantities are null.
fn context(with_rule: bool) -> SessionContext {
    let context = optimizing_context((!with_rule).then(|| CorrelatedAggregatesAsWindows.name()));
    let part = counted(
        &["p_partkey", "p_brand", "p_container"],
        &[
            &[Some(1), Some(23), Some(1)],
            &[Some(1), Some(23), Some(1)],
            &[Some(2), Some(23), Some(1)],
            &[Some(3), Some(24), Some(1)],
            &[Some(4), Some(23), Some(1)],
            &[None, Some(23), Some(1)],
        ],
        200_000,
    );
    let supplier = counted(
        &["s_suppkey", "s_nation"],
        &[
            &[Some(1), Some(7)],
            &[Some(1), Some(9)],
            &[Some(2), Some(8)],
        ],
        10_000,
    );
    let lineitem = counted(
        &["l_partkey", "l_suppkey", "l_quantity", "l_extendedprice"],
        &[
            &[Some(1), Some(1), Some(1), Some(100)],
            &[Some(1), Some(2), Some(2), Some(200)],
            &[Some(1), Some(1), Some(30), Some(3000)],
            &[Some(1), Some(2), None, Some(7)],
            &[Some(2), Some(1), Some(2), Some(20)],
            &[Some(2), Some(1), Some(10), Some(100)],
            &[Some(2), Some(2), Some(30), Some(300)],
            &[Some(3), Some(1), Some(1), Some(10)],
            &[Some(3), Some(1), Some(40), Some(400)],
            &[None, Some(1), Some(1), Some(1)],
        ],
        6_000_000,
    );
    for (name, table) in [
        ("part", part),
        ("supplier", supplier),
        ("lineitem", lineitem),
    ] {
        context.register_table(name, table).unwrap();
    }
    context
}

/// How many lines of `plan` start (once trimmed) with `text`.
fn lines_starting(plan: &str, text: &str) -> usize {
    plan.lines().filter(|l| l.trim().starts_with(text)).count()
}

/// `sql` answered with and without the rule: the same answer, and with the
/// rule one window and one scan of `lineitem` (two without).
async fn assert_windowed(sql: &str) -> String {
    let (written, written_answer) = plan_and_answer(&context(false), sql).await;
    let (windowed, answer) = plan_and_answer(&context(true), sql).await;
    assert_eq!(
        lines_starting(&written, "TableScan: lineitem"),
        2,
        "{written}"
    );
    assert_eq!(
        lines_starting(&windowed, "TableScan: lineitem"),
        1,
        "{windowed}"
    );
    assert_eq!(lines_starting(&windowed, "WindowAggr"), 1, "{windowed}");
    assert_eq!(answer, written_answer, "{sql}\n{windowed}");
    answer
}

/// TPC-H Q17's shape, with `0.5 *` and a count beside the sum.
const Q17_SHAPE: &str = "SELECT sum(l_extendedprice) AS revenue, count(*) AS items \
     FROM lineitem, part \
     WHERE p_partkey = l_partkey AND p_brand = 23 AND p_container = 1 \
       AND l_quantity < (SELECT 0.5 * avg(l_quantity) FROM lineitem WHERE l_partkey = p_partkey)";

#[tokio::test]
async fn q17s_average_is_a_window_over_the_selected_parts_line_items() {
    let answer = assert_windowed(Q17_SHAPE).await;
    // Part 1 (average 11, twice listed): quantities 1 and 2, each joined
    // twice; part 2 (average 14): quantity 2.
    assert!(answer.contains("| 620     | 5     |"), "{answer}");
}

#[tokio::test]
async fn an_aggregate_joined_as_a_table_is_a_window_with_its_columns() {
    let answer = assert_windowed(
        "SELECT p_partkey, l_quantity, m.lo, m.hi \
         FROM lineitem, part, \
              (SELECT l_partkey AS k, min(l_quantity) AS lo, max(l_quantity) AS hi \
               FROM lineitem GROUP BY l_partkey) m \
         WHERE l_partkey = p_partkey AND m.k = p_partkey AND p_brand = 23 AND p_container = 1 \
         ORDER BY 1, 2, 3, 4",
    )
    .await;
    assert!(
        answer.contains("| 2         | 30         | 2  | 30 |"),
        "{answer}"
    );
}

#[tokio::test]
async fn the_same_conditions_on_both_scans_still_give_a_window() {
    assert_windowed(
        "SELECT count(*) FROM lineitem, part \
         WHERE p_partkey = l_partkey AND p_brand = 23 AND p_container = 1 AND l_suppkey = 1 \
           AND l_quantity < (SELECT avg(l_quantity) FROM lineitem \
                             WHERE l_partkey = p_partkey AND l_suppkey = 1)",
    )
    .await;
}

#[tokio::test]
async fn a_join_above_the_aggregates_join_may_read_any_column() {
    // DataFusion places the subquery's semi join beneath the supplier join,
    // so the window sees each line item once, whatever the suppliers.
    assert_windowed(
        "SELECT count(*) FROM lineitem, part, supplier \
         WHERE p_partkey = l_partkey AND l_suppkey = s_suppkey AND p_brand = 23 \
           AND p_container = 1 \
           AND l_quantity < (SELECT avg(l_quantity) FROM lineitem WHERE l_partkey = p_partkey)",
    )
    .await;
}

#[tokio::test]
async fn other_rows_repeated_unevenly_or_many_keys_are_left_alone() {
    for sql in [
        // sum counts part 1's line items twice over the outer rows.
        "SELECT count(*) FROM lineitem, part \
         WHERE p_partkey = l_partkey AND p_brand = 23 AND p_container = 1 \
           AND l_quantity * 3 < (SELECT sum(l_quantity) FROM lineitem WHERE l_partkey = p_partkey)",
        // The outer rows are fewer: a condition the subquery does not have.
        "SELECT count(*) FROM lineitem, part \
         WHERE p_partkey = l_partkey AND p_brand = 23 AND p_container = 1 AND l_suppkey = 1 \
           AND l_quantity < (SELECT avg(l_quantity) FROM lineitem WHERE l_partkey = p_partkey)",
        // ... or the subquery's are.
        "SELECT count(*) FROM lineitem, part \
         WHERE p_partkey = l_partkey AND p_brand = 23 AND p_container = 1 \
           AND l_quantity < (SELECT avg(l_quantity) FROM lineitem \
                             WHERE l_partkey = p_partkey AND l_suppkey = 1)",
        // Joined on another line-item column beneath the aggregate's join:
        // supplier 1's line items are repeated, supplier 2's are not.
        "SELECT p_partkey, l_quantity, m.mean FROM lineitem, part, supplier, \
              (SELECT l_partkey AS k, avg(l_quantity) AS mean FROM lineitem \
               GROUP BY l_partkey) m \
         WHERE p_partkey = l_partkey AND l_suppkey = s_suppkey AND m.k = p_partkey \
           AND p_brand = 23 AND p_container = 1 ORDER BY 1, 2, 3",
        // Every part: the window would sort all line items.
        "SELECT count(*) FROM lineitem, part WHERE p_partkey = l_partkey \
           AND l_quantity < (SELECT avg(l_quantity) FROM lineitem WHERE l_partkey = p_partkey)",
    ] {
        let (written, written_answer) = plan_and_answer(&context(false), sql).await;
        let (plan, answer) = plan_and_answer(&context(true), sql).await;
        assert_eq!(plan, written, "{sql}");
        assert_eq!(answer, written_answer, "{sql}");
    }
}
