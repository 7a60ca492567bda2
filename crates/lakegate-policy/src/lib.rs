//! Lakegate's policy model, pure: no I/O and no query engine.
//!
//! A catalog's policy is a [`PolicySet`]: roles, the users and groups that may
//! assume them, and Lake Formation-style [`Grant`]s of privileges on tables,
//! each with an optional column selection, row filter and column masks. The
//! engine asks it two questions:
//!
//! 1. which role does this session run as? ([`PolicySet::runtime_role`]);
//! 2. what may that role see of this table? ([`PolicySet::effective_access`]),
//!    answered as an [`EffectiveAccess`]: visible columns with their cell rules,
//!    and the row filter (the union of the grants' filters). Default deny: no
//!    grant, no access.
//!
//! Tags ([`TagDefinition`], [`Tags`], [`TagExpr`]) let stewards govern by
//! tags alone: keys with allowed values, inherited from a database to its
//! tables and columns ([`Tagging`]), grants on tag expressions
//! ([`Resource::Tagged`]), and masks and row filters attached to tag
//! expressions ([`TagMask`], [`TagRowFilter`]); [`PolicySet::try_new_tagged`]
//! takes them all.
//!
//! ```
//! use lakegate_policy::{ColumnSelection, Grant, PolicySet, Principal, Privilege, Resource, Role, TableName, User};
//!
//! let policy = PolicySet::try_new(
//!     [Role { name: "analyst".into(), description: String::new() }],
//!     [User { name: "ann".into(), groups: vec![], may_assume: vec!["analyst".into()], default_role: Some("analyst".into()) }],
//!     [],
//!     [Grant {
//!         name: "analyst_orders".into(),
//!         role: "analyst".into(),
//!         resource: Resource::parse("shop.orders").unwrap(),
//!         privileges: vec![Privilege::Select],
//!         grantable: false,
//!         columns: ColumnSelection::Exclude(vec!["card".into()]),
//!         row_filter: Some("region = 'EU'".into()),
//!         masks: Default::default(),
//!     }],
//! )
//! .unwrap();
//! let role = policy.runtime_role(&Principal::local("ann"), None).unwrap();
//! let columns = ["id".to_string(), "region".into(), "card".into()];
//! let access = policy.effective_access(&role.role, &TableName::new("shop", "orders"), &columns).unwrap();
//! assert_eq!(access.columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["id", "region"]);
//! assert!(policy.effective_access("analyst", &TableName::new("shop", "customers"), &columns).is_none());
//! ```

mod access;
mod model;
mod policy_set;
mod tag_policy;
mod tag_syntax;
mod tags;
mod write_access;

pub use access::{
    CellBranch, CellValue, EffectiveAccess, PolicyPredicate, RowFilter, TaggedTable, VisibleColumn,
};
pub use model::{
    ColumnMask, ColumnSelection, Grant, Group, MaskKind, Principal, Privilege, Resource, Role,
    TableName, User, governing_paths, nearest_entry, path_reaches,
};
pub use policy_set::{PolicyErrors, PolicySet, ReferenceError, RoleError, RuntimeRole, Subject};
pub use tag_policy::{
    MAX_TAG_FILTER_BYTES, TagMask, TagPolicy, TagRowFilter, Tagging, columns_read,
};
pub use tag_syntax::{MAX_TAG_EXPR_BYTES, TagSyntaxError};
pub use tags::{TagDefinition, TagError, TagExpr, Tags, check_tags, inherit};
pub use write_access::{WriteAccess, WriteGrant};
