//! `TotalsFromGroups`: a logical optimizer rule that computes an
//! uncorrelated scalar subquery's total from the groups of an aggregate of
//! the same rows in the query around it, so that the rows are joined and
//! aggregated once.
//!
//! TPC-H Q11 keeps the parts whose stock value exceeds a fraction of the
//! total: the query groups `partsupp ⋈ supplier ⋈ nation` by part, and its
//! `HAVING` compares each group with a scalar subquery that aggregates the
//! same join again, whole. DataFusion runs that subquery as a plan of its
//! own: the join is computed twice. A total is the total of the groups'
//! totals, so the rule computes the subquery's aggregate from a copy of the
//! query's grouped aggregate:
//!
//! ```text
//! Filter: sum(v) > (<subquery>)                 Filter: sum(v) > (<subquery>)
//!   Aggregate: [k], [sum(v)]  ◀─ G                Aggregate: [k], [sum(v)]  ◀─ G
//!     J                                             J
//! <subquery>:                         ─▶        <subquery>:
//!   Projection: sum(v) * 0.0001                   Projection: sum(v) * 0.0001
//!     Aggregate: [], [sum(v)]                       Projection: CAST(sum(sum(v)) AS type of sum(v)) AS sum(v)
//!       J (the same rows)                             Aggregate: [], [sum(sum(v))]
//!                                                       Aggregate: [k], [sum(v)]  ◀─ a copy of G
//!                                                         J
//! ```
//!
//! The two occurrences of `G` are then the same subplan, and the physical
//! rule `ReuseRepeatedAggregates` (`reuse_subplans.rs`) computes it once:
//! DataFusion runs the subquery first, which keeps `G`'s groups, and the
//! query replays them.
//!
//! The rule rewrites an aggregate `T` of a scalar subquery that reads no
//! outer column, from a grouped aggregate `G` beneath the node holding the
//! subquery, when:
//!
//! * `T` has no group and `G` has group expressions (no grouping sets,
//!   which would count a row in several groups);
//! * `T`'s aggregates are exactly `G`'s (in any order), and each is
//!   `sum`, `min` or `max` without `DISTINCT`, `FILTER` or `ORDER BY`: over
//!   rows split into groups, the sum of the groups' sums, the least of their
//!   minimums and the greatest of their maximums are the whole's (a null
//!   where every value is null or there is no row, alike). Exactly: a
//!   subquery needing fewer of them would have its copy of `G` pruned by
//!   DataFusion's projection pushdown, and the copies would no longer
//!   match;
//! * `T`'s input equals `G`'s (the same plan, each scan of the very same
//!   table), calls nothing volatile and limits no scan: the same rows.
//!
//! `sum` of the groups' sums has a wider type than `sum` of the rows (a
//! decimal gains digits); it is cast back, so the subquery's schema is
//! unchanged (else nothing is rewritten). A floating-point sum adds in
//! another order, as DataFusion's partial aggregation does anyway.
//!
//! Under a policy nothing changes in what is read: the copy reads the same
//! secured tables for the same role as the subquery did, the same rows.

use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Result, internal_err};
use datafusion::datasource::source_as_provider;
use datafusion::logical_expr::expr::Alias;
use datafusion::logical_expr::{Aggregate, Cast, Expr, LogicalPlan, Projection, Subquery};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};

use crate::plan_facts::{is_repeatable, plain_aggregate};

/// Aggregates whose total over all rows is the same aggregate of the
/// groups' values.
const DECOMPOSABLE: [&str; 3] = ["sum", "min", "max"];

/// Computes subqueries' totals from the query's groups (module docs).
#[derive(Debug, Default)]
pub(crate) struct TotalsFromGroups;

impl OptimizerRule for TotalsFromGroups {
    fn name(&self) -> &str {
        "lakegate_totals_from_groups"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::TopDown)
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        let mut has_subquery = false;
        plan.apply_expressions(|expr| {
            expr.apply(|e| {
                has_subquery |= matches!(e, Expr::ScalarSubquery(_));
                Ok(TreeNodeRecursion::Continue)
            })
        })?;
        if !has_subquery {
            return Ok(Transformed::no(plan));
        }
        let groups = grouped_aggregates(&plan)?;
        if groups.is_empty() {
            return Ok(Transformed::no(plan));
        }
        plan.map_expressions(|expr| {
            expr.transform_up(|e| match e {
                Expr::ScalarSubquery(subquery) if subquery.outer_ref_columns.is_empty() => {
                    let rewritten = Arc::unwrap_or_clone(Arc::clone(&subquery.subquery))
                        .transform_up(|node| totals_from(node, &groups))?;
                    Ok(if rewritten.transformed {
                        Transformed::yes(Expr::ScalarSubquery(Subquery {
                            subquery: Arc::new(rewritten.data),
                            ..subquery
                        }))
                    } else {
                        Transformed::no(Expr::ScalarSubquery(subquery))
                    })
                }
                other => Ok(Transformed::no(other)),
            })
        })
    }
}

/// The aggregates with group expressions beneath `plan` (not in its
/// subqueries) whose aggregates may all be totalled from their groups.
fn grouped_aggregates(plan: &LogicalPlan) -> Result<Vec<Aggregate>> {
    let mut found = Vec::new();
    for input in plan.inputs() {
        input.apply(|node| {
            if let LogicalPlan::Aggregate(aggregate) = node
                && !aggregate.group_expr.is_empty()
                && !aggregate
                    .group_expr
                    .iter()
                    .any(|e| matches!(e, Expr::GroupingSet(_)))
                && aggregate.aggr_expr.iter().all(decomposable)
                && is_repeatable(&aggregate.input)
            {
                found.push(aggregate.clone());
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
    }
    Ok(found)
}

/// Whether `expr` is `sum`, `min` or `max` of one argument, plainly.
fn decomposable(expr: &Expr) -> bool {
    plain_aggregate(expr, &DECOMPOSABLE).is_some_and(|f| f.params.args.len() == 1)
}

/// `node`, when it is a subquery's total that one of `groups` holds, as the
/// total of that aggregate's groups (module docs).
fn totals_from(node: LogicalPlan, groups: &[Aggregate]) -> Result<Transformed<LogicalPlan>> {
    let LogicalPlan::Aggregate(total) = &node else {
        return Ok(Transformed::no(node));
    };
    if !total.group_expr.is_empty() {
        return Ok(Transformed::no(node));
    }
    for grouped in groups {
        if same_aggregates(&grouped.aggr_expr, &total.aggr_expr)
            && grouped.input == total.input
            && same_tables(&grouped.input, &total.input)?
            && let Some(rewritten) = total_of_groups(total, grouped)?
        {
            return Ok(Transformed::yes(rewritten));
        }
    }
    Ok(Transformed::no(node))
}

/// Whether `a` and `b` hold the same aggregates, in any order (each list
/// holds an aggregate once).
fn same_aggregates(a: &[Expr], b: &[Expr]) -> bool {
    a.len() == b.len() && a.iter().all(|e| b.contains(e))
}

/// Whether the scans of `a` and `b`, in order, read the very same tables
/// (plans compare their scans by name only).
fn same_tables(a: &LogicalPlan, b: &LogicalPlan) -> Result<bool> {
    let providers = |plan: &LogicalPlan| -> Result<Vec<Option<_>>> {
        let mut found = Vec::new();
        plan.apply_with_subqueries(|node| {
            if let LogicalPlan::TableScan(scan) = node {
                found.push(source_as_provider(&scan.source).ok());
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
        Ok(found)
    };
    let (a, b) = (providers(a)?, providers(b)?);
    Ok(a.len() == b.len()
        && a.iter().zip(&b).all(|pair| match pair {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }))
}

/// `total`'s aggregates computed over `grouped`'s groups, cast back to their
/// types and named as `total` named them; `None` when the schema would
/// differ.
fn total_of_groups(total: &Aggregate, grouped: &Aggregate) -> Result<Option<LogicalPlan>> {
    // The grouped aggregate's output: its groups, then its aggregates.
    let group_values = grouped.schema.columns().split_off(grouped.group_expr.len());
    let totals = total
        .aggr_expr
        .iter()
        .map(|aggregate| {
            let position = grouped.aggr_expr.iter().position(|e| e == aggregate);
            match (aggregate, position) {
                (Expr::AggregateFunction(function), Some(position)) => {
                    let mut function = function.clone();
                    function.params.args = vec![Expr::Column(group_values[position].clone())];
                    Ok(Expr::AggregateFunction(function))
                }
                _ => internal_err!("{aggregate} is not among the groups' aggregates"),
            }
        })
        .collect::<Result<Vec<_>>>()?;
    let over_groups = Aggregate::try_new(
        Arc::new(LogicalPlan::Aggregate(grouped.clone())),
        Vec::new(),
        totals,
    )?;
    let named = over_groups
        .schema
        .columns()
        .into_iter()
        .zip(total.schema.iter())
        .map(|(column, (qualifier, field))| {
            let cast = Expr::Cast(Cast::new(
                Box::new(Expr::Column(column)),
                field.data_type().clone(),
            ));
            Expr::Alias(Alias::new(cast, qualifier.cloned(), field.name()))
        })
        .collect();
    let projection = Projection::try_new(named, Arc::new(LogicalPlan::Aggregate(over_groups)))?;
    if projection.schema.as_ref() != total.schema.as_ref() {
        return Ok(None);
    }
    Ok(Some(LogicalPlan::Projection(projection)))
}

#[cfg(test)]
mod tests;
