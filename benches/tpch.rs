//! TPC-H: what enforcement and the wire cost, against raw DataFusion and
//! DuckDB, all 22 queries, every variant interleaved in one run.
//!
//! ```text
//!   A   raw DataFusion over the Parquet files (no Lakegate code)
//!   B   Lakegate in-process as `admin` (nothing to enforce)
//!   C   Lakegate in-process as `analyst` (catalog/tpch/grants.toml)
//!   C′  raw DataFusion over hand-written views of analyst's policy
//!       (benches/tpch/analyst_views.sql)
//!   D   Lakegate over Flight SQL, ADBC client, as analyst and as admin
//!   E   DuckDB over the same files and the same views as C′
//!   F   a plain DataFusion Flight SQL server (datafusion-flight-sql-server,
//!       benches/peer), no access control, same ADBC client
//!   H   Lakegate in-process as `analyst`, every query across two
//!       `lakegate worker` processes (docs/deployment.md)
//! ```
//!
//! The in-process variants run here; D, E, F and G run in `benches/tpch_client.py`
//! (the test virtualenv's pyarrow, ADBC driver and DuckDB), a worker this
//! runner drives one query at a time, so that every variant of a query runs
//! back to back (in an order shuffled for each query and iteration, from a
//! fixed seed, so that no variant always follows the same one). The first iteration
//! warms caches and keeps every variant's result: B, D (admin) and F must
//! equal A; C, C′, D (analyst), E, G and H must agree with one another. Then
//! the medians of the measured iterations give the ratios B/A, C/C′, D/C
//! (analyst), C′/E, D/F (admin), G/D (a fleet of two behind nginx, when
//! nginx is installed) and H/C (distributed vs one node), per query and as
//! geometric means.
//!
//! Run: `scripts/bench-tpch` (builds the peer, then `cargo bench --workspace
//! --bench tpch`: release, scale 1, 7 measured iterations;
//! `LAKEGATE_TPCH_SCALE`, `LAKEGATE_TPCH_ITERATIONS` change them,
//! `LAKEGATE_TPCH_QUERIES=q07,q21` runs only those queries,
//! `LAKEGATE_TPCH_VARIANTS=C,H` only those variants,
//! `LAKEGATE_TPCH_FILTER_PUSHDOWN` and `LAKEGATE_TPCH_REORDER_JOINS`
//! (`true|false`) set Lakegate's engine options of those names,
//! `LAKEGATE_TPCH_TARGET_PARTITIONS` the partitions of every DataFusion
//! variant (A to D, G; H's workers keep their own), and
//! `LAKEGATE_TPCH_PEER` names the peer's binary; without it F is skipped).
//! Results: a Markdown table on stdout and in
//! `$CARGO_TARGET_DIR/bench-results/tpch.md`, the figures in `tpch.json`,
//! the chart in `tpch.png`. Under `cargo test` it runs once at scale 0.01, as
//! a test that every variant returns the same answers.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type};
use datafusion::common::TableReference;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTableConfig, ListingTableUrl};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::SessionContext;
use lakegate::tpch_data::{TPCH_TABLES, table_dir};
use lakegate_catalog::{Catalog, LoadOptions};
use lakegate_distributed::{FleetKey, LiveWorkers};
use lakegate_engine::{DEFAULT_TASK_BYTES, Engine, EngineOptions, QuerySession, Workers};
use lakegate_flight::{EnvelopeKey, LakegateFlightService, ServiceOptions, bind, serve_on};
use serde_json::{Value, json};

#[path = "support/mod.rs"]
mod support;
#[path = "support/worker_process.rs"]
mod worker_process;
use support::{baseline_table, env_or, repo_root, results_dir};
use worker_process::WorkerProcess;

/// A variant's answer to one query: its rows (in the form every engine's
/// types compare in), or why it refused.
enum Answer {
    Rows(Vec<Vec<Cell>>),
    Refused(String),
}

/// Where a variant runs.
enum Runner {
    /// A plain DataFusion context (A, C′).
    DataFusion(SessionContext),
    /// A Lakegate session, in-process (B, C).
    Lakegate(Box<QuerySession>),
    /// The Python worker (D, E, F).
    Python,
}

struct Variant {
    name: &'static str,
    runner: Runner,
}

/// The analyst policy as hand-written views (variants C′ and E).
const VIEWS: &str = "benches/tpch/analyst_views.sql";

/// Which variants must return the same answers.
const SAME_ANSWERS: [(&str, &[&str]); 2] = [
    ("admin", &["A", "B", "D-admin", "F"]),
    ("analyst", &["C", "C′", "D-analyst", "E", "G-analyst", "H"]),
];

/// The queries a group is expected to refuse, as `"<query> (<group>)"`: Q10
/// selects `c_comment`, which `analyst` may not see. Any other refusal (a
/// planning error, an unsupported function) fails the run, as a wrong answer
/// does, instead of passing as "refused everywhere".
const EXPECTED_REFUSALS: [&str; 1] = ["q10 (analyst)"];

/// The ratios reported: (name, numerator, denominator, target).
const RATIOS: [(&str, &str, &str, Option<f64>); 8] = [
    ("B/A: the gate, nothing to enforce", "B", "A", Some(1.02)),
    (
        "C/C′: enforcement vs hand-written views",
        "C",
        "C′",
        Some(1.05),
    ),
    ("D/C: the wire (analyst)", "D-analyst", "C", Some(1.10)),
    (
        "D/E: Lakegate enforcing over Flight SQL vs DuckDB in-process (analyst)",
        "D-analyst",
        "E",
        Some(1.0),
    ),
    ("C′/E: DataFusion vs DuckDB (views)", "C′", "E", None),
    (
        "D/F: Flight SQL (admin) vs the plain peer",
        "D-admin",
        "F",
        Some(1.05),
    ),
    (
        "G/D: through nginx to a fleet of two (analyst) vs one server directly",
        "G-analyst",
        "D-analyst",
        Some(1.05),
    ),
    (
        "H/C: across two workers on this machine (analyst) vs one node",
        "H",
        "C",
        Some(1.3),
    ),
];

/// The 22 queries, `q01` to `q22`, or those `LAKEGATE_TPCH_QUERIES` names
/// (a comma-separated list such as `q07,q21`).
fn queries() -> Vec<(String, String)> {
    let all: Vec<String> = (1..=22).map(|n| format!("q{n:02}")).collect();
    let wanted: Option<Vec<String>> = std::env::var("LAKEGATE_TPCH_QUERIES")
        .ok()
        .map(|list| list.split(',').map(|q| q.trim().to_string()).collect());
    if let Some(unknown) = wanted.iter().flatten().find(|q| !all.contains(q)) {
        panic!("LAKEGATE_TPCH_QUERIES: no query '{unknown}' (q01 to q22)");
    }
    all.into_iter()
        .filter(|name| wanted.as_ref().is_none_or(|w| w.contains(name)))
        .map(|name| {
            let path = repo_root().join(format!("benches/tpch/queries/{name}.sql"));
            let sql = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (name, sql)
        })
        .collect()
}

/// A plain DataFusion context with the engine's settings (partitions, batch
/// size, caches), so that only Lakegate's code differs from B: nothing of
/// Lakegate runs in its queries.
fn plain_context(options: &EngineOptions) -> SessionContext {
    let runtime = RuntimeEnvBuilder::new()
        .with_cache_manager(options.cache_config())
        .build_arc()
        .expect("a runtime builds");
    SessionContext::new_with_config_rt(options.session_config(), runtime)
}

/// Registers every TPC-H table of `data_dir` in `ctx` under `schema.table`
/// (or `table`), as the engine opens them: a listing table of the
/// directory, typed by DataFusion's inference from one file with the
/// context's Parquet settings.
async fn register_tables(ctx: &SessionContext, data_dir: &Path, schema: Option<&str>) {
    for (table, _) in TPCH_TABLES {
        let dir = table_dir(data_dir, table);
        let url = ListingTableUrl::parse(format!("{}/", dir.display())).unwrap();
        let sample = ListingTableUrl::parse(dir.join("part-0.parquet").display().to_string())
            .expect("a file URL");
        let format =
            ParquetFormat::default().with_options(ctx.state().table_options().parquet.clone());
        let listing = ListingOptions::new(Arc::new(format)).with_file_extension(".parquet");
        let file_schema = listing
            .infer_schema(&ctx.state(), &sample)
            .await
            .expect("the schema");
        let config = ListingTableConfig::new(url)
            .with_listing_options(listing)
            .with_schema(file_schema);
        let provider = baseline_table(ctx, config);
        let name = match schema {
            Some(schema) => TableReference::partial(schema, table),
            None => TableReference::bare(table),
        };
        ctx.register_table(name, provider).unwrap();
    }
}

/// C′'s context: the raw tables in schema `raw`, the policy as views.
async fn views_context(options: &EngineOptions, data_dir: &Path) -> SessionContext {
    let ctx = plain_context(options);
    ctx.sql("CREATE SCHEMA raw").await.unwrap();
    register_tables(&ctx, data_dir, Some("raw")).await;
    let views = std::fs::read_to_string(repo_root().join(VIEWS)).expect("the views file");
    for statement in views.split(';').filter(|s| !sql_is_blank(s)) {
        ctx.sql(statement)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
    ctx
}

fn sql_is_blank(sql: &str) -> bool {
    sql.lines()
        .map(|line| line.split("--").next().unwrap_or("").trim())
        .all(str::is_empty)
}

/// The Python worker and its pipes.
struct Worker {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
}

impl Worker {
    fn start(
        lakegate: &str,
        peer: Option<&str>,
        fleet: Option<&str>,
        data_dir: &Path,
        python: &Path,
    ) -> Self {
        let mut command = std::process::Command::new(python);
        command
            .arg(repo_root().join("benches/tpch_client.py"))
            .args(["--lakegate", lakegate]);
        if let Some(peer) = peer {
            command.args(["--peer", peer]);
        }
        if let Some(fleet) = fleet {
            command.args(["--fleet", fleet]);
        }
        let mut child = command
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--views")
            .arg(repo_root().join(VIEWS))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the Python worker starts");
        let input = child.stdin.take().unwrap();
        let output = BufReader::new(child.stdout.take().unwrap());
        Self {
            child,
            input,
            output,
        }
    }

    /// Sends one request and waits for its answer. Blocks the thread (the
    /// servers run on the runtime's other threads meanwhile).
    fn request(&mut self, request: Value) -> Value {
        tokio::task::block_in_place(|| {
            writeln!(self.input, "{request}").expect("the worker reads");
            self.input.flush().unwrap();
            let mut line = String::new();
            self.output
                .read_line(&mut line)
                .expect("the worker answers");
            assert!(!line.is_empty(), "the Python worker exited");
            serde_json::from_str(&line).expect("the worker answers JSON")
        })
    }

    fn stop(mut self) {
        let _ = writeln!(self.input, "{}", json!({"op": "quit"}));
        drop(self.input);
        let _ = self.child.wait();
    }
}

/// The plain DataFusion Flight SQL server of variant F, a child process.
struct Peer {
    child: Child,
    address: String,
}

impl Peer {
    fn start(binary: &std::ffi::OsStr, data_dir: &Path) -> Self {
        let mut child = std::process::Command::new(binary)
            .arg(data_dir)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("LAKEGATE_TPCH_PEER={}: {e}", binary.display()));
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("the peer prints its address");
        let address = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("the peer said {line:?}"))
            .to_string();
        Self { child, address }
    }
}

impl Drop for Peer {
    /// The server never exits by itself: a run that ends, or panics, stops it.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The order the variants run in for one query of one iteration: a
/// permutation drawn from the iteration and the query, so that no variant
/// always runs right after the same one (a rotation keeps neighbours: D
/// would always follow H, whose three processes leave the caches cold).
fn run_order(variants: usize, iteration: usize, query: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..variants).collect();
    let mut state = ((iteration as u64) << 32) | query as u64;
    for i in (1..variants).rev() {
        state = splitmix64(state);
        order.swap(i, (state % (i as u64 + 1)) as usize);
    }
    order
}

/// One step of SplitMix64: a well-mixed 64-bit value from `x`.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Runs `sql` in `variant`; the time, and the answer when `save` names
/// where a Python variant writes it (the warm-up keeps every answer).
async fn run_query(
    variant: &mut Variant,
    worker: Option<&mut Worker>,
    sql: &str,
    save: Option<&Path>,
) -> (Duration, Option<Answer>) {
    let started = Instant::now();
    let answer = match &mut variant.runner {
        Runner::DataFusion(ctx) => match ctx.sql(sql).await {
            Ok(frame) => frame.collect().await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        },
        Runner::Lakegate(session) => match session.execute(sql).await {
            Ok(output) => output.collect().await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        },
        Runner::Python => {
            let worker = worker.expect("Python variants run with a worker");
            let answer = worker.request(json!({
                "op": "run",
                "variant": variant.name,
                "sql": sql,
                "save": save.map(|p| p.display().to_string()),
            }));
            let seconds = answer["seconds"].as_f64().expect("seconds");
            let elapsed = Duration::from_secs_f64(seconds);
            return match answer["error"].as_str() {
                Some(error) => (elapsed, Some(Answer::Refused(error.to_string()))),
                None => (elapsed, save.map(read_saved)),
            };
        }
    };
    let elapsed = started.elapsed();
    let answer = save.map(|_| match answer {
        Ok(batches) => Answer::Rows(canonical_rows(&batches)),
        Err(e) => Answer::Refused(e),
    });
    (elapsed, answer)
}

fn read_saved(path: &Path) -> Answer {
    let file = std::fs::File::open(path).expect("the worker saved the result");
    let reader = arrow::ipc::reader::FileReader::try_new(file, None).expect("an IPC file");
    let batches: Vec<RecordBatch> = reader.map(|b| b.expect("a batch")).collect();
    Answer::Rows(canonical_rows(&batches))
}

/// One value of a result, in a form every engine's types compare in:
/// numbers (integers, decimals, floats) as f64, everything else as text.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
enum Cell {
    Null,
    Number(f64),
    Text(String),
}

fn canonical_rows(batches: &[RecordBatch]) -> Vec<Vec<Cell>> {
    let mut rows = Vec::new();
    for batch in batches {
        let columns: Vec<Vec<Cell>> = batch.columns().iter().map(canonical_column).collect();
        for row in 0..batch.num_rows() {
            rows.push(columns.iter().map(|c| c[row].clone()).collect());
        }
    }
    rows
}

fn canonical_column(array: &ArrayRef) -> Vec<Cell> {
    let numeric = array.data_type().is_numeric();
    let target = if numeric {
        DataType::Float64
    } else {
        DataType::Utf8
    };
    let converted = cast(array, &target).expect("every result type casts to f64 or text");
    (0..converted.len())
        .map(|i| {
            if converted.is_null(i) {
                Cell::Null
            } else if numeric {
                Cell::Number(converted.as_primitive::<Float64Type>().value(i))
            } else {
                Cell::Text(converted.as_string::<i32>().value(i).to_string())
            }
        })
        .collect()
}

/// Numbers agree within what decimal scales and summation order explain.
fn cells_agree(a: &Cell, b: &Cell) -> bool {
    match (a, b) {
        (Cell::Number(x), Cell::Number(y)) => (x - y).abs() <= 1e-5 + 1e-9 * x.abs().max(y.abs()),
        _ => a == b,
    }
}

/// Whether two answers are the same; the reason if not. Rows compare in
/// order when the query orders them, as multisets otherwise.
fn same_answer(a: &Answer, b: &Answer, ordered: bool) -> Result<(), String> {
    match (a, b) {
        (Answer::Refused(_), Answer::Refused(_)) => Ok(()),
        (Answer::Rows(_), Answer::Refused(e)) | (Answer::Refused(e), Answer::Rows(_)) => {
            Err(format!("one refused ({e}), the other answered"))
        }
        (Answer::Rows(x), Answer::Rows(y)) => {
            let (mut x, mut y) = (x.clone(), y.clone());
            if x.len() != y.len() {
                return Err(format!("{} rows against {}", x.len(), y.len()));
            }
            if !ordered {
                let by_value = |a: &Vec<Cell>, b: &Vec<Cell>| a.partial_cmp(b).unwrap();
                x.sort_by(by_value);
                y.sort_by(by_value);
            }
            for (i, (row_x, row_y)) in x.iter().zip(&y).enumerate() {
                let agree = row_x.len() == row_y.len()
                    && row_x.iter().zip(row_y).all(|(a, b)| cells_agree(a, b));
                if !agree {
                    return Err(format!("row {i}: {row_x:?} against {row_y:?}"));
                }
            }
            Ok(())
        }
    }
}

fn is_ordered(sql: &str) -> bool {
    // No subquery of these 22 queries is ordered: any ORDER BY is the
    // outermost one.
    sql.to_ascii_uppercase().contains("ORDER BY")
}

fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = samples.len();
    if n % 2 == 1 {
        samples[n / 2]
    } else {
        (samples[n / 2 - 1] + samples[n / 2]) / 2.0
    }
}

fn geomean(values: &[f64]) -> Option<f64> {
    (!values.is_empty())
        .then(|| (values.iter().map(|v| v.ln()).sum::<f64>() / values.len() as f64).exp())
}

async fn run(full: bool) {
    let scale: f64 = env_or("LAKEGATE_TPCH_SCALE", if full { 1.0 } else { 0.01 });
    let iterations: usize = env_or("LAKEGATE_TPCH_ITERATIONS", if full { 7 } else { 1 });
    let started = Instant::now();
    let data_dir = support::tpch_lake(scale);
    eprintln!(
        "TPC-H scale {scale} in {} ({:.1} s)",
        data_dir.display(),
        started.elapsed().as_secs_f64()
    );

    let options = EngineOptions {
        parquet_filter_pushdown: env_or(
            "LAKEGATE_TPCH_FILTER_PUSHDOWN",
            EngineOptions::default().parquet_filter_pushdown,
        ),
        reorder_joins: env_or(
            "LAKEGATE_TPCH_REORDER_JOINS",
            EngineOptions::default().reorder_joins,
        ),
        target_partitions: env_or(
            "LAKEGATE_TPCH_TARGET_PARTITIONS",
            EngineOptions::default().target_partitions,
        ),
        ..EngineOptions::default()
    };
    let load = LoadOptions {
        data_dir: data_dir.clone(),
        ..Default::default()
    };
    let catalog = Catalog::load(&repo_root().join("catalog/tpch"), &load)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let engine = Engine::new(catalog, options.clone())
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    // H: the same lake with two workers, every query across them.
    let secret = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let key_file = data_dir.join("fleet-bench.key");
    std::fs::write(&key_file, &secret).unwrap();
    let worker_processes: Vec<WorkerProcess> = (0..2)
        .map(|_| {
            WorkerProcess::start(
                Path::new(env!("CARGO_BIN_EXE_lakegate")),
                &repo_root(),
                &repo_root().join("catalog/tpch"),
                &data_dir,
                &key_file,
            )
        })
        .collect();
    let live = LiveWorkers::new(worker_processes.iter().map(|w| w.url.clone()).collect());
    live.watch();
    let workers = Workers {
        live,
        key: FleetKey::derive(secret.as_bytes()),
        distribute_from_bytes: 0,
        // The test run's tables are tiny: split them all the same.
        task_bytes: if full { DEFAULT_TASK_BYTES } else { 16 * 1024 },
    };
    let fleet_catalog = Catalog::load(&repo_root().join("catalog/tpch"), &load)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let fleet_options = EngineOptions {
        workers: Some(workers),
        ..options.clone()
    };
    let fleet_engine = Engine::new(fleet_catalog, fleet_options)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let raw = plain_context(&options);
    register_tables(&raw, &data_dir, None).await;
    let views = views_context(&options, &data_dir).await;

    // Two servers sharing one key: the first serves D directly, and both
    // serve G behind nginx.
    let key = EnvelopeKey::random();
    let mut addresses = Vec::new();
    for _ in 0..2 {
        let (listener, address) = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let service =
            LakegateFlightService::new(engine.clone(), key.clone(), ServiceOptions::default());
        tokio::spawn(serve_on(listener, service, futures::future::pending()));
        addresses.push(address);
    }
    let address = addresses[0];
    let balancer = support::Balancer::start(&addresses);

    let mut variants = vec![
        Variant {
            name: "A",
            runner: Runner::DataFusion(raw),
        },
        Variant {
            name: "B",
            runner: Runner::Lakegate(Box::new(engine.session("admin", None).unwrap())),
        },
        Variant {
            name: "C",
            runner: Runner::Lakegate(Box::new(engine.session("analyst", None).unwrap())),
        },
        Variant {
            name: "C′",
            runner: Runner::DataFusion(views),
        },
        Variant {
            name: "H",
            runner: Runner::Lakegate(Box::new(fleet_engine.session("analyst", None).unwrap())),
        },
    ];
    let peer = std::env::var_os("LAKEGATE_TPCH_PEER").map(|binary| Peer::start(&binary, &data_dir));
    let mut worker = support::python_if_present().map(|python| {
        let peer = peer.as_ref().map(|p| format!("grpc://{}", p.address));
        let fleet = balancer.as_ref().map(|b| b.address.as_str());
        Worker::start(
            &format!("grpc://{address}"),
            peer.as_deref(),
            fleet,
            &data_dir,
            &python,
        )
    });
    match &worker {
        Some(_) => {
            let mut python_variants = vec!["D-analyst", "D-admin", "E"];
            match &peer {
                Some(_) => python_variants.push("F"),
                None => eprintln!("LAKEGATE_TPCH_PEER is not set: variant F skipped"),
            }
            match &balancer {
                Some(_) => python_variants.push("G-analyst"),
                None => eprintln!("nginx is not installed: variant G skipped"),
            }
            for name in python_variants {
                variants.push(Variant {
                    name,
                    runner: Runner::Python,
                });
            }
        }
        None => eprintln!(
            "no Python virtualenv (scripts/python-venv makes it): variants D, E and F skipped"
        ),
    }

    if let Ok(list) = std::env::var("LAKEGATE_TPCH_VARIANTS") {
        let wanted: Vec<&str> = list.split(',').map(str::trim).collect();
        let known: Vec<&str> = SAME_ANSWERS
            .iter()
            .flat_map(|(_, m)| m.iter().copied())
            .collect();
        if let Some(unknown) = wanted.iter().find(|w| !known.contains(w)) {
            panic!(
                "LAKEGATE_TPCH_VARIANTS: no variant '{unknown}' ({})",
                known.join(", ")
            );
        }
        variants.retain(|v| wanted.contains(&v.name));
    }

    let queries = queries();
    let saved = results_dir().join("tpch-answers");
    std::fs::create_dir_all(&saved).unwrap();
    let mut answers: BTreeMap<(String, &str), Answer> = BTreeMap::new();
    let mut seconds: BTreeMap<(String, &str), Vec<f64>> = BTreeMap::new();
    // Iteration 0 warms up and keeps the answers; the others are measured.
    for iteration in 0..=iterations {
        for (position, (query, sql)) in queries.iter().enumerate() {
            for index in run_order(variants.len(), iteration, position) {
                let variant = &mut variants[index];
                let save = (iteration == 0).then(|| {
                    saved.join(format!("{}-{query}.arrow", variant.name.replace('′', "p")))
                });
                let (elapsed, answer) =
                    run_query(variant, worker.as_mut(), sql, save.as_deref()).await;
                if let Some(answer) = answer {
                    answers.insert((query.clone(), variant.name), answer);
                }
                if iteration > 0 {
                    seconds
                        .entry((query.clone(), variant.name))
                        .or_default()
                        .push(elapsed.as_secs_f64());
                }
            }
        }
        eprintln!(
            "iteration {iteration} of {iterations} done ({:.0} s)",
            started.elapsed().as_secs_f64()
        );
    }

    // The answers.
    let names: Vec<&str> = variants.iter().map(|v| v.name).collect();
    let mut mismatches = Vec::new();
    let mut refused = BTreeMap::new();
    for (query, sql) in &queries {
        for (group, members) in SAME_ANSWERS {
            let present: Vec<&str> = members
                .iter()
                .copied()
                .filter(|m| names.contains(m))
                .collect();
            let Some(leader) = present.first() else {
                continue;
            };
            let first = &answers[&(query.clone(), *leader)];
            if let Answer::Refused(reason) = first {
                refused.insert(format!("{query} ({group})"), reason.clone());
            }
            for other in &present[1..] {
                let answer = &answers[&(query.clone(), *other)];
                if let Err(why) = same_answer(first, answer, is_ordered(sql)) {
                    mismatches.push(format!("{query}: {leader} vs {other}: {why}"));
                }
            }
        }
    }

    // The figures.
    let medians: BTreeMap<(String, &str), f64> = seconds
        .iter_mut()
        .map(|(key, samples)| (key.clone(), median(samples)))
        .collect();
    let succeeded = |query: &str, variant: &str| {
        matches!(
            answers.get(&(query.to_string(), variant)),
            Some(Answer::Rows(_))
        )
    };
    let mut ratio_reports = Vec::new();
    for (name, numerator, denominator, target) in RATIOS {
        if !names.contains(&numerator) || !names.contains(&denominator) {
            continue;
        }
        let mut per_query = BTreeMap::new();
        let mut values = Vec::new();
        for (query, _) in &queries {
            let ratio = (succeeded(query, numerator) && succeeded(query, denominator)).then(|| {
                medians[&(query.clone(), numerator)] / medians[&(query.clone(), denominator)]
            });
            values.extend(ratio);
            per_query.insert(query.clone(), ratio);
        }
        let geomean = geomean(&values);
        ratio_reports.push(json!({
            "name": name, "numerator": numerator, "denominator": denominator,
            "target": target, "geomean": geomean, "per_query": per_query,
        }));
    }

    let mut markdown = format!(
        "TPC-H scale {scale}, {iterations} measured iterations after one warm-up, variants \
         interleaved; median milliseconds per query.\n\n| query | {} |\n| --- |{}\n",
        names.join(" | "),
        " ---: |".repeat(names.len())
    );
    for (query, _) in &queries {
        let cells: Vec<String> = names
            .iter()
            .map(|name| match answers.get(&(query.clone(), *name)) {
                Some(Answer::Refused(_)) => "refused".to_string(),
                _ => format!("{:.1}", medians[&(query.clone(), *name)] * 1000.0),
            })
            .collect();
        markdown += &format!("| {} | {} |\n", query.to_uppercase(), cells.join(" | "));
    }
    markdown += "\n| ratio | geometric mean | target |\n| --- | ---: | ---: |\n";
    for report in &ratio_reports {
        let geomean = report["geomean"]
            .as_f64()
            .map_or("-".to_string(), |g| format!("{g:.3}"));
        let target = report["target"]
            .as_f64()
            .map_or("report".to_string(), |t| format!("≤ {t:.2}"));
        markdown += &format!(
            "| {} | {geomean} | {target} |\n",
            report["name"].as_str().unwrap()
        );
    }
    if !refused.is_empty() {
        markdown += "\nRefused in every variant of the group (the same answer everywhere):\n\n";
        for (query, reason) in &refused {
            let reason: String = reason.chars().take(160).collect();
            markdown += &format!("* {query}: {reason}\n");
        }
    }
    println!("\n{markdown}");

    let out = results_dir();
    let report = json!({
        "scale": scale,
        "iterations": iterations,
        "variants": names,
        "median_seconds": queries.iter().map(|(q, _)| {
            let per_variant: BTreeMap<&str, Option<f64>> = names.iter()
                .map(|n| (*n, succeeded(q, n).then(|| medians[&(q.clone(), *n)])))
                .collect();
            (q.clone(), per_variant)
        }).collect::<BTreeMap<_, _>>(),
        "ratios": ratio_reports,
        "refused": refused,
        "mismatches": mismatches,
        "total_seconds": started.elapsed().as_secs_f64(),
    });
    let json_path = out.join("tpch.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(&report).unwrap()).unwrap();
    std::fs::write(out.join("tpch.md"), &markdown).unwrap();
    if let Some(worker) = worker.as_mut() {
        let png = out.join("tpch.png");
        let answer = worker.request(json!({
            "op": "chart", "report": json_path.display().to_string(), "png": png.display().to_string(),
        }));
        assert_eq!(answer["ok"], true, "the chart is drawn");
    }
    if let Some(worker) = worker {
        worker.stop();
    }
    drop(peer);
    // Every call to the workers was signed: they refused none.
    for worker in worker_processes {
        let log = std::fs::read_to_string(&worker.log).unwrap_or_default();
        assert!(!log.contains("refused"), "a worker refused a call:\n{log}");
    }
    eprintln!(
        "results in {} ({:.0} s in all)",
        out.display(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        mismatches.is_empty(),
        "variants disagree:\n{}",
        mismatches.join("\n")
    );
    let unexpected: Vec<String> = refused
        .iter()
        .filter(|(query, _)| !EXPECTED_REFUSALS.contains(&query.as_str()))
        .map(|(query, reason)| format!("{query}: {reason}"))
        .collect();
    assert!(
        unexpected.is_empty(),
        "refused where an answer was expected:\n{}",
        unexpected.join("\n")
    );
    // A refusal is named "<query> (<group>)": expected when the query ran
    // in a variant of the group.
    let ran = |refusal: &str| {
        let (query, group) = refusal.split_once(' ').unwrap();
        let group = group.trim_matches(|c| c == '(' || c == ')');
        let members = SAME_ANSWERS.iter().find(|(g, _)| *g == group).unwrap().1;
        queries.iter().any(|(q, _)| q == query) && members.iter().any(|m| names.contains(m))
    };
    let missing: Vec<&str> = EXPECTED_REFUSALS
        .into_iter()
        .filter(|query| ran(query) && !refused.contains_key(*query))
        .collect();
    assert!(
        missing.is_empty(),
        "answered where the policy should refuse: {missing:?}"
    );
}

fn main() {
    // `cargo bench` passes --bench; `cargo test` runs the small check.
    let full = std::env::args().any(|a| a == "--bench");
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(run(full));
}
