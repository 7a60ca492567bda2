//! `lakegate worker`, and the workers a server runs queries across
//! (`lakegate serve --workers`): see docs/deployment.md.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use datafusion::execution::object_store::DefaultObjectStoreRegistry;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use lakegate_catalog::{Catalog, LoadOptions};
use lakegate_distributed::{FleetKey, LiveWorkers, WorkerSettings, serve_worker};
use lakegate_engine::{LakegateCodec, Workers, worker_stage_rules};
use lakegate_flight::{Signals, bind, read_key_file};

/// The workers `serve --workers` runs large queries across.
pub struct Fleet {
    /// The workers.
    pub urls: Vec<url::Url>,
    /// `--distribute-from-bytes`.
    pub distribute_from_bytes: u64,
    /// `--task-bytes`.
    pub task_bytes: usize,
}

impl Fleet {
    /// The workers, watched from now on, calls to them signed with the key
    /// derived from `secret` (the servers' key file).
    pub fn watched(self, secret: &[u8]) -> Workers {
        let live = LiveWorkers::new(self.urls);
        live.watch();
        Workers {
            live,
            key: FleetKey::derive(secret),
            distribute_from_bytes: self.distribute_from_bytes,
            task_bytes: self.task_bytes,
        }
    }
}

/// Serves a worker on `listen` until Ctrl-C or SIGTERM.
pub async fn run_worker(
    listen: SocketAddr,
    key_file: &Path,
    catalog: &Path,
    data_dir: &Path,
) -> Result<(), String> {
    let key = FleetKey::derive(&read_key_file(key_file)?);
    let load = LoadOptions {
        data_dir: data_dir.to_path_buf(),
        ..Default::default()
    };
    let locations = Catalog::storage_locations(catalog, &load).map_err(|e| e.to_string())?;
    let runtime = RuntimeEnvBuilder::new()
        .with_object_store_registry(Arc::new(DefaultObjectStoreRegistry::new()))
        .build_arc()
        .map_err(|e| format!("cannot set up the runtime: {e}"))?;
    for location in locations.values() {
        runtime.register_object_store(&location.registry_url(), Arc::clone(&location.store));
    }
    let (listener, addr) = bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    println!(
        "lakegate: worker on http://{addr} ({} storage location(s); Ctrl-C or SIGTERM stops)",
        locations.len()
    );
    let mut signals = Signals::watch()?;
    let settings = WorkerSettings {
        key,
        runtime,
        codec: Arc::new(LakegateCodec),
        stage_rules: worker_stage_rules(),
    };
    serve_worker(listener, settings, async move { signals.next().await }).await
}
