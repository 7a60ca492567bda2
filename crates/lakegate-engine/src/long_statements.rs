//! Optimizer rules that keep the plans of long statements shallow and
//! cheap to plan: [`BalanceLongFilters`] and [`NestWideUnions`].
//!
//! Statements arrive with long chains already regrouped (see `statement_shape.rs`),
//! but DataFusion's filter pushdown splits a predicate into its conjuncts and
//! joins what stays with `conjunction`, which leans left: a 100,000-term
//! `AND` is 100,000 levels deep again, and the expression simplifier then
//! compares each level with everything beneath it (quadratic time). The rule
//! runs after every optimizer rule that rebuilds predicates and regroups
//! chains longer than [`REGROUP_THRESHOLD`] in filters and join conditions;
//! a regrouped conjunction is then kept whole (see [`keep_whole`]), so that
//! neither the logical nor the physical filter pushdown (which hands a
//! Parquet scan its predicate for pruning) splits it and leans it left
//! again.
//! It looks only down each predicate's left spine, so a plan without long
//! chains costs it a few pointer hops per filter.
//!
//! A `UNION ALL` of many queries is flattened by DataFusion into one union
//! node, whose physical planning compares every input with every other
//! (quadratic: a 20,000-branch union took a minute). [`NestWideUnions`], the
//! last rule, nests a union of more than [`MAX_UNION_INPUTS`] inputs into
//! unions of at most that many: the same rows, planned in linear time.

use std::sync::Arc;

use datafusion::common::Result;
use datafusion::common::tree_node::Transformed;
use datafusion::logical_expr::{BinaryExpr, Expr, LogicalPlan, Operator, Union};
use datafusion::optimizer::optimizer::ApplyOrder;
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};

use crate::left_chains::{Link, balanced, chain_longer_than, unchain};
use crate::statement_shape::REGROUP_THRESHOLD;

/// The optimizer rules after which predicates are regrouped: those that split
/// predicates and join them again.
pub(crate) const REBUILDING_RULES: [&str; 3] = [
    "push_down_filter",
    "common_sub_expression_eliminate",
    "simplify_expressions",
];

/// The most inputs one union node keeps (see [`NestWideUnions`]).
pub(crate) const MAX_UNION_INPUTS: usize = 64;

/// See the module documentation.
#[derive(Debug, Default)]
pub(crate) struct NestWideUnions;

impl OptimizerRule for NestWideUnions {
    fn name(&self) -> &str {
        "lakegate_nest_wide_unions"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::TopDown)
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        match plan {
            LogicalPlan::Union(union) if union.inputs.len() > MAX_UNION_INPUTS => {
                Ok(Transformed::yes(LogicalPlan::Union(nest(union))))
            }
            other => Ok(Transformed::no(other)),
        }
    }
}

/// `union` as a tree of unions of at most [`MAX_UNION_INPUTS`] inputs each,
/// the inputs in order. Every node keeps the whole union's schema: the
/// inputs were coerced to it already, and a sub-union claiming a column
/// nullable that none of its inputs has NULLs in changes no value.
fn nest(union: Union) -> Union {
    let Union { mut inputs, schema } = union;
    while inputs.len() > MAX_UNION_INPUTS {
        let mut grouped = Vec::with_capacity(inputs.len().div_ceil(MAX_UNION_INPUTS));
        let mut rest = inputs.into_iter().peekable();
        while rest.peek().is_some() {
            let group: Vec<_> = rest.by_ref().take(MAX_UNION_INPUTS).collect();
            grouped.push(if group.len() == 1 {
                group.into_iter().next().expect("one input")
            } else {
                Arc::new(LogicalPlan::Union(Union {
                    inputs: group,
                    schema: Arc::clone(&schema),
                }))
            });
        }
        inputs = grouped;
    }
    Union { inputs, schema }
}

/// See the module documentation.
#[derive(Debug, Default)]
pub(crate) struct BalanceLongFilters;

impl OptimizerRule for BalanceLongFilters {
    fn name(&self) -> &str {
        "lakegate_balance_long_filters"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::BottomUp)
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        match plan {
            LogicalPlan::Filter(mut filter) if is_long_chain(&filter.predicate) => {
                filter.predicate = keep_whole(balance(filter.predicate));
                Ok(Transformed::yes(LogicalPlan::Filter(filter)))
            }
            LogicalPlan::Join(mut join) if join.filter.as_ref().is_some_and(is_long_chain) => {
                join.filter = join.filter.map(|f| keep_whole(balance(f)));
                Ok(Transformed::yes(LogicalPlan::Join(join)))
            }
            other => Ok(Transformed::no(other)),
        }
    }
}

/// Whether `expr` heads a left-leaning run of one of `AND`/`OR` longer than
/// the threshold.
fn is_long_chain(expr: &Expr) -> bool {
    let Expr::BinaryExpr(BinaryExpr { op, .. }) = expr else {
        return false;
    };
    if !matches!(op, Operator::And | Operator::Or) {
        return false;
    }
    chain_longer_than(expr, REGROUP_THRESHOLD, |e| match e {
        Expr::BinaryExpr(BinaryExpr { left, op: this, .. })
            if this == op
                && matches!(left.as_ref(), Expr::BinaryExpr(BinaryExpr { op: o, .. }) if o == op) =>
        {
            Some(left.as_ref())
        }
        _ => None,
    })
}

/// The chain `expr` heads as a balanced tree, operands in order. Nested runs
/// of the same operator on the right stay as they are (they are short, or
/// were balanced already).
fn balance(expr: Expr) -> Expr {
    let Expr::BinaryExpr(BinaryExpr { op, .. }) = &expr else {
        return expr;
    };
    let op = *op;
    let operands = unchain(expr, |e| match e {
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: this,
            right,
        }) if this == op => Link::Chain(*left, *right),
        other => Link::Operand(other),
    });
    balanced(operands, &mut |left, right| {
        Expr::BinaryExpr(BinaryExpr::new(Box::new(left), op, Box::new(right)))
    })
}

/// A balanced conjunction as one predicate that filter pushdown, logical or
/// physical, does not split into its conjuncts (and so does not join them
/// again leaning left): `(a AND b AND ...) IS TRUE`. Where it stands, as a
/// filter's or a join's condition, a row passes only when the condition is
/// true, so `IS TRUE` changes nothing (NULL fails either way). Disjunctions
/// are not split, and stay as they are.
fn keep_whole(expr: Expr) -> Expr {
    match &expr {
        Expr::BinaryExpr(BinaryExpr {
            op: Operator::And, ..
        }) => Expr::IsTrue(Box::new(expr)),
        _ => expr,
    }
}

#[cfg(test)]
mod tests {
    use datafusion::logical_expr::utils::conjunction;
    use datafusion::logical_expr::{col, lit};

    use super::*;

    fn depth(expr: &Expr) -> usize {
        match expr {
            Expr::BinaryExpr(b) => 1 + depth(&b.left).max(depth(&b.right)),
            _ => 1,
        }
    }

    #[test]
    fn a_left_leaning_conjunction_becomes_balanced_in_order() {
        let terms: Vec<Expr> = (0..1000).map(|i| col("a").not_eq(lit(i))).collect();
        let chain = conjunction(terms.clone()).unwrap();
        assert!(is_long_chain(&chain));
        let balanced = balance(chain);
        assert!(depth(&balanced) <= 12, "{}", depth(&balanced));
        assert!(!is_long_chain(&balanced));
        assert_eq!(
            datafusion::logical_expr::utils::split_conjunction(&balanced)
                .into_iter()
                .cloned()
                .collect::<Vec<_>>(),
            terms
        );
    }

    #[test]
    fn short_chains_are_left_alone() {
        let chain = conjunction((0..10).map(|i| col("a").not_eq(lit(i)))).unwrap();
        assert!(!is_long_chain(&chain));
    }
}
