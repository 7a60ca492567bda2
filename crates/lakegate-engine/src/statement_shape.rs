//! The shape of a statement: long chains regrouped into balanced trees, and
//! the statement's size checked against documented limits, before anything
//! else walks it.
//!
//! A BI tool's multi-select filter is `c = 1 OR c = 2 OR ... OR c = 3000`.
//! The parser reads it in a loop, but the tree it builds leans left: 3,000
//! levels deep. Every later walk over it (the planner, the optimizer, the
//! physical expressions, even dropping it) recurses once per level, and
//! several of DataFusion's recompute a subtree's type or name at every level,
//! so both stack and time grow with the depth (a 3,000-term `+` chain took
//! 11 s to plan, a 10,000-term one 160 s). So, right after parsing:
//!
//! 1. **Chains are regrouped.** A run of more than [`REGROUP_THRESHOLD`]
//!    operands joined by one associative operator (`AND`, `OR`, `+`, `*`,
//!    `||`, `&`, `|`, `^`), or of queries joined by one set operation
//!    (`UNION [ALL]`, `INTERSECT [ALL]`), becomes a balanced tree with the
//!    operands in the same order: 100,000 terms are 17 levels deep. The
//!    answer is the same (boolean logic and string concatenation are
//!    associative, DataFusion's integer arithmetic wraps), with two
//!    exceptions that only such long chains meet: a floating-point sum may
//!    round differently in its last bits, and a decimal sum's result type
//!    has the precision the balanced additions need (its values are the
//!    same). Output column names do not change (DataFusion names `a + b + c`
//!    without parentheses either way).
//! 2. **Size is checked.** DataFusion 55 plans some shapes in time that
//!    grows much faster than the statement: nested function calls in cubic
//!    time, nested subqueries in exponential time (20 nested `IN`
//!    subqueries took 19 s), many joined tables or subqueries in one query
//!    in cubic time (200 joined tables, 27 s). A statement past any limit
//!    below is refused with an error naming it, before it is planned:
//!
//!    | limit | what it counts |
//!    | --- | --- |
//!    | [`MAX_NESTING`] | levels of nesting once chains are regrouped: parentheses, function calls, CASE, subqueries, chains of `-` or `/` |
//!    | [`MAX_SUBQUERY_NESTING`] | subqueries in expressions (`IN (SELECT ...)`, `EXISTS`, scalar) nested in one another |
//!    | [`MAX_SUBQUERIES`] | subqueries in expressions in the whole statement |
//!    | [`MAX_JOINED_TABLES`] | tables, derived tables and table functions one `SELECT` reads |
//!    | [`MAX_SET_OPERANDS`] | queries joined by `UNION`, `INTERSECT`, `EXCEPT` |
//!
//!    At these limits a statement plans in a second or two in a debug build.
//!
//! The walks here are sqlparser's visitors, which grow their stack on demand
//! (its `recursive-protection`), and loops over explicit stacks.

use std::ops::ControlFlow;

use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, Query, Select, SetExpr, SetOperator, SetQuantifier, Value, Values,
    VisitMut, VisitorMut,
};

use crate::error::{EngineError, Result};
use crate::left_chains::{Link, balanced, chain_longer_than, unchain};

/// The deepest nesting a statement may have once its chains are regrouped:
/// levels of expressions and subqueries, and of set operations.
pub const MAX_NESTING: usize = 256;

/// The deepest subqueries in expressions may nest in one another.
pub const MAX_SUBQUERY_NESTING: usize = 10;

/// The most subqueries in expressions one statement may have.
pub const MAX_SUBQUERIES: usize = 64;

/// The most tables, derived tables and table functions one `SELECT` may read.
pub const MAX_JOINED_TABLES: usize = 64;

/// The most queries one statement may join with set operations (`UNION`,
/// `INTERSECT`, `EXCEPT`): each branch is planned on its own, and 100,000
/// branches take about two gigabytes while they are planned.
pub const MAX_SET_OPERANDS: usize = 100_000;

/// Chains longer than this are regrouped; shorter ones keep the shape the
/// user wrote (and the plans that tests and EXPLAIN output show).
pub const REGROUP_THRESHOLD: usize = 64;

/// The parser's recursion limit: it spends about three of its levels on
/// each level of nesting (an operand, a parenthesis, a function argument),
/// so [`MAX_NESTING`] levels need three times as many.
pub(crate) const PARSER_RECURSION_LIMIT: usize = 3 * MAX_NESTING;

/// A limit a statement went past.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PastLimit {
    Nesting,
    SubqueryNesting,
    Subqueries,
    JoinedTables,
    SetOperands,
}

impl PastLimit {
    /// The error naming the limit.
    pub(crate) fn error(self) -> EngineError {
        let message = match self {
            Self::Nesting => format!(
                "the statement nests deeper than {MAX_NESTING} levels (parentheses, function \
                 calls, CASE, subqueries, or chains of operators that cannot be regrouped such as \
                 - and /), the most Lakegate accepts"
            ),
            Self::SubqueryNesting => format!(
                "the statement nests subqueries more than {MAX_SUBQUERY_NESTING} deep in one \
                 another, the most Lakegate accepts"
            ),
            Self::Subqueries => format!(
                "the statement has more than {MAX_SUBQUERIES} subqueries in expressions, the most \
                 Lakegate accepts"
            ),
            Self::JoinedTables => format!(
                "a SELECT of the statement reads more than {MAX_JOINED_TABLES} tables, the most \
                 Lakegate accepts"
            ),
            Self::SetOperands => format!(
                "the statement joins more than {MAX_SET_OPERANDS} queries with UNION, INTERSECT \
                 or EXCEPT, the most Lakegate accepts"
            ),
        };
        EngineError::InvalidSql {
            message,
            position: None,
        }
    }
}

/// Regroups `statement`'s long chains, then refuses it if it goes past any
/// limit.
pub(crate) fn regroup_and_check(statement: &mut DFStatement) -> Result<()> {
    let mut shaper = Shaper::default();
    let outcome = match statement {
        DFStatement::Statement(statement) => statement.visit(&mut shaper),
        DFStatement::Explain(explain) => return regroup_and_check(&mut explain.statement),
        // Refused by the gate; nothing of theirs is planned.
        DFStatement::CreateExternalTable(_) | DFStatement::CopyTo(_) | DFStatement::Reset(_) => {
            ControlFlow::Continue(())
        }
    };
    match outcome {
        ControlFlow::Continue(()) => Ok(()),
        ControlFlow::Break(limit) => Err(limit.error()),
    }
}

/// Regroups chains on the way down, and counts what the limits count.
#[derive(Default)]
struct Shaper {
    depth: usize,
    subquery_depth: usize,
    subqueries: usize,
    set_operands: usize,
}

/// `Continue` while `count` is within `limit`.
fn within(count: usize, limit: usize, past: PastLimit) -> ControlFlow<PastLimit> {
    if count > limit {
        ControlFlow::Break(past)
    } else {
        ControlFlow::Continue(())
    }
}

/// Whether `expr` is a subquery in an expression.
fn is_subquery(expr: &Expr) -> bool {
    matches!(
        expr,
        Expr::Subquery(_) | Expr::InSubquery { .. } | Expr::Exists { .. }
    )
}

impl VisitorMut for Shaper {
    type Break = PastLimit;

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<PastLimit> {
        regroup_expr(expr);
        if is_subquery(expr) {
            self.subqueries += 1;
            self.subquery_depth += 1;
            within(self.subqueries, MAX_SUBQUERIES, PastLimit::Subqueries)?;
            within(
                self.subquery_depth,
                MAX_SUBQUERY_NESTING,
                PastLimit::SubqueryNesting,
            )?;
        }
        self.depth += 1;
        within(self.depth, MAX_NESTING, PastLimit::Nesting)
    }

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<PastLimit> {
        if is_subquery(expr) {
            self.subquery_depth -= 1;
        }
        self.depth -= 1;
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<PastLimit> {
        regroup_set_operations(&mut query.body);
        let (depth, operands) = set_operation_shape(&query.body);
        within(depth, MAX_NESTING, PastLimit::Nesting)?;
        if operands > 1 {
            self.set_operands += operands;
            within(self.set_operands, MAX_SET_OPERANDS, PastLimit::SetOperands)?;
        }
        self.depth += 1;
        within(self.depth, MAX_NESTING, PastLimit::Nesting)
    }

    fn post_visit_query(&mut self, _query: &mut Query) -> ControlFlow<PastLimit> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &mut Select) -> ControlFlow<PastLimit> {
        let tables: usize = select.from.iter().map(|from| 1 + from.joins.len()).sum();
        within(tables, MAX_JOINED_TABLES, PastLimit::JoinedTables)
    }
}

/// Whether chains of `op` may be regrouped without changing their value.
fn is_associative(op: &BinaryOperator) -> bool {
    use BinaryOperator::*;
    matches!(
        op,
        And | Or | Plus | Multiply | StringConcat | BitwiseAnd | BitwiseOr | BitwiseXor
    )
}

/// Regroups the chain `expr` heads, if it is a long one. Only the head of a
/// chain regroups it: the tops of the balanced halves it builds are chains
/// of the same operator again, but with a short left spine, so the visit
/// going down into them leaves them alone.
fn regroup_expr(expr: &mut Expr) {
    let Some(op) = binary_op(expr).filter(|op| is_associative(op)).cloned() else {
        return;
    };
    let long = chain_longer_than(expr, REGROUP_THRESHOLD, |e| match e {
        Expr::BinaryOp { left, op: this, .. } if *this == op && binary_op(left) == Some(&op) => {
            Some(left.as_ref())
        }
        _ => None,
    });
    if !long {
        return;
    }
    let chain = std::mem::replace(expr, Expr::value(Value::Null));
    let operands = unchain(chain, |e| match e {
        Expr::BinaryOp {
            left,
            op: this,
            right,
        } if this == op => Link::Chain(*left, *right),
        other => Link::Operand(other),
    });
    *expr = balanced(operands, &mut |left, right| Expr::BinaryOp {
        left: Box::new(left),
        op: op.clone(),
        right: Box::new(right),
    });
}

fn binary_op(expr: &Expr) -> Option<&BinaryOperator> {
    match expr {
        Expr::BinaryOp { op, .. } => Some(op),
        _ => None,
    }
}

/// Regroups the long runs of one set operation in `body`, outermost first.
fn regroup_set_operations(body: &mut SetExpr) {
    let SetExpr::SetOperation {
        op, set_quantifier, ..
    } = body
    else {
        return;
    };
    if !regroupable_set_operation(op, set_quantifier) {
        return;
    }
    let (op, quantifier) = (*op, *set_quantifier);
    let same = |e: &SetExpr| matches!(e, SetExpr::SetOperation { op: o, set_quantifier: q, .. } if *o == op && *q == quantifier);
    let long = chain_longer_than(body, REGROUP_THRESHOLD, |e| match e {
        SetExpr::SetOperation { left, .. } if same(e) && same(left) => Some(left.as_ref()),
        _ => None,
    });
    if !long {
        return;
    }
    let empty = SetExpr::Values(Values {
        explicit_row: false,
        value_keyword: false,
        rows: Vec::new(),
    });
    let chain = std::mem::replace(body, empty);
    let operands = unchain(chain, |e| match e {
        SetExpr::SetOperation {
            left,
            op: o,
            set_quantifier: q,
            right,
        } if o == op && q == quantifier => Link::Chain(*left, *right),
        other => Link::Operand(other),
    });
    *body = balanced(operands, &mut |left, right| SetExpr::SetOperation {
        left: Box::new(left),
        op,
        set_quantifier: quantifier,
        right: Box::new(right),
    });
}

/// `UNION` and `INTERSECT`, with or without `ALL`, are associative; `EXCEPT`
/// is not, nor is a `BY NAME` union (its columns come from every input).
fn regroupable_set_operation(op: &SetOperator, quantifier: &SetQuantifier) -> bool {
    matches!(op, SetOperator::Union | SetOperator::Intersect)
        && matches!(
            quantifier,
            SetQuantifier::All | SetQuantifier::Distinct | SetQuantifier::None
        )
}

/// The deepest nesting of set operations in `body`, and the queries they
/// join, by an explicit stack (subqueries are counted by the visit itself).
fn set_operation_shape(body: &SetExpr) -> (usize, usize) {
    let mut deepest = 0;
    let mut operands = 0;
    let mut pending = vec![(body, 1)];
    while let Some((node, depth)) = pending.pop() {
        deepest = deepest.max(depth);
        if let SetExpr::SetOperation { left, right, .. } = node {
            pending.push((left, depth + 1));
            pending.push((right, depth + 1));
        } else {
            operands += 1;
        }
    }
    (deepest, operands)
}

#[cfg(test)]
mod tests {
    use datafusion::sql::parser::DFParserBuilder;

    use super::*;

    fn parsed(sql: &str) -> DFStatement {
        DFParserBuilder::new(sql)
            .with_recursion_limit(PARSER_RECURSION_LIMIT)
            .build()
            .unwrap()
            .parse_statements()
            .unwrap()
            .pop_front()
            .unwrap()
    }

    fn shaped(sql: &str) -> Result<String> {
        let mut statement = parsed(sql);
        regroup_and_check(&mut statement)?;
        Ok(statement.to_string())
    }

    #[test]
    fn short_chains_keep_their_shape() {
        let sql = "SELECT a + b + c FROM t WHERE x = 1 OR x = 2 OR x = 3";
        assert_eq!(shaped(sql).unwrap(), sql);
    }

    #[test]
    fn long_chains_become_balanced_with_operands_in_order() {
        let terms: Vec<String> = (0..1000).map(|i| format!("x = {i}")).collect();
        let mut statement = parsed(&format!("SELECT * FROM t WHERE {}", terms.join(" OR ")));
        regroup_and_check(&mut statement).unwrap();
        let DFStatement::Statement(statement) = statement else {
            panic!()
        };
        let mut seen = Vec::new();
        let mut deepest = 0;
        let mut depth = 0;
        let _ = datafusion::sql::sqlparser::ast::visit_expressions(&statement, |e| {
            if let Expr::Value(v) = e {
                seen.push(v.to_string());
            }
            ControlFlow::<()>::Continue(())
        });
        struct Depth<'a>(&'a mut usize, &'a mut usize);
        impl datafusion::sql::sqlparser::ast::Visitor for Depth<'_> {
            type Break = ();
            fn pre_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
                *self.0 += 1;
                *self.1 = (*self.1).max(*self.0);
                ControlFlow::Continue(())
            }
            fn post_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
                *self.0 -= 1;
                ControlFlow::Continue(())
            }
        }
        let _ = datafusion::sql::sqlparser::ast::Visit::visit(
            &statement,
            &mut Depth(&mut depth, &mut deepest),
        );
        let expected: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
        assert_eq!(seen, expected, "operands keep their order");
        assert!(deepest <= 14, "balanced: {deepest} levels");
    }

    #[test]
    fn long_union_chains_become_balanced() {
        let branches: Vec<String> = (0..500).map(|i| format!("SELECT {i}")).collect();
        let mut statement = parsed(&branches.join(" UNION ALL "));
        regroup_and_check(&mut statement).unwrap();
        let DFStatement::Statement(statement) = statement else {
            panic!()
        };
        let datafusion::sql::sqlparser::ast::Statement::Query(query) = *statement else {
            panic!()
        };
        assert!(set_operation_shape(&query.body).0 <= 10);
        // The text still reads as the same chain.
        assert_eq!(query.to_string(), branches.join(" UNION ALL "));
    }

    #[test]
    fn chains_that_cannot_be_regrouped_are_refused_past_the_limit() {
        let long_minus = vec!["1"; MAX_NESTING + 10].join(" - ");
        assert!(matches!(
            shaped(&format!("SELECT {long_minus}")),
            Err(EngineError::InvalidSql { message, .. }) if message.contains("256 levels")
        ));
        let short_minus = vec!["1"; MAX_NESTING - 10].join(" - ");
        assert!(shaped(&format!("SELECT {short_minus}")).is_ok());
        let except = vec!["SELECT 1"; MAX_NESTING + 10].join(" EXCEPT ");
        assert!(shaped(&except).is_err());
    }

    #[test]
    fn subqueries_and_joined_tables_past_their_limits_are_refused() {
        let nested = format!(
            "SELECT * FROM t WHERE a IN {}(1){}",
            "(SELECT a FROM t WHERE a IN ".repeat(MAX_SUBQUERY_NESTING + 1),
            ")".repeat(MAX_SUBQUERY_NESTING + 1)
        );
        assert!(
            shaped(&nested)
                .unwrap_err()
                .to_string()
                .contains("nests subqueries")
        );
        let siblings: Vec<String> = (0..=MAX_SUBQUERIES)
            .map(|i| format!("(SELECT {i})"))
            .collect();
        let many = format!("SELECT {}", siblings.join(", "));
        assert!(
            shaped(&many)
                .unwrap_err()
                .to_string()
                .contains("subqueries in expressions")
        );
        let tables: Vec<String> = (0..=MAX_JOINED_TABLES)
            .map(|i| format!("t AS t{i}"))
            .collect();
        let wide = format!("SELECT 1 FROM {}", tables.join(", "));
        assert!(shaped(&wide).unwrap_err().to_string().contains("tables"));
        let within_limits = format!(
            "SELECT (SELECT 1) FROM {} WHERE a IN (SELECT a FROM t)",
            tables[..MAX_JOINED_TABLES].join(", ")
        );
        assert!(shaped(&within_limits).is_ok());
    }

    #[test]
    fn too_many_queries_in_set_operations_are_refused() {
        let union = vec!["SELECT 1"; MAX_SET_OPERANDS + 1].join(" UNION ALL ");
        assert!(matches!(
            shaped(&union),
            Err(EngineError::InvalidSql { message, .. }) if message.contains("more than 100000 queries")
        ));
    }
}
