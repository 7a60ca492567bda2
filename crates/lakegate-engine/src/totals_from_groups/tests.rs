//! The rule within Lakegate's optimizer, over small tables: where a
//! subquery's total is computed from the query's groups (the same answer,
//! the grouped aggregate twice as one subplan) and where it is left alone
//! (the same plan as without the rule).

use datafusion::prelude::SessionContext;

use super::*;
use crate::test_tables::{counted, optimizing_context, plan_and_answer};

/// Part suppliers and suppliers (reporting TPC-H's row counts at scale 1);
/// supplier 1 is listed twice, some keys and values are null.
fn context(with_rule: bool) -> SessionContext {
    let context = optimizing_context((!with_rule).then(|| TotalsFromGroups.name()));
    let partsupp = counted(
        &["ps_partkey", "ps_suppkey", "ps_value"],
        &[
            &[Some(1), Some(1), Some(100)],
            &[Some(1), Some(2), Some(5)],
            &[Some(2), Some(1), Some(7)],
            &[Some(2), Some(3), Some(900)],
            &[Some(3), Some(2), None],
            &[Some(4), Some(1), Some(1)],
            &[None, Some(1), Some(40)],
            &[Some(5), None, Some(1000)],
        ],
        800_000,
    );
    let supplier = counted(
        &["s_suppkey", "s_nation"],
        &[
            &[Some(1), Some(7)],
            &[Some(1), Some(7)],
            &[Some(2), Some(7)],
            &[Some(3), Some(8)],
        ],
        10_000,
    );
    context.register_table("partsupp", partsupp).unwrap();
    context.register_table("supplier", supplier).unwrap();
    context
}

/// The rows of nation 7's suppliers: `partsupp ⋈ supplier`.
const NATION_7: &str = "FROM partsupp, supplier WHERE ps_suppkey = s_suppkey AND s_nation = 7";

/// How many lines of `plan` start (once trimmed) with `text`.
fn lines_starting(plan: &str, text: &str) -> usize {
    plan.lines().filter(|l| l.trim().starts_with(text)).count()
}

/// `sql` answered with and without the rule: the same answer; with the
/// rule, the subquery aggregates a copy of the query's grouped aggregate
/// (grouped twice, and a total above one of them), without it only once.
async fn assert_totalled_from_groups(sql: &str) -> String {
    let (written, written_answer) = plan_and_answer(&context(false), sql).await;
    let (totalled, answer) = plan_and_answer(&context(true), sql).await;
    let grouped = "Aggregate: groupBy=[[partsupp.ps_partkey]]";
    assert_eq!(lines_starting(&written, grouped), 1, "{written}");
    assert_eq!(lines_starting(&totalled, grouped), 2, "{totalled}");
    let scans = |plan: &str| lines_starting(plan, "TableScan: partsupp");
    assert_eq!(scans(&written), 2, "{written}");
    // The same subplan twice: one group's copy, which DataFusion runs once
    // with `ReuseRepeatedAggregates`.
    assert_eq!(scans(&totalled), 2, "{totalled}");
    let subplans = grouped_subplans(&totalled, grouped);
    assert_eq!(subplans[0], subplans[1], "{totalled}");
    assert_eq!(answer, written_answer, "{sql}\n{totalled}");
    answer
}

/// The lines beneath each line of `plan` starting with `head` (its
/// subplan, indentation removed), in order.
fn grouped_subplans(plan: &str, head: &str) -> Vec<Vec<String>> {
    let lines: Vec<&str> = plan.lines().collect();
    let depth = |line: &str| line.len() - line.trim_start().len();
    lines
        .iter()
        .enumerate()
        .filter(|(_, line)| line.trim().starts_with(head))
        .map(|(at, line)| {
            std::iter::once(*line)
                .chain(
                    lines[at + 1..]
                        .iter()
                        .copied()
                        .take_while(|l| depth(l) > depth(line)),
                )
                .map(|l| l.trim().to_string())
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn q11s_total_is_the_sum_of_the_groups_sums() {
    let answer = assert_totalled_from_groups(&format!(
        "SELECT ps_partkey, sum(ps_value) AS value {NATION_7} GROUP BY ps_partkey \
         HAVING sum(ps_value) > (SELECT sum(ps_value) * 0.02 {NATION_7}) ORDER BY ps_partkey"
    ))
    .await;
    // Nation 7's rows: supplier 1 twice, supplier 2 once. Total 2 * (100 +
    // 7 + 1 + 40) + 5 = 301; parts above 6.02: 1 (205), 2 (14), null (80).
    assert!(answer.contains("| 1          | 205   |"), "{answer}");
    assert!(answer.contains("| 2          | 14    |"), "{answer}");
    assert!(!answer.contains("| 4 "), "{answer}");
}

#[tokio::test]
async fn the_least_and_greatest_are_those_of_the_groups() {
    assert_totalled_from_groups(&format!(
        "SELECT ps_partkey, min(ps_value) AS lo, max(ps_value) AS hi {NATION_7} \
         GROUP BY ps_partkey \
         HAVING max(ps_value) < (SELECT max(ps_value) - min(ps_value) {NATION_7}) \
         ORDER BY ps_partkey"
    ))
    .await;
}

#[tokio::test]
async fn other_totals_and_other_rows_are_left_alone() {
    for sql in [
        // count: the count of the groups' counts is not the count.
        format!(
            "SELECT ps_partkey, count(ps_value) {NATION_7} GROUP BY ps_partkey \
             HAVING count(ps_value) > (SELECT count(ps_value) / 4 {NATION_7}) ORDER BY 1, 2"
        ),
        // avg: not the average of the groups' averages.
        format!(
            "SELECT ps_partkey, avg(ps_value) {NATION_7} GROUP BY ps_partkey \
             HAVING avg(ps_value) > (SELECT avg(ps_value) {NATION_7}) ORDER BY 1, 2"
        ),
        // Another nation's rows.
        format!(
            "SELECT ps_partkey, sum(ps_value) {NATION_7} GROUP BY ps_partkey \
             HAVING sum(ps_value) > (SELECT sum(ps_value) * 0.1 \
             FROM partsupp, supplier WHERE ps_suppkey = s_suppkey AND s_nation = 8) ORDER BY 1, 2"
        ),
        // The subquery needs only one of the query's two aggregates.
        format!(
            "SELECT ps_partkey, sum(ps_value), max(ps_value) {NATION_7} GROUP BY ps_partkey \
             HAVING sum(ps_value) > (SELECT sum(ps_value) * 0.1 {NATION_7}) ORDER BY 1, 2"
        ),
        // DISTINCT.
        format!(
            "SELECT ps_partkey, sum(DISTINCT ps_value) {NATION_7} GROUP BY ps_partkey \
             HAVING sum(DISTINCT ps_value) > (SELECT sum(DISTINCT ps_value) * 0.1 {NATION_7}) ORDER BY 1, 2"
        ),
        // Grouping sets count a row in several groups.
        format!(
            "SELECT ps_partkey, sum(ps_value) {NATION_7} GROUP BY ROLLUP (ps_partkey) \
             HAVING sum(ps_value) > (SELECT sum(ps_value) * 0.1 {NATION_7}) ORDER BY 1, 2"
        ),
    ] {
        // Ordered, so that the answers compare row for row.
        let (written, written_answer) = plan_and_answer(&context(false), &sql).await;
        let (planned, answer) = plan_and_answer(&context(true), &sql).await;
        assert_eq!(planned, written, "{sql}");
        assert_eq!(answer, written_answer, "{sql}");
    }
}
