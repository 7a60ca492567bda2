//! Lakegate's declarative catalog.
//!
//! A catalog is a directory of TOML files (see `catalog/README.md` at the
//! repository root for the format and a complete example). [`Catalog::load`]
//! reads them all, resolves storage locations to object_store stores, reads
//! each table's schema from its Parquet files and validates every name and
//! reference, returning all problems at once as [`CatalogErrors`]:
//!
//! ```text
//! catalog/*.toml ──parse──▶ entries ──validate──▶ Catalog { storage, databases, tables, policy }
//!                                         │
//!                                         └──▶ CatalogErrors [file: entry: message, ...]
//! ```
//!
//! What needs a query planner (row filters must be boolean SQL over the
//! table's columns, masks must fit their column's type) is checked by the
//! engine crate when it builds on a catalog; a catalog that fails either check
//! never serves.

mod catalog;
mod files;
mod findings;
mod grants;
mod loader;
mod nested;
mod storage;
mod table_files;
mod tags;

pub use catalog::{
    Catalog, CatalogError, CatalogErrors, Database, KnownSchemas, LoadOptions, RESERVED_DATABASES,
    Table, hash_password,
};
pub use files::{
    CatalogFile, CatalogSettings, CustomMaskEntry, DatabaseEntry, GrantEntry, GroupEntry,
    MaskEntry, PartitionColumnEntry, RoleEntry, StorageEntry, TableEntry, TableFormat, TagEntry,
    TagMaskEntry, TagRowFilterEntry, UserEntry,
};
pub use nested::{NestedKind, PolicyNode, PolicyTree, nullable_field};
pub use storage::{
    LocationStore, RequestCounts, RequestTotals, StorageError, StorageLocation,
    defaults as storage_defaults,
};
pub use tags::field_id;
