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
        let query = session.plan_parts(sql, None).await.unwrap().unwrap();
        let mut parts = Vec::new();
        for part in 0..query.parts() {
            let batches: Vec<RecordBatch> = query
                .execute(part)
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
        let query = session.plan_parts(sql, None).await.unwrap().unwrap();
        assert_eq!(query.parts(), 1, "{sql}");
    }
    assert!(
        session
            .plan_parts("SHOW DATABASES", None)
            .await
            .unwrap()
            .is_none()
    );
}
