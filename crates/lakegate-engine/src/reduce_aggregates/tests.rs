//! The rule over logical plans of tables that report statistics: which
//! aggregates it narrows, by which reducer, and which it leaves alone.

use std::sync::Arc;

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::functions::math::expr_fn::random;
use datafusion::functions_aggregate::expr_fn::sum;
use datafusion::logical_expr::{LogicalPlanBuilder, col, lit};
use datafusion::optimizer::{Optimizer, OptimizerContext};

use super::*;
use crate::test_tables::table;

/// `plan` optimized with this rule alone, for as many passes as the
/// optimizer makes (so a rule that rewrote its own output would show).
fn optimized(plan: LogicalPlan) -> LogicalPlan {
    Optimizer::with_rules(vec![Arc::new(AggregateOnlyJoinedKeys)])
        .optimize(plan, &OptimizerContext::new(), |_, _| {})
        .unwrap()
}

/// The tables each reducer semi join of `plan` scans, in plan order.
fn reducers(plan: &LogicalPlan) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    plan.apply(|node| {
        if let LogicalPlan::Join(join) = node
            && join.join_type == JoinType::LeftSemi
            && matches!(join.right.as_ref(), LogicalPlan::SubqueryAlias(a) if a.alias.table() == REDUCER_ALIAS)
        {
            let mut tables = Vec::new();
            join.right.apply(|n| {
                if let LogicalPlan::TableScan(scan) = n {
                    tables.push(scan.table_name.to_string());
                }
                Ok(TreeNodeRecursion::Continue)
            })?;
            found.push(tables);
        }
        Ok(TreeNodeRecursion::Continue)
    })
    .unwrap();
    found
}

/// Line items summed per part, under the alias `sq`.
fn quantities_per_part() -> LogicalPlan {
    table(
        "lineitem",
        6_000_000,
        &[("l_partkey", 200_000), ("l_quantity", 50)],
    )
    .aggregate(vec![col("l_partkey")], vec![sum(col("l_quantity"))])
    .unwrap()
    .alias("sq")
    .unwrap()
    .build()
    .unwrap()
}

/// Parts of one brand: about 8,000 of 200,000 estimated.
fn selected_parts() -> LogicalPlanBuilder {
    table("part", 200_000, &[("p_partkey", 200_000), ("p_brand", 25)])
        .filter(col("p_brand").eq(lit(3i64)))
        .unwrap()
}

/// `parts` (with `p_partkey`) joined to `aggregate` (aliased `sq`) on the
/// part key.
fn parts_joined_to(
    parts: LogicalPlanBuilder,
    aggregate: LogicalPlan,
    join_type: JoinType,
) -> LogicalPlan {
    parts
        .join(
            aggregate,
            join_type,
            (vec!["p_partkey"], vec!["sq.l_partkey"]),
            None,
        )
        .unwrap()
        .build()
        .unwrap()
}

/// TPC-H Q17's shape: the selected parts' line items, semi-joined to the
/// per-part aggregate of all line items on the part key.
fn q17_shape() -> LogicalPlanBuilder {
    let outer = table(
        "outer_lines",
        6_000_000,
        &[("o_partkey", 200_000), ("o_quantity", 50)],
    )
    .join(
        selected_parts().build().unwrap(),
        JoinType::Inner,
        (vec!["o_partkey"], vec!["p_partkey"]),
        None,
    )
    .unwrap();
    outer
        .join(
            quantities_per_part(),
            JoinType::LeftSemi,
            (vec!["part.p_partkey"], vec!["sq.l_partkey"]),
            Some(col("o_quantity").lt(Expr::Column(Column::new(
                Some("sq"),
                "sum(lineitem.l_quantity)",
            )))),
        )
        .unwrap()
}

#[test]
fn an_aggregate_joined_to_selected_keys_groups_only_those_keys() {
    let written = q17_shape().build().unwrap();
    let plan = optimized(written.clone());
    // The selected parts reduce it, not the line items they joined (the
    // key reached across the join's equality); once, over three passes.
    assert_eq!(reducers(&plan), [["part"]], "{}", plan.display_indent());
    assert_eq!(plan.schema(), written.schema());
    let text = plan.display_indent().to_string();
    assert!(
        text.contains("LeftSemi Join: lineitem.l_partkey = __joined_keys.p_partkey"),
        "{text}"
    );
}

#[test]
fn an_inner_join_reduces_an_aggregate_on_either_side() {
    let plan = LogicalPlanBuilder::from(quantities_per_part())
        .join(
            selected_parts().build().unwrap(),
            JoinType::Inner,
            (vec!["sq.l_partkey"], vec!["p_partkey"]),
            None,
        )
        .unwrap()
        .build()
        .unwrap();
    assert_eq!(reducers(&optimized(plan)), [["part"]]);
}

#[test]
fn a_reducer_is_found_across_a_semi_join() {
    // TPC-H Q20's shape: partsupp rows of selected parts (a semi join),
    // joined to line items aggregated per part.
    let partsupp = table("partsupp", 800_000, &[("ps_partkey", 200_000)])
        .join(
            selected_parts().build().unwrap(),
            JoinType::LeftSemi,
            (vec!["ps_partkey"], vec!["p_partkey"]),
            None,
        )
        .unwrap();
    let plan = partsupp
        .join(
            quantities_per_part(),
            JoinType::Inner,
            (vec!["ps_partkey"], vec!["sq.l_partkey"]),
            None,
        )
        .unwrap()
        .build()
        .unwrap();
    assert_eq!(reducers(&optimized(plan)), [["part"]]);
}

#[test]
fn an_unselective_other_side_leaves_the_aggregate_whole() {
    // Every part: a second scan of the table would save no group.
    let all_parts = table("part", 200_000, &[("p_partkey", 200_000)]);
    let plan = parts_joined_to(all_parts, quantities_per_part(), JoinType::Inner);
    assert!(reducers(&optimized(plan)).is_empty());
}

#[test]
fn a_reducer_must_give_the_same_rows_when_evaluated_again() {
    let sampled_parts = table("part", 200_000, &[("p_partkey", 200_000)])
        .filter(random().lt(lit(0.01)))
        .unwrap();
    let plan = parts_joined_to(sampled_parts, quantities_per_part(), JoinType::Inner);
    assert!(reducers(&optimized(plan)).is_empty());
}

#[test]
fn joins_that_keep_unmatched_aggregate_rows_are_left_alone() {
    for join_type in [JoinType::Left, JoinType::Full, JoinType::RightAnti] {
        let plan = parts_joined_to(selected_parts(), quantities_per_part(), join_type);
        // A left join keeps every part and needs only the matched groups,
        // but the rule does not reason about it: only the aggregate's own
        // rows being dropped makes a reduction exact.
        assert!(reducers(&optimized(plan)).is_empty(), "{join_type}");
    }
}

#[test]
fn an_aggregate_beneath_a_limit_is_left_whole() {
    // Which groups a limit keeps depends on all of them.
    let limited = LogicalPlanBuilder::from(quantities_per_part())
        .limit(0, Some(10))
        .unwrap()
        .build()
        .unwrap();
    let plan = parts_joined_to(selected_parts(), limited, JoinType::Inner);
    assert!(reducers(&optimized(plan)).is_empty());
}
