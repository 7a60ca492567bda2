//! GRANT-to-visible latency across a fleet: two servers on one PostgreSQL
//! policy store holding the planning benchmark's catalog (1,000 tables,
//! 10,000 grants with row filters and masks); a grant (or revoke) is made on
//! one, and the time from its return until a query on the other sees it is
//! measured, 200 changes alternating grant and revoke. Target: p99 ≤ 100 ms.
//!
//! Each server is a real `lakegate serve` stack (engine, administration on
//! the store, Flight SQL service) on its own port, in this process; they
//! share nothing but the store, as two machines would. Clients are Flight
//! SQL clients over loopback. The reader polls without sleeping, so the
//! latency is what a client asking again at once would observe.
//!
//! PostgreSQL: `LAKEGATE_TEST_POSTGRES` (a server URL whose user may create
//! databases), or a throwaway one started with `scripts/postgres`.
//!
//! Run: `cargo bench --bench propagation` (release build). Results are printed
//! and written to `$CARGO_TARGET_DIR/bench-results/propagation.json`. Under
//! `cargo test` it makes 6 changes, as a smoke test (skipped without
//! `LAKEGATE_TEST_POSTGRES`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use arrow_flight::sql::client::FlightSqlServiceClient;
use futures::TryStreamExt;
use lakegate_admin::Administration;
use lakegate_catalog::{Catalog, CatalogFile, LoadOptions, hash_password};
use lakegate_engine::{Engine, EngineOptions};
use lakegate_flight::{EnvelopeKey, LakegateFlightService, ServiceOptions, bind, serve_on};
use lakegate_store::PolicyStore;
use tonic::transport::Channel;

#[path = "support/mod.rs"]
mod support;
use support::{repo_root, results_dir, write_planning_lake};

/// The grant toggled, and the query that sees it (or is refused).
const GRANT: &str = "GRANT SELECT ON TABLE bench.t0001 TO ROLE r000 AS probe";
const REVOKE: &str = "REVOKE GRANT probe";
const PROBE: &str = "SELECT count(*) FROM bench.t0001";

/// A PostgreSQL server for the run: the given one, or one started here.
struct Postgres {
    url: String,
    started: Option<String>,
}

impl Postgres {
    fn get(full: bool) -> Option<Self> {
        if let Ok(url) = std::env::var("LAKEGATE_TEST_POSTGRES") {
            return Some(Self { url, started: None });
        }
        if !full {
            return None;
        }
        let output = std::process::Command::new(repo_root().join("scripts/postgres"))
            .output()
            .expect("scripts/postgres runs");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let text = String::from_utf8(output.stdout).unwrap();
        let mut lines = text.lines();
        Some(Self {
            url: lines.next().unwrap().to_string(),
            started: lines.next().map(str::to_string),
        })
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(dir) = &self.started {
            let _ = std::process::Command::new(repo_root().join("scripts/postgres"))
                .args(["stop", dir])
                .status();
        }
    }
}

/// A new database on `server`, as a store URL.
async fn new_store(server: &str) -> String {
    use sqlx::Connection;
    let name = format!("lakegate_bench_{}", std::process::id());
    let base = server.trim_end_matches('/');
    let mut admin = sqlx::PgConnection::connect(&format!("{base}/postgres"))
        .await
        .unwrap();
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
        .execute(&mut admin)
        .await
        .unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .unwrap();
    format!("{base}/{name}")
}

/// One server on the store: what `lakegate serve --store` runs.
async fn serve(url: &str, load: &LoadOptions, key: &[u8]) -> SocketAddr {
    let store = PolicyStore::open(url).await.unwrap();
    let stored = store.load().await.unwrap();
    let catalog = Catalog::from_shared_files(
        vec![(PathBuf::from("store"), stored.content)],
        Path::new("/"),
        load,
    )
    .await
    .unwrap();
    let engine = Engine::new_at(catalog, EngineOptions::default(), stored.version)
        .await
        .unwrap();
    let administration = Administration::new(store, engine.clone(), load.clone());
    administration.watch();
    let key = EnvelopeKey::new(key.to_vec()).unwrap();
    let service = LakegateFlightService::new(engine, key, ServiceOptions::default())
        .with_administration(administration);
    let (listener, addr) = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    tokio::spawn(serve_on(listener, service, futures::future::pending()));
    addr
}

async fn client(addr: SocketAddr, user: &str, password: &str) -> FlightSqlServiceClient<Channel> {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = FlightSqlServiceClient::new(channel);
    client.handshake(user, password).await.unwrap();
    client
}

/// Whether the probe answers (the grant is in force) or is refused.
async fn visible(client: &mut FlightSqlServiceClient<Channel>) -> bool {
    let Ok(info) = client.execute(PROBE.to_string(), None).await else {
        return false;
    };
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    match client.do_get(ticket).await {
        Ok(stream) => stream.try_collect::<Vec<_>>().await.is_ok(),
        Err(_) => false,
    }
}

/// What loading a new version costs a server, by step (medians of 5): the
/// store read, the catalog checked and loaded (no file read: the schemas are
/// known), and the engine's new version built and its changes checked.
async fn reload_breakdown(url: &str, load: &LoadOptions) -> [f64; 3] {
    let store = PolicyStore::open(url).await.unwrap();
    let stored = store.load().await.unwrap();
    let catalog = Catalog::from_shared_files(
        vec![(PathBuf::from("store"), stored.content.clone())],
        Path::new("/"),
        load,
    )
    .await
    .unwrap();
    let engine = Engine::new_at(catalog.clone(), EngineOptions::default(), stored.version)
        .await
        .unwrap();
    let known = LoadOptions {
        known_schemas: lakegate_catalog::KnownSchemas::of(&catalog),
        ..load.clone()
    };
    let mut steps = [Vec::new(), Vec::new(), Vec::new()];
    for round in 0..5 {
        let t = Instant::now();
        let stored = store.load().await.unwrap();
        steps[0].push(t.elapsed());
        let t = Instant::now();
        let catalog = Catalog::from_shared_files(
            vec![(PathBuf::from("store"), stored.content)],
            Path::new("/"),
            &known,
        )
        .await
        .unwrap();
        steps[1].push(t.elapsed());
        let t = Instant::now();
        engine
            .prepare(catalog, stored.version + 1 + round)
            .await
            .unwrap();
        steps[2].push(t.elapsed());
    }
    steps.map(|mut samples| {
        samples.sort();
        ms(samples[samples.len() / 2])
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn run(full: bool) {
    let Some(postgres) = Postgres::get(full) else {
        println!("propagation: skipped (LAKEGATE_TEST_POSTGRES is not set)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (data_dir, catalog_dir) = (dir.path().join("data"), dir.path().join("catalog"));
    let (tables, roles, grants_per_role) = if full { (1000, 100, 100) } else { (4, 2, 2) };
    write_planning_lake(&data_dir, &catalog_dir, tables, roles, grants_per_role);
    let url = new_store(&postgres.url).await;
    let store = PolicyStore::open(&url).await.unwrap();
    store
        .bootstrap_admin("admin", &hash_password("admin-pass"))
        .await
        .unwrap();
    let files = Catalog::parse(&catalog_dir).unwrap();
    let content = CatalogFile::merged(files.into_iter().map(|(_, file)| file));
    store.apply(&content).await.unwrap();
    let load = LoadOptions {
        data_dir: data_dir.clone(),
        ..Default::default()
    };
    let key = [7u8; 32];
    let (first, second) = (
        serve(&url, &load, &key).await,
        serve(&url, &load, &key).await,
    );
    let breakdown = reload_breakdown(&url, &load).await;
    let mut admin = client(first, "admin", "admin-pass").await;
    let mut reader = client(second, "u", "u-pass").await;
    assert!(!visible(&mut reader).await, "the probe starts refused");

    let changes = if full { 200 } else { 6 };
    let (mut grants, mut revokes) = (Vec::new(), Vec::new());
    for change in 0..changes {
        let granting = change % 2 == 0;
        let statement = if granting { GRANT } else { REVOKE };
        admin
            .execute_update(statement.to_string(), None)
            .await
            .unwrap();
        let returned = Instant::now();
        while visible(&mut reader).await != granting {
            assert!(
                returned.elapsed() < Duration::from_secs(10),
                "change {change} never seen"
            );
        }
        let latency = returned.elapsed();
        if granting {
            grants.push(latency);
        } else {
            revokes.push(latency);
        }
    }
    let mut all: Vec<Duration> = grants.iter().chain(&revokes).copied().collect();
    all.sort();
    grants.sort();
    revokes.sort();
    println!(
        "\nGRANT/REVOKE on one server to visible on another (PostgreSQL store), {changes} changes\n"
    );
    println!("| changes | p50 ms | p99 ms | max ms |");
    println!("| --- | ---: | ---: | ---: |");
    for (name, samples) in [("grants", &grants), ("revokes", &revokes), ("all", &all)] {
        println!(
            "| {name} | {:.1} | {:.1} | {:.1} |",
            ms(percentile(samples, 0.5)),
            ms(percentile(samples, 0.99)),
            ms(*samples.last().unwrap())
        );
    }
    println!(
        "\nloading a new version: store read {:.1} ms, catalog {:.1} ms, engine {:.1} ms",
        breakdown[0], breakdown[1], breakdown[2]
    );
    let p99 = ms(percentile(&all, 0.99));
    println!(
        "\ntarget p99 <= 100 ms: {}",
        if p99 <= 100.0 { "met" } else { "NOT met" }
    );
    let results = serde_json::json!({
        "benchmark": "propagation",
        "changes": changes,
        "tables": tables,
        "grants": roles * grants_per_role,
        "p50_ms": ms(percentile(&all, 0.5)),
        "p99_ms": p99,
        "max_ms": ms(*all.last().unwrap()),
        "grant_p50_ms": ms(percentile(&grants, 0.5)),
        "grant_p99_ms": ms(percentile(&grants, 0.99)),
        "revoke_p50_ms": ms(percentile(&revokes, 0.5)),
        "revoke_p99_ms": ms(percentile(&revokes, 0.99)),
        "reload_store_read_ms": breakdown[0],
        "reload_catalog_ms": breakdown[1],
        "reload_engine_ms": breakdown[2],
    });
    std::fs::write(
        results_dir().join("propagation.json"),
        format!("{results:#}\n"),
    )
    .unwrap();
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(run(full));
}
