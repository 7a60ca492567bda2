//! The rule over logical plans of tables that report statistics (and one
//! that does not): which order it picks, and when it keeps the written one.

use datafusion::logical_expr::{JoinType, LogicalPlan, LogicalPlanBuilder, col, lit};

use super::*;
use crate::test_tables::{scan, table};

fn join(left: LogicalPlanBuilder, right: LogicalPlan, keys: (&str, &str)) -> LogicalPlanBuilder {
    left.join(right, JoinType::Inner, (vec![keys.0], vec![keys.1]), None)
        .unwrap()
}

/// The tables a plan scans, in the order it joins them.
fn scan_order(plan: &LogicalPlan) -> Vec<String> {
    let mut names = Vec::new();
    plan.apply(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            names.push(scan.table_name.to_string());
        }
        Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
    })
    .unwrap();
    names
}

/// TPC-H Q5's shape, reduced: facts ⋈ customers ⋈ nations ⋈ regions written
/// from the largest, one region selected; customers and regions linked only
/// through the nations.
fn star_written_largest_first() -> LogicalPlan {
    let facts = table(
        "facts",
        6_000_000,
        &[("f_cust", 150_000), ("f_amount", 1000)],
    );
    let customers = table(
        "customers",
        150_000,
        &[("c_cust", 150_000), ("c_nation", 25)],
    );
    let nations = table("nations", 25, &[("n_nation", 25), ("n_region", 5)]);
    let regions = table("regions", 5, &[("r_region", 5), ("r_name", 5)])
        .filter(col("r_name").eq(lit(3i64)))
        .unwrap();
    let plan = join(facts, customers.build().unwrap(), ("f_cust", "c_cust"));
    let plan = join(plan, nations.build().unwrap(), ("c_nation", "n_nation"));
    join(plan, regions.build().unwrap(), ("n_region", "r_region"))
        .build()
        .unwrap()
}

#[test]
fn a_selective_input_written_last_is_joined_first() {
    let written = star_written_largest_first();
    let reordered = reorder(written.clone()).unwrap();
    assert!(reordered.transformed);
    assert_eq!(
        scan_order(&reordered.data),
        ["nations", "regions", "customers", "facts"],
        "{}",
        reordered.data.display_indent()
    );
    // Same columns, same order, same qualifiers.
    assert_eq!(reordered.data.schema(), written.schema());
}

#[test]
fn a_reordered_plan_is_kept_when_optimized_again() {
    let once = reorder(star_written_largest_first()).unwrap().data;
    let twice = reorder(once.clone()).unwrap();
    assert!(!twice.transformed, "{}", twice.data.display_indent());
    assert_eq!(twice.data, once);
}

#[test]
fn inputs_linked_through_a_third_join_on_the_implied_equality() {
    // a.k = b.k and b.k = c.k, b large with few keys, c filtered: a and c
    // join first, on a.k = c.k, which the query never wrote.
    let a = table("a", 10, &[("a_k", 10)]);
    let b = table("b", 1_000_000, &[("b_k", 100)]);
    let c = table("c", 10, &[("c_k", 10)])
        .filter(col("c_k").lt(lit(3i64)))
        .unwrap();
    let plan = join(a, b.build().unwrap(), ("a_k", "b_k"));
    let written = join(plan, c.build().unwrap(), ("b_k", "c_k"))
        .build()
        .unwrap();
    let reordered = reorder(written.clone()).unwrap().data;
    assert_eq!(scan_order(&reordered), ["a", "c", "b"]);
    let shown = reordered.display_indent().to_string();
    assert!(shown.contains("a.a_k = c.c_k"), "{shown}");
    assert_eq!(reordered.schema(), written.schema());
}

#[test]
fn an_input_without_statistics_keeps_the_written_order() {
    let facts = scan("facts", &[("f_cust", 0)], None);
    let customers = table(
        "customers",
        150_000,
        &[("c_cust", 150_000), ("c_nation", 25)],
    );
    let nations = table("nations", 25, &[("n_nation", 25)])
        .filter(col("n_nation").eq(lit(3i64)))
        .unwrap();
    let plan = join(facts, customers.build().unwrap(), ("f_cust", "c_cust"));
    let written = join(plan, nations.build().unwrap(), ("c_nation", "n_nation"))
        .build()
        .unwrap();
    let kept = reorder(written.clone()).unwrap();
    assert!(!kept.transformed);
    assert_eq!(kept.data, written);
}

#[test]
fn a_small_estimated_gain_keeps_the_written_order() {
    // Written smallest first along a chain: nothing is estimated at half.
    let nations = table("nations", 25, &[("n_nation", 25)]);
    let customers = table(
        "customers",
        150_000,
        &[("c_cust", 150_000), ("c_nation", 25)],
    );
    let facts = table("facts", 6_000_000, &[("f_cust", 150_000)]);
    let plan = join(
        nations,
        customers.build().unwrap(),
        ("n_nation", "c_nation"),
    );
    let written = join(plan, facts.build().unwrap(), ("c_cust", "f_cust"))
        .build()
        .unwrap();
    let kept = reorder(written.clone()).unwrap();
    assert!(!kept.transformed, "{}", kept.data.display_indent());
}

#[test]
fn a_join_with_a_condition_beyond_equalities_is_an_input_boundary() {
    // The top join carries a non-equality filter: it is no cluster node,
    // and the two-input join beneath it is too small to reorder.
    let facts = table(
        "facts",
        6_000_000,
        &[("f_cust", 150_000), ("f_amount", 1000)],
    );
    let customers = table(
        "customers",
        150_000,
        &[("c_cust", 150_000), ("c_nation", 25)],
    );
    let nations = table("nations", 25, &[("n_nation", 25)]);
    let plan = join(facts, customers.build().unwrap(), ("f_cust", "c_cust"));
    let written = plan
        .join(
            nations.build().unwrap(),
            JoinType::Inner,
            (vec!["c_nation"], vec!["n_nation"]),
            Some(col("f_amount").gt(col("n_nation"))),
        )
        .unwrap()
        .build()
        .unwrap();
    assert!(!reorder(written).unwrap().transformed);
}

#[test]
fn outer_joins_are_never_reordered() {
    let facts = table("facts", 6_000_000, &[("f_cust", 150_000)]);
    let customers = table(
        "customers",
        150_000,
        &[("c_cust", 150_000), ("c_nation", 25)],
    );
    let nations = table("nations", 25, &[("n_nation", 25)])
        .filter(col("n_nation").eq(lit(3i64)))
        .unwrap();
    let plan = facts
        .join(
            customers.build().unwrap(),
            JoinType::Left,
            (vec!["f_cust"], vec!["c_cust"]),
            None,
        )
        .unwrap();
    let written = join(plan, nations.build().unwrap(), ("c_nation", "n_nation"))
        .build()
        .unwrap();
    assert!(!reorder(written).unwrap().transformed);
}

/// TPC-H's parts, one filter selecting some of them.
fn selected_parts() -> LogicalPlanBuilder {
    table("part", 200_000, &[("p_partkey", 200_000)])
        .filter(col("p_partkey").gt(lit(5i64)))
        .unwrap()
}

/// `plan` (holding line items) joined with partsupp on part and supplier,
/// the two keys of one relationship.
fn join_partsupp(plan: LogicalPlanBuilder) -> LogicalPlanBuilder {
    let partsupp = table(
        "partsupp",
        800_000,
        &[("ps_partkey", 200_000), ("ps_suppkey", 10_000)],
    );
    plan.join(
        partsupp.build().unwrap(),
        JoinType::Inner,
        (
            vec!["l_partkey", "l_suppkey"],
            vec!["ps_partkey", "ps_suppkey"],
        ),
        None,
    )
    .unwrap()
}

#[test]
fn a_join_on_two_keys_of_one_relationship_is_not_taken_for_an_empty_one() {
    // TPC-H Q9's shape: line items join partsupp on part and supplier,
    // which go together. Multiplying both keys' selectivities would
    // estimate that join at a few hundred rows and move it first.
    let parts = selected_parts();
    let lines = table(
        "lineitem",
        6_000_000,
        &[("l_partkey", 200_000), ("l_suppkey", 10_000)],
    );
    let plan = join(parts, lines.build().unwrap(), ("p_partkey", "l_partkey"));
    let written = join_partsupp(plan).build().unwrap();
    let kept = reorder(written).unwrap();
    assert!(!kept.transformed, "{}", kept.data.display_indent());
}

#[test]
fn a_foreign_key_matches_no_more_values_than_its_referenced_key_has() {
    // TPC-H Q9's whole cluster. Line items' order keys range over 6 M
    // numbers but only 1.5 M orders exist: taken as 6 M distinct values,
    // line items ⋈ orders looked like it kept a quarter of the line items
    // and came first, probing all 6 M of them before the selected parts
    // narrowed anything.
    let parts = selected_parts();
    let suppliers = table(
        "supplier",
        10_000,
        &[("s_suppkey", 10_000), ("s_nationkey", 25)],
    );
    let lines = table(
        "lineitem",
        6_000_000,
        &[
            ("l_orderkey", 6_000_000),
            ("l_partkey", 200_000),
            ("l_suppkey", 10_000),
        ],
    );
    let orders = table("orders", 1_500_000, &[("o_orderkey", 6_000_000)]);
    let nations = table("nation", 25, &[("n_nationkey", 25)]);
    // DataFusion's own order for Q9: selected parts, their line items,
    // then suppliers, partsupp, orders and nations.
    let plan = join(parts, lines.build().unwrap(), ("p_partkey", "l_partkey"));
    let plan = join(plan, suppliers.build().unwrap(), ("l_suppkey", "s_suppkey"));
    let plan = join_partsupp(plan);
    let plan = join(plan, orders.build().unwrap(), ("l_orderkey", "o_orderkey"));
    let written = join(
        plan,
        nations.build().unwrap(),
        ("s_nationkey", "n_nationkey"),
    )
    .build()
    .unwrap();
    let reordered = reorder(written).unwrap();
    let order = scan_order(&reordered.data);
    let position = |name: &str| order.iter().position(|n| n == name).unwrap();
    assert!(
        position("orders") > position("part") && position("lineitem") > position("part"),
        "{}",
        reordered.data.display_indent()
    );
}

#[test]
fn a_cluster_inside_an_uncorrelated_scalar_subquery_is_reordered() {
    use std::sync::Arc;

    use datafusion::functions_aggregate::expr_fn::count;
    use datafusion::logical_expr::scalar_subquery;

    // TPC-H Q11's shape: the total a HAVING compares with, a scalar
    // subquery DataFusion runs on its own, over a badly written cluster.
    let total = LogicalPlanBuilder::from(star_written_largest_first())
        .aggregate(Vec::<Expr>::new(), vec![count(lit(1i64))])
        .unwrap()
        .build()
        .unwrap();
    let written = table("outer_rows", 100, &[("o_k", 100)])
        .filter(col("o_k").gt(scalar_subquery(Arc::new(total))))
        .unwrap()
        .build()
        .unwrap();
    let reordered = reorder(written).unwrap();
    assert!(reordered.transformed);
    let mut subquery_order = Vec::new();
    reordered
        .data
        .apply_subqueries(|subquery| {
            subquery_order = scan_order(subquery);
            Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
        })
        .unwrap();
    assert_eq!(
        subquery_order,
        ["nations", "regions", "customers", "facts"],
        "{}",
        reordered.data.display_indent()
    );
}
