//! Delta Lake tables for Lakegate, on the `deltalake-core` library: a
//! table's transaction log read for its schema and snapshots, a DataFusion
//! [`TableProvider`](datafusion::catalog::TableProvider) reading the latest
//! version (or a chosen one, for time travel), and appends committed to the
//! log in one step.
//!
//! ```text
//! location's object store ──▶ DeltaLocation (log store over the table's prefix)
//!                               ├─ schema()          the latest version's columns
//!                               ├─ DeltaProvider     a snapshot per scan: latest, vN, or as of a time
//!                               └─ append()          Parquet files + one commit to _delta_log
//! ```
//!
//! Everything goes through the object store of the table's storage
//! location (its credentials and encryption settings): this crate never
//! builds a store of its own. Policy is not this crate's business: the
//! engine wraps the provider in its secured table and barrier, exactly as it
//! does a Parquet table.

mod commit;
mod location;
mod provider;
mod version;

pub use commit::{Appended, append, create};
pub use location::{DeltaError, DeltaLocation, is_conflict};
pub use provider::DeltaProvider;
pub use version::{TableVersion, VersionError};
