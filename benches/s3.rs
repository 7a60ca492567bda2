//! Reading from S3: a full scan of the largest demo table
//! (`dl_tpc_web_sales`) from an S3-compatible server against the same scan
//! from local disk, and with against without the Parquet footer cache, all
//! in one run, with the number of S3 requests each query makes.
//!
//! The server is moto (from the test virtualenv), started here on loopback
//! with authentication off; Lakegate reaches it through a storage location
//! with unsigned requests. Moto is a correctness server, not a fast one (it
//! copies an object for each ranged read), so the S3/local time ratio is an
//! upper bound of what a real S3 endpoint would cost; the request counts are
//! exact, counted by each location's store.
//!
//! Variants, interleaved, as the lake administrator:
//!
//! * `local`: the demo catalog over local files;
//! * `s3`: the same tables on the S3 server (footer cache on, the default);
//! * `s3, no footer cache`: the same with `metadata_cache_bytes = 0`.
//!
//! Run: `cargo bench --workspace --bench s3` (release; demo data at scale 0.1,
//! or `LAKEGATE_S3_SCALE`). Results: a Markdown table on stdout and
//! `$CARGO_TARGET_DIR/bench-results/s3.json`. Under `cargo test` it runs once
//! at a tiny scale, as a smoke test that checks the answers agree and that a
//! repeated query with the cache reads fewer objects than without.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use lakegate::demo_data::{
    DEMO_LAYOUT, DEMO_TABLES, RESULTS_TABLE, ensure_demo_data, publish_demo_data,
};
use lakegate_catalog::{Catalog, LoadOptions, RequestTotals, StorageEntry, StorageLocation};
use lakegate_engine::{Engine, EngineOptions};

#[path = "support/mod.rs"]
mod support;
use support::{python, repo_root, results_dir};

/// The scan every variant runs.
const SCAN: &str = "SELECT * FROM dl_tpc_web_sales";

/// The S3 server, stopped when dropped.
struct Moto {
    child: Child,
    port: u16,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_moto() -> Moto {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(python())
        .args([
            "-m",
            "moto.server",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("moto starts (pip install -r tests/python/requirements.txt)");
    let moto = Moto { child, port };
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "moto did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    moto
}

/// Creates `bucket` (object_store has no call for it): one plain HTTP PUT.
fn create_bucket(port: u16, bucket: &str) {
    use std::io::{Read, Write};
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}

/// The variables holding the bench bucket's keys (moto, without
/// authentication, accepts any signed request; unsigned reads of private
/// objects it refuses).
const KEY_ID_VARIABLE: &str = "LAKEGATE_S3_BENCH_KEY_ID";
const SECRET_VARIABLE: &str = "LAKEGATE_S3_BENCH_SECRET";

/// The storage settings of the bench bucket.
fn s3_settings(port: u16) -> String {
    format!(
        "region = \"us-east-1\"\nendpoint = \"http://127.0.0.1:{port}\"\naddressing = \"path\"\n\
         allow_http = true\ncredentials = \"variables\"\naccess_key_id_env = \"{KEY_ID_VARIABLE}\"\n\
         secret_access_key_env = \"{SECRET_VARIABLE}\"\n"
    )
}

/// The demo catalog with its tables on the S3 server.
fn s3_catalog(dir: &Path, port: u16) {
    std::fs::create_dir_all(dir).unwrap();
    for file in ["principals.toml", "grants.toml"] {
        std::fs::copy(repo_root().join("catalog/demo").join(file), dir.join(file)).unwrap();
    }
    let mut text = format!(
        "[catalog]\nname = \"lakegate\"\ndefault_database = \"tpc\"\n\n[[storage]]\nname = \"lake\"\n\
         url = \"s3://bench/demo/tpc\"\n{}\n[[database]]\nname = \"tpc\"\n\n",
        s3_settings(port)
    );
    let tables = DEMO_TABLES.iter().map(|(table, _, _)| *table);
    for table in tables.chain([RESULTS_TABLE]) {
        text.push_str(&format!(
            "[[table]]\ndatabase = \"tpc\"\nname = \"{table}\"\nstorage = \"lake\"\npath = \"{table}/\"\n\n"
        ));
    }
    std::fs::write(dir.join("catalog.toml"), text).unwrap();
}

async fn engine(catalog: &Path, data_dir: &Path, metadata_cache_bytes: Option<usize>) -> Engine {
    let options = LoadOptions {
        data_dir: data_dir.to_path_buf(),
        ..Default::default()
    };
    let catalog = Catalog::load(catalog, &options)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut options = EngineOptions::default();
    if let Some(bytes) = metadata_cache_bytes {
        options.metadata_cache_bytes = bytes;
    }
    Engine::new(catalog, options)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// One variant: its engine and, for S3, its location's request counters.
struct Variant {
    name: &'static str,
    engine: Engine,
    times: Vec<f64>,
    requests: Vec<RequestTotals>,
}

impl Variant {
    fn totals(&self) -> Option<RequestTotals> {
        self.engine.storage_requests("lake")
    }

    /// Runs the scan once: its rows, time and requests.
    async fn run(&mut self) -> usize {
        let before = self.totals();
        let started = Instant::now();
        let mut session = self.engine.session("admin", None).unwrap();
        let batches = session
            .execute(SCAN)
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        self.times.push(started.elapsed().as_secs_f64() * 1000.0);
        if let (Some(before), Some(after)) = (before, self.totals()) {
            self.requests.push(after - before);
        }
        batches.iter().map(RecordBatch::num_rows).sum()
    }

    fn median_ms(&self) -> f64 {
        let mut times = self.times.clone();
        times.sort_by(f64::total_cmp);
        times[times.len() / 2]
    }

    /// The requests of the last (repeated) query.
    fn last_requests(&self) -> Option<RequestTotals> {
        self.requests.last().copied()
    }
}

async fn run(full: bool) {
    let scale: f64 = std::env::var("LAKEGATE_S3_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if full { 0.1 } else { 0.01 });
    let iterations = if full { 9 } else { 2 };
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let data_dir = tmp.join(format!("s3-demo-sf{scale}-layout{DEMO_LAYOUT}"));
    ensure_demo_data(&data_dir, scale, false).expect("demo data");

    let moto = start_moto();
    create_bucket(moto.port, "bench");
    let entry_text = format!(
        "name = \"lake\"\nurl = \"s3://bench/demo\"\n{}",
        s3_settings(moto.port)
    );
    let entry: StorageEntry = toml::from_str(&entry_text).unwrap();
    let location = StorageLocation::open(&entry, "s3://bench/demo", Path::new(".")).unwrap();
    publish_demo_data(&data_dir, &location)
        .await
        .expect("the demo data reaches the S3 server");
    let catalog_dir = tmp.join(format!("s3-bench-catalog-{}", std::process::id()));
    s3_catalog(&catalog_dir, moto.port);

    let mut variants = vec![
        Variant {
            name: "local",
            engine: engine(&repo_root().join("catalog/demo"), &data_dir, None).await,
            times: Vec::new(),
            requests: Vec::new(),
        },
        Variant {
            name: "s3",
            engine: engine(&catalog_dir, &data_dir, None).await,
            times: Vec::new(),
            requests: Vec::new(),
        },
        Variant {
            name: "s3, no footer cache",
            engine: engine(&catalog_dir, &data_dir, Some(0)).await,
            times: Vec::new(),
            requests: Vec::new(),
        },
    ];
    let _ = std::fs::remove_dir_all(&catalog_dir);

    // A first query per variant warms what a server keeps (listings, plans,
    // footers when cached); it is not measured.
    let mut rows = Vec::new();
    for variant in &mut variants {
        rows.push(variant.run().await);
        variant.times.clear();
        variant.requests.clear();
    }
    assert!(rows.iter().all(|r| *r == rows[0] && *r > 0), "{rows:?}");
    for _ in 0..iterations {
        for variant in &mut variants {
            assert_eq!(variant.run().await, rows[0]);
        }
    }

    let local = variants[0].median_ms();
    let cached = variants[1].last_requests().unwrap();
    let uncached = variants[2].last_requests().unwrap();
    let files = 4;
    // The smoke test's check: the cache saves the footer reads.
    assert!(
        cached.gets < uncached.gets,
        "with the footer cache a repeated query reads less ({cached:?} vs {uncached:?})"
    );
    println!(
        "\nS3 scan of dl_tpc_web_sales ({} rows, scale {scale}, {files} files), median of {iterations}\n",
        rows[0]
    );
    println!("| variant | median ms | vs local | GETs | HEADs | LISTs per repeated query |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    let mut json = Vec::new();
    for variant in &variants {
        let median = variant.median_ms();
        let requests = variant.last_requests().unwrap_or_default();
        let counts = if variant.name == "local" {
            "- | - | -".to_string()
        } else {
            format!(
                "{} | {} | {}",
                requests.gets, requests.heads, requests.lists
            )
        };
        println!(
            "| {} | {median:.1} | {:.2} | {counts} |",
            variant.name,
            median / local
        );
        json.push(serde_json::json!({
            "variant": variant.name,
            "median_ms": median,
            "vs_local": median / local,
            "requests_per_query": variant.last_requests(),
        }));
    }
    let footer_reads_saved = uncached.gets - cached.gets;
    println!(
        "\nfooter cache: {:.2} of the time without it; {footer_reads_saved} fewer GETs per repeated query \
         ({files} files); S3 {:.2}x local",
        variants[1].median_ms() / variants[2].median_ms(),
        variants[1].median_ms() / local
    );
    let report = serde_json::json!({
        "scale": scale,
        "rows": rows[0],
        "iterations": iterations,
        "variants": json,
        "footer_reads_saved_per_query": footer_reads_saved,
    });
    std::fs::write(
        results_dir().join("s3.json"),
        serde_json::to_string_pretty(&report).unwrap(),
    )
    .unwrap();
}

fn main() {
    // The location reads its keys from named variables, as a deployment's
    // would; a process cannot safely set its own environment, so the bench
    // runs itself again with them set.
    if std::env::var_os(KEY_ID_VARIABLE).is_none() {
        let status = Command::new(std::env::current_exe().unwrap())
            .args(std::env::args_os().skip(1))
            .env(KEY_ID_VARIABLE, "bench")
            .env(SECRET_VARIABLE, "bench")
            .status()
            .expect("the benchmark runs");
        std::process::exit(status.code().unwrap_or(1));
    }
    // `cargo bench` passes --bench; `cargo test` runs a small smoke test.
    let full = std::env::args().any(|a| a == "--bench");
    tokio::runtime::Runtime::new().unwrap().block_on(run(full));
}
