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
//! A call goes one way through the crate:
//!
//! ```text
//! entry.rs      headers and credentials read once (auth.rs, call.rs), tickets and
//!               handles opened once (tickets.rs), the audit event (audit.rs)
//!   └─ service.rs      Flight SQL's dispatch table
//!        └─ statements.rs   plan / run under the caller's role, through the engine
//!             └─ running.rs   per-user slots and timeout (limits.rs), keep-alive,
//!                             encoding
//! error.rs      one error type, one mapping to gRPC statuses
//! ```
//!
//! Also: TLS (rustls) in `server.rs`, failed sign-ins rate-limited per user
//! and peer (`throttle.rs`), prepared statements with client-held handles
//! (`prepared.rs`), the catalog RPCs (`metadata.rs`, `sql_info.rs`), client
//! sessions in sealed cookies (`session_options.rs`), parallel endpoints,
//! and plain Flight for notebooks (SQL text or a table path as descriptor or
//! ticket, `ListFlights`, `GetSchema`).

mod admin_api;
mod admin_messages;
mod admin_tags;
mod answered_token;
mod audit;
mod auth;
mod call;
mod credentials;
mod do_get_frames;
mod entry;
mod error;
mod flight_messages;
mod grpc_server;
mod keep_alive;
mod limits;
mod metadata;
mod options;
mod prepared;
mod running;
pub mod server;
pub mod service;
pub mod session_options;
mod signing;
mod sql_info;
mod statements;
mod throttle;
mod tickets;
mod writes;

pub use admin_api::LakegateAdminApi;
pub use auth::{Authenticator, Identity, Presented, SignInMethods};
pub use call::{PARALLEL_HEADER, ROLE_HEADER, SOURCE_IDENTITY_HEADER};
pub use credentials::{Credentials, parse_authorization};
pub use entry::LakegateFlight;
pub use error::CallError;
pub use limits::QueryLimits;
pub use options::ServiceOptions;
pub use prepared::DEFAULT_MAX_PARAMETER_BYTES;
pub use server::{
    Signals, Stopping, TlsIdentity, bind, serve_on, serve_until_signal, serve_with_tls,
};
pub use service::LakegateFlightService;
pub use signing::{EnvelopeError, EnvelopeKey, read_key_file};
