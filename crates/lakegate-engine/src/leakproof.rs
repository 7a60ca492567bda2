//! Which user predicates may run beneath a policy barrier.
//!
//! Pushing a user predicate into the Parquet scan (beside the policy's own
//! filter) is what makes a secured table as fast as a raw one, but it means the
//! predicate also runs on rows the policy rejects. That is safe only for a
//! *leakproof* predicate, PostgreSQL's term: one that cannot fail, has no side
//! effect and reveals nothing but its boolean result, which the policy filter
//! then discards for hidden rows. Invariant 7 adds: it may only read columns the
//! role sees raw, because raw Parquet statistics are pruned with it.
//!
//! The rule here is an allow-list: comparisons, boolean connectives, NULL
//! tests, `BETWEEN`, `IN (literals)` and `LIKE` with a literal pattern, over
//! raw visible columns and literals. Anything else (arithmetic that can
//! overflow or divide by zero, casts that can fail, any function) stays above
//! the barrier.

use std::collections::BTreeSet;

use datafusion::logical_expr::{Expr, Operator};

/// Whether `expr` may be evaluated beneath the barrier, given the columns the
/// role sees unmasked and in every visible row.
pub fn is_leakproof(expr: &Expr, raw_columns: &BTreeSet<String>) -> bool {
    match expr {
        Expr::Column(column) => raw_columns.contains(&column.name),
        Expr::Literal(_, _) => true,
        Expr::BinaryExpr(binary) => {
            use Operator::*;
            matches!(
                binary.op,
                Eq | NotEq | Lt | LtEq | Gt | GtEq | And | Or | IsDistinctFrom | IsNotDistinctFrom
            ) && is_leakproof(&binary.left, raw_columns)
                && is_leakproof(&binary.right, raw_columns)
        }
        Expr::Not(inner)
        | Expr::IsNull(inner)
        | Expr::IsNotNull(inner)
        | Expr::IsTrue(inner)
        | Expr::IsFalse(inner)
        | Expr::IsNotTrue(inner)
        | Expr::IsNotFalse(inner)
        | Expr::IsUnknown(inner)
        | Expr::IsNotUnknown(inner) => is_leakproof(inner, raw_columns),
        Expr::Between(between) => {
            is_leakproof(&between.expr, raw_columns)
                && is_literal(&between.low)
                && is_literal(&between.high)
        }
        Expr::InList(in_list) => {
            is_leakproof(&in_list.expr, raw_columns) && in_list.list.iter().all(is_literal)
        }
        // A literal pattern without an escape character cannot fail to compile.
        Expr::Like(like) => {
            like.escape_char.is_none()
                && is_leakproof(&like.expr, raw_columns)
                && is_literal(&like.pattern)
        }
        _ => false,
    }
}

fn is_literal(expr: &Expr) -> bool {
    matches!(expr, Expr::Literal(_, _))
}

#[cfg(test)]
mod tests {
    use datafusion::logical_expr::{col, lit};
    use datafusion::prelude::*;

    use super::*;

    fn raw() -> BTreeSet<String> {
        ["a".to_string(), "b".to_string()].into()
    }

    #[test]
    fn allow_list() {
        let safe = [
            col("a").gt(lit(5)),
            col("a").eq(col("b")).and(col("b").is_not_null()),
            col("a").between(lit(1), lit(9)),
            col("a").in_list(vec![lit(1), lit(2)], false),
            col("b").like(lit("%x%")),
            col("a").gt(lit(1)).or(col("b").lt(lit(2))).not(),
        ];
        for expr in safe {
            assert!(is_leakproof(&expr, &raw()), "{expr} should be leakproof");
        }
        let unsafe_ = [
            // a column that is masked or hidden
            col("masked").eq(lit(1)),
            // arithmetic can fail (division by zero, overflow)
            (lit(10) / (col("a") - lit(3))).gt(lit(0)),
            // casts can fail on stored values
            cast(col("b"), arrow::datatypes::DataType::Int32).eq(lit(1)),
            // any function could raise an error or leak through side effects
            length(col("b")).gt(lit(1)),
            col("a").in_list(vec![col("b")], false),
        ];
        for expr in unsafe_ {
            assert!(
                !is_leakproof(&expr, &raw()),
                "{expr} must stay above the barrier"
            );
        }
    }
}
