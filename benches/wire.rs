//! The wire: what Flight transport costs Lakegate, against the transport's
//! own ceiling and a local read, measured by one pyarrow client in one run.
//!
//! Servers, both in this process on loopback:
//!
//! * Lakegate's Flight SQL service over the demo catalog (the binary's code);
//! * a bare arrow-flight server (no Lakegate code) streaming, from memory,
//!   the very batches Lakegate returns for the largest demo table: the
//!   ceiling of arrow-rs Flight on this machine.
//!
//! The client, `benches/wire_client.py` (pyarrow and the ADBC driver, from
//! the test virtualenv), interleaves: pyarrow reading the Parquet files
//! locally; a DoGet from the ceiling server; a DoGet from Lakegate as the
//! lake administrator (one stream, and parallel endpoints); the same scan as
//! a role with a row filter; and the latency of `SELECT ... LIMIT 10` through
//! ADBC (1,000 queries).
//!
//! Run: `cargo bench --bench wire` (release; demo data at scale 1, generated
//! once into the target directory). Results: a Markdown table on stdout and
//! `$CARGO_TARGET_DIR/bench-results/wire.json`. Under `cargo test` it runs
//! once at a tiny scale with a Rust client, as a smoke test.

use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::flight_service_server::{FlightService, FlightServiceServer};
use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightData, FlightDescriptor, FlightInfo,
    HandshakeRequest, HandshakeResponse, PollInfo, PutResult, SchemaResult, Ticket,
};
use futures::{Stream, TryStreamExt};
use lakegate::demo_data::{DEMO_LAYOUT, ensure_demo_data};
use lakegate_catalog::{Catalog, LoadOptions};
use lakegate_engine::{Engine, EngineOptions};
use lakegate_flight::{EnvelopeKey, LakegateFlightService, ServiceOptions, bind, serve_on};
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status, Streaming};

#[path = "support/mod.rs"]
mod support;
use support::{python, repo_root, results_dir};

/// Measured iterations of each variant (the client's and the in-process scan).
const ITERATIONS: usize = 7;

/// The scan every variant reads.
const SCAN: &str = "SELECT * FROM dl_tpc_web_sales";

type Boxed<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// A bare Flight server: DoGet of any ticket streams the same batches.
#[derive(Clone)]
struct Ceiling {
    schema: SchemaRef,
    batches: Arc<Vec<RecordBatch>>,
}

fn unimplemented<T>() -> Result<T, Status> {
    Err(Status::unimplemented(
        "the ceiling server only answers DoGet",
    ))
}

#[tonic::async_trait]
impl FlightService for Ceiling {
    type HandshakeStream = Boxed<HandshakeResponse>;
    type ListFlightsStream = Boxed<FlightInfo>;
    type DoGetStream = Boxed<FlightData>;
    type DoPutStream = Boxed<PutResult>;
    type DoActionStream = Boxed<arrow_flight::Result>;
    type ListActionsStream = Boxed<ActionType>;
    type DoExchangeStream = Boxed<FlightData>;

    async fn handshake(
        &self,
        _: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Self::HandshakeStream>, Status> {
        unimplemented()
    }
    async fn list_flights(
        &self,
        _: Request<Criteria>,
    ) -> Result<Response<Self::ListFlightsStream>, Status> {
        unimplemented()
    }
    async fn get_flight_info(
        &self,
        _: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        unimplemented()
    }
    async fn poll_flight_info(
        &self,
        _: Request<FlightDescriptor>,
    ) -> Result<Response<PollInfo>, Status> {
        unimplemented()
    }
    async fn get_schema(
        &self,
        _: Request<FlightDescriptor>,
    ) -> Result<Response<SchemaResult>, Status> {
        unimplemented()
    }
    async fn do_get(&self, _: Request<Ticket>) -> Result<Response<Self::DoGetStream>, Status> {
        let batches = futures::stream::iter(self.batches.as_ref().clone().into_iter().map(Ok));
        let stream = FlightDataEncoderBuilder::new()
            .with_schema(Arc::clone(&self.schema))
            .build(batches)
            .map_err(|e| Status::internal(e.to_string()));
        Ok(Response::new(Box::pin(stream)))
    }
    async fn do_put(
        &self,
        _: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoPutStream>, Status> {
        unimplemented()
    }
    async fn do_action(
        &self,
        _: Request<Action>,
    ) -> Result<Response<Self::DoActionStream>, Status> {
        unimplemented()
    }
    async fn list_actions(
        &self,
        _: Request<Empty>,
    ) -> Result<Response<Self::ListActionsStream>, Status> {
        unimplemented()
    }
    async fn do_exchange(
        &self,
        _: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoExchangeStream>, Status> {
        unimplemented()
    }
}

async fn demo_engine(data_dir: &Path) -> Engine {
    let options = LoadOptions {
        data_dir: data_dir.to_path_buf(),
        ..Default::default()
    };
    let catalog = Catalog::load(&repo_root().join("catalog/demo"), &options)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    Engine::new(catalog, EngineOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Starts Lakegate and the ceiling server; returns their addresses.
async fn start_servers(engine: Engine) -> (SocketAddr, SocketAddr, usize) {
    // The ceiling streams exactly what Lakegate returns for the scan.
    let mut session = engine.session("admin", None).unwrap();
    let output = session.execute(SCAN).await.unwrap();
    let schema = output.schema.clone();
    let batches = output.collect().await.unwrap();
    let rows = batches.iter().map(RecordBatch::num_rows).sum();

    let (listener, lakegate) = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let service =
        LakegateFlightService::new(engine, EnvelopeKey::random(), ServiceOptions::default());
    tokio::spawn(serve_on(listener, service, futures::future::pending()));

    let (listener, ceiling) = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let server = FlightServiceServer::new(Ceiling {
        schema,
        batches: Arc::new(batches),
    });
    tokio::spawn(
        Server::builder()
            .add_service(server)
            .serve_with_incoming(TcpIncoming::from(listener).with_nodelay(Some(true))),
    );
    (lakegate, ceiling, rows)
}

/// CPU seconds (user and system, every thread) this process has used, from
/// `/proc/self/stat` (in clock ticks, which Linux reports at USER_HZ = 100).
fn process_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // The command name (field 2) may hold spaces; it ends at the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks = |i: usize| fields[i].parse::<f64>().expect("a tick count");
    (ticks(11) + ticks(12)) / 100.0
}

/// The scan without the transport: Lakegate reads the table in this process
/// and drops each batch, `iterations` times after one warm-up. What the
/// server does beyond the ceiling's work is this decoding; it returns the
/// median wall time and the CPU time per scan, in seconds.
async fn scan_in_process(engine: &Engine, iterations: usize) -> (f64, f64) {
    let mut walls = Vec::with_capacity(iterations);
    let mut cpu = 0.0;
    for iteration in 0..=iterations {
        let cpu_before = process_cpu_seconds();
        let started = std::time::Instant::now();
        let mut session = engine.session("admin", None).unwrap();
        let output = session.execute(SCAN).await.unwrap();
        output
            .stream
            .try_for_each(|_| async { Ok(()) })
            .await
            .unwrap();
        if iteration > 0 {
            walls.push(started.elapsed().as_secs_f64());
            cpu += process_cpu_seconds() - cpu_before;
        }
    }
    walls.sort_by(f64::total_cmp);
    (walls[walls.len() / 2], cpu / iterations as f64)
}

/// Smoke test under `cargo test`: both servers answer the scan alike.
async fn smoke(lakegate: SocketAddr, ceiling: SocketAddr, rows: usize) {
    use arrow_flight::decode::FlightRecordBatchStream;
    use arrow_flight::flight_service_client::FlightServiceClient;
    use base64::Engine as _;

    let count = |stream: FlightRecordBatchStream| async move {
        let batches: Vec<RecordBatch> = stream.try_collect().await.unwrap();
        batches.iter().map(RecordBatch::num_rows).sum::<usize>()
    };
    let channel = |addr: SocketAddr| async move {
        tonic::transport::Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap()
    };
    let mut client = FlightServiceClient::new(channel(ceiling).await);
    let data = client
        .do_get(Ticket::new("scan"))
        .await
        .unwrap()
        .into_inner();
    let stream = FlightRecordBatchStream::new_from_flight_data(data.map_err(Into::into));
    assert_eq!(count(stream).await, rows);

    let mut client = FlightServiceClient::new(channel(lakegate).await);
    let mut request = Request::new(Ticket::new(SCAN));
    let basic = base64::engine::general_purpose::STANDARD.encode("admin:admin-pass");
    request
        .metadata_mut()
        .insert("authorization", format!("Basic {basic}").parse().unwrap());
    let data = client.do_get(request).await.unwrap().into_inner();
    let stream = FlightRecordBatchStream::new_from_flight_data(data.map_err(Into::into));
    assert_eq!(count(stream).await, rows);
}

async fn run(full: bool) {
    // LAKEGATE_WIRE_SCALE overrides the scale (to try the client quickly).
    let scale = std::env::var("LAKEGATE_WIRE_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if full { 1.0 } else { 0.01 });
    let data_dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("wire-demo-sf{scale}-layout{DEMO_LAYOUT}"));
    ensure_demo_data(&data_dir, scale, false).expect("demo data");
    let engine = demo_engine(&data_dir).await;
    let (lakegate, ceiling, rows) = start_servers(engine.clone()).await;
    if !full {
        smoke(lakegate, ceiling, rows).await;
        return;
    }
    // Measured before the client starts, so that nothing else runs.
    let (decode_wall, decode_cpu) = scan_in_process(&engine, ITERATIONS).await;
    let out_dir = results_dir();
    let mut client = std::process::Command::new(python());
    client
        .arg(repo_root().join("benches/wire_client.py"))
        .args(["--lakegate", &format!("grpc://{lakegate}")])
        .args(["--ceiling", &format!("grpc://{ceiling}")])
        .arg("--parquet")
        .arg(data_dir.join("tpc/dl_tpc_web_sales"))
        .arg("--out")
        .arg(out_dir.join("wire.json"))
        .args(["--iterations", &ITERATIONS.to_string()])
        // Both servers run in this process: the client reads its CPU time,
        // and records the scan without transport beside its own variants.
        .args(["--server-pid", &std::process::id().to_string()])
        .args(["--scan-in-process", &format!("{decode_wall},{decode_cpu}")]);
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
