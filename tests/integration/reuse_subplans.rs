//! Repeated aggregates computed once (`ReuseRepeatedAggregates`): a CTE
//! referenced twice is aggregated once, with the same answers, under the
//! policy barrier; a volatile or differently filtered aggregate is not
//! shared.

use datafusion::physical_plan::displayable;

use crate::common;
use crate::plan_checker::check_plan;

/// The auditor's orders (a > 5) by customer, and the customer with the
/// largest sum: the CTE is referenced by the query and its subquery.
const LARGEST: &str = "WITH t AS (SELECT customer_id, sum(a) AS s FROM orders GROUP BY customer_id) \
     SELECT customer_id FROM t WHERE s = (SELECT max(s) FROM t)";

async fn plan_text(lake: &common::ShopLake, user: &str, role: &str, sql: &str) -> String {
    let mut session = lake.engine.session(user, Some(role)).unwrap();
    session.use_database("shop").unwrap();
    let plan = session
        .physical_plan(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    check_plan(&plan, false, false);
    displayable(plan.as_ref()).indent(true).to_string()
}

async fn first_column(lake: &common::ShopLake, user: &str, role: &str, sql: &str) -> Vec<i64> {
    common::shop_first_column(&lake.engine, user, role, sql).await
}

#[tokio::test]
async fn a_cte_referenced_twice_is_aggregated_once_under_the_policy() {
    let lake = common::shop_lake().await;
    let plan = plan_text(&lake, "ann", "auditor", LARGEST).await;
    assert_eq!(plan.matches("SharedResultExec").count(), 2, "{plan}");
    // Orders 6..=10 belong to customers 6, 1, 2, 3, 4: customer 4's order
    // (a = 10) is the largest sum; the hidden orders (a <= 5) count nowhere.
    assert_eq!(first_column(&lake, "ann", "auditor", LARGEST).await, [4]);
}

#[tokio::test]
async fn the_second_reference_reads_no_file() {
    let lake = common::shop_lake().await;
    // A lake administrator's EXPLAIN ANALYZE shows what each scan read.
    let mut session = lake.engine.session("root", None).unwrap();
    session.use_database("shop").unwrap();
    let batches = session
        .execute(&format!("EXPLAIN ANALYZE {LARGEST}"))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let text = common::cells_as_text(&batches)
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("\n");
    let scans: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("DataSourceExec") && line.contains("orders"))
        .collect();
    assert_eq!(scans.len(), 2, "{text}");
    let reading = scans
        .iter()
        .filter(|line| line.contains("output_rows=10,"))
        .count();
    assert_eq!(reading, 1, "both references scanned orders:\n{text}");
}

#[tokio::test]
async fn volatile_or_different_aggregates_are_not_shared() {
    let lake = common::shop_lake().await;
    for sql in [
        "WITH t AS (SELECT customer_id, sum(a * random()) AS s FROM orders GROUP BY customer_id) \
         SELECT customer_id FROM t WHERE s = (SELECT max(s) FROM t)",
        "SELECT customer_id FROM (SELECT customer_id, sum(a) AS s FROM orders GROUP BY customer_id) t \
         WHERE s = (SELECT max(s) FROM (SELECT customer_id, sum(a) AS s FROM orders WHERE a > 7 GROUP BY customer_id) u)",
    ] {
        let plan = plan_text(&lake, "ann", "auditor", sql).await;
        assert!(!plan.contains("SharedResultExec"), "{sql}:\n{plan}");
    }
}
