//! `AggregateOnlyJoinedKeys`: a logical optimizer rule that narrows the
//! input of a grouped aggregate to the keys a join will keep.
//!
//! A correlated subquery such as TPC-H Q17's
//! `l_quantity < (SELECT 0.2 * avg(l_quantity) FROM lineitem WHERE
//! l_partkey = p_partkey)` is decorrelated by DataFusion into an aggregate
//! of the whole table grouped by the correlated key, joined back to the
//! outer query on that key (general decorrelation with DuckDB-style delim
//! joins: apache/datafusion#5492, #16059). The outer query selects a few
//! hundred parts, the aggregate groups six million line items into
//! 200,000 groups, and the join then drops all but those few hundred.
//!
//! The rule adds a semi join beneath such an aggregate: its input keeps
//! only rows whose group key appears in a small, selective input of the
//! other side of the join (a *reducer*), so only the groups the join can
//! keep are computed. That is exact: the semi join removes whole groups
//! (it tests a group-by column), and only groups whose key the join would
//! not match (values outside a superset of the other side's keys).
//!
//! The reducer is found by following the join key into the other side:
//! through projections of the column, aliases and filters (each keeps a
//! subset of its input's values), into the side of a join that owns it,
//! and across an inner or semi join's key equality to the other input
//! (`l_partkey = p_partkey` means every value is also a selected part's
//! key). Of the inputs reached, the one estimated to keep the smallest
//! share of its table's distinct keys is taken when that share is at most
//! [`MAX_REDUCER_SHARE`]: a filtered scan (a table scan beneath filters
//! and projections of bare columns) that is evaluated a second time, so it
//! must be deterministic (no volatile function, no scan limit).
//!
//! Under a policy nothing changes in what is read: the reducer is part of
//! the user's own query, its scans are secured like every other (each gets
//! its barrier), and the semi join only removes rows.

use datafusion::common::tree_node::Transformed;
use datafusion::common::{Column, NullEquality, Result};
use datafusion::logical_expr::{Aggregate, Expr, JoinType, LogicalPlan, LogicalPlanBuilder};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};

use crate::estimates::InputEstimate;
use crate::plan_facts::is_repeatable;

/// The largest share of its table's distinct keys a reducer may keep:
/// beyond that, a second scan of its table costs more than the groups it
/// saves.
const MAX_REDUCER_SHARE: f64 = 0.25;

/// The alias a reducer is joined under, so that its columns never clash
/// with the aggregate input's (the semi join's output is that input's).
const REDUCER_ALIAS: &str = "__joined_keys";

/// Narrows grouped aggregates to the keys a join keeps (module docs).
#[derive(Debug, Default)]
pub(crate) struct AggregateOnlyJoinedKeys;

impl OptimizerRule for AggregateOnlyJoinedKeys {
    fn name(&self) -> &str {
        "lakegate_aggregate_only_joined_keys"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::TopDown)
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        let LogicalPlan::Join(join) = &plan else {
            return Ok(Transformed::no(plan));
        };
        if join.null_equality != NullEquality::NullEqualsNothing {
            return Ok(Transformed::no(plan));
        }
        // Which sides may hold the aggregate: an inner join drops unmatched
        // rows of both, a semi join only those of the side it returns.
        let (left_may, right_may) = match join.join_type {
            JoinType::Inner => (true, true),
            JoinType::LeftSemi => (false, true),
            JoinType::RightSemi => (true, false),
            _ => return Ok(Transformed::no(plan)),
        };
        // The best (share, aggregate on the left?, key, reducer, its key).
        let mut best: Option<(f64, bool, Column, &LogicalPlan, Column)> = None;
        for (left_key, right_key) in &join.on {
            let (Expr::Column(left_key), Expr::Column(right_key)) = (left_key, right_key) else {
                continue;
            };
            let sides = [
                (left_may, true, &join.left, left_key, &join.right, right_key),
                (
                    right_may,
                    false,
                    &join.right,
                    right_key,
                    &join.left,
                    left_key,
                ),
            ];
            for (may, on_left, side, key, other, other_key) in sides {
                if !may || !is_unreduced_group_key(side, key) {
                    continue;
                }
                let Some((share, reducer, reducer_key)) = smallest_reducer(other, other_key) else {
                    continue;
                };
                if share <= MAX_REDUCER_SHARE && best.as_ref().is_none_or(|b| share < b.0) {
                    best = Some((share, on_left, key.clone(), reducer, reducer_key));
                }
            }
        }
        // The reducer is evaluated a second time: a copy of it joins the
        // aggregate's input.
        let best = best.map(|(_, on_left, key, reducer, reducer_key)| {
            (on_left, key, reducer.clone(), reducer_key)
        });
        let Some((on_left, key, reducer, reducer_key)) = best else {
            return Ok(Transformed::no(plan));
        };
        let LogicalPlan::Join(mut join) = plan else {
            unreachable!("matched as a join above");
        };
        let side = if on_left {
            &mut join.left
        } else {
            &mut join.right
        };
        let reduced = with_reduced_aggregate(side.as_ref(), &key, &reducer, &reducer_key)?;
        *side = reduced.into();
        Ok(Transformed::yes(LogicalPlan::Join(join)))
    }
}

/// The column beneath a node of one input that carries `column`'s values
/// (the same values or fewer): through aliases, filters, and projections
/// where the column is a bare (or renamed) column of the input.
fn column_beneath(plan: &LogicalPlan, column: &Column) -> Option<Column> {
    match plan {
        LogicalPlan::Filter(_) => Some(column.clone()),
        LogicalPlan::SubqueryAlias(alias) => {
            let index = alias.schema.index_of_column(column).ok()?;
            Some(Column::from(alias.input.schema().qualified_field(index)))
        }
        LogicalPlan::Projection(projection) => {
            let index = projection.schema.index_of_column(column).ok()?;
            match projection.expr[index].clone().unalias_nested().data {
                Expr::Column(beneath) => Some(beneath),
                _ => None,
            }
        }
        _ => None,
    }
}

/// The aggregate whose group-by column `column` becomes beneath `plan`, with
/// that group-by column.
fn grouping_aggregate<'a>(
    plan: &'a LogicalPlan,
    column: &Column,
) -> Option<(&'a Aggregate, Column)> {
    if let LogicalPlan::Aggregate(aggregate) = plan {
        let index = aggregate.schema.index_of_column(column).ok()?;
        return match aggregate.group_expr.get(index)? {
            Expr::Column(group_column) => Some((aggregate, group_column.clone())),
            _ => None,
        };
    }
    let beneath = column_beneath(plan, column)?;
    grouping_aggregate(plan.inputs().first()?, &beneath)
}

/// Whether `column` of `plan` is a plain group-by column of an aggregate
/// beneath it whose input is not reduced already (the rule runs again
/// after every other rule of a pass).
fn is_unreduced_group_key(plan: &LogicalPlan, column: &Column) -> bool {
    let Some((aggregate, group_column)) = grouping_aggregate(plan, column) else {
        return false;
    };
    let grouping_sets = aggregate
        .group_expr
        .iter()
        .any(|e| matches!(e, Expr::GroupingSet(_)));
    let reduced = !std::ptr::eq(
        without_reducer(&aggregate.input, &group_column),
        aggregate.input.as_ref(),
    );
    !grouping_sets && !reduced
}

/// An aggregate's `input` without the reducer semi join this rule put on
/// its `group_column`, if any (beneath it, every group of the input is
/// whole: the semi join removes only groups no join keeps).
pub(crate) fn without_reducer<'a>(
    input: &'a LogicalPlan,
    group_column: &Column,
) -> &'a LogicalPlan {
    match input {
        LogicalPlan::Join(join)
            if join.join_type == JoinType::LeftSemi
                && join
                    .on
                    .iter()
                    .any(|(l, _)| matches!(l, Expr::Column(c) if c == group_column))
                && matches!(join.right.as_ref(), LogicalPlan::SubqueryAlias(a) if a.alias.table() == REDUCER_ALIAS) =>
        {
            &join.left
        }
        other => other,
    }
}

/// The reducer for `column` of `plan` keeping the smallest share of its
/// table's distinct keys: (share, reducer, the reducer's key column).
pub(crate) fn smallest_reducer<'a>(
    plan: &'a LogicalPlan,
    column: &Column,
) -> Option<(f64, &'a LogicalPlan, Column)> {
    let mut reached = Vec::new();
    reach(plan, column, &mut reached);
    reached
        .into_iter()
        .filter(|(candidate, _)| is_repeatable(candidate))
        .filter_map(|(candidate, key)| {
            let estimate = InputEstimate::of(candidate)?;
            let share = estimate.rows / estimate.table_distinct(&key.name);
            Some((share, candidate, key))
        })
        .min_by(|a, b| a.0.total_cmp(&b.0))
}

/// Every input beneath `plan` whose `column` holds all of `plan`'s values
/// of it (and maybe more), with that column.
fn reach<'a>(plan: &'a LogicalPlan, column: &Column, reached: &mut Vec<(&'a LogicalPlan, Column)>) {
    reached.push((plan, column.clone()));
    match plan {
        LogicalPlan::Join(join) => {
            let owner_is_left = join.left.schema().has_column(column);
            let owner = if owner_is_left {
                &join.left
            } else {
                &join.right
            };
            if !owner.schema().has_column(column) {
                return;
            }
            reach(owner, column, reached);
            // Across the join's equality, when unmatched rows are dropped.
            let crosses = join.null_equality == NullEquality::NullEqualsNothing
                && match join.join_type {
                    JoinType::Inner => true,
                    JoinType::LeftSemi => owner_is_left,
                    JoinType::RightSemi => !owner_is_left,
                    _ => false,
                };
            if !crosses {
                return;
            }
            for (left_key, right_key) in &join.on {
                let (Expr::Column(left_key), Expr::Column(right_key)) = (left_key, right_key)
                else {
                    continue;
                };
                if owner_is_left && left_key == column {
                    reach(&join.right, right_key, reached);
                } else if !owner_is_left && right_key == column {
                    reach(&join.left, left_key, reached);
                }
            }
        }
        other => {
            if let (Some(beneath), [input]) =
                (column_beneath(other, column), other.inputs().as_slice())
            {
                reach(input, &beneath, reached);
            }
        }
    }
}

/// `plan` with the aggregate grouping by `column` (beneath it) computed
/// over only the rows whose key `reducer` holds.
fn with_reduced_aggregate(
    plan: &LogicalPlan,
    column: &Column,
    reducer: &LogicalPlan,
    reducer_key: &Column,
) -> Result<LogicalPlan> {
    if let LogicalPlan::Aggregate(aggregate) = plan {
        let index = aggregate.schema.index_of_column(column)?;
        let Expr::Column(group_column) = &aggregate.group_expr[index] else {
            unreachable!("checked by is_unreduced_group_key");
        };
        let keys = LogicalPlanBuilder::from(reducer.clone())
            .project(vec![Expr::Column(reducer_key.clone())])?
            .alias(REDUCER_ALIAS)?
            .build()?;
        let reducer_key = Column::new(Some(REDUCER_ALIAS), &reducer_key.name);
        let input = LogicalPlanBuilder::from(aggregate.input.as_ref().clone())
            .join_detailed(
                keys,
                JoinType::LeftSemi,
                (vec![group_column.clone()], vec![reducer_key]),
                None,
                NullEquality::NullEqualsNothing,
            )?
            .build()?;
        return plan.with_new_exprs(plan.expressions(), vec![input]);
    }
    let beneath = column_beneath(plan, column).expect("checked by is_unreduced_group_key");
    let input = with_reduced_aggregate(plan.inputs()[0], &beneath, reducer, reducer_key)?;
    plan.with_new_exprs(plan.expressions(), vec![input])
}

#[cfg(test)]
mod tests;
