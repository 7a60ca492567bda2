//! Distributed execution for Lakegate, on datafusion-distributed.
//!
//! A Lakegate server with workers (the coordinator) plans and secures every
//! query exactly as on one node: the gate, the secured catalog, a policy
//! barrier over each secured table. Only then does datafusion-distributed cut
//! the physical plan into stages, and the stages that read files run on
//! workers (`lakegate worker`). Workers never plan, never read a policy and
//! hold no grants: they run the stage plans they are given, over the storage
//! locations of their own configuration.
//!
//! ```text
//!   coordinator                                    worker
//!   plan + secure ─▶ stages ─▶ sign each stage ──▶ WorkerGuard: signature valid?
//!                                (fleet key)          no: UNAUTHENTICATED, logged
//!                                                     yes: decode, run, stream back
//! ```
//!
//! Because a stage plan names files and carries the policy's own predicates
//! beneath its barriers, a worker must run only plans a coordinator made:
//! every call to a worker carries an HMAC of what it asks for, under a key
//! derived from the fleet key (`--key-file`), and the worker checks it before
//! anything is decoded ([`guard`]). Storage credentials never travel: a plan
//! names a location (`lakegate://<name>/`) and each worker resolves it
//! through its own settings.
//!
//! * [`signature`]: the fleet key and what a signature covers.
//! * [`channels`]: the coordinator's (and workers') side: calls signed as
//!   they leave, workers known to be down left out of planning.
//! * [`guard`]: the worker's side: calls checked before tonic decodes them.
//! * [`worker`]: a worker's gRPC server.

pub mod channels;
pub mod guard;
pub mod signature;
pub mod worker;

pub use channels::{LiveWorkers, SigningChannelResolver, WorkerFailure};
pub use guard::WorkerGuardLayer;
pub use signature::FleetKey;
pub use worker::{WorkerSettings, serve_worker};
