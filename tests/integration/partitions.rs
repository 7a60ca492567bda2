//! Queries read in independent parts (parallel Flight endpoints): the parts
//! are disjoint and together make the whole result, under the role's policy.

use arrow::array::RecordBatch;
use futures::TryStreamExt;

use crate::common;

#[tokio::test]
async fn parts_are_disjoint_and_make_the_whole_result() {
    let engine = common::demo_lake().await;
    let sql = "SELECT ws_order_number FROM dl_tpc_web_sales";
    for (user, role) in [("admin", None), ("tina", Some("sales"))] {
        let mut session = engine.session(user, role).unwrap();
        let whole = session.execute(sql).await.unwrap().collect().await.unwrap();
        let query = session.plan(sql).await.unwrap().into_parts().await.unwrap();
        let mut parts = Vec::new();
        for part in 0..query.parts() {
            let batches: Vec<RecordBatch> = query
                .execute(part)
                .await
                .unwrap()
                .stream
                .try_collect()
                .await
                .unwrap();
            parts.extend(batches);
        }
        assert_eq!(
            common::sorted_first_column_i64(&parts),
            common::sorted_first_column_i64(&whole),
            "{user}: the parts, together, are the whole result"
        );
        if user == "admin" {
            // Four files over two partitions: two parts.
            assert_eq!(query.parts(), 2);
        }
    }

    // Anything that needs all rows in one place is read whole.
    let mut session = engine.session("admin", None).unwrap();
    for sql in [
        "SELECT ws_order_number FROM dl_tpc_web_sales ORDER BY 1",
        "SELECT count(*) FROM dl_tpc_web_sales",
        "SELECT ws_order_number FROM dl_tpc_web_sales LIMIT 5",
    ] {
        let query = session.plan(sql).await.unwrap().into_parts().await.unwrap();
        assert_eq!(query.parts(), 1, "{sql}");
    }
    // A statement the session answers itself is one part too.
    let databases = session.plan("SHOW DATABASES").await.unwrap();
    assert_eq!(databases.into_parts().await.unwrap().parts(), 1);
}

/// The most partitions any scan in `plan` reads.
fn scan_partitions(plan: &std::sync::Arc<dyn datafusion::physical_plan::ExecutionPlan>) -> usize {
    use datafusion::physical_plan::ExecutionPlanProperties;
    match plan.children().as_slice() {
        [] => plan.output_partitioning().partition_count(),
        children => children.iter().map(|c| scan_partitions(c)).max().unwrap(),
    }
}

#[tokio::test]
async fn a_query_for_a_tables_first_rows_reads_one_partition() {
    let engine = common::demo_lake().await;
    let first_rows = "SELECT ws_order_number FROM dl_tpc_web_sales LIMIT 10";
    let mut admin = engine.session("admin", None).unwrap();
    let plan = admin.physical_plan(first_rows).await.unwrap();
    assert_eq!(scan_partitions(&plan), 1, "{first_rows}");
    let rows = admin
        .execute(first_rows)
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_eq!(rows.iter().map(RecordBatch::num_rows).sum::<usize>(), 10);

    // A filter could make the scan read far for its rows, and many rows are
    // a scan: these keep every partition.
    for sql in [
        "SELECT ws_order_number FROM dl_tpc_web_sales WHERE ws_quantity > 50 LIMIT 10",
        "SELECT ws_order_number FROM dl_tpc_web_sales LIMIT 100000",
        "SELECT ws_order_number FROM dl_tpc_web_sales ORDER BY 1 LIMIT 10",
    ] {
        let plan = admin.physical_plan(sql).await.unwrap();
        assert_eq!(scan_partitions(&plan), 2, "{sql}");
    }
    // So does a role whose policy filters the table's rows.
    let mut tina = engine.session("tina", Some("sales")).unwrap();
    let plan = tina.physical_plan(first_rows).await.unwrap();
    assert_eq!(scan_partitions(&plan), 2, "tina: {first_rows}");
    // The session's later queries plan as before.
    let whole = "SELECT ws_order_number FROM dl_tpc_web_sales";
    assert_eq!(
        scan_partitions(&admin.physical_plan(whole).await.unwrap()),
        2
    );
}
