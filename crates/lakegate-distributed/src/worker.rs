//! A worker's gRPC server: datafusion-distributed's worker service behind
//! the [`WorkerGuardLayer`].
//!
//! A worker decodes each stage plan in a session of its own with Lakegate's
//! codec (the policy barrier, session functions) and the runtime it is given:
//! the object stores of its own storage locations, registered under the names
//! plans use (`lakegate://<name>/`). It calls other workers (for the stages
//! beneath its own) through a [`SigningChannelResolver`], as the coordinator
//! does. Each decoded stage plan then goes through the worker's stage rules
//! ([`WorkerSettings::stage_rules`]): the physical optimizer rules whose
//! nodes or expressions cannot cross the wire as themselves, applied again
//! to what arrived (they may change expressions, never the plan's shape).

use std::future::Future;
use std::sync::Arc;

use datafusion::common::Result;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion_distributed::{
    DistributedExt, Worker, WorkerPlanRewriteEvent, WorkerPlanRewriteEventResponse,
    WorkerPlanRewriteHandler, WorkerQueryContext,
};
use datafusion_proto::physical_plan::PhysicalExtensionCodec;
use tokio::net::TcpListener;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

use crate::channels::SigningChannelResolver;
use crate::guard::WorkerGuardLayer;
use crate::signature::FleetKey;

/// What a worker runs with.
#[derive(Clone)]
pub struct WorkerSettings {
    /// The fleet key every call must be signed with.
    pub key: FleetKey,
    /// The runtime stage plans execute in: the worker's object stores,
    /// memory pool and spill directory.
    pub runtime: Arc<RuntimeEnv>,
    /// The codec of Lakegate's own execution nodes and functions.
    pub codec: Arc<dyn PhysicalExtensionCodec>,
    /// Rules applied, in order, to each stage plan a worker decodes. They
    /// must keep the plan's nodes and each node's output as they are.
    pub stage_rules: Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>>,
}

/// The worker's [`WorkerSettings::stage_rules`], as datafusion-distributed's
/// rewrite of a decoded stage plan.
#[derive(Clone)]
struct StageRules(Arc<[Arc<dyn PhysicalOptimizerRule + Send + Sync>]>);

impl WorkerPlanRewriteHandler for StageRules {
    fn rewrite_worker_plan(
        &self,
        event: WorkerPlanRewriteEvent,
    ) -> Result<WorkerPlanRewriteEventResponse> {
        let options = event.session_config.options();
        let mut plan = event.plan;
        for rule in self.0.iter() {
            plan = rule.optimize(plan, options)?;
        }
        Ok(WorkerPlanRewriteEventResponse::new(plan))
    }
}

/// Serves a worker on `listener` until `shutdown` completes.
pub async fn serve_worker(
    listener: TcpListener,
    settings: WorkerSettings,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), String> {
    let WorkerSettings {
        key,
        runtime,
        codec,
        stage_rules,
    } = settings;
    let channels = SigningChannelResolver::new(key.clone(), None);
    let stage_rules = StageRules(stage_rules.into());
    let worker = Worker::from_session_builder(move |query: WorkerQueryContext| {
        let codec = Arc::clone(&codec);
        let channels = channels.clone();
        let stage_rules = stage_rules.clone();
        async move {
            Ok(query
                .builder
                .with_distributed_user_codec_arc(codec)
                .with_distributed_channel_resolver(channels)
                .with_distributed_worker_plan_rewrite_handler(stage_rules)
                .build())
        }
    })
    .with_runtime_env(runtime);
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    Server::builder()
        .layer(WorkerGuardLayer::new(key))
        .add_service(worker.into_worker_server())
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
        .map_err(|e| format!("worker server failed: {e}"))
}
