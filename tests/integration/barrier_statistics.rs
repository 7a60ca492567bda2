//! What a policy barrier tells the optimizer about the rows beneath it: an
//! estimate of how many rows and bytes, so that a join builds on its smaller
//! side, and nothing exact and nothing per column, so that no aggregate is
//! answered from statistics and no bound of a hidden value crosses it.

use std::sync::Arc;

use datafusion::common::stats::Precision;
use datafusion::common::{ColumnStatistics, Statistics};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::execution_plan::replace_children_if_necessary;
use datafusion::physical_plan::statistics::{StatisticsArgs, StatisticsContext};
use lakegate_engine::PolicyBarrierExec;

use crate::common;

fn first_barrier(plan: &Arc<dyn ExecutionPlan>) -> Option<Arc<dyn ExecutionPlan>> {
    if plan.is::<PolicyBarrierExec>() {
        return Some(Arc::clone(plan));
    }
    plan.children().into_iter().find_map(first_barrier)
}

fn statistics(plan: &dyn ExecutionPlan) -> Arc<Statistics> {
    StatisticsContext::new()
        .compute(plan, &StatisticsArgs::new())
        .unwrap()
}

#[tokio::test]
async fn a_barrier_passes_on_an_estimate_of_its_rows_and_no_column_statistics() {
    let lake = common::shop_lake().await;
    // auditor: `a > 5` on orders; analyst: a subquery row filter; recent: a
    // filter and a mask.
    for role in ["auditor", "analyst", "recent"] {
        let mut session = lake.engine.session("ann", Some(role)).unwrap();
        session.use_database("shop").unwrap();
        let plan = session.physical_plan("SELECT * FROM orders").await.unwrap();
        let barrier = first_barrier(&plan).expect("orders is read through a barrier");

        // Beneath the barrier, the Parquet statistics give bounds of every
        // row, hidden ones included: that is what must not cross it.
        let beneath = statistics(barrier.children()[0].as_ref());
        assert!(
            beneath
                .column_statistics
                .iter()
                .any(|c| c.min_value != Precision::Absent),
            "{role}: the scan beneath knows column bounds (else this test proves nothing)"
        );

        let above = statistics(barrier.as_ref());
        assert!(
            matches!(above.num_rows, Precision::Inexact(_)),
            "{role}: an estimate of the rows, never an exact count: {:?}",
            above.num_rows
        );
        assert_eq!(
            above.total_byte_size,
            beneath.total_byte_size.to_inexact(),
            "{role}: at most an estimate of the bytes"
        );
        assert_eq!(
            above.column_statistics.len(),
            barrier.schema().fields().len()
        );
        for (column, field) in above
            .column_statistics
            .iter()
            .zip(barrier.schema().fields())
        {
            assert_eq!(
                column,
                &ColumnStatistics::new_unknown(),
                "{role}: nothing is known of column {}",
                field.name()
            );
        }
    }
}

#[tokio::test]
async fn a_barrier_keeps_the_estimate_made_when_its_policy_plan_was_planned() {
    let lake = common::shop_lake().await;
    let mut session = lake.engine.session("ann", Some("auditor")).unwrap();
    session.use_database("shop").unwrap();
    let plan = session.physical_plan("SELECT * FROM orders").await.unwrap();
    let barrier = first_barrier(&plan).expect("orders is read through a barrier");
    let estimate = statistics(barrier.as_ref());

    // The same barrier over an empty input: asked for its whole output, it
    // answers with the estimate it was made with, not walking beneath (the
    // optimizer asks again at every join and every filter it rebuilds).
    let empty: Arc<dyn ExecutionPlan> = Arc::new(EmptyExec::new(barrier.children()[0].schema()));
    let over_nothing = replace_children_if_necessary(Arc::clone(&barrier), vec![empty]).unwrap();
    let walked = Precision::Inexact(0);
    assert_ne!(estimate.num_rows, walked, "else this test proves nothing");
    assert_eq!(statistics(over_nothing.as_ref()), estimate);

    // One partition's statistics are still its input's.
    let partition = StatisticsContext::new()
        .compute(
            over_nothing.as_ref(),
            &StatisticsArgs::new().with_partition(Some(0)),
        )
        .unwrap();
    assert_eq!(partition.num_rows, walked);
}
