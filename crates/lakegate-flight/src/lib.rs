//! Lakegate's Arrow Flight SQL service.
//!
//! Clients authenticate (Flight Handshake with HTTP Basic, answered with a
//! bearer token; or Basic/Bearer on any call), choose a runtime role per call
//! with the `x-lakegate-role` header (default: the user's default role), and
//! run SQL through Flight SQL statement queries. Results are redeemed with
//! tickets that are sealed by the server (HMAC-SHA256), bound to the user and
//! role, and expire; DoGet authenticates the caller again and applies the
//! policy as of DoGet time. See [`service`] for the call sequence.
//!
//! Built so far: TLS (rustls), handshake, Basic and Bearer authentication (padded or not),
//! failed sign-ins rate-limited per user and peer, runtime roles, statement
//! queries with sealed tickets, prepared statements with parameters and
//! client-held handles (`prepared.rs`), the catalog RPCs (`metadata.rs`),
//! client sessions in sealed cookies (`session_options.rs`), per-user query
//! limits (`limits.rs`), keep-alive batches on idle streams, parallel endpoints (one per independent part of a
//! result, on request), the audit log (`audit.rs`), plain Flight for
//! notebooks (a descriptor or ticket that is SQL text, see `plain.rs`), and
//! one place mapping engine errors to gRPC codes (`status.rs`). Still to come
//! (issue 3): the throughput and latency benchmarks.

mod audit;
mod credentials;
mod keep_alive;
mod limits;
mod metadata;
mod plain;
mod prepared;
pub mod server;
pub mod service;
pub mod session_options;
mod signing;
mod sql_info;
mod status;
mod throttle;

pub use credentials::{Credentials, parse_authorization};
pub use limits::QueryLimits;
pub use plain::LakegateFlight;
pub use prepared::DEFAULT_MAX_PARAMETER_BYTES;
pub use server::{TlsIdentity, bind, serve_on, serve_with_tls};
pub use service::{
    LakegateFlightService, PARALLEL_HEADER, ROLE_HEADER, SOURCE_IDENTITY_HEADER, ServiceOptions,
};
pub use signing::{EnvelopeError, EnvelopeKey};
pub use status::status_of;
