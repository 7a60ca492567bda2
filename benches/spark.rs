//! Spark reading Lakegate through the PySpark 4 data source of
//! `clients/python`, against pyarrow reading the same endpoints, in one run.
//!
//! Three Lakegate servers over the demo lake (the wire benchmark's data, scale
//! 1), planning with 1, 2 and 4 target partitions, so that `SELECT * FROM
//! tpc.dl_tpc_web_sales` asked with `x-lakegate-parallel: true` comes back as
//! 1, 2 and 4 endpoints. The client, `benches/spark_client.py`, interleaves
//! for each: pyarrow reading every endpoint at once (one thread per
//! endpoint: the least a parallel reader of these endpoints pays), and a
//! local Spark session (`local[2]`) reading the same query through the data
//! source into Spark's `noop` sink (every row read and converted to Spark's
//! rows, nothing written). It reports the medians and Spark/pyarrow.
//!
//! Run: `cargo bench --workspace --bench spark` (release). Results: a
//! Markdown table on stdout and `$CARGO_TARGET_DIR/bench-results/spark.json`.
//! Under `cargo test` it runs at a tiny scale and only checks the endpoint
//! counts (no Spark).

use std::net::SocketAddr;
use std::path::Path;

use lakegate::demo_data::{DEMO_LAYOUT, ensure_demo_data};
use lakegate_engine::{Engine, EngineOptions};
use lakegate_flight::{EnvelopeKey, LakegateFlightService, ServiceOptions, bind, serve_on};

#[path = "support/mod.rs"]
mod support;
use support::{demo_engine, python, repo_root, results_dir};

/// The query read.
const SCAN: &str = "SELECT * FROM tpc.dl_tpc_web_sales";

/// Target partitions of the servers: the endpoints of the scan.
const PARTITIONS: [usize; 3] = [1, 2, 4];

/// Measured iterations of each variant.
const ITERATIONS: usize = 3;

async fn serve(engine: Engine) -> SocketAddr {
    let (listener, address) = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let service =
        LakegateFlightService::new(engine, EnvelopeKey::random(), ServiceOptions::default());
    tokio::spawn(serve_on(listener, service, futures::future::pending()));
    address
}

async fn run(full: bool) {
    let scale: f64 = std::env::var("LAKEGATE_SPARK_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if full { 1.0 } else { 0.01 });
    let data_dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("wire-demo-sf{scale}-layout{DEMO_LAYOUT}"));
    ensure_demo_data(&data_dir, scale, false).expect("demo data");
    let mut addresses = Vec::new();
    for partitions in PARTITIONS {
        let options = EngineOptions {
            target_partitions: partitions,
            ..EngineOptions::default()
        };
        let engine = demo_engine(&data_dir, options).await;
        // The scan splits into as many independent parts as partitions.
        let mut session = engine.session("admin", None).unwrap();
        let parts = session
            .plan(SCAN)
            .await
            .unwrap()
            .into_parts()
            .await
            .unwrap()
            .parts();
        assert_eq!(parts, partitions, "endpoints at {partitions} partitions");
        addresses.push(serve(engine).await);
    }
    if !full {
        return;
    }
    let servers: Vec<String> = addresses.iter().map(|a| format!("grpc://{a}")).collect();
    let partitions: Vec<String> = PARTITIONS.iter().map(ToString::to_string).collect();
    let mut client = std::process::Command::new(python());
    client
        .arg(repo_root().join("benches/spark_client.py"))
        .args(["--servers", &servers.join(",")])
        .args(["--partitions", &partitions.join(",")])
        .args(["--query", SCAN])
        .arg("--package")
        .arg(repo_root().join("clients/python"))
        .arg("--out")
        .arg(results_dir().join("spark.json"))
        .args(["--iterations", &ITERATIONS.to_string()]);
    // The servers keep running on this runtime's other threads.
    let status = tokio::task::spawn_blocking(move || client.status())
        .await
        .unwrap()
        .expect("the client runs");
    assert!(status.success(), "the benchmark client failed");
}

fn main() {
    // `cargo bench` passes --bench; `cargo test` runs a small smoke test.
    let full = std::env::args().any(|a| a == "--bench");
    tokio::runtime::Runtime::new().unwrap().block_on(run(full));
}
