//! Semi joins pushed beneath the inner joins above their keys' table:
//! [`PushSemiJoinsDown`].
//!
//! `WHERE o_orderkey IN (SELECT ...)` is decorrelated by DataFusion into a
//! semi join placed where the predicate was written, above every join of
//! the `FROM` list. TPC-H Q18 then joins customers, orders and all 6 M line
//! items (1.2 M to 6 M rows, depending on the role) and only then keeps the
//! rows of the 57 orders the subquery found, collecting that whole join
//! result as the semi join's build side. DuckDB filters the orders first.
//!
//! The rule moves a left semi join `(A ⋈ B) ⋉ S` beneath the inner join, to
//! `(A ⋉ S) ⋈ B`, when everything it reads of its left side (its keys and
//! its filter's columns) comes from `A` alone, and again from there while
//! `A` is itself an inner join. That is exact: whether a row of `A ⋈ B`
//! passes depends only on its `A` part and on `S`, so removing those `A`
//! rows before the join removes the same joined rows. (A projection of
//! plain columns between the two joins is kept above the inner join.)
//!
//! It is only done where it does not make the semi join read more rows:
//! when `B` keeps every row it reads (scans without filters or limits,
//! projections, inner joins of such), so that `A ⋈ B` is at least as large
//! as `A` on a key into `B`'s table, as in Q18's orders and line items.
//! Beneath a join with a filtered side the semi join stays where it was
//! written (the join may have removed most of `A` already). A table behind
//! a role's row filter counts as keeping its rows (the filter is inside the
//! secured scan): there the semi join may probe rows the policy would have
//! removed, which costs time and never changes the rows. Anti joins
//! (`NOT IN`, `NOT EXISTS`) are left alone.

use std::sync::Arc;

use datafusion::common::tree_node::Transformed;
use datafusion::common::{Column, Result};
use datafusion::logical_expr::{Expr, Join, JoinType, LogicalPlan, Projection};
use datafusion::optimizer::optimizer::ApplyOrder;
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};

/// See the module documentation.
#[derive(Debug, Default)]
pub(crate) struct PushSemiJoinsDown;

impl OptimizerRule for PushSemiJoinsDown {
    fn name(&self) -> &str {
        "lakegate_push_semi_joins_down"
    }

    // Top down: a semi join pushed into a join's input is visited again
    // there, and goes on down while it can.
    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::TopDown)
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        let LogicalPlan::Join(semi) = &plan else {
            return Ok(Transformed::no(plan));
        };
        if semi.join_type != JoinType::LeftSemi {
            return Ok(Transformed::no(plan));
        }
        match pushed_beneath(semi)? {
            Some(pushed) => Ok(Transformed::yes(pushed)),
            None => Ok(Transformed::no(plan)),
        }
    }
}

/// Which input of the inner join the semi join moves onto.
enum Side {
    Left,
    Right,
}

/// `semi` moved beneath the inner join it filters, if it reads only one of
/// that join's inputs and the other keeps all its rows.
fn pushed_beneath(semi: &Join) -> Result<Option<LogicalPlan>> {
    let (projection, inner) = match semi.left.as_ref() {
        LogicalPlan::Join(inner) => (None, inner),
        LogicalPlan::Projection(projection)
            if projection.expr.iter().all(|e| matches!(e, Expr::Column(_))) =>
        {
            match projection.input.as_ref() {
                LogicalPlan::Join(inner) => (Some(projection), inner),
                _ => return Ok(None),
            }
        }
        _ => return Ok(None),
    };
    if inner.join_type != JoinType::Inner {
        return Ok(None);
    }
    let read = columns_read_of_left(semi);
    if read.is_empty() {
        return Ok(None);
    }
    let all_in = |input: &LogicalPlan| read.iter().all(|c| input.schema().has_column(c));
    let side = if all_in(&inner.left) && keeps_every_row(&inner.right) {
        Side::Left
    } else if all_in(&inner.right) && keeps_every_row(&inner.left) {
        Side::Right
    } else {
        return Ok(None);
    };
    let semi_over =
        |input: &Arc<LogicalPlan>| rejoined(semi, Arc::clone(input), Arc::clone(&semi.right));
    let (left, right) = match side {
        Side::Left => (Arc::new(semi_over(&inner.left)?), Arc::clone(&inner.right)),
        Side::Right => (Arc::clone(&inner.left), Arc::new(semi_over(&inner.right)?)),
    };
    let joined = rejoined(inner, left, right)?;
    Ok(Some(match projection {
        None => joined,
        Some(projection) => LogicalPlan::Projection(Projection::try_new_with_schema(
            projection.expr.clone(),
            Arc::new(joined),
            Arc::clone(&projection.schema),
        )?),
    }))
}

/// `join` over other inputs: the same keys, filter and kind.
fn rejoined(join: &Join, left: Arc<LogicalPlan>, right: Arc<LogicalPlan>) -> Result<LogicalPlan> {
    Ok(LogicalPlan::Join(Join::try_new(
        left,
        right,
        join.on.clone(),
        join.filter.clone(),
        join.join_type,
        join.join_constraint,
        join.null_equality,
        join.null_aware,
    )?))
}

/// The columns of its left input that a semi join reads: its left keys'
/// and its filter's, less the subquery's own.
fn columns_read_of_left(semi: &Join) -> Vec<Column> {
    let right = semi.right.schema();
    semi.on
        .iter()
        .flat_map(|(left, _)| left.column_refs())
        .chain(semi.filter.iter().flat_map(Expr::column_refs))
        .filter(|c| !right.has_column(c))
        .cloned()
        .collect()
}

/// Whether `plan` returns every row of the tables it reads, joined: scans
/// without filters or limits, projections and aliases of them, and inner
/// joins of such. Anything else may remove rows.
fn keeps_every_row(plan: &LogicalPlan) -> bool {
    match plan {
        LogicalPlan::TableScan(scan) => scan.filters.is_empty() && scan.fetch.is_none(),
        LogicalPlan::Projection(Projection { input, .. }) => keeps_every_row(input),
        LogicalPlan::SubqueryAlias(alias) => keeps_every_row(&alias.input),
        LogicalPlan::Join(join) => {
            join.join_type == JoinType::Inner
                && keeps_every_row(&join.left)
                && keeps_every_row(&join.right)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::datasource::MemTable;
    use datafusion::execution::SessionStateBuilder;
    use datafusion::prelude::SessionContext;

    use super::*;
    use crate::test_tables::{int64_table, plan_and_answer};

    /// A table of non-null Int64 columns, one row per tuple of `rows`.
    fn table(columns: &[&str], rows: &[&[i64]]) -> Arc<MemTable> {
        Arc::new(int64_table(columns, rows, false))
    }

    /// Customers, their orders and the orders' line items, shaped as TPC-H's.
    fn context(with_rule: bool) -> SessionContext {
        let mut state = SessionStateBuilder::new().with_default_features();
        if with_rule {
            state = state.with_optimizer_rule(Arc::new(PushSemiJoinsDown));
        }
        let context = SessionContext::new_with_state(state.build());
        let tables = [
            (
                "customer",
                table(&["c_custkey", "c_nation"], &[&[1, 7], &[2, 8]]),
            ),
            (
                "orders",
                table(
                    &["o_orderkey", "o_custkey"],
                    &[&[10, 1], &[11, 1], &[12, 2], &[13, 2]],
                ),
            ),
            (
                "lineitem",
                table(
                    &["l_orderkey", "l_quantity"],
                    &[
                        &[10, 5],
                        &[10, 300],
                        &[11, 1],
                        &[12, 400],
                        &[13, 2],
                        &[13, 3],
                    ],
                ),
            ),
        ];
        for (name, table) in tables {
            context.register_table(name, table).unwrap();
        }
        context
    }

    /// The plan line of the semi join and the line beneath it.
    fn semi_join_and_its_left(plan: &str) -> Vec<String> {
        let lines: Vec<&str> = plan.lines().collect();
        let at = lines
            .iter()
            .position(|l| l.contains("LeftSemi Join"))
            .unwrap_or_else(|| panic!("no semi join in\n{plan}"));
        lines[at..=at + 1]
            .iter()
            .map(|l| l.trim().to_string())
            .collect()
    }

    const Q18_SHAPE: &str = "SELECT c_custkey, o_orderkey, sum(l_quantity) AS quantity \
         FROM customer, orders, lineitem \
         WHERE o_orderkey IN (SELECT l_orderkey FROM lineitem GROUP BY l_orderkey \
                              HAVING sum(l_quantity) > 300) \
           AND c_custkey = o_custkey AND o_orderkey = l_orderkey \
         GROUP BY c_custkey, o_orderkey ORDER BY o_orderkey";

    #[tokio::test]
    async fn q18s_semi_join_filters_the_orders_before_any_join() {
        let (written, written_answer) = plan_and_answer(&context(false), Q18_SHAPE).await;
        let (pushed, answer) = plan_and_answer(&context(true), Q18_SHAPE).await;
        // Without the rule the semi join sits above both inner joins.
        let line_of = |plan: &str, text: &str| plan.lines().position(|l| l.contains(text));
        assert!(
            line_of(&written, "LeftSemi Join") < line_of(&written, "Inner Join"),
            "{written}"
        );
        let semi = semi_join_and_its_left(&pushed);
        assert!(semi[1].starts_with("TableScan: orders"), "{pushed}");
        assert_eq!(answer, written_answer);
        assert!(answer.contains("| 12"), "{answer}");
        assert!(!answer.contains("| 11"), "{answer}");
    }

    #[tokio::test]
    async fn a_semi_join_stays_above_a_join_whose_other_side_is_filtered() {
        let sql = "SELECT o_orderkey FROM orders, customer \
             WHERE o_custkey = c_custkey AND c_nation = 7 \
               AND o_orderkey IN (SELECT l_orderkey FROM lineitem WHERE l_quantity > 100)";
        let (written, written_answer) = plan_and_answer(&context(false), sql).await;
        let (plan, answer) = plan_and_answer(&context(true), sql).await;
        assert_eq!(plan, written);
        assert_eq!(answer, written_answer);
    }

    #[tokio::test]
    async fn a_semi_join_reading_both_sides_or_an_anti_join_stays() {
        for sql in [
            // The subquery's correlation reads customer and orders alike.
            "SELECT o_orderkey FROM orders, customer WHERE o_custkey = c_custkey \
               AND EXISTS (SELECT 1 FROM lineitem WHERE l_orderkey = o_orderkey \
                           AND l_quantity > c_nation)",
            "SELECT o_orderkey FROM orders, lineitem WHERE o_orderkey = l_orderkey \
               AND o_custkey NOT IN (SELECT c_custkey FROM customer WHERE c_nation = 8)",
        ] {
            let (written, written_answer) = plan_and_answer(&context(false), sql).await;
            let (plan, answer) = plan_and_answer(&context(true), sql).await;
            assert_eq!(plan, written, "{sql}");
            assert_eq!(answer, written_answer, "{sql}");
        }
    }
}
