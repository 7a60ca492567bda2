//! Micro-benchmark: plan rewriting, the time from SQL text to an executable
//! physical plan in which every table is the role's secured table (policy
//! plan under its barrier), in catalogs of 10, 1,000 and 10,000 grants.
//!
//! Per catalog size, the 5-table join of `benches/planning.rs` (row filters
//! and masks on every table) is planned
//! * `warm`: again in one session (secured tables and scan plans reused);
//! * `new session`: in a session opened for it, as a server does per call;
//! * `replanned`: on an engine that reuses no scan plans, so every scan is
//!   planned again from the table's optimized policy plan (the cost once per
//!   file listing TTL);
//!
//! and plain DataFusion plans the same join over the same unsecured tables.
//! `warm, tags` and `new session, tags` plan it under the same lake governed
//! by tags instead (a grant on a tag expression per role, a tag row filter
//! and a tag mask: `support::write_tagged_planning_lake`).
//!
//! Run: `cargo bench --workspace --bench rewrite` (criterion; reports in
//! `$CARGO_TARGET_DIR/criterion`). Under `cargo test` each case runs once,
//! at 10 and 100 grants (checking 10,000 grants' policies takes a while).

use std::hint::black_box;
use std::path::Path;

use criterion::{BenchmarkId, Criterion};
use datafusion::prelude::SessionContext;
use lakegate_catalog::{Catalog, LoadOptions};
use lakegate_engine::{Engine, EngineOptions};
use tokio::runtime::Runtime;

#[path = "support/mod.rs"]
mod support;
use support::{
    PLANNING_JOIN, planning_lake_context, write_planning_lake, write_tagged_planning_lake,
};

/// The catalog's shape for `grants` grants: (tables, roles, grants per
/// role), roles of up to 100 grants each over one table per ten grants (at
/// least 50, so that every table of the join exists).
fn shape(grants: usize) -> (usize, usize, usize) {
    let roles = (grants / 100).max(1);
    let grants_per_role = grants / roles;
    let tables = (grants / 10).max(50);
    (tables, roles, grants_per_role)
}

/// The benchmark's engine settings: planned from the text every time, as
/// DataFusion does.
fn options() -> EngineOptions {
    EngineOptions {
        target_partitions: 2,
        reuse_statement_plans: false,
        ..EngineOptions::default()
    }
}

/// The catalog in `catalog_dir` over `data_dir`.
async fn load(catalog_dir: &Path, data_dir: &Path) -> Catalog {
    let load = LoadOptions {
        data_dir: data_dir.to_path_buf(),
        ..Default::default()
    };
    Catalog::load(catalog_dir, &load)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn engine(catalog: Catalog, options: EngineOptions) -> Engine {
    Engine::new(catalog, options)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn engines(dir: &Path, grants: usize) -> (Engine, Engine, SessionContext) {
    let (tables, roles, grants_per_role) = shape(grants);
    let data_dir = dir.join("data");
    let catalog_dir = dir.join("catalog");
    write_planning_lake(&data_dir, &catalog_dir, tables, roles, grants_per_role);
    let catalog = load(&catalog_dir, &data_dir).await;
    let reusing = engine(catalog.clone(), options()).await;
    let replanning = engine(
        catalog,
        EngineOptions {
            reuse_scan_plans: false,
            ..options()
        },
    )
    .await;
    let ctx = planning_lake_context(&data_dir, tables).await;
    (reusing, replanning, ctx)
}

/// An engine over the lake of `grants`' shape, governed by tags.
async fn tagged_engine(dir: &Path, grants: usize) -> Engine {
    let (tables, roles, _) = shape(grants);
    let data_dir = dir.join("data");
    let catalog_dir = dir.join("tag-catalog");
    write_tagged_planning_lake(&data_dir, &catalog_dir, tables, roles);
    engine(load(&catalog_dir, &data_dir).await, options()).await
}

fn rewrite(c: &mut Criterion, sizes: &[usize]) {
    let runtime = Runtime::new().unwrap();
    let mut group = c.benchmark_group("rewrite");
    for &grants in sizes {
        let dir = tempfile::tempdir().unwrap();
        let (reusing, replanning, ctx) = runtime.block_on(engines(dir.path(), grants));
        let case = format!("{grants} grants");
        group.bench_function(BenchmarkId::new("datafusion", &case), |b| {
            b.iter(|| {
                runtime.block_on(async {
                    let state = ctx.state();
                    let plan = state.create_logical_plan(PLANNING_JOIN).await.unwrap();
                    black_box(state.create_physical_plan(&plan).await.unwrap())
                })
            })
        });
        let mut warm = reusing.session("u", None).unwrap();
        group.bench_function(BenchmarkId::new("warm", &case), |b| {
            b.iter(|| {
                runtime
                    .block_on(async { black_box(warm.physical_plan(PLANNING_JOIN).await.unwrap()) })
            })
        });
        group.bench_function(BenchmarkId::new("new session", &case), |b| {
            b.iter(|| {
                runtime.block_on(async {
                    let mut session = reusing.session("u", None).unwrap();
                    black_box(session.physical_plan(PLANNING_JOIN).await.unwrap())
                })
            })
        });
        let tagged = runtime.block_on(tagged_engine(dir.path(), grants));
        let mut warm_tagged = tagged.session("u", None).unwrap();
        group.bench_function(BenchmarkId::new("warm, tags", &case), |b| {
            b.iter(|| {
                runtime.block_on(async {
                    black_box(warm_tagged.physical_plan(PLANNING_JOIN).await.unwrap())
                })
            })
        });
        group.bench_function(BenchmarkId::new("new session, tags", &case), |b| {
            b.iter(|| {
                runtime.block_on(async {
                    let mut session = tagged.session("u", None).unwrap();
                    black_box(session.physical_plan(PLANNING_JOIN).await.unwrap())
                })
            })
        });
        group.bench_function(BenchmarkId::new("replanned", &case), |b| {
            b.iter(|| {
                runtime.block_on(async {
                    let mut session = replanning.session("u", None).unwrap();
                    black_box(session.physical_plan(PLANNING_JOIN).await.unwrap())
                })
            })
        });
    }
    group.finish();
}

fn main() {
    // `cargo bench` passes --bench; under `cargo test` criterion runs each
    // case once, and the catalogs stay small.
    let full = std::env::args().any(|a| a == "--bench");
    let sizes: &[usize] = if full {
        &[10, 1_000, 10_000]
    } else {
        &[10, 100]
    };
    let mut criterion = Criterion::default().configure_from_args();
    rewrite(&mut criterion, sizes);
    criterion.final_summary();
}
