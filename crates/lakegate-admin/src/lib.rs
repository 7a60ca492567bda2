//! Lakegate's runtime administration: the SQL a data steward types to
//! change who sees what (`CREATE ROLE`, `GRANT SELECT ... WHERE ...`,
//! `REVOKE`, `SHOW GRANTS`), parsed (`statement.rs`), checked against the
//! caller's privileges and applied to the policy store's content
//! (`changes.rs`, tags in `tag_changes.rs`), committed as one transaction and served at once
//! (`administration.rs`); `SHOW` statements answer from the policy served
//! now (`show.rs`).
//!
//! ```text
//! SQL ─▶ parse_admin ─▶ None: not administration (a query, for the engine)
//!                    └▶ AdminStatement ─▶ Administration::execute(actor)
//!                          SHOW ─▶ the policy served now
//!                          change ─▶ store locked ─▶ rights + apply ─▶ Engine::prepare
//!                                 ─▶ commit (version + 1) ─▶ Engine::install
//! ```
//!
//! The privilege model is described in `changes.rs` and `docs/administration.md`.

mod administration;
mod changes;
mod created_tables;
mod error;
mod grammar;
mod parse;
mod rights;
mod show;
mod statement;
mod tag_changes;

pub use administration::{AdminAnswer, Administration, change_result_schema};
pub use changes::Actor;
pub use created_tables::CreatedTable;
pub use error::AdminError;
pub use parse::{parse_admin, redacted};
pub use show::{column_rules, rows_text};
pub use statement::{AdminStatement, Columns, DataGrant, Grantee, MaskSpec, TagTarget, Target};
