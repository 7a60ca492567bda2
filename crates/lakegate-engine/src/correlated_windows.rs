//! `CorrelatedAggregatesAsWindows`: a logical optimizer rule that computes a
//! decorrelated subquery's aggregate as a window over the rows the outer
//! query has joined already, so that its table is read once.
//!
//! TPC-H Q17 compares each selected part's line items with
//! `(SELECT 0.2 * avg(l_quantity) FROM lineitem WHERE l_partkey = p_partkey)`.
//! DataFusion decorrelates that into an aggregate of `lineitem` grouped by
//! `l_partkey`, joined to the outer `lineitem ⋈ part` on the part key: two
//! full scans of the largest table. But the outer join already holds, for
//! every selected part, exactly the line items the subquery aggregates, so
//! `avg(l_quantity) OVER (PARTITION BY p_partkey)` over the outer rows gives
//! the same value without the second scan (the "WinMagic" rewrite of
//! Zuzarte et al., SIGMOD 2003).
//!
//! The rule rewrites an inner or semi join `O ⋈ γ_g(T)` on `O.k = T.g` (the
//! aggregate's only group column, beneath projections and aliases) into a
//! window over `O` partitioned by `k`, the join's filter applied above it,
//! when:
//!
//! * `T` is a table scan (beneath filters and projections of bare columns)
//!   and `O` contains a scan of the same table with the same conditions, no
//!   limit and nothing volatile: the same rows;
//! * the path from `O` down to that scan is only inner joins, filters and
//!   projections; no join on it reads a column of the scan other than `g`
//!   (as an equi-join key) and no filter reads the scan's columns. Then
//!   every row of the scan with `g = v` appears in `O` the same number of
//!   times, a number that depends on `v` only;
//! * `k` is the scan's `g`, or equal to it through an equi-join on that path;
//! * every aggregate is `avg`, `min` or `max` (without `DISTINCT`, `FILTER`
//!   or `ORDER BY`): repeating every row of a group the same number of times
//!   does not change them (`sum` and `count` it would);
//! * the outer side keeps few of the key's values (estimated, as for
//!   `AggregateOnlyJoinedKeys`, at most [`MAX_KEY_SHARE`]): a window sorts
//!   the rows it partitions, which costs more per row than a scan.
//!
//! A join row exists only where `O` has a row, so the rows with `k = v` are
//! `T`'s group `v` repeated alike; a null `k` matches no group, and is
//! filtered out before the window. The aggregate's input may already be
//! narrowed by `AggregateOnlyJoinedKeys`'s semi join (the two rules run in
//! every pass, and DataFusion extracts the join keys the window needs only
//! after the first): that removes only groups the join cannot match, so
//! the window, which computes every group the outer rows have, gives the
//! same join.
//!
//! Under a policy nothing changes in what is read: both scans are the same
//! secured table for the same role (the same row filter and masks), and the
//! window reads only rows the outer query has read already.

use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, NullEquality, Result, TableReference};
use datafusion::logical_expr::expr::{WindowFunction, WindowFunctionParams};
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{
    Aggregate, AggregateUDF, Expr, Join, JoinType, LogicalPlan, LogicalPlanBuilder, TableScan,
    WindowFrame, WindowFunctionDefinition,
};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};

use crate::estimates::{FilteredScan, unqualified};
use crate::plan_facts::plain_aggregate;
use crate::reduce_aggregates::{smallest_reducer, without_reducer};

/// The largest estimated share of its table's distinct keys the outer side
/// may keep: the window sorts the outer rows, so they must be few against
/// the second scan they save.
const MAX_KEY_SHARE: f64 = 0.1;

/// Aggregates whose value over a group is unchanged when every row of the
/// group is repeated the same number of times.
const REPETITION_INSENSITIVE: [&str; 3] = ["avg", "min", "max"];

/// Computes correlated aggregates as windows over the outer rows (module
/// docs).
#[derive(Debug, Default)]
pub(crate) struct CorrelatedAggregatesAsWindows;

impl OptimizerRule for CorrelatedAggregatesAsWindows {
    fn name(&self) -> &str {
        "lakegate_correlated_aggregates_as_windows"
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
        // Which side may hold the aggregate (true: the right): a semi join
        // returns the other side's rows, an inner join both.
        let sides: &[bool] = match join.join_type {
            JoinType::Inner => &[true, false],
            JoinType::LeftSemi => &[true],
            JoinType::RightSemi => &[false],
            _ => &[],
        };
        for &aggregate_on_right in sides {
            if let Some(windowed) = as_window(join, aggregate_on_right)? {
                return Ok(Transformed::yes(windowed));
            }
        }
        Ok(Transformed::no(plan))
    }
}

/// `join` with its aggregate side (the right when `aggregate_on_right`)
/// computed as a window over its other side, when the module's conditions
/// hold.
fn as_window(join: &Join, aggregate_on_right: bool) -> Result<Option<LogicalPlan>> {
    if join.null_equality != NullEquality::NullEqualsNothing {
        return Ok(None);
    }
    let [(left_key, right_key)] = join.on.as_slice() else {
        return Ok(None);
    };
    let (outer, grouped, outer_key, grouped_key) = if aggregate_on_right {
        (&join.left, &join.right, left_key, right_key)
    } else {
        (&join.right, &join.left, right_key, left_key)
    };
    let (Expr::Column(outer_key), Expr::Column(grouped_key)) = (outer_key, grouped_key) else {
        return Ok(None);
    };
    let Some((aggregate, outputs)) = over_aggregate(grouped) else {
        return Ok(None);
    };
    let [Expr::Column(group)] = aggregate.group_expr.as_slice() else {
        return Ok(None);
    };
    // The join key must be the group column itself, passed up unchanged.
    let group_output = Expr::Column(Column::from(aggregate.schema.qualified_field(0)));
    let Ok(key_index) = grouped.schema().index_of_column(grouped_key) else {
        return Ok(None);
    };
    if outputs[key_index] != group_output {
        return Ok(None);
    }
    let Some(functions) = repetition_insensitive(aggregate) else {
        return Ok(None);
    };
    // A reducer of `AggregateOnlyJoinedKeys` (which may have run in an
    // earlier pass, before the join's keys were extracted) removes only
    // groups the join would not match.
    let Some(rows) = RowSource::of(without_reducer(&aggregate.input, group)) else {
        return Ok(None);
    };
    if group.relation.as_ref() != Some(&rows.qualifier) {
        return Ok(None);
    }
    let Some(path) = path_to(outer, &rows, &group.name) else {
        return Ok(None);
    };
    if !path.equal_to_group.contains(outer_key) {
        return Ok(None);
    }
    let few_keys =
        smallest_reducer(outer, outer_key).is_some_and(|(share, ..)| share <= MAX_KEY_SHARE);
    if !few_keys {
        return Ok(None);
    }

    // The aggregates' arguments, read from the outer side's copy of the rows.
    let mut window_exprs = Vec::with_capacity(functions.len());
    for (function, args) in functions {
        let mut outer_args = Vec::with_capacity(args.len());
        for arg in args {
            let Some(arg) = requalified(arg, &rows.qualifier, &path.qualifier, outer) else {
                return Ok(None);
            };
            outer_args.push(arg);
        }
        window_exprs.push(Expr::from(WindowFunction {
            fun: WindowFunctionDefinition::AggregateUDF(function),
            params: WindowFunctionParams {
                args: outer_args,
                partition_by: vec![Expr::Column(outer_key.clone())],
                order_by: vec![],
                window_frame: WindowFrame::new(None),
                filter: None,
                null_treatment: None,
                distinct: false,
            },
        }));
    }
    let windowed = LogicalPlanBuilder::from(outer.as_ref().clone())
        .filter(Expr::Column(outer_key.clone()).is_not_null())?
        .window(window_exprs)?
        .build()?;

    // The aggregate's outputs over the window: its group column is the
    // outer key, each aggregate the window column computed beside it.
    let window_columns = windowed.schema().columns();
    let outer_width = outer.schema().fields().len();
    let aggregate_columns = aggregate.schema.columns();
    let over_window = |expr: &Expr| {
        with_columns_replaced(expr, |c| {
            match aggregate_columns.iter().position(|a| a == c)? {
                0 => Some(Expr::Column(outer_key.clone())),
                i => Some(Expr::Column(window_columns[outer_width + i - 1].clone())),
            }
        })
    };
    let grouped_columns = grouped.schema().columns();
    let grouped_over_window = outputs
        .iter()
        .map(over_window)
        .collect::<Result<Vec<_>>>()?;
    let replaced = |expr: &Expr| {
        with_columns_replaced(expr, |c| {
            let i = grouped_columns.iter().position(|g| g == c)?;
            Some(grouped_over_window[i].clone())
        })
    };

    let mut builder = LogicalPlanBuilder::from(windowed);
    if let Some(filter) = &join.filter {
        builder = builder.filter(replaced(filter)?)?;
    }
    let outer_columns = outer.schema().columns().into_iter().map(Expr::Column);
    let grouped_exprs = grouped_columns
        .iter()
        .zip(&grouped_over_window)
        .map(|(column, expr)| {
            expr.clone()
                .alias_qualified(column.relation.clone(), &column.name)
        });
    let exprs: Vec<Expr> = match (join.join_type, aggregate_on_right) {
        (JoinType::Inner, true) => outer_columns.chain(grouped_exprs).collect(),
        (JoinType::Inner, false) => grouped_exprs.chain(outer_columns).collect(),
        _ => outer_columns.collect(),
    };
    let rewritten = builder.project(exprs)?.build()?;
    // Defensive: the join's output, column for column, or nothing changes.
    if !rewritten
        .schema()
        .logically_equivalent_names_and_types(&join.schema)
    {
        return Ok(None);
    }
    Ok(Some(rewritten))
}

/// The aggregate beneath `plan` (through projections and aliases), with
/// each of `plan`'s output columns as an expression over its outputs.
fn over_aggregate(plan: &LogicalPlan) -> Option<(&Aggregate, Vec<Expr>)> {
    match plan {
        LogicalPlan::Aggregate(aggregate) => Some((
            aggregate,
            aggregate
                .schema
                .columns()
                .into_iter()
                .map(Expr::Column)
                .collect(),
        )),
        LogicalPlan::SubqueryAlias(alias) => over_aggregate(&alias.input),
        LogicalPlan::Projection(projection) => {
            let (aggregate, beneath) = over_aggregate(&projection.input)?;
            let input_columns = projection.input.schema().columns();
            let outputs = projection
                .expr
                .iter()
                .map(|expr| {
                    if expr.is_volatile() {
                        return None;
                    }
                    let expr = expr.clone().unalias_nested().data;
                    with_columns_replaced(&expr, |c| {
                        let i = input_columns.iter().position(|i| i == c)?;
                        Some(beneath[i].clone())
                    })
                    .ok()
                })
                .collect::<Option<Vec<_>>>()?;
            Some((aggregate, outputs))
        }
        _ => None,
    }
}

/// Each of the aggregate's functions with its arguments, when all are
/// insensitive to repeated rows and plain (no `DISTINCT`, `FILTER`, `ORDER
/// BY` or null treatment).
fn repetition_insensitive(aggregate: &Aggregate) -> Option<Vec<(Arc<AggregateUDF>, Vec<Expr>)>> {
    aggregate
        .aggr_expr
        .iter()
        .map(|expr| {
            let unaliased = match expr {
                Expr::Alias(alias) => alias.expr.as_ref(),
                other => other,
            };
            let function = plain_aggregate(unaliased, &REPETITION_INSENSITIVE)?;
            Some((Arc::clone(&function.func), function.params.args.clone()))
        })
        .collect()
}

/// `expr` over columns qualified `from`, with each column qualified `to`
/// instead, when every such column is one of `plan`'s.
fn requalified(
    expr: Expr,
    from: &TableReference,
    to: &TableReference,
    plan: &LogicalPlan,
) -> Option<Expr> {
    let moved = with_columns_replaced(&expr, |c| {
        (c.relation.as_ref() == Some(from))
            .then(|| Expr::Column(Column::new(Some(to.clone()), &c.name)))
    })
    .ok()?;
    let readable = moved
        .column_refs()
        .iter()
        .all(|c| plan.schema().has_column(c));
    readable.then_some(moved)
}

/// The rows a table scan gives beneath filters, projections of bare columns
/// and an alias: the table, what its columns are qualified by, and the
/// conditions on them (unqualified).
struct RowSource<'a> {
    scan: &'a TableScan,
    qualifier: TableReference,
    conditions: Vec<Expr>,
}

impl<'a> RowSource<'a> {
    fn of(plan: &'a LogicalPlan) -> Option<Self> {
        let FilteredScan {
            scan,
            predicates,
            alias,
        } = FilteredScan::of(plan)?;
        if scan.fetch.is_some() {
            return None;
        }
        let mut conditions: Vec<Expr> = Vec::new();
        for conjunct in predicates.into_iter().flat_map(|p| split_conjunction(p)) {
            if conjunct.is_volatile() {
                return None;
            }
            let condition = unqualified(conjunct).ok()?;
            if !conditions.contains(&condition) {
                conditions.push(condition);
            }
        }
        Some(Self {
            scan,
            qualifier: alias.unwrap_or(&scan.table_name).clone(),
            conditions,
        })
    }

    /// Whether `other` gives the same rows: the same table under the same
    /// conditions (in any order).
    fn same_rows(&self, other: &RowSource) -> bool {
        self.scan.table_name == other.scan.table_name
            && self.conditions.len() == other.conditions.len()
            && self.conditions.iter().all(|c| other.conditions.contains(c))
    }
}

/// Where the outer side holds the aggregated rows: the qualifier of the
/// scan's columns there, and the columns equal to its group column.
struct PathToRows {
    qualifier: TableReference,
    equal_to_group: Vec<Column>,
}

/// The path from `plan` down to a scan giving `rows`, when each of its rows
/// appears in `plan` a number of times that depends only on its `group`
/// column's value (module docs).
fn path_to(plan: &LogicalPlan, rows: &RowSource, group: &str) -> Option<PathToRows> {
    if let Some(here) = RowSource::of(plan) {
        return here.same_rows(rows).then(|| PathToRows {
            equal_to_group: vec![Column::new(Some(here.qualifier.clone()), group)],
            qualifier: here.qualifier,
        });
    }
    match plan {
        LogicalPlan::Projection(projection) => {
            let path = path_to(&projection.input, rows, group)?;
            // The scan's columns leave the projection unchanged, if at all.
            let passed_through =
                projection
                    .expr
                    .iter()
                    .zip(projection.schema.columns())
                    .all(|(expr, output)| {
                        output.relation.as_ref() != Some(&path.qualifier)
                            || matches!(expr.clone().unalias(), Expr::Column(c) if c == output)
                    });
            passed_through.then_some(path)
        }
        LogicalPlan::Filter(filter) => {
            let path = path_to(&filter.input, rows, group)?;
            (!reads(&filter.predicate, &path.qualifier)).then_some(path)
        }
        LogicalPlan::Join(join)
            if join.join_type == JoinType::Inner
                && join.null_equality == NullEquality::NullEqualsNothing =>
        {
            let (mut path, on_left) = match path_to(&join.left, rows, group) {
                Some(path) => (path, true),
                None => (path_to(&join.right, rows, group)?, false),
            };
            let group_column = Expr::Column(Column::new(Some(path.qualifier.clone()), group));
            let mut equal = Vec::new();
            for (left, right) in &join.on {
                let (own, other) = if on_left {
                    (left, right)
                } else {
                    (right, left)
                };
                if !reads(own, &path.qualifier) {
                    continue;
                }
                if *own != group_column {
                    return None;
                }
                if let Expr::Column(other) = other {
                    equal.push(other.clone());
                }
            }
            if join
                .filter
                .as_ref()
                .is_some_and(|f| reads(f, &path.qualifier))
            {
                return None;
            }
            path.equal_to_group.extend(equal);
            Some(path)
        }
        _ => None,
    }
}

/// `expr` with each column that `replacement` gives an expression for
/// replaced by it.
fn with_columns_replaced(
    expr: &Expr,
    replacement: impl Fn(&Column) -> Option<Expr>,
) -> Result<Expr> {
    expr.clone()
        .transform(|e| {
            Ok(match &e {
                Expr::Column(c) => match replacement(c) {
                    Some(replaced) => Transformed::yes(replaced),
                    None => Transformed::no(e),
                },
                _ => Transformed::no(e),
            })
        })
        .map(|t| t.data)
}

/// Whether `expr` reads a column qualified `qualifier`.
fn reads(expr: &Expr, qualifier: &TableReference) -> bool {
    expr.column_refs()
        .iter()
        .any(|c| c.relation.as_ref() == Some(qualifier))
}

#[cfg(test)]
mod tests;
