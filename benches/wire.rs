//! The wire: what Flight transport costs Lakegate, against the transport's
//! own ceiling and a local read, measured by one pyarrow client in one run.
//!
//! Servers in this process, on loopback:
//!
//! * Lakegate's Flight SQL service over the demo catalog (the binary's code),
//!   as it serves by default, and a second one with the table cache on
//!   (`--table-cache`: the table kept decoded in memory, as the ceiling's);
//!   and both again with `--view-types` (text read and sent as Arrow's
//!   `Utf8View`, not the classic `Utf8` clients get by default), which prices
//!   classic types on a scan of text columns (the largest table has none);
//! * a bare arrow-flight server (no Lakegate code) streaming, from memory,
//!   the very batches Lakegate returns for the largest demo table: the
//!   ceiling of arrow-rs Flight on this machine (and, in two parts read at
//!   once, the ceiling of two streams);
//! * the same bare server decoding the table's Parquet files on each DoGet
//!   (the parquet crate's async reader, one task per file, no DataFusion):
//!   the least any arrow-rs Flight server serving these files must pay, the
//!   baseline of what Lakegate itself adds.
//!
//! The client, `benches/wire_client.py` (pyarrow and the ADBC driver, from
//! the test virtualenv), adds one server of its own: a bare `pyarrow.flight`
//! server (`benches/wire_cpp_ceiling.py`, Arrow's C++ Flight, in a process
//! of its own) streaming the same batches from memory, the ceiling of the
//! other Flight implementation on this machine. It interleaves: pyarrow
//! reading the Parquet files locally; a DoGet from each bare server (one
//! stream, and two parts at once); a DoGet from each Lakegate as the
//! lake administrator (one stream, and parallel endpoints); the same scan as
//! a role with a row filter; and the latency of `SELECT ... LIMIT 10` through
//! ADBC (1,000 queries) against `SELECT 1`, the same calls' floor.
//!
//! Run: `cargo bench --bench wire` (release; demo data at scale 1, generated
//! once into the target directory). Results: a Markdown table on stdout and
//! `$CARGO_TARGET_DIR/bench-results/wire.json`, with its report as Markdown
//! (`wire.md`) and a chart (`wire.png`). Under `cargo test` it runs
//! once at a tiny scale with a Rust client, as a smoke test.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::{FlightService, FlightServiceServer};
use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightData, FlightDescriptor, FlightInfo,
    HandshakeRequest, HandshakeResponse, PollInfo, PutResult, SchemaResult, Ticket,
};
use futures::{Stream, TryStreamExt};
use lakegate::demo_data::{DEMO_LAYOUT, ensure_demo_data};
use lakegate_engine::{Engine, EngineOptions};
use lakegate_flight::{EnvelopeKey, LakegateFlightService, ServiceOptions, bind, serve_on};
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status, Streaming};

#[path = "support/mod.rs"]
mod support;
use support::{demo_engine, python, repo_root, results_dir};

/// Measured iterations of each variant (the client's and the in-process scan).
const ITERATIONS: usize = 7;

/// The scan every variant reads.
const SCAN: &str = "SELECT * FROM dl_tpc_web_sales";

/// The scan that prices classic types against view types: the demo table
/// with the most text (nine string columns), four times over so that one
/// read takes long enough to time.
const TEXT_SCAN: &str = "SELECT * FROM dl_tpc_customer UNION ALL SELECT * FROM dl_tpc_customer \
     UNION ALL SELECT * FROM dl_tpc_customer UNION ALL SELECT * FROM dl_tpc_customer";

type Boxed<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// A bare Flight server: DoGet of ticket `part/I/N` streams every Nth batch
/// (or file) from the Ith, any other ticket the whole table.
#[derive(Clone)]
struct BareServer {
    schema: SchemaRef,
    source: Source,
}

/// Where the bare server's batches come from.
#[derive(Clone)]
enum Source {
    /// Batches decoded once, streamed from memory.
    Memory(Arc<Vec<RecordBatch>>),
    /// The table's Parquet files, decoded on every DoGet.
    Parquet(Arc<Vec<PathBuf>>),
}

impl BareServer {
    /// Part `part` of `parts` of the table.
    fn batches(&self, (part, parts): (usize, usize)) -> Boxed<RecordBatch> {
        fn share<T: Clone>(items: &[T], (part, parts): (usize, usize)) -> Vec<T> {
            items.iter().skip(part).step_by(parts).cloned().collect()
        }
        match &self.source {
            Source::Memory(batches) => Box::pin(futures::stream::iter(
                share(batches, (part, parts)).into_iter().map(Ok),
            )),
            Source::Parquet(files) => decode_files(&share(files, (part, parts)), &self.schema),
        }
    }
}

/// The part a bare server's ticket asks for: `part/I/N`, or the whole.
fn ticket_part(ticket: &Ticket) -> Result<(usize, usize), Status> {
    let text = std::str::from_utf8(&ticket.ticket).unwrap_or_default();
    let Some(part) = text.strip_prefix("part/") else {
        return Ok((0, 1));
    };
    let parsed = part
        .split_once('/')
        .and_then(|(i, n)| Some((i.parse().ok()?, n.parse().ok()?)));
    match parsed {
        Some((i, n)) if i < n => Ok((i, n)),
        _ => Err(Status::invalid_argument("a part ticket is part/I/N, I < N")),
    }
}

/// Decodes `files` concurrently, one task per file (the runtime spreads them
/// over the cores, as DataFusion spreads its partitions), in batches of
/// Lakegate's size and with its column types (`schema`: strings as views).
fn decode_files(files: &[PathBuf], schema: &SchemaRef) -> Boxed<RecordBatch> {
    use parquet::arrow::ParquetRecordBatchStreamBuilder;
    use parquet::arrow::arrow_reader::ArrowReaderOptions;

    type DecodeError = Box<dyn std::error::Error + Send + Sync>;
    let (sender, mut receiver) = tokio::sync::mpsc::channel(4);
    for path in files {
        let (path, sender, schema) = (path.clone(), sender.clone(), Arc::clone(schema));
        tokio::spawn(async move {
            let decoded = async {
                let file = tokio::fs::File::open(&path).await?;
                let options = ArrowReaderOptions::new().with_schema(schema);
                let mut batches = ParquetRecordBatchStreamBuilder::new_with_options(file, options)
                    .await?
                    .with_batch_size(EngineOptions::default().batch_size)
                    .build()?;
                while let Some(batch) = batches.try_next().await? {
                    if sender.send(Ok(batch)).await.is_err() {
                        break; // the client went away
                    }
                }
                Ok::<_, DecodeError>(())
            };
            if let Err(e) = decoded.await {
                let _ = sender.send(Err(Status::internal(e.to_string()))).await;
            }
        });
    }
    Box::pin(futures::stream::poll_fn(move |cx| receiver.poll_recv(cx)))
}

fn unimplemented<T>() -> Result<T, Status> {
    Err(Status::unimplemented("the bare server only answers DoGet"))
}

#[tonic::async_trait]
impl FlightService for BareServer {
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
    async fn do_get(
        &self,
        request: Request<Ticket>,
    ) -> Result<Response<Self::DoGetStream>, Status> {
        let part = ticket_part(request.get_ref())?;
        let batches = self
            .batches(part)
            .map_err(|status| FlightError::Tonic(Box::new(status)));
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

/// The table cache of the cached Lakegate: room for the whole table.
const TABLE_CACHE_BYTES: usize = 4 << 30;

/// Runs `scan` once with `engine` and waits until its table cache holds
/// the tables it reads (the load runs in the background after the first
/// scan).
async fn load_table_cache(engine: &Engine, scan: &str) {
    let started = std::time::Instant::now();
    loop {
        let mut session = engine.session("admin", None).unwrap();
        let plan = session.physical_plan(scan).await.unwrap();
        let shown = datafusion::physical_plan::displayable(plan.as_ref())
            .indent(true)
            .to_string();
        // A memory source shows its partitions' sizes.
        if shown.contains("partition_sizes") {
            return;
        }
        assert!(
            started.elapsed().as_secs() < 300,
            "the table cache never held the table:\n{shown}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The servers' addresses, and the scan's row count.
struct Servers {
    lakegate: SocketAddr,
    /// Lakegate with the table in its table cache.
    cached: SocketAddr,
    /// The two Lakegates again, reading and sending Arrow's view types
    /// (`--view-types`): what classic types cost, on [`TEXT_SCAN`].
    view_types: SocketAddr,
    /// See `view_types`.
    cached_view_types: SocketAddr,
    /// The bare server streaming from memory.
    ceiling: SocketAddr,
    /// The bare server decoding the Parquet files.
    decoding: SocketAddr,
    rows: usize,
    /// [`TEXT_SCAN`]'s row count.
    text_rows: usize,
}

/// The Lakegates a run serves, each with its engine.
struct Lakegates {
    /// Default settings.
    plain: Engine,
    /// With the table cache.
    cached: Engine,
    /// Default settings, view types on the wire.
    view_types: Engine,
    /// With the table cache, view types on the wire.
    cached_view_types: Engine,
}

/// Starts the Lakegates (the cached ones with their table cache loaded) and
/// the two bare servers over the table in `table_dir`.
async fn start_servers(lakegates: Lakegates, table_dir: &Path) -> Servers {
    let engine = lakegates.plain;
    // The ceiling streams exactly what Lakegate returns for the scan.
    let mut session = engine.session("admin", None).unwrap();
    let output = session.execute(SCAN).await.unwrap();
    let schema = output.schema.clone();
    let batches = output.collect().await.unwrap();
    let rows = batches.iter().map(RecordBatch::num_rows).sum();
    let text_rows = {
        let mut session = engine.session("admin", None).unwrap();
        let batches = session.execute(TEXT_SCAN).await.unwrap().collect().await;
        batches.unwrap().iter().map(RecordBatch::num_rows).sum()
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(table_dir)
        .expect("the table's directory")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "parquet"))
        .collect();
    files.sort();

    let lakegate = serve_lakegate(engine).await;
    for scan in [SCAN, TEXT_SCAN] {
        load_table_cache(&lakegates.cached, scan).await;
        load_table_cache(&lakegates.cached_view_types, scan).await;
    }
    let cached = serve_lakegate(lakegates.cached).await;
    let view_types = serve_lakegate(lakegates.view_types).await;
    let cached_view_types = serve_lakegate(lakegates.cached_view_types).await;

    let ceiling = serve_bare(BareServer {
        schema: Arc::clone(&schema),
        source: Source::Memory(Arc::new(batches)),
    })
    .await;
    let decoding = serve_bare(BareServer {
        schema,
        source: Source::Parquet(Arc::new(files)),
    })
    .await;
    Servers {
        lakegate,
        cached,
        view_types,
        cached_view_types,
        ceiling,
        decoding,
        rows,
        text_rows,
    }
}

/// Serves Lakegate's Flight SQL service on an ephemeral loopback port.
async fn serve_lakegate(engine: Engine) -> SocketAddr {
    let (listener, address) = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let service =
        LakegateFlightService::new(engine, EnvelopeKey::random(), ServiceOptions::default());
    tokio::spawn(serve_on(listener, service, futures::future::pending()));
    address
}

/// Serves a bare server on an ephemeral loopback port.
async fn serve_bare(server: BareServer) -> SocketAddr {
    let (listener, address) = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    tokio::spawn(
        Server::builder()
            .add_service(FlightServiceServer::new(server))
            .serve_with_incoming(TcpIncoming::from(listener).with_nodelay(Some(true))),
    );
    address
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

/// Smoke test under `cargo test`: every server answers the scan alike.
async fn smoke(servers: &Servers) {
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
    for bare in [servers.ceiling, servers.decoding] {
        let mut client = FlightServiceClient::new(channel(bare).await);
        let data = client
            .do_get(Ticket::new("scan"))
            .await
            .unwrap()
            .into_inner();
        let stream = FlightRecordBatchStream::new_from_flight_data(data.map_err(Into::into));
        assert_eq!(count(stream).await, servers.rows);
        // Two parts make the whole.
        let mut rows = 0;
        for part in ["part/0/2", "part/1/2"] {
            let data = client.do_get(Ticket::new(part)).await.unwrap().into_inner();
            rows += count(FlightRecordBatchStream::new_from_flight_data(
                data.map_err(Into::into),
            ))
            .await;
        }
        assert_eq!(rows, servers.rows);
    }

    for lakegate in [
        servers.lakegate,
        servers.cached,
        servers.view_types,
        servers.cached_view_types,
    ] {
        let mut client = FlightServiceClient::new(channel(lakegate).await);
        for (scan, rows) in [(SCAN, servers.rows), (TEXT_SCAN, servers.text_rows)] {
            let mut request = Request::new(Ticket::new(scan));
            let basic = base64::engine::general_purpose::STANDARD.encode("admin:admin-pass");
            request
                .metadata_mut()
                .insert("authorization", format!("Basic {basic}").parse().unwrap());
            let data = client.do_get(request).await.unwrap().into_inner();
            let stream = FlightRecordBatchStream::new_from_flight_data(data.map_err(Into::into));
            assert_eq!(count(stream).await, rows);
        }
    }
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
    let engine = demo_engine(&data_dir, EngineOptions::default()).await;
    let cached = EngineOptions {
        table_cache_bytes: TABLE_CACHE_BYTES,
        ..EngineOptions::default()
    };
    let with_view_types = |options: EngineOptions| EngineOptions {
        view_types: true,
        ..options
    };
    let lakegates = Lakegates {
        plain: engine.clone(),
        cached: demo_engine(&data_dir, cached.clone()).await,
        view_types: demo_engine(&data_dir, with_view_types(EngineOptions::default())).await,
        cached_view_types: demo_engine(&data_dir, with_view_types(cached)).await,
    };
    let table_dir = data_dir.join("tpc/dl_tpc_web_sales");
    let servers = start_servers(lakegates, &table_dir).await;
    if !full {
        smoke(&servers).await;
        return;
    }
    // Measured before the client starts, so that nothing else runs.
    let (decode_wall, decode_cpu) = scan_in_process(&engine, ITERATIONS).await;
    let out_dir = results_dir();
    let mut client = std::process::Command::new(python());
    client
        .arg(repo_root().join("benches/wire_client.py"))
        .args(["--lakegate", &format!("grpc://{}", servers.lakegate)])
        .args(["--lakegate-cached", &format!("grpc://{}", servers.cached)])
        .args([
            "--lakegate-view-types",
            &format!("grpc://{}", servers.view_types),
        ])
        .args([
            "--lakegate-cached-view-types",
            &format!("grpc://{}", servers.cached_view_types),
        ])
        .args(["--ceiling", &format!("grpc://{}", servers.ceiling)])
        .args(["--decoding", &format!("grpc://{}", servers.decoding)])
        .args(["--text-scan", TEXT_SCAN])
        .arg("--parquet")
        .arg(&table_dir)
        .arg("--out")
        .arg(out_dir.join("wire.json"))
        .args(["--iterations", &ITERATIONS.to_string()])
        // The Rust servers run in this process: the client reads its CPU time,
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
