//! The policy plan of one role on one table, as SQL over the stored table:
//! one projection computing every visible column from stored values, over
//! the row filter.
//!
//! ```text
//! SELECT <id>, CASE WHEN customer IS NULL OR (<shown>) IS NOT TRUE THEN NULL
//!              ELSE named_struct('name', get_field(customer, 'name'),
//!                                'email', <mask>(get_field(customer, 'email'))) END AS customer,
//!        CASE WHEN orders IS NULL ... ELSE array_transform(orders, e -> named_struct(...)) END AS orders
//! FROM db.t WHERE (<grant filters, OR>) AND <tag row filters>
//! ```
//!
//! The policy resolves access per *policy column* (a column, or a leaf
//! field's dotted path inside a struct or a list of structs, see
//! [`PolicyTree`]). A column whose leaves are all visible and raw is read as
//! stored; any other struct is rebuilt from its visible fields only, each
//! through its mask or cell rule, and a list of structs is rebuilt element
//! by element (`array_transform` with a lambda). A rebuilt struct or list is
//! NULL where the stored one is, and also where none of its fields shows
//! anything in that row (every field masked to NULL, or no admitting grant
//! exposing one), so that even its presence is not revealed. Every column is
//! cast back to its stored type, with hidden fields pruned (masks keep a
//! column's type).

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, SchemaRef};
use datafusion::common::{Column, Result};
use datafusion::execution::SessionState;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, cast};
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::{
    Expr as SqlExpr, FunctionArg, FunctionArgExpr, FunctionArguments, LambdaFunction,
    LambdaFunctionParameter, LambdaSyntax, OneOrManyWithParens, VisitMut, VisitorMut,
};
use lakegate_catalog::{NestedKind, PolicyNode, PolicyTree, nullable_field};
use lakegate_policy::{CellValue, EffectiveAccess, MaskKind, RowFilter, VisibleColumn};

use crate::masks::{check_builtin_fits, mask_sql};
use crate::secured_table::MASK_METADATA_KEY;
use crate::sql_text::{accept_session_function_parens, quote_ident, sql_string};

/// The function name standing for a lambda in generated SQL, rewritten to a
/// real lambda after parsing (the SQL dialect has no lambda syntax).
const LAMBDA_MARK: &str = "__lakegate_lambda";

/// The policy columns of a table of schema `stored` (see [`PolicyTree`]).
pub(crate) fn policy_columns(stored: &SchemaRef) -> Vec<String> {
    PolicyTree::of(stored).leaf_paths()
}

/// The columns of `stored` the role sees exactly as stored (every leaf
/// visible and raw): only predicates over these may pass the barrier.
pub(crate) fn raw_columns(access: &EffectiveAccess, stored: &SchemaRef) -> Vec<String> {
    let projection = PolicyProjection::new(access, stored);
    PolicyTree::of(stored)
        .columns
        .iter()
        .filter(|column| projection.is_raw(column))
        .map(|column| column.path.clone())
        .collect()
}

/// Plans the policy of `access` over the stored table (of schema `stored`)
/// in a policy context `state` whose default database is the table's.
pub(crate) async fn plan_policy_sql(
    state: &SessionState,
    access: &EffectiveAccess,
    stored: &SchemaRef,
) -> Result<LogicalPlan> {
    let projection = PolicyProjection::new(access, stored);
    let (sql, served) = projection.sql();
    // Once, over the composed text: policies may write current_user().
    let sql = accept_session_function_parens(&sql);
    let dialect = state.config().options().sql_parser.dialect;
    let mut statement = state.sql_to_statement(&sql, &dialect)?;
    if let DFStatement::Statement(statement) = &mut statement {
        let _ = statement.visit(&mut LambdaMarks);
    }
    let plan = state.statement_to_plan(statement).await?;
    finish(plan, &served)
}

/// A visible column as served: its name, stored-like type and mask label.
struct ServedColumn {
    field: Field,
    mask_label: Option<String>,
}

/// When a rebuilt value shows anything: never, always, or when one of
/// these SQL conditions holds.
#[derive(Debug, Clone)]
enum Shown {
    Never,
    Always,
    When(Vec<String>),
}

impl Shown {
    fn or(self, other: Shown) -> Shown {
        match (self, other) {
            (Shown::Always, _) | (_, Shown::Always) => Shown::Always,
            (Shown::Never, other) | (other, Shown::Never) => other,
            (Shown::When(mut a), Shown::When(b)) => {
                a.extend(b);
                Shown::When(a)
            }
        }
    }
}

/// A column or field as the policy projection computes it.
struct Built {
    sql: String,
    data_type: DataType,
    shown: Shown,
    /// Read as stored: every leaf beneath visible and raw.
    raw: bool,
}

struct PolicyProjection<'a> {
    access: &'a EffectiveAccess,
    stored: &'a SchemaRef,
    visible: HashMap<&'a str, &'a VisibleColumn>,
}

impl<'a> PolicyProjection<'a> {
    fn new(access: &'a EffectiveAccess, stored: &'a SchemaRef) -> Self {
        let visible = access
            .columns
            .iter()
            .map(|c| (c.name.as_str(), c))
            .collect();
        Self {
            access,
            stored,
            visible,
        }
    }

    fn is_raw(&self, node: &PolicyNode) -> bool {
        node.leaves().iter().all(|leaf| {
            self.visible
                .get(leaf.path.as_str())
                .is_some_and(|c| c.uniform_value(&self.access.row_filter) == Some(&CellValue::Raw))
        })
    }

    /// The policy SQL and the columns it serves.
    fn sql(&self) -> (String, Vec<ServedColumn>) {
        let tree = PolicyTree::of(self.stored);
        let mut select = Vec::new();
        let mut served = Vec::new();
        for column in &tree.columns {
            let Some(built) = self.build(column, &quote_ident(&column.path), 0) else {
                continue;
            };
            select.push(format!("{} AS {}", built.sql, quote_ident(&column.path)));
            let field = if built.raw {
                column.field.as_ref().clone()
            } else {
                nullable_field(&column.field, built.data_type)
            };
            served.push(ServedColumn {
                field,
                mask_label: self.mask_label(column),
            });
        }
        if select.is_empty() {
            // A grant that exposes no column still admits rows (count(*) works).
            select.push("1 AS \"__lakegate_no_columns\"".to_string());
        }
        let table = &self.access.table;
        let mut sql = format!(
            "SELECT {} FROM {}.{}",
            select.join(", "),
            quote_ident(&table.database),
            quote_ident(&table.table)
        );
        let mut conditions = Vec::new();
        if let RowFilter::AnyOf(predicates) = &self.access.row_filter {
            let union: Vec<String> = predicates.iter().map(|p| format!("({})", p.sql)).collect();
            conditions.push(format!("({})", union.join(" OR ")));
        }
        conditions.extend(
            self.access
                .restrictions
                .iter()
                .map(|p| format!("({})", p.sql)),
        );
        if !conditions.is_empty() {
            sql.push_str(&format!(" WHERE {}", conditions.join(" AND ")));
        }
        (sql, served)
    }

    /// `node` computed from `value` (SQL reading its stored value); `None`
    /// when nothing of it is visible. `depth` numbers lambda variables.
    fn build(&self, node: &PolicyNode, value: &str, depth: usize) -> Option<Built> {
        if self.is_raw(node) {
            return Some(Built {
                sql: value.to_string(),
                data_type: node.field.data_type().clone(),
                shown: Shown::Always,
                raw: true,
            });
        }
        match &node.kind {
            NestedKind::Leaf => {
                let column = self.visible.get(node.path.as_str())?;
                Some(self.leaf(column, value, node.field.data_type()))
            }
            NestedKind::Struct(children) => self.rebuilt_struct(children, value, depth),
            NestedKind::ListOfStruct(children) => {
                let element = format!("__lakegate_e{depth}");
                let inner = self.rebuilt_struct(children, &element, depth + 1)?;
                let (list_field, large) = match node.field.data_type() {
                    DataType::List(field) => (field, false),
                    DataType::LargeList(field) => (field, true),
                    _ => unreachable!("a list of structs is a list"),
                };
                let element_field = Arc::new(nullable_field(list_field, inner.data_type));
                let data_type = if large {
                    DataType::LargeList(element_field)
                } else {
                    DataType::List(element_field)
                };
                let transform = format!(
                    "array_transform({value}, {LAMBDA_MARK}({element}, {}))",
                    inner.sql
                );
                Some(Built {
                    sql: guarded(value, &inner.shown, &transform),
                    data_type,
                    shown: inner.shown,
                    raw: false,
                })
            }
        }
    }

    /// A struct rebuilt from its visible fields, of `value`.
    fn rebuilt_struct(&self, children: &[PolicyNode], value: &str, depth: usize) -> Option<Built> {
        let mut fields = Vec::new();
        let mut arguments = Vec::new();
        let mut shown = Shown::Never;
        for child in children {
            let name = child.path.rsplit('.').next().unwrap_or(&child.path);
            let child_value = format!("get_field({value}, {})", sql_string(name));
            let Some(built) = self.build(child, &child_value, depth) else {
                continue;
            };
            arguments.push(format!("{}, {}", sql_string(name), built.sql));
            fields.push(if built.raw {
                child.field.as_ref().clone()
            } else {
                nullable_field(&child.field, built.data_type)
            });
            shown = shown.or(built.shown);
        }
        if fields.is_empty() {
            return None;
        }
        let rebuilt = format!("named_struct({})", arguments.join(", "));
        Some(Built {
            sql: guarded(value, &shown, &rebuilt),
            data_type: DataType::Struct(fields.into()),
            shown,
            raw: false,
        })
    }

    /// A visible leaf of stored type `data_type`, read by `value`: its
    /// value, masked value, or cell rule.
    fn leaf(&self, column: &VisibleColumn, value: &str, data_type: &DataType) -> Built {
        let row_filter = &self.access.row_filter;
        // A built-in mask that does not fit the type (a tag mask reaching a
        // column of another type, or a type changed under its mask) shows
        // NULL: a mask never falls back to the raw value.
        let fits = |cell: &CellValue| match cell {
            CellValue::Raw => true,
            CellValue::Masked(mask) => check_builtin_fits(&mask.kind, data_type).is_ok(),
        };
        let hides_all = |cell: &CellValue| {
            !fits(cell) || matches!(cell, CellValue::Masked(m) if m.kind == MaskKind::Nullify)
        };
        let value_sql = |cell: &CellValue| match cell {
            CellValue::Raw => value.to_string(),
            CellValue::Masked(_) if !fits(cell) => "NULL".to_string(),
            CellValue::Masked(mask) => mask_sql(&mask.kind, value),
        };
        let (sql, shown) = match column.uniform_value(row_filter) {
            Some(cell) => {
                let shown = if hides_all(cell) {
                    Shown::Never
                } else {
                    Shown::Always
                };
                (value_sql(cell), shown)
            }
            None => {
                let mut case = String::from("CASE");
                let mut shown = Shown::Never;
                for branch in &column.branches {
                    let when = branch.when.as_ref().map(|p| format!("({})", p.sql));
                    if !hides_all(&branch.value) {
                        shown = shown.or(match &when {
                            Some(when) => Shown::When(vec![when.clone()]),
                            None => Shown::Always,
                        });
                    }
                    case.push_str(&format!(
                        " WHEN {} THEN {}",
                        when.as_deref().unwrap_or("TRUE"),
                        value_sql(&branch.value)
                    ));
                }
                case.push_str(" ELSE NULL END");
                (case, shown)
            }
        };
        Built {
            sql,
            data_type: data_type.clone(),
            shown,
            raw: false,
        }
    }

    /// The `lakegate.mask` label of a served column: its leaf's, or each
    /// masked field's (`email: hash; phone: nullify`) for a nested column.
    fn mask_label(&self, column: &PolicyNode) -> Option<String> {
        let row_filter = &self.access.row_filter;
        if matches!(column.kind, NestedKind::Leaf) {
            return self
                .visible
                .get(column.path.as_str())?
                .mask_label(row_filter);
        }
        let labels: Vec<String> = column
            .leaves()
            .iter()
            .filter_map(|leaf| {
                let label = self
                    .visible
                    .get(leaf.path.as_str())?
                    .mask_label(row_filter)?;
                let field = leaf.path.strip_prefix(&format!("{}.", column.path))?;
                Some(format!("{field}: {label}"))
            })
            .collect();
        (!labels.is_empty()).then(|| labels.join("; "))
    }
}

/// `rebuilt` where the stored `value` is not NULL and something in it shows.
fn guarded(value: &str, shown: &Shown, rebuilt: &str) -> String {
    match shown {
        Shown::Never => "NULL".to_string(),
        Shown::Always => format!("CASE WHEN {value} IS NULL THEN NULL ELSE {rebuilt} END"),
        Shown::When(conditions) => format!(
            "CASE WHEN {value} IS NULL OR ({}) IS NOT TRUE THEN NULL ELSE {rebuilt} END",
            conditions.join(" OR ")
        ),
    }
}

/// Casts each column of the planned policy SQL to the type it is served
/// as (its stored type, nested fields pruned) and labels masked columns
/// with `lakegate.mask`.
fn finish(plan: LogicalPlan, served: &[ServedColumn]) -> Result<LogicalPlan> {
    if served.is_empty() {
        return Ok(plan);
    }
    let planned = Arc::clone(plan.schema());
    let mut exprs = Vec::with_capacity(served.len());
    for column in served {
        let name = column.field.name();
        let (_, planned_field) = planned.qualified_field_with_unqualified_name(name)?;
        let mut expr = Expr::Column(Column::new_unqualified(name));
        if planned_field.data_type() != column.field.data_type() {
            expr = cast(expr, column.field.data_type().clone());
        }
        let metadata = column
            .mask_label
            .clone()
            .map(|label| HashMap::from([(MASK_METADATA_KEY.to_string(), label)]));
        expr = match metadata {
            Some(metadata) => expr.alias_with_metadata(name, Some(metadata.into())),
            None => expr.alias(name),
        };
        exprs.push(expr);
    }
    LogicalPlanBuilder::from(plan).project(exprs)?.build()
}

/// Rewrites `__lakegate_lambda(param, body)` into the lambda `param -> body`.
struct LambdaMarks;

impl VisitorMut for LambdaMarks {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut SqlExpr) -> ControlFlow<()> {
        let SqlExpr::Function(function) = expr else {
            return ControlFlow::Continue(());
        };
        if !function.name.to_string().eq_ignore_ascii_case(LAMBDA_MARK) {
            return ControlFlow::Continue(());
        }
        let FunctionArguments::List(list) = &function.args else {
            return ControlFlow::Continue(());
        };
        let [param, body] = list.args.as_slice() else {
            return ControlFlow::Continue(());
        };
        let (
            FunctionArg::Unnamed(FunctionArgExpr::Expr(SqlExpr::Identifier(param))),
            FunctionArg::Unnamed(FunctionArgExpr::Expr(body)),
        ) = (param, body)
        else {
            return ControlFlow::Continue(());
        };
        *expr = SqlExpr::Lambda(LambdaFunction {
            params: OneOrManyWithParens::One(LambdaFunctionParameter {
                name: param.clone(),
                data_type: None,
            }),
            body: Box::new(body.clone()),
            syntax: LambdaSyntax::Arrow,
        });
        ControlFlow::Continue(())
    }
}
