//! Planning overhead of enforcement: the time from SQL text to an executable
//! physical plan for a 5-table join under a role with row filters and masks,
//! against plain DataFusion planning the same query over the same, unsecured
//! tables, interleaved in one run.
//!
//! The catalog has 1,000 tables and 10,000 grants (100 roles × 100 grants,
//! each with a row filter and a mask). Three variants are measured:
//!
//! * `datafusion`: a `SessionContext` with the 1,000 raw tables registered;
//! * `lakegate (new session)`: a session opened for the query (as a server
//!   does per call), so the five policy plans are built from scratch;
//! * `lakegate (warm session)`: the same session planning again;
//! * `lakegate, policy store (new session)`: `lakegate (new session)` on the
//!   same catalog applied to a SQLite policy store and loaded back from it,
//!   as `lakegate serve --store` serves it: policy lookups stay in memory,
//!   so it should not differ measurably from the declarative catalog;
//! * `lakegate (no plan reuse)`: a new session on an engine that does not
//!   reuse scan plans, so every scan is planned from its optimized policy
//!   plan (secured tables are still cached): the cost when a table's scan
//!   plan has expired.
//!
//! Lakegate reuses a secured table's scan plan for the same scan shape for
//! the file listing TTL (60 s by default); plain DataFusion lists and plans
//! every scan, which is why the first two variants can be faster than it.
//!
//! Run: `cargo bench --bench planning` (release build). Results are printed as
//! a Markdown table and written to `$CARGO_TARGET_DIR/bench-results/planning.json`.
//! Under `cargo test` the benchmark runs once at a tiny size, as a smoke test.

use std::path::Path;
use std::time::{Duration, Instant};

use lakegate_catalog::{Catalog, CatalogFile, LoadOptions};
use lakegate_engine::{Engine, EngineOptions};
use lakegate_store::PolicyStore;

#[path = "support/mod.rs"]
mod support;
use support::{PLANNING_JOIN as JOIN, planning_lake_context, write_planning_lake};

/// The benchmark's shape.
struct Size {
    tables: usize,
    roles: usize,
    grants_per_role: usize,
    iterations: usize,
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn p90(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() * 9 / 10]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The catalog in `catalog_dir` applied to a new SQLite policy store in
/// `dir` and loaded back from it, as `lakegate serve --store` serves it.
async fn through_store(catalog_dir: &Path, dir: &Path, load: &LoadOptions) -> Catalog {
    let url = format!("sqlite://{}", dir.join("policy.db").display());
    let store = PolicyStore::open(&url).await.unwrap();
    let files = Catalog::parse(catalog_dir).unwrap_or_else(|e| panic!("{e}"));
    store
        .apply(&CatalogFile::merged(
            files.into_iter().map(|(_, file)| file),
        ))
        .await
        .unwrap();
    let stored = store.load().await.unwrap();
    let label = std::path::PathBuf::from(url);
    Catalog::from_shared_files(vec![(label, stored.content)], catalog_dir, load)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn run(size: Size) {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let catalog_dir = dir.path().join("catalog");
    std::fs::create_dir_all(&catalog_dir).unwrap();
    write_planning_lake(
        &data_dir,
        &catalog_dir,
        size.tables,
        size.roles,
        size.grants_per_role,
    );

    let started = Instant::now();
    let catalog = Catalog::load(
        &catalog_dir,
        &LoadOptions {
            data_dir: data_dir.clone(),
            ..Default::default()
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let loaded = started.elapsed();
    let options = EngineOptions {
        target_partitions: 2,
        // Every variant plans the query from its text, as DataFusion does:
        // what is measured is planning (a server also reuses the plans of
        // repeated statements, which would skip most of it).
        reuse_statement_plans: false,
        ..EngineOptions::default()
    };
    let engine = Engine::new(catalog.clone(), options.clone())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let validated = started.elapsed() - loaded;
    let no_reuse = Engine::new(
        catalog,
        EngineOptions {
            reuse_scan_plans: false,
            ..options.clone()
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let load = LoadOptions {
        data_dir: data_dir.clone(),
        ..Default::default()
    };
    let stored = Engine::new(
        through_store(&catalog_dir, dir.path(), &load).await,
        options.clone(),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let ctx = planning_lake_context(&data_dir, size.tables).await;

    let mut warm = engine.session("u", None).unwrap();
    // Warm-up, and a check that both plan the same query.
    for _ in 0..3 {
        let state = ctx.state();
        let plan = state.create_logical_plan(JOIN).await.unwrap();
        state.create_physical_plan(&plan).await.unwrap();
        warm.physical_plan(JOIN).await.unwrap();
        no_reuse
            .session("u", None)
            .unwrap()
            .physical_plan(JOIN)
            .await
            .unwrap();
    }

    stored
        .session("u", None)
        .unwrap()
        .physical_plan(JOIN)
        .await
        .unwrap();
    let (mut plain, mut cold, mut warm_samples, mut unreused, mut from_store) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..size.iterations {
        let t = Instant::now();
        let state = ctx.state();
        let plan = state.create_logical_plan(JOIN).await.unwrap();
        state.create_physical_plan(&plan).await.unwrap();
        plain.push(t.elapsed());

        let t = Instant::now();
        let mut session = engine.session("u", None).unwrap();
        session.physical_plan(JOIN).await.unwrap();
        cold.push(t.elapsed());

        let t = Instant::now();
        warm.physical_plan(JOIN).await.unwrap();
        warm_samples.push(t.elapsed());

        let t = Instant::now();
        let mut session = no_reuse.session("u", None).unwrap();
        session.physical_plan(JOIN).await.unwrap();
        unreused.push(t.elapsed());

        let t = Instant::now();
        let mut session = stored.session("u", None).unwrap();
        session.physical_plan(JOIN).await.unwrap();
        from_store.push(t.elapsed());
    }
    let grants = size.roles * size.grants_per_role;
    let (plain_med, cold_med, warm_med, unreused_med, store_med) = (
        median(&mut plain),
        median(&mut cold),
        median(&mut warm_samples),
        median(&mut unreused),
        median(&mut from_store),
    );
    println!(
        "\nPlanning a 5-table join: {} tables, {grants} grants, {} iterations (interleaved)\n",
        size.tables, size.iterations
    );
    println!("| variant | median ms | p90 ms | added vs DataFusion, ms |");
    println!("| --- | ---: | ---: | ---: |");
    println!(
        "| datafusion | {:.3} | {:.3} | |",
        ms(plain_med),
        ms(p90(&mut plain))
    );
    println!(
        "| lakegate (new session) | {:.3} | {:.3} | {:+.3} |",
        ms(cold_med),
        ms(p90(&mut cold)),
        ms(cold_med) - ms(plain_med)
    );
    println!(
        "| lakegate (warm session) | {:.3} | {:.3} | {:+.3} |",
        ms(warm_med),
        ms(p90(&mut warm_samples)),
        ms(warm_med) - ms(plain_med)
    );
    println!(
        "| lakegate (no plan reuse) | {:.3} | {:.3} | {:+.3} |",
        ms(unreused_med),
        ms(p90(&mut unreused)),
        ms(unreused_med) - ms(plain_med)
    );
    println!(
        "| lakegate, policy store (new session) | {:.3} | {:.3} | {:+.3} |",
        ms(store_med),
        ms(p90(&mut from_store)),
        ms(store_med) - ms(plain_med)
    );
    println!(
        "\npolicy store / declarative catalog (new session, medians): {:.3}",
        ms(store_med) / ms(cold_med)
    );
    println!(
        "\ncatalog load {:.0} ms, policy validation {:.0} ms",
        ms(loaded),
        ms(validated)
    );
    let results = serde_json::json!({
        "benchmark": "planning",
        "tables": size.tables,
        "grants": grants,
        "iterations": size.iterations,
        "datafusion_median_ms": ms(plain_med),
        "lakegate_new_session_median_ms": ms(cold_med),
        "lakegate_warm_session_median_ms": ms(warm_med),
        "added_new_session_ms": ms(cold_med) - ms(plain_med),
        "added_warm_session_ms": ms(warm_med) - ms(plain_med),
        "lakegate_no_plan_reuse_median_ms": ms(unreused_med),
        "added_no_plan_reuse_ms": ms(unreused_med) - ms(plain_med),
        "lakegate_policy_store_median_ms": ms(store_med),
        "policy_store_over_declarative": ms(store_med) / ms(cold_med),
        "catalog_load_ms": ms(loaded),
        "policy_validation_ms": ms(validated),
    });
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("../bench-results");
    std::fs::create_dir_all(&out_dir).unwrap();
    std::fs::write(out_dir.join("planning.json"), format!("{results:#}\n")).unwrap();
}

fn main() {
    // `cargo bench` passes --bench; `cargo test` runs this once, small.
    let full = std::env::args().any(|a| a == "--bench");
    let size = if full {
        Size {
            tables: 1000,
            roles: 100,
            grants_per_role: 100,
            // A longer run for profiling: LAKEGATE_PLANNING_ITERATIONS=3000.
            iterations: std::env::var("LAKEGATE_PLANNING_ITERATIONS")
                .ok()
                .and_then(|n| n.parse().ok())
                .unwrap_or(300),
        }
    } else {
        Size {
            tables: 50,
            roles: 5,
            grants_per_role: 10,
            iterations: 3,
        }
    };
    tokio::runtime::Runtime::new().unwrap().block_on(run(size));
}
