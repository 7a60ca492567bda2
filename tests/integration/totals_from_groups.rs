//! A subquery's total computed from the query's groups (`TotalsFromGroups`,
//! then `ReuseRepeatedAggregates`): TPC-H Q11 joins and aggregates
//! `partsupp ⋈ supplier ⋈ nation` once, as `analyst` and `admin`; its plan
//! passes the plan checker, and the answer equals Q11 with the subquery's
//! total written so that the rule leaves it alone.

use std::sync::Arc;

use datafusion::physical_plan::displayable;

use crate::plan_checker::check_plan;
use crate::tpch::{self, lake_context, rows_of, rows_read, tpch_engine};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn q11_reads_partsupp_once_and_answers_as_written() {
    let data_dir = tpch::lake().await;
    let engine = tpch_engine(data_dir, true).await;
    let q11 = tpch::query("q11");
    // The subquery's aggregate differs from the query's: computed apart.
    let apart = q11.replace(
        "SELECT sum(ps_supplycost * ps_availqty) * 0.0001",
        "SELECT sum(ps_availqty * ps_supplycost) * 0.0001",
    );
    assert_ne!(apart, q11);
    for role in ["admin", "analyst"] {
        let mut session = engine.session(role, None).unwrap();
        let partsupp = rows_of(&mut session, "SELECT count(*) FROM partsupp")
            .await
            .unwrap();
        let partsupp: usize = partsupp[0][0].parse().unwrap();

        let plan = session.physical_plan(&q11).await.unwrap();
        check_plan(&plan, false, false);
        let text = displayable(plan.as_ref()).indent(true).to_string();
        assert_eq!(
            text.matches("SharedResultExec").count(),
            2,
            "{role}: {text}"
        );
        let context = lake_context(data_dir).await;
        datafusion::physical_plan::collect(Arc::clone(&plan), context.task_ctx())
            .await
            .unwrap();
        assert_eq!(rows_read(&plan, "partsupp"), partsupp, "{role}: {text}");

        let plan = session.physical_plan(&apart).await.unwrap();
        datafusion::physical_plan::collect(Arc::clone(&plan), context.task_ctx())
            .await
            .unwrap();
        assert_eq!(rows_read(&plan, "partsupp"), 2 * partsupp, "{role}");

        let answer = rows_of(&mut session, &q11).await.unwrap();
        assert!(!answer.is_empty(), "{role}");
        assert_eq!(
            answer,
            rows_of(&mut session, &apart).await.unwrap(),
            "{role}"
        );
    }
}
