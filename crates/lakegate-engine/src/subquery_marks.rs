//! `ExactSubqueryMarks`: `IN` and `EXISTS` subqueries in projections, and
//! inside boolean expressions of filters, planned as mark joins with SQL's
//! three-valued answers.
//!
//! DataFusion 55 plans a subquery at the top of a filter as a semi or anti
//! join (null-aware for `NOT IN`), and one inside a filter's expression (`p
//! OR x IN (...)`) as a mark join, whose mark is only ever true or false:
//! `x NOT IN (SELECT ...)` under an `OR` then admits the rows where `x` is
//! NULL, which SQL rejects (its answer is NULL). In a projection it does
//! not plan them at all ("Physical plan does not support logical expression
//! InSubquery"). Lakegate meets both in its own policies: a role's grants
//! are the union of their row filters (`(f1) OR (f2)`), and cell-level
//! security computes each cell with `CASE WHEN (f1) THEN ...`.
//!
//! This rule, run before DataFusion's subquery rules, gives every such
//! subquery the answer SQL defines:
//!
//! ```text
//! EXISTS (S)      mark of S (joined on its correlation)
//! x IN (S)        CASE WHEN match THEN TRUE WHEN unknown THEN NULL ELSE FALSE END
//!                   match:   a row of S equal to x             (a mark join)
//!                   unknown: a row of S where x = y is unknown  (x or y is NULL):
//!                            a mark join when S is correlated, else
//!                            (x IS NULL AND S has rows) OR S has a NULL,
//!                            each a one-row aggregate of S (computed once)
//! NOT p           the negation of the above
//! ```
//!
//! Subqueries at the top of a filter's conjunction are left to DataFusion,
//! whose semi and null-aware anti joins are exact and faster. The join
//! conditions come from DataFusion's own `PullUpCorrelatedExpr`, as its
//! rule builds them.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::common::{Column, Result, ScalarValue, plan_err};
use datafusion::functions_aggregate::expr_fn::count;
use datafusion::logical_expr::expr::{Exists, InSubquery};
use datafusion::logical_expr::expr_rewriter::{create_col_from_scalar_expr, replace_col};
use datafusion::logical_expr::utils::{conjunction, split_conjunction_owned};
use datafusion::logical_expr::{
    Expr, Filter, JoinType, LogicalPlan, LogicalPlanBuilder, Projection, Subquery, lit, when,
};
use datafusion::optimizer::decorrelate::PullUpCorrelatedExpr;
use datafusion::optimizer::optimizer::ApplyOrder;
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};

/// See the module documentation.
#[derive(Debug, Default)]
pub(crate) struct ExactSubqueryMarks;

/// The rule's name; it runs before the rule of this name.
pub(crate) const RUNS_BEFORE: &str = "decorrelate_predicate_subquery";

impl OptimizerRule for ExactSubqueryMarks {
    fn name(&self) -> &str {
        "lakegate_exact_subquery_marks"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::TopDown)
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        match plan {
            LogicalPlan::Projection(projection) if projection.expr.iter().any(has_subquery) => {
                rewrite_projection(projection, config).map(Transformed::yes)
            }
            LogicalPlan::Filter(filter) if embeds_subquery(&filter.predicate) => {
                rewrite_filter(filter, config).map(Transformed::yes)
            }
            other => Ok(Transformed::no(other)),
        }
    }
}

fn has_subquery(expr: &Expr) -> bool {
    expr.exists(|e| Ok(matches!(e, Expr::InSubquery(_) | Expr::Exists(_))))
        .expect("looking for subqueries cannot fail")
}

/// Whether a subquery stands at the top of a conjunct, where DataFusion
/// plans it exactly (a semi or anti join).
fn is_top_level_subquery(conjunct: &Expr) -> bool {
    match conjunct {
        Expr::InSubquery(_) | Expr::Exists(_) => true,
        Expr::Not(inner) => matches!(**inner, Expr::InSubquery(_) | Expr::Exists(_)),
        _ => false,
    }
}

/// Whether some conjunct of `predicate` has a subquery below its top.
fn embeds_subquery(predicate: &Expr) -> bool {
    datafusion::logical_expr::utils::split_conjunction(predicate)
        .into_iter()
        .any(|conjunct| !is_top_level_subquery(conjunct) && has_subquery(conjunct))
}

fn rewrite_projection(projection: Projection, config: &dyn OptimizerConfig) -> Result<LogicalPlan> {
    let Projection { expr, input, .. } = projection;
    let mut input = Arc::unwrap_or_clone(input);
    let mut exprs = Vec::with_capacity(expr.len());
    for e in expr {
        let name = e.schema_name().to_string();
        let (joined, rewritten) = marks(input, e, config)?;
        input = joined;
        // The column keeps the name it had with the subquery.
        exprs.push(rewritten.alias_if_changed(name)?);
    }
    Ok(LogicalPlan::Projection(Projection::try_new(
        exprs,
        Arc::new(input),
    )?))
}

fn rewrite_filter(filter: Filter, config: &dyn OptimizerConfig) -> Result<LogicalPlan> {
    let Filter {
        predicate, input, ..
    } = filter;
    let original: Vec<Expr> = input
        .schema()
        .columns()
        .into_iter()
        .map(Expr::from)
        .collect();
    let mut input = Arc::unwrap_or_clone(input);
    let mut conjuncts = Vec::new();
    for conjunct in split_conjunction_owned(predicate) {
        if is_top_level_subquery(&conjunct) || !has_subquery(&conjunct) {
            conjuncts.push(conjunct);
            continue;
        }
        let (joined, rewritten) = marks(input, conjunct, config)?;
        input = joined;
        conjuncts.push(rewritten);
    }
    let predicate = conjunction(conjuncts).expect("a filter has a predicate");
    // The marks are the filter's business only: its parent sees the columns
    // it saw before.
    LogicalPlanBuilder::from(input)
        .filter(predicate)?
        .project(original)?
        .build()
}

/// `expr` with each `IN` and `EXISTS` subquery replaced by its exact answer
/// computed from mark joins added to `input`.
fn marks(
    input: LogicalPlan,
    expr: Expr,
    config: &dyn OptimizerConfig,
) -> Result<(LogicalPlan, Expr)> {
    let mut input = input;
    let rewritten = expr
        .transform(|e| match e {
            Expr::Exists(Exists { subquery, negated }) => {
                let Some((joined, mark)) = mark_join(&input, &subquery, None, config)? else {
                    return Ok(Transformed::no(Expr::Exists(Exists { subquery, negated })));
                };
                input = joined;
                Ok(Transformed::yes(if negated { !mark } else { mark }))
            }
            Expr::InSubquery(InSubquery {
                expr,
                subquery,
                negated,
            }) => match in_answer(&input, &expr, &subquery, config)? {
                Some((joined, answer)) => {
                    input = joined;
                    Ok(Transformed::yes(if negated { !answer } else { answer }))
                }
                None => Ok(Transformed::no(Expr::InSubquery(InSubquery {
                    expr,
                    subquery,
                    negated,
                }))),
            },
            other => Ok(Transformed::no(other)),
        })
        .data()?;
    Ok((input, rewritten))
}

/// `x IN (S)` as SQL answers it (see the module documentation).
fn in_answer(
    input: &LogicalPlan,
    x: &Expr,
    subquery: &Subquery,
    config: &dyn OptimizerConfig,
) -> Result<Option<(LogicalPlan, Expr)>> {
    let Some(y) = subquery.subquery.head_output_expr()? else {
        return plan_err!("an IN subquery returns one column");
    };
    let equal = |x: Expr, y: Expr| x.eq(y);
    let Some((matched, is_match)) = mark_join(input, subquery, Some((x, &equal)), config)? else {
        return Ok(None);
    };
    let correlated = !subquery.outer_ref_columns.is_empty();
    let (joined, unknown) = if correlated {
        let undecided = |x: Expr, y: Expr| x.is_null().or(y.is_null());
        match mark_join(&matched, subquery, Some((x, &undecided)), config)? {
            Some(found) => found,
            None => return Ok(None),
        }
    } else {
        let plan = Arc::clone(&subquery.subquery);
        let has_rows = rows_exist(LogicalPlanBuilder::from((*plan).clone()).build()?)?;
        let has_null = rows_exist(
            LogicalPlanBuilder::from((*plan).clone())
                .filter(y.clone().is_null())?
                .build()?,
        )?;
        (matched, x.clone().is_null().and(has_rows).or(has_null))
    };
    let answer = when(is_match, lit(true))
        .when(unknown, lit(ScalarValue::Boolean(None)))
        .otherwise(lit(false))?;
    Ok(Some((joined, answer)))
}

/// `(SELECT count(*) FROM plan) > 0`, for an uncorrelated `plan`.
fn rows_exist(plan: LogicalPlan) -> Result<Expr> {
    let counted = LogicalPlanBuilder::from(plan)
        .aggregate(Vec::<Expr>::new(), vec![count(lit(1)).alias("rows")])?
        .build()?;
    Ok(Expr::ScalarSubquery(Subquery {
        subquery: Arc::new(counted),
        outer_ref_columns: Vec::new(),
        spans: Default::default(),
    })
    .gt(lit(0_i64)))
}

/// The condition of an IN mark: the outer expression, and how it compares
/// with the subquery's column.
type InCondition<'a> = (&'a Expr, &'a dyn Fn(Expr, Expr) -> Expr);

/// `input` LEFT MARK JOIN `subquery` on its correlation (and, for `IN`, the
/// condition on its output column), and the mark column; `None` when the
/// correlation cannot be pulled up into a join.
fn mark_join(
    input: &LogicalPlan,
    subquery: &Subquery,
    condition: Option<InCondition<'_>>,
    config: &dyn OptimizerConfig,
) -> Result<Option<(LogicalPlan, Expr)>> {
    let alias = config.alias_generator().next("__lakegate_mark");
    let plan = subquery.subquery.as_ref();
    // PullUpCorrelatedExpr keeps the subquery's output column for an IN.
    let in_predicate = match condition {
        Some((x, _)) => {
            let Some(y) = plan.head_output_expr()? else {
                return plan_err!("an IN subquery returns one column");
            };
            Some(x.clone().eq(y))
        }
        None => None,
    };
    let mut pull_up = PullUpCorrelatedExpr::new()
        .with_in_predicate_opt(in_predicate)
        .with_exists_sub_query(condition.is_none());
    let pulled = plan.clone().rewrite(&mut pull_up).data()?;
    if !pull_up.can_pull_up {
        return Ok(None);
    }
    let right = LogicalPlanBuilder::from(pulled).alias(&alias)?.build()?;
    // Correlated columns, pulled up into join conditions, are the
    // subquery's: they are read through the alias now.
    let correlated: BTreeSet<Column> = pull_up
        .correlated_subquery_cols_map
        .values()
        .flatten()
        .cloned()
        .collect();
    let aliased: Vec<Column> = correlated
        .iter()
        .map(|c| Column::new(Some(alias.as_str()), &c.name))
        .collect();
    let renames: HashMap<&Column, &Column> = correlated.iter().zip(aliased.iter()).collect();
    let mut conditions = Vec::new();
    if let Some(correlation) = conjunction(pull_up.join_filters) {
        conditions.push(replace_col(correlation, &renames)?);
    }
    if let Some((x, compare)) = condition {
        let y = plan.head_output_expr()?.expect("checked above");
        let y = Expr::Column(create_col_from_scalar_expr(&y, alias.clone())?);
        conditions.push(compare(x.clone(), y));
    }
    let on = conjunction(conditions).unwrap_or_else(|| lit(true));
    let joined = LogicalPlanBuilder::from(input.clone())
        .join_on(right, JoinType::LeftMark, Some(on))?
        .build()?;
    Ok(Some((
        joined,
        Expr::Column(Column::new(Some(alias.as_str()), "mark")),
    )))
}
