//! Random deep and wide SQL (see `common/random_sql.rs`) answers or is
//! refused cleanly, in process and through the real binary: no panic, no
//! crash, no hang, and the server goes on serving after every statement.
//!
//! In process, each statement runs under a role with a row filter (a
//! subquery) and masks, through parsing, the gate, planning, the barrier,
//! optimization and execution. Through the binary, statements go over Flight
//! SQL as `tina` under `sales` (a subquery row filter) and `david` under
//! `marketing` (hidden columns, a hash mask). The number of statements is
//! bounded so that CI stays quick: `LAKEGATE_GENERATED_CASES` raises it,
//! and `LAKEGATE_GENERATED_SEED=n` runs statement `n` alone, writing its
//! text to `target/tmp/generated-<n>.sql` to replay a failure.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures::TryStreamExt;
use lakegate_engine::EngineError;

use crate::common;
use crate::common::random_sql::{Rng, TableShape, statement};
use crate::flight::sql_client;

/// The longest one statement may take before it counts as a hang.
const DEADLINE: Duration = Duration::from_secs(120);

/// The seeds to run: `LAKEGATE_GENERATED_SEED` alone, or the first
/// `LAKEGATE_GENERATED_CASES` (default `default`).
fn seeds(default: u64) -> std::ops::Range<u64> {
    let variable = |name| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    match variable("LAKEGATE_GENERATED_SEED") {
        Some(seed) => seed..seed + 1,
        None => 0..variable("LAKEGATE_GENERATED_CASES").unwrap_or(default),
    }
}

/// The statement of `seed`, written out when it is replayed alone.
fn generated(seed: u64, shape: &TableShape) -> String {
    let sql = statement(&mut Rng::new(seed), shape);
    if std::env::var("LAKEGATE_GENERATED_SEED").is_ok() {
        let path =
            std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("generated-{seed}.sql"));
        std::fs::write(&path, &sql).unwrap();
        eprintln!("statement {seed}: {}", path.display());
    }
    sql
}

const SHOP_ORDERS: TableShape = TableShape {
    table: "shop.orders",
    numbers: &["a", "customer_id", "order_id", "amount"],
    texts: &["note"],
};

/// Whether an engine error is a clean refusal: anything but a bug.
fn refused_cleanly(error: &EngineError) -> bool {
    !matches!(
        error,
        EngineError::Internal(_) | EngineError::PolicyFailure { .. }
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_statements_answer_or_are_refused_cleanly_in_process() {
    let lake = common::shop_lake().await;
    let (mut answered, mut refused) = (0, 0);
    for seed in seeds(48) {
        let sql = generated(seed, &SHOP_ORDERS);
        let engine = lake.engine.clone();
        let run = async move {
            let mut session = engine.session("ann", Some("analyst"))?;
            session.execute(&sql).await?.collect().await
        };
        let outcome = tokio::time::timeout(DEADLINE, run)
            .await
            .unwrap_or_else(|_| panic!("seed {seed}: no answer within {DEADLINE:?}"));
        match outcome {
            Ok(_) => answered += 1,
            Err(e) if refused_cleanly(&e) => refused += 1,
            Err(e) => panic!("seed {seed}: {e:?}"),
        }
    }
    assert!(
        answered > 0 && refused > 0,
        "{answered} answered, {refused} refused"
    );
}

const WEB_SALES: TableShape = TableShape {
    table: "tpc.dl_tpc_web_sales",
    numbers: &[
        "ws_order_number",
        "ws_quantity",
        "ws_item_sk",
        "ws_bill_addr_sk",
    ],
    texts: &["CAST(ws_sold_date_sk AS VARCHAR)"],
};

const CUSTOMERS: TableShape = TableShape {
    table: "tpc.dl_tpc_customer",
    numbers: &["c_customer_sk", "c_birth_year", "c_current_addr_sk"],
    texts: &["c_email_address", "c_birth_country", "c_first_name"],
};

/// `lakegate serve` over the demo lake on a free port; killed on drop.
pub(crate) struct BinaryServer {
    pub(crate) child: Child,
    pub(crate) addr: std::net::SocketAddr,
}

impl Drop for BinaryServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve_demo_lake() -> BinaryServer {
    serve_demo_lake_with(&[])
}

/// [`serve_demo_lake`] with more flags.
pub(crate) fn serve_demo_lake_with(flags: &[&str]) -> BinaryServer {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_lakegate"))
        .current_dir(common::repo_root())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(common::demo_data_dir())
        .args(flags)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
    let line = lines
        .find(|line| line.contains("Flight SQL on"))
        .expect("the server announces its address");
    // Read on, so that what the server prints later (at shutdown) never
    // meets a closed pipe.
    std::thread::spawn(move || lines.for_each(drop));
    let addr = line
        .split("grpc://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|addr| addr.parse().ok())
        .expect("an address");
    BinaryServer { child, addr }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_statements_answer_or_are_refused_cleanly_through_the_binary() {
    let mut server = serve_demo_lake();
    let (mut answered, mut refused) = (0, 0);
    for seed in seeds(32) {
        let (user, role, shape) = if seed % 2 == 0 {
            ("tina", "sales", &WEB_SALES)
        } else {
            ("david", "marketing", &CUSTOMERS)
        };
        let sql = generated(seed, shape);
        let mut client = sql_client(server.addr, user, Some(role)).await;
        let run = async {
            let info = client.execute(sql.clone(), None).await?;
            let ticket = info.endpoint[0].ticket.clone().expect("a ticket");
            let batches: Vec<_> = client.do_get(ticket).await?.try_collect().await?;
            Ok::<_, arrow_flight::error::FlightError>(batches)
        };
        let outcome = tokio::time::timeout(DEADLINE, run)
            .await
            .unwrap_or_else(|_| panic!("seed {seed}: no answer within {DEADLINE:?}"));
        match outcome {
            Ok(_) => answered += 1,
            Err(arrow_flight::error::FlightError::Tonic(status)) => {
                assert!(
                    !matches!(
                        status.code(),
                        tonic::Code::Internal | tonic::Code::Unavailable | tonic::Code::Unknown
                    ),
                    "seed {seed}: {status}"
                );
                refused += 1;
            }
            Err(other) => panic!("seed {seed}: {other}"),
        }
        assert!(
            server.child.try_wait().unwrap().is_none(),
            "seed {seed}: the server exited"
        );
    }
    // Still serving.
    let mut client = sql_client(server.addr, "david", None).await;
    let info = client.execute("SELECT 1".into(), None).await.unwrap();
    assert_eq!(info.endpoint.len(), 1);
    assert!(
        answered > 0 && refused > 0,
        "{answered} answered, {refused} refused"
    );
}
