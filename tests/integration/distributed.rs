//! Distributed execution: a coordinator (an engine with workers) and two
//! `lakegate worker` processes run all 22 TPC-H queries as `analyst` and
//! `admin` with the answers of one node, every distributed plan passing the
//! plan checker; a worker reached directly refuses a plan that is unsigned,
//! signed with another key or tampered with; a worker narrows the filters of
//! the stages it decodes; a worker killed mid-query fails that query and the
//! next one runs on the worker left; a scalar subquery runs on the
//! coordinator, its input and subqueries across the workers.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::config::ConfigOptions;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::logical_expr::Operator;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{binary, col, lit};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::displayable;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::placeholder_row::PlaceholderRowExec;
use datafusion_distributed::grpc::DefaultChannelResolver;
use datafusion_distributed::{
    ChannelResolver, DistributedExt, MaybeEncoded, SessionStateBuilderExt, SetPlanRequest, TaskKey,
};
use futures::StreamExt;
use lakegate_distributed::signature::{SIGNATURE_HEADER, SignedCall, TaskFields};
use lakegate_distributed::{
    FleetKey, LiveWorkers, SigningChannelResolver, WorkerSettings, serve_worker,
};
use lakegate_engine::{
    Engine, EngineOptions, LakegateCodec, NarrowingConjunction, Workers, worker_stage_rules,
};
use tokio::sync::OnceCell;

use crate::common;
use crate::plan_checker::check_plan;
use crate::tpch::{self, queries, rows_of, tpch_catalog};

#[path = "../../benches/support/worker_process.rs"]
mod worker_process;
use worker_process::WorkerProcess;

/// The fleet's key file contents (a test key; any 32 bytes or more).
const SECRET: &str = "the distributed tests' fleet key, 32+ bytes";

/// Each scan task reads about this much: the test lake's tables are small,
/// and are split across both workers all the same.
const TASK_BYTES: usize = 16 * 1024;

/// The TPC-H lake at scale 0.01 and the fleet key file beside it.
async fn lake() -> &'static (PathBuf, PathBuf) {
    static LAKE: OnceCell<(PathBuf, PathBuf)> = OnceCell::const_new();
    LAKE.get_or_init(|| async {
        let data_dir = tpch::lake().await.to_path_buf();
        let key_file = data_dir.join("fleet-test.key");
        std::fs::write(&key_file, SECRET).unwrap();
        (data_dir, key_file)
    })
    .await
}

/// Starts `lakegate worker` on a free loopback port.
fn start_worker(data_dir: &Path, key_file: &Path) -> WorkerProcess {
    WorkerProcess::start(
        Path::new(env!("CARGO_BIN_EXE_lakegate")),
        &common::repo_root(),
        &tpch_catalog(),
        data_dir,
        key_file,
    )
}

/// An engine over the TPC-H lake: on one node, or with `workers`.
async fn engine(data_dir: &Path, workers: Option<Workers>) -> Engine {
    let options = EngineOptions {
        target_partitions: 2,
        workers,
        ..EngineOptions::default()
    };
    common::engine_with(&tpch_catalog(), data_dir, options).await
}

/// Every query reading a file runs across `urls`, split finely.
fn workers_at(urls: Vec<url::Url>) -> Workers {
    let live = LiveWorkers::new(urls);
    live.watch();
    Workers {
        live,
        key: FleetKey::derive(SECRET.as_bytes()),
        distribute_from_bytes: 0,
        task_bytes: TASK_BYTES,
    }
}

/// Two worker processes over the TPC-H lake, an engine on one node and
/// an engine running every query that reads a file across the two.
async fn one_node_and_two_workers() -> (WorkerProcess, WorkerProcess, Engine, Engine) {
    let (data_dir, key_file) = lake().await;
    let first = start_worker(data_dir, key_file);
    let second = start_worker(data_dir, key_file);
    let one_node = engine(data_dir, None).await;
    let fleet = engine(
        data_dir,
        Some(workers_at(vec![first.url.clone(), second.url.clone()])),
    )
    .await;
    (first, second, one_node, fleet)
}

fn is_distributed(plan: &Arc<dyn ExecutionPlan>) -> bool {
    displayable(plan.as_ref())
        .indent(true)
        .to_string()
        .contains("DistributedExec")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tpch_runs_across_two_worker_processes_with_one_nodes_answers() {
    let (first, second, one_node, fleet) = one_node_and_two_workers().await;
    for role in ["admin", "analyst"] {
        let mut local = one_node.session(role, None).unwrap();
        let mut distributed = fleet.session(role, None).unwrap();
        let mut across = 0;
        for (name, sql) in queries() {
            let expected = rows_of(&mut local, &sql).await;
            let plan = distributed.physical_plan(&sql).await;
            let answered = rows_of(&mut distributed, &sql).await;
            match (&expected, plan) {
                (Err(refusal), Err(e)) => {
                    assert_eq!(
                        (name.as_str(), role),
                        ("q10", "analyst"),
                        "{name} refused as {role}: {refusal}"
                    );
                    assert_eq!(refusal, &e.to_string(), "{name} as {role}");
                }
                (Ok(_), Ok(plan)) => {
                    across += usize::from(is_distributed(&plan));
                    let barriers = check_plan(&plan, false, false);
                    if role == "analyst" && (sql.contains("customer") || sql.contains("orders")) {
                        assert!(barriers > 0, "{name}: no barrier in\n{}", show(&plan));
                    }
                }
                (expected, plan) => panic!(
                    "{name} as {role}: one node {:?}, distributed plan {:?}",
                    expected.as_ref().err(),
                    plan.err()
                ),
            }
            assert_eq!(answered, expected, "{name} as {role}");
        }
        assert_eq!(across, 22 - usize::from(role == "analyst"), "distributed");
    }
    // The workers logged no refusal: every call was signed.
    for worker in [&first, &second] {
        let log = std::fs::read_to_string(&worker.log).unwrap();
        assert!(!log.contains("refused"), "{log}");
    }
}

fn show(plan: &Arc<dyn ExecutionPlan>) -> String {
    displayable(plan.as_ref()).indent(true).to_string()
}

/// A stage plan as a coordinator would send it to `url`, with `headers`.
async fn send_plan(
    url: &url::Url,
    headers: http::HeaderMap,
    plan: MaybeEncoded<Arc<dyn ExecutionPlan>>,
    channels: &dyn ChannelResolver,
) -> Result<(), String> {
    let state = SessionStateBuilder::new()
        .with_default_features()
        .with_distributed_planner()
        .with_distributed_user_codec(LakegateCodec)
        .build();
    let task_ctx = state.task_ctx();
    let mut worker = channels
        .get_worker_client_for_url(url)
        .await
        .map_err(|e| e.to_string())?;
    let request = SetPlanRequest {
        task_key: TaskKey {
            query_id: uuid::Uuid::new_v4(),
            stage_id: 1,
            task_number: 0,
        },
        task_count: 1,
        plan,
        work_unit_feed_declarations: Vec::new(),
        target_worker_url: url.clone(),
        query_start_time_ns: 0,
    };
    let mut answers = worker
        .coordinator_channel(
            headers,
            request,
            futures::stream::empty().boxed(),
            Default::default(),
            &task_ctx,
        )
        .await
        .map_err(|e| e.to_string())?;
    // The worker answers once its plan is set (or refused).
    match answers.next().await {
        Some(Err(e)) => Err(e.to_string()),
        _ => Ok(()),
    }
}

fn encoded(plan: Arc<dyn ExecutionPlan>) -> Vec<u8> {
    datafusion_proto::bytes::physical_plan_to_bytes_with_extension_codec(plan, &LakegateCodec)
        .unwrap()
        .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_refuses_plans_not_signed_with_the_fleet_key() {
    let (data_dir, key_file) = lake().await;
    let worker = start_worker(data_dir, key_file);
    let url = &worker.url;
    let plain = DefaultChannelResolver::default();
    let harmless: Arc<dyn ExecutionPlan> =
        Arc::new(PlaceholderRowExec::new(Arc::new(Schema::empty())));
    let plan = || MaybeEncoded::Encoded(encoded(Arc::clone(&harmless)));

    // No signature.
    let refused = send_plan(url, http::HeaderMap::new(), plan(), &plain)
        .await
        .unwrap_err();
    assert!(refused.contains("unsigned call"), "{refused}");

    // Signed with another fleet's key.
    let other =
        SigningChannelResolver::new(FleetKey::derive(b"another fleet's key, 32 bytes..."), None);
    let refused = send_plan(url, http::HeaderMap::new(), plan(), &other)
        .await
        .unwrap_err();
    assert!(refused.contains("does not match"), "{refused}");

    // Signed for one plan, sent with another.
    let key = FleetKey::derive(SECRET.as_bytes());
    let query_id = uuid::Uuid::new_v4();
    let signed_for = encoded(Arc::clone(&harmless));
    let signature = key.sign(&SignedCall::SetPlan {
        task: TaskFields {
            query_id: query_id.as_bytes(),
            stage_id: 1,
            task_number: 0,
        },
        task_count: 1,
        target_worker_url: url.as_str(),
        plan: &signed_for,
    });
    let mut headers = http::HeaderMap::new();
    headers.insert(SIGNATURE_HEADER, signature.parse().unwrap());
    let mut tampered = signed_for.clone();
    tampered.push(0);
    let refused = send_plan(url, headers, MaybeEncoded::Encoded(tampered), &plain)
        .await
        .unwrap_err();
    assert!(refused.contains("does not match"), "{refused}");

    // Signed with the fleet key: taken.
    let fleet = SigningChannelResolver::new(key, None);
    send_plan(url, http::HeaderMap::new(), plan(), &fleet)
        .await
        .unwrap();

    let log = std::fs::read_to_string(&worker.log).unwrap();
    assert_eq!(log.matches("refused").count(), 3, "{log}");
}

/// A stage rule that keeps every plan it is given, as it is.
#[derive(Debug, Default)]
struct KeepStagePlans(Mutex<Vec<Arc<dyn ExecutionPlan>>>);

impl PhysicalOptimizerRule for KeepStagePlans {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> datafusion::common::Result<Arc<dyn ExecutionPlan>> {
        self.0.lock().unwrap().push(Arc::clone(&plan));
        Ok(plan)
    }

    fn name(&self) -> &str {
        "keep_stage_plans"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_narrows_the_conjunctions_of_the_stages_it_decodes() {
    // A narrowed filter crosses the wire as its `AND` tree; the worker's
    // stage rules make it a narrowing conjunction again.
    let kept = Arc::new(KeepStagePlans::default());
    let mut stage_rules = worker_stage_rules();
    stage_rules.push(Arc::clone(&kept) as _);
    let key = FleetKey::derive(SECRET.as_bytes());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = url::Url::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let settings = WorkerSettings {
        key: key.clone(),
        runtime: Arc::new(RuntimeEnv::default()),
        codec: Arc::new(LakegateCodec),
        stage_rules,
    };
    let worker = tokio::spawn(serve_worker(listener, settings, async move {
        stopped.await.ok();
    }));

    let schema = Arc::new(Schema::new(vec![
        Field::new("a", DataType::Int64, true),
        Field::new("b", DataType::Int64, true),
    ]));
    let term = |name, op, value: i64| {
        binary(col(name, &schema).unwrap(), op, lit(value), &schema).unwrap()
    };
    let terms = vec![term("a", Operator::Gt, 1), term("b", Operator::Lt, 2)];
    let narrowed = Arc::new(NarrowingConjunction::try_new(terms.clone()).unwrap());
    let plan: Arc<dyn ExecutionPlan> = Arc::new(
        FilterExec::try_new(narrowed, Arc::new(EmptyExec::new(Arc::clone(&schema)))).unwrap(),
    );
    let fleet = SigningChannelResolver::new(key, None);
    send_plan(
        &url,
        http::HeaderMap::new(),
        MaybeEncoded::Encoded(encoded(plan)),
        &fleet,
    )
    .await
    .unwrap();

    let kept = kept.0.lock().unwrap().clone();
    let [stage] = kept.as_slice() else {
        panic!("{} stage plans kept", kept.len());
    };
    let filter = stage
        .downcast_ref::<FilterExec>()
        .unwrap_or_else(|| panic!("{}", show(stage)));
    let conjunction = filter
        .predicate()
        .downcast_ref::<NarrowingConjunction>()
        .unwrap_or_else(|| panic!("not narrowed on the worker: {}", show(stage)));
    let decoded_terms: Vec<_> = conjunction.children().into_iter().cloned().collect();
    assert_eq!(decoded_terms, terms);
    stop.send(()).unwrap();
    worker.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_query_fails_it_and_the_next_query_runs_without_it() {
    let (data_dir, key_file) = lake().await;
    let mut doomed = start_worker(data_dir, key_file);
    let survivor = start_worker(data_dir, key_file);
    let workers = workers_at(vec![doomed.url.clone(), survivor.url.clone()]);
    let live = workers.live.clone();
    let fleet = engine(data_dir, Some(workers)).await;
    let mut session = fleet.session("admin", None).unwrap();
    // Some 36 million rows, joined on the workers and streamed back.
    let long = "SELECT a.l_orderkey, b.l_orderkey FROM lineitem a \
                JOIN lineitem b ON a.l_suppkey = b.l_suppkey";
    let plan = session.physical_plan(long).await.unwrap();
    assert!(is_distributed(&plan), "{}", show(&plan));
    let mut output = session.execute(long).await.unwrap();
    let first = output.stream.next().await.expect("a first batch");
    assert!(first.is_ok(), "{first:?}");
    doomed.child.kill().unwrap();
    doomed.child.wait().unwrap();
    let killed = Instant::now();
    let failure = loop {
        match tokio::time::timeout(Duration::from_secs(60), output.stream.next()).await {
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(e))) => break e.to_string(),
            Ok(None) => panic!("the query ended without the killed worker's rows"),
            Err(_) => panic!("the query hangs after its worker was killed"),
        }
    };
    assert!(
        killed.elapsed() < Duration::from_secs(30),
        "failed only after {:?}",
        killed.elapsed()
    );
    assert!(failure.contains(doomed.url.authority()), "{failure}");
    // The next query runs on the worker left (the survivor, whose own calls
    // to the killed worker failed too, is back within a check or two).
    let waiting = Instant::now();
    while live.up() != vec![survivor.url.clone()] {
        assert!(
            waiting.elapsed() < Duration::from_secs(10),
            "workers up: {:?}",
            live.up()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut local = engine(data_dir, None).await.session("admin", None).unwrap();
    let (q, sql) = &queries()[0];
    let expected = rows_of(&mut local, sql).await.unwrap();
    assert_eq!(rows_of(&mut session, sql).await.unwrap(), expected, "{q}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_over_a_delta_table_runs_on_the_coordinator() {
    // The workers are up, and every query reading a file would go to them,
    // but a Delta table's scan cannot be sent: the query runs on the
    // coordinator, with the answer of an engine without workers.
    let (data_dir, key_file) = lake().await;
    let worker = start_worker(data_dir, key_file);
    let delta = common::shop_lake_delta().await;
    let catalog = common::delta_catalog(
        &common::shop_catalog(),
        &delta.dir.path().join("catalog-with-workers"),
    );
    let options = EngineOptions {
        workers: Some(workers_at(vec![worker.url.clone()])),
        ..common::test_engine_options(delta.dir.path())
    };
    let fleet = common::engine_with(&catalog, delta.dir.path(), options).await;
    let sql = "SELECT o.order_id, o.amount, c.name FROM shop.orders o \
               JOIN shop.customers c ON c.id = o.customer_id";
    let mut distributed = fleet.session("ann", Some("analyst")).unwrap();
    let plan = distributed.physical_plan(sql).await.unwrap();
    assert!(!is_distributed(&plan), "{}", show(&plan));
    let mut local = delta.engine.session("ann", Some("analyst")).unwrap();
    let expected = rows_of(&mut local, sql).await.unwrap();
    assert!(!expected.is_empty());
    assert_eq!(rows_of(&mut distributed, sql).await.unwrap(), expected);
}

/// The plan's lines, each without its leading spaces, and its depth.
fn lines_with_depth(plan: &Arc<dyn ExecutionPlan>) -> Vec<(usize, String)> {
    show(plan)
        .lines()
        .map(|line| {
            let text = line.trim_start();
            ((line.len() - text.len()) / 2, text.to_string())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scalar_subquery_runs_on_the_coordinator_and_its_parts_across_the_workers() {
    // The workers run as long as the test holds them.
    let (_first, _second, one_node, fleet) = one_node_and_two_workers().await;
    let mut local = one_node.session("analyst", None).unwrap();
    let mut distributed = fleet.session("analyst", None).unwrap();
    let q15 = &tpch::query("q15");
    // Q15: the subquery's maximum and the query's filter both read the
    // revenue per supplier, computed once, across the workers.
    let plan = distributed.physical_plan(q15).await.unwrap();
    let lines = lines_with_depth(&plan);
    assert!(
        lines[0].1.starts_with("ScalarSubqueryExec"),
        "{}",
        show(&plan)
    );
    let shared: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, (_, text))| text.starts_with("SharedResultExec"))
        .map(|(at, _)| at)
        .collect();
    assert_eq!(shared.len(), 2, "{}", show(&plan));
    for at in shared {
        assert!(
            lines[at + 1].1.starts_with("DistributedExec"),
            "a shared result is read from the workers:\n{}",
            show(&plan)
        );
    }
    check_plan(&plan, false, false);
    assert_eq!(
        rows_of(&mut distributed, q15).await,
        rows_of(&mut local, q15).await
    );

    // Q22: the filter that reads the subquery is in the input, which runs
    // across the workers: the value reaches them as a literal.
    let q22 = &tpch::query("q22");
    let plan = distributed.physical_plan(q22).await.unwrap();
    let lines = lines_with_depth(&plan);
    assert!(
        lines[0].1.starts_with("ScalarSubqueryExec"),
        "{}",
        show(&plan)
    );
    assert!(lines[1].1.starts_with("DistributedExec"), "{}", show(&plan));
    check_plan(&plan, false, false);
    let expected = rows_of(&mut local, q22).await.unwrap();
    assert!(!expected.is_empty());
    assert_eq!(rows_of(&mut distributed, q22).await.unwrap(), expected);

    // A subquery read where its value cannot be sent (a projection): that
    // part runs on the coordinator, the subquery across the workers.
    let sql = "SELECT o_orderkey, o_totalprice - (SELECT avg(o_totalprice) FROM tpch.orders) AS above \
               FROM tpch.orders WHERE o_orderkey < 100 ORDER BY o_orderkey";
    let plan = distributed.physical_plan(sql).await.unwrap();
    let lines = lines_with_depth(&plan);
    assert!(
        lines[0].1.starts_with("ScalarSubqueryExec"),
        "{}",
        show(&plan)
    );
    assert!(
        !lines[1].1.starts_with("DistributedExec"),
        "the input reads the subquery in a projection:\n{}",
        show(&plan)
    );
    assert_eq!(
        lines
            .iter()
            .filter(|(depth, text)| *depth == 1 && text.starts_with("DistributedExec"))
            .count(),
        1,
        "the subquery runs across the workers:\n{}",
        show(&plan)
    );
    let expected = rows_of(&mut local, sql).await.unwrap();
    assert!(!expected.is_empty());
    assert_eq!(rows_of(&mut distributed, sql).await.unwrap(), expected);
}
