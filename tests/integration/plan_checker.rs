//! Test tool (c): the plan checker. It walks the final physical plan of a
//! query and asserts that
//!
//! 1. every Parquet scan sits beneath a `PolicyBarrierExec` (for roles whose
//!    every table is restricted), and
//! 2. beneath each barrier there is no predicate that was not in the policy
//!    plan when the barrier was made (no user predicate was pushed into it
//!    later by the optimizer), except leakproof predicates the barrier itself
//!    accepted, which are already in that plan, and
//! 3. every dynamic filter beneath a barrier either comes from the policy's
//!    own joins and top-k sorts beneath it or reads nothing but bare columns
//!    the role sees raw (a leakproof one let through from above).

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{Column, DynamicFilterPhysicalExpr};
use datafusion::physical_plan::{ExecutionPlan, displayable};
use lakegate_engine::{PolicyBarrierExec, QuerySession};

use crate::common;

/// The conjuncts of the predicates shown in a plan's indented display, with
/// column indices dropped (`a@2` is `a`): a predicate pushed from a filter into
/// a scan reads the same column at its index in the file. The optimizer may
/// repeat a policy predicate (`a > 5 AND a > 5`); what matters is that no new
/// conjunct appears.
fn conjuncts(display: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut add = |predicate: &str| {
        for conjunct in predicate.split(" AND ") {
            found.insert(without_column_indices(
                conjunct.trim_matches(|c| c == '(' || c == ')' || c == ' '),
            ));
        }
    };
    for line in display.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("FilterExec: ") {
            add(before_any(rest, &[", projection=", ", fetch="]));
        }
        if let Some(at) = line.find("predicate=") {
            let rest = &line[at + "predicate=".len()..];
            add(before_any(
                rest,
                &[", pruning_predicate=", ", dynamic_rg_pruning="],
            ));
        }
    }
    found
}

/// `text` up to the first of `markers` (all of it when none occurs).
fn before_any<'a>(text: &'a str, markers: &[&str]) -> &'a str {
    let end = markers
        .iter()
        .filter_map(|marker| text.find(marker))
        .min()
        .unwrap_or(text.len());
    &text[..end]
}

/// `a@2 > b@0` as `a > b`.
fn without_column_indices(expr: &str) -> String {
    let mut out = String::with_capacity(expr.len());
    let mut chars = expr.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '@' && chars.peek().is_some_and(|d| d.is_ascii_digit()) {
            while chars.peek().is_some_and(|d| d.is_ascii_digit()) {
                chars.next();
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Dynamic filters produced by `plan` and its descendants.
fn produced_dynamic_filters(plan: &Arc<dyn ExecutionPlan>) -> usize {
    plan.dynamic_expressions_produced().len()
        + plan
            .children()
            .into_iter()
            .map(produced_dynamic_filters)
            .sum::<usize>()
}

/// The dynamic filters read by `plan` and its descendants, each once (a
/// filter may be read by several scans), as the names of the columns each
/// reads (`None` for an input that is not a bare column).
pub(crate) fn consumed_dynamic_filters(plan: &Arc<dyn ExecutionPlan>) -> Vec<Vec<Option<String>>> {
    let mut found = HashSet::new();
    collect_dynamic_filters(plan, &mut found);
    found
        .into_iter()
        .map(|filter| {
            filter
                .children()
                .iter()
                .map(|input| {
                    input
                        .downcast_ref::<Column>()
                        .map(|column| column.name().to_string())
                })
                .collect()
        })
        .collect()
}

fn collect_dynamic_filters(
    plan: &Arc<dyn ExecutionPlan>,
    found: &mut HashSet<Arc<dyn PhysicalExpr>>,
) {
    // A join or sort lists the filter it makes among its own expressions.
    let produced = plan.dynamic_expressions_produced();
    let mut visit = |expr: &Arc<dyn PhysicalExpr>| {
        expr.apply(|node| {
            Ok(
                if node.downcast_ref::<DynamicFilterPhysicalExpr>().is_some() {
                    if !produced.contains(node) {
                        found.insert(Arc::clone(node));
                    }
                    TreeNodeRecursion::Jump
                } else {
                    TreeNodeRecursion::Continue
                },
            )
        })
    };
    plan.apply_expressions(&mut visit).unwrap();
    for child in plan.children() {
        collect_dynamic_filters(child, found);
    }
}

/// Checks one plan; returns the number of barriers found. With
/// `scans_restricted` (a role whose every table is restricted), every Parquet
/// scan must also sit beneath a barrier.
pub(crate) fn check_plan(
    plan: &Arc<dyn ExecutionPlan>,
    inside_barrier: bool,
    scans_restricted: bool,
) -> usize {
    let mut barriers = 0;
    if let Some(barrier) = plan.downcast_ref::<PolicyBarrierExec>() {
        barriers += 1;
        let now = displayable(plan.children()[0].as_ref())
            .indent(true)
            .to_string();
        let planned = conjuncts(&barrier.planned());
        for conjunct in conjuncts(&now) {
            if conjunct.starts_with("DynamicFilter") {
                continue; // counted below
            }
            assert!(
                planned.contains(&conjunct),
                "`{conjunct}` was pushed beneath the barrier of {}:\n{now}\nplanned:\n{}",
                barrier.table(),
                barrier.planned()
            );
        }
        // A dynamic filter beneath the barrier that reads anything but bare
        // raw columns must come from the policy's own joins and top-k sorts
        // beneath it, never from a node above.
        let raw = barrier.raw_columns();
        let not_leakproof: Vec<_> = consumed_dynamic_filters(plan.children()[0])
            .into_iter()
            .filter(|inputs| {
                !inputs
                    .iter()
                    .all(|input| input.as_ref().is_some_and(|name| raw.contains(name)))
            })
            .collect();
        let produced = produced_dynamic_filters(plan.children()[0]);
        assert!(
            not_leakproof.len() <= produced,
            "{} dynamic filter(s) over columns not seen raw ({not_leakproof:?}; raw: {raw:?}) beneath the barrier of {}, but only {produced} produced beneath it:\n{now}",
            not_leakproof.len(),
            barrier.table()
        );
        for child in plan.children() {
            barriers += check_plan(child, true, scans_restricted);
        }
        return barriers;
    }
    if scans_restricted && plan.name() == "DataSourceExec" {
        let line = displayable(plan.as_ref()).one_line().to_string();
        if line.contains(".parquet") {
            assert!(
                inside_barrier,
                "a Parquet scan outside any policy barrier: {line}"
            );
        }
    }
    for child in plan.children() {
        barriers += check_plan(child, inside_barrier, scans_restricted);
    }
    barriers
}

const QUERIES: [&str; 12] = [
    "SELECT * FROM orders WHERE 10 / (a - 3) > 0",
    "SELECT * FROM orders WHERE a > 7",
    "SELECT * FROM orders WHERE a > 7 AND note LIKE 'x%'",
    "SELECT * FROM orders ORDER BY a LIMIT 3",
    "SELECT count(*), min(a), max(a) FROM orders",
    "SELECT o1.a FROM orders o1 JOIN orders o2 ON o1.a = o2.a + 1 WHERE o2.a > 6",
    "SELECT * FROM orders o JOIN (VALUES (7), (8)) v(x) ON o.a = v.x",
    "SELECT a FROM orders WHERE a IN (SELECT a FROM orders WHERE amount > 70)",
    "SELECT a, row_number() OVER (ORDER BY amount) FROM orders",
    "WITH w AS (SELECT * FROM orders WHERE CAST(note AS INT) > 1) SELECT count(*) FROM w",
    "SELECT a FROM orders UNION ALL SELECT a FROM orders WHERE a < 3",
    "SELECT * FROM orders LIMIT 1",
];

async fn check_queries(session: &mut QuerySession, queries: &[&str]) {
    for sql in queries {
        let plan = session
            .physical_plan(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        let barriers = check_plan(&plan, false, true);
        assert!(barriers > 0, "no barrier in the plan of {sql}");
    }
}

#[tokio::test]
async fn every_protected_scan_sits_under_its_barrier() {
    let lake = common::shop_lake().await;
    for role in ["auditor", "analyst"] {
        let mut session = lake.engine.session("ann", Some(role)).unwrap();
        session.use_database("shop").unwrap();
        check_queries(&mut session, &QUERIES).await;
    }
    let mut session = lake.engine.session("ann", Some("analyst")).unwrap();
    session.use_database("shop").unwrap();
    check_queries(
        &mut session,
        &[
            "SELECT c.name, o.note FROM customers c JOIN orders o ON c.id = o.customer_id WHERE c.email > 'a'",
            "SELECT * FROM customers WHERE region = 'EU' AND phone LIKE '%7%'",
            "SELECT count(*) FROM customers c WHERE EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id)",
        ],
    )
    .await;
}

#[tokio::test]
async fn demo_roles_plans_are_barriered() {
    let engine = common::demo_lake().await;
    let mut sales = engine.session("tina", Some("sales")).unwrap();
    check_queries(
        &mut sales,
        &[
            "SELECT * FROM dl_tpc_web_sales LIMIT 10",
            "SELECT ws_item_sk, sum(ws_net_paid) FROM dl_tpc_web_sales WHERE ws_quantity > 50 GROUP BY 1 ORDER BY 2 DESC LIMIT 5",
            "SELECT count(*) FROM dl_tpc_web_sales WHERE 1000 / (ws_quantity - 1) > 0",
        ],
    )
    .await;
    let mut marketing = engine.session("david", None).unwrap();
    check_queries(
        &mut marketing,
        &["SELECT * FROM dl_tpc_customer WHERE c_email_address LIKE 'a%' LIMIT 10"],
    )
    .await;
}

#[tokio::test]
async fn the_checker_catches_an_unbarriered_scan() {
    // The admin's tables are unrestricted and scanned directly: the checker
    // must flag that plan, proving it can fail.
    let lake = common::shop_lake().await;
    let mut session = lake.engine.session("root", None).unwrap();
    let plan = session
        .physical_plan("SELECT * FROM shop.orders")
        .await
        .unwrap();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        check_plan(&plan, false, true)
    }));
    assert!(
        caught.is_err(),
        "the checker accepted a scan outside any barrier"
    );
}

#[test]
fn the_checker_tells_a_pushed_predicate_from_the_policys_own() {
    // The policy's predicate, moved from its filter into the scan (where its
    // column has the file's index), is the same conjunct; a user predicate
    // that joined it there is new.
    let planned = conjuncts("FilterExec: a@0 > 5, fetch=1\n  DataSourceExec: projection=[a]");
    let moved = conjuncts("DataSourceExec: projection=[a], predicate=a@2 > 5, pruning_predicate=x");
    assert!(moved.is_subset(&planned));
    let leaked = conjuncts(
        "DataSourceExec: projection=[a], predicate=a@2 > 5 AND 10 / (a@2 - 3) > 0, dynamic_rg_pruning=eligible",
    );
    assert_eq!(
        leaked.difference(&planned).collect::<Vec<_>>(),
        ["10 / (a - 3) > 0"]
    );
}
