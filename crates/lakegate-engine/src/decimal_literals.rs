//! Decimal literals written at the scale of the decimal they are added to:
//! [`RescaleDecimalLiterals`].
//!
//! `1 - l_discount` reaches the optimizer as `Decimal128(1, 20, 0) -
//! l_discount`: the integer is coerced to the smallest decimal that holds
//! any Int64, scale 0, while `l_discount` is a `DECIMAL(15, 2)`. Arrow adds
//! and subtracts decimals of different scales by bringing both sides to the
//! larger scale element by element (two checked 128-bit multiplications and
//! a checked subtraction per row); with equal scales it only subtracts. TPC-H
//! computes `l_extendedprice * (1 - l_discount)` over millions of line items
//! (Q1 also `1 + l_tax`), and that rescaling was a tenth of Q1's time.
//!
//! The rule writes such a literal at the other side's scale once, at
//! planning: `Decimal128(100, 22, 2)`, the same number with as many integer
//! digits as before. The operation's result type (scale `max(s1, s2)`,
//! precision `max(s1, s2) + max(p1 - s1, p2 - s2) + 1`) is therefore the
//! same, and so is every value; the rule checks the result type and leaves
//! the expression alone if it would differ (for instance where the wider
//! literal would need more than 38 digits). Only `+` and `-` are rewritten:
//! multiplication and division take operands of any scales at no extra cost,
//! and comparisons with literals are already cast to the column's type by
//! DataFusion. The rewrite would fit DataFusion's expression simplifier.

use datafusion::arrow::datatypes::{DECIMAL128_MAX_PRECISION, DataType};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DFSchema, Result, ScalarValue};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::type_coercion::binary::BinaryTypeCoercer;
use datafusion::logical_expr::utils::merge_schema;
use datafusion::logical_expr::{BinaryExpr, Expr, ExprSchemable, LogicalPlan, Operator};
use datafusion::optimizer::optimizer::ApplyOrder;
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};

/// See the module documentation.
#[derive(Debug, Default)]
pub(crate) struct RescaleDecimalLiterals;

impl OptimizerRule for RescaleDecimalLiterals {
    fn name(&self) -> &str {
        "lakegate_rescale_decimal_literals"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::BottomUp)
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        // A node without inputs (a scan) holds only the filters handed to
        // its table: comparisons, which DataFusion has already coerced.
        if plan.inputs().is_empty() || !has_candidate(&plan)? {
            return Ok(Transformed::no(plan));
        }
        let schema = merge_schema(&plan.inputs());
        let names = NamePreserver::new(&plan);
        plan.map_expressions(|expr| {
            let name = names.save(&expr);
            let rewritten = expr.transform_up(|e| rescale_literal_operand(e, &schema))?;
            Ok(rewritten.update_data(|e| name.restore(e)))
        })
    }
}

/// Whether any expression of `plan` holds a `+` or `-` with a decimal
/// literal operand: the only shape the rule rewrites, looked for before
/// merging the inputs' schemas and rebuilding every expression (which the
/// rule did at every node of every optimizer pass, for nothing in most).
fn has_candidate(plan: &LogicalPlan) -> Result<bool> {
    let mut found = false;
    plan.apply_expressions(|expr| {
        found = expr.exists(|e| {
            Ok(matches!(
                e,
                Expr::BinaryExpr(BinaryExpr { left, op: Operator::Plus | Operator::Minus, right })
                    if decimal_literal(left).is_some() || decimal_literal(right).is_some()
            ))
        })?;
        Ok(if found {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    })?;
    Ok(found)
}

/// `expr` with its decimal literal operand written at the other operand's
/// scale, if it is a decimal `+` or `-` whose literal has the smaller scale
/// and the result type stays the same.
fn rescale_literal_operand(expr: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = &expr else {
        return Ok(Transformed::no(expr));
    };
    if !matches!(op, Operator::Plus | Operator::Minus) {
        return Ok(Transformed::no(expr));
    }
    let (literal, other, literal_on_left) = match (decimal_literal(left), decimal_literal(right)) {
        (Some(literal), None) => (literal, right, true),
        (None, Some(literal)) => (literal, left, false),
        _ => return Ok(Transformed::no(expr)),
    };
    let other_type = other.get_type(schema)?;
    let DataType::Decimal128(_, other_scale) = other_type else {
        return Ok(Transformed::no(expr));
    };
    let Some(rescaled) = literal.at_scale(other_scale) else {
        return Ok(Transformed::no(expr));
    };
    // The operation's result type, from its operands' types in their order.
    let result_type = |literal_type: &DataType| {
        let (l, r) = if literal_on_left {
            (literal_type, &other_type)
        } else {
            (&other_type, literal_type)
        };
        BinaryTypeCoercer::new(l, op, r).get_result_type()
    };
    if result_type(&rescaled.data_type())? != result_type(&literal.data_type())? {
        return Ok(Transformed::no(expr));
    }
    let rescaled = Box::new(Expr::Literal(rescaled, None));
    let candidate = if literal_on_left {
        BinaryExpr::new(rescaled, *op, right.clone())
    } else {
        BinaryExpr::new(left.clone(), *op, rescaled)
    };
    Ok(Transformed::yes(Expr::BinaryExpr(candidate)))
}

/// A non-null `Decimal128` literal's unscaled value, precision and scale.
#[derive(Debug, Clone, Copy)]
struct DecimalLiteral {
    value: i128,
    precision: u8,
    scale: i8,
}

fn decimal_literal(expr: &Expr) -> Option<DecimalLiteral> {
    match expr {
        Expr::Literal(ScalarValue::Decimal128(Some(value), precision, scale), _) => {
            Some(DecimalLiteral {
                value: *value,
                precision: *precision,
                scale: *scale,
            })
        }
        _ => None,
    }
}

impl DecimalLiteral {
    fn data_type(self) -> DataType {
        DataType::Decimal128(self.precision, self.scale)
    }

    /// The same number at the larger `scale`, with as many integer digits
    /// (precision grown by as much as the scale); `None` if `scale` is not
    /// larger or the result would not fit a `Decimal128`.
    fn at_scale(self, scale: i8) -> Option<ScalarValue> {
        let added = u8::try_from(i16::from(scale) - i16::from(self.scale))
            .ok()
            .filter(|added| *added > 0)?;
        let precision = self
            .precision
            .checked_add(added)
            .filter(|p| *p <= DECIMAL128_MAX_PRECISION)?;
        let value = self
            .value
            .checked_mul(10_i128.checked_pow(u32::from(added))?)?;
        Some(ScalarValue::Decimal128(Some(value), precision, scale))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Decimal128Array, RecordBatch};
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::datasource::MemTable;
    use datafusion::execution::SessionStateBuilder;
    use datafusion::prelude::SessionContext;

    use super::*;

    /// Line items' prices, discounts and taxes as TPC-H types them.
    fn line_items() -> MemTable {
        let decimal = |values: &[i128]| {
            Arc::new(
                Decimal128Array::from(values.to_vec())
                    .with_precision_and_scale(15, 2)
                    .unwrap(),
            )
        };
        let schema = Arc::new(Schema::new(vec![
            Field::new("price", DataType::Decimal128(15, 2), false),
            Field::new("discount", DataType::Decimal128(15, 2), false),
            Field::new("tax", DataType::Decimal128(15, 2), false),
        ]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                decimal(&[90_100, 10_494_950, -1, 0]),
                decimal(&[0, 10, 5, 7]),
                decimal(&[8, 0, 2, 1]),
            ],
        )
        .unwrap();
        MemTable::try_new(schema, vec![vec![batch]]).unwrap()
    }

    fn context(with_rule: bool) -> SessionContext {
        let mut state = SessionStateBuilder::new().with_default_features();
        if with_rule {
            state = state.with_optimizer_rule(Arc::new(RescaleDecimalLiterals));
        }
        let context = SessionContext::new_with_state(state.build());
        context
            .register_table("line_items", Arc::new(line_items()))
            .unwrap();
        context
    }

    /// The optimized plan, the answer's schema and the answer of `sql`.
    async fn run(context: &SessionContext, sql: &str) -> (String, Arc<Schema>, String) {
        let frame = context.sql(sql).await.unwrap();
        let plan = frame.clone().into_optimized_plan().unwrap();
        let batches = frame.collect().await.unwrap();
        let schema = batches[0].schema();
        let answer = pretty_format_batches(&batches).unwrap().to_string();
        (plan.display_indent().to_string(), schema, answer)
    }

    const TPCH_Q1_ARITHMETIC: &str = "SELECT sum(price * (1 - discount)), \
         sum(price * (1 - discount) * (1 + tax)), CAST(2.5 AS DECIMAL(2, 1)) + price, price - 1 FROM line_items GROUP BY price ORDER BY price";

    #[tokio::test]
    async fn integer_literals_take_the_decimal_scale_and_change_no_type_name_or_value() {
        let (plain_plan, plain_schema, plain) = run(&context(false), TPCH_Q1_ARITHMETIC).await;
        let (plan, schema, rescaled) = run(&context(true), TPCH_Q1_ARITHMETIC).await;
        assert!(
            plain_plan.contains("Decimal128(1,20,0) - line_items.discount"),
            "{plain_plan}"
        );
        assert!(
            plan.contains("Decimal128(1.00,22,2) - line_items.discount"),
            "{plan}"
        );
        assert!(
            plan.contains("Decimal128(1.00,22,2) + line_items.tax"),
            "{plan}"
        );
        assert!(
            plan.contains("line_items.price - Decimal128(1.00,22,2)"),
            "{plan}"
        );
        // 2.5 has scale 1, price 2: rewritten too, to 2.50.
        assert!(
            plan.contains("Decimal128(2.50,3,2) + line_items.price"),
            "{plan}"
        );
        assert_eq!(schema, plain_schema);
        assert_eq!(rescaled, plain);
    }

    #[tokio::test]
    async fn a_literal_of_the_larger_scale_or_one_too_wide_to_widen_is_left_alone() {
        let sql = "SELECT price - 0.125, CAST(1 AS DECIMAL(38, 0)) + price FROM line_items";
        let (plain_plan, plain_schema, plain) = run(&context(false), sql).await;
        let (plan, schema, answer) = run(&context(true), sql).await;
        assert_eq!(plan, plain_plan);
        assert_eq!((schema, answer), (plain_schema, plain));
    }

    #[test]
    fn a_literal_widens_by_the_digits_it_gains_and_not_past_38() {
        let one = DecimalLiteral {
            value: 1,
            precision: 20,
            scale: 0,
        };
        assert_eq!(
            one.at_scale(2),
            Some(ScalarValue::Decimal128(Some(100), 22, 2))
        );
        assert_eq!(one.at_scale(0), None);
        assert_eq!(one.at_scale(19), None);
        let negative = DecimalLiteral {
            value: -5,
            precision: 2,
            scale: -1,
        };
        assert_eq!(
            negative.at_scale(1),
            Some(ScalarValue::Decimal128(Some(-500), 4, 1))
        );
    }
}
