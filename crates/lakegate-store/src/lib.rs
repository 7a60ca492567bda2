//! Lakegate's persistent policy store.
//!
//! Everything a declarative catalog holds (storage locations, databases,
//! tables, roles, users with their Argon2 hashes, groups, grants with their
//! columns, masks and row filters) kept in a database, so that it survives
//! restarts and can change while servers run: **SQLite** as the embedded
//! default (a file, one server) and **PostgreSQL** for a fleet of servers
//! sharing one store, behind one interface, [`PolicyStore`].
//!
//! ```text
//! catalog/*.toml ──apply (idempotent)──▶ PolicyStore ──load──▶ CatalogFile ──▶ Catalog::from_files
//!                                          │   ▲
//!                       policy version ◀───┘   └── export: the same sections, as TOML
//! ```
//!
//! The store keeps each entry in its declarative form, so a store loads
//! through the very checks a catalog directory does, and exports back to
//! files that load to the same state. Every change is one transaction that
//! bumps the **policy version**; the schema is migrated at open
//! (`migrations.rs`).

mod change;
mod error;
mod migrations;
mod sections;
mod sign_ins;
mod store;

pub use change::Change;
pub use error::StoreError;
pub use migrations::SCHEMA_VERSION;
pub use sign_ins::SignInFailures;
pub use store::{ADMIN_ROLE, Applied, CHANGE_CHANNEL, PolicyStore, REMOVALS_KEPT, StoredCatalog};
