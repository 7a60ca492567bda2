//! The whole policy of a catalog: roles, users, groups and grants, with the
//! decisions the engine asks of it (which role a session runs as, what a role
//! may see of a table, which databases it may see at all).

use std::collections::{BTreeMap, BTreeSet};

use crate::access::{EffectiveAccess, TaggedTable};
use crate::model::{Grant, Group, Principal, Privilege, Resource, Role, TableName, User};
use crate::tag_policy::{TagMask, TagPolicy, TagRowFilter, Tagging};
use crate::tags::{TagDefinition, TagError, TagExpr, Tags, check_tags};
use crate::write_access::WriteAccess;

mod build;

/// Why a runtime role could not be chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoleError {
    /// The user may not assume the requested role (or it does not exist: the
    /// answer is the same, so that role names cannot be probed).
    #[error("user '{user}' may not assume role '{role}'")]
    MayNotAssume {
        /// The user.
        user: String,
        /// The role asked for.
        role: String,
    },
    /// The client named no role and the user has no default role.
    #[error("user '{user}' has no default role; choose one of its roles explicitly")]
    NoDefaultRole {
        /// The user.
        user: String,
    },
    /// The user is unknown.
    #[error("unknown user '{user}'")]
    UnknownUser {
        /// The user.
        user: String,
    },
}

/// What a policy entry refers to, for [`ReferenceError`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A role, by name.
    Role(String),
    /// A user, by name.
    User(String),
    /// A group, by name.
    Group(String),
    /// A grant, by name.
    Grant(String),
    /// A tag key, a tag assignment, a tag mask or a tag row filter.
    Tag(String),
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Role(name) => write!(f, "role '{name}'"),
            Self::User(name) => write!(f, "user '{name}'"),
            Self::Group(name) => write!(f, "group '{name}'"),
            Self::Grant(name) => write!(f, "grant '{name}'"),
            Self::Tag(what) => f.write_str(what),
        }
    }
}

/// A policy entry that names something the policy does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{subject}: {message}")]
pub struct ReferenceError {
    /// The entry at fault.
    pub subject: Subject,
    /// What is wrong with it.
    pub message: String,
}

/// Why [`PolicySet::try_new`] refused its parts.
#[derive(Debug, Clone)]
pub struct PolicyErrors {
    /// Every reference error, in the order found.
    pub errors: Vec<ReferenceError>,
    /// The policy without what was wrong: dangling references dropped,
    /// duplicates and grants of unknown roles left out. It grants no more
    /// than the parts asked for, so checks can go on with it.
    pub partial: Box<PolicySet>,
}

/// A role a session runs under, checked against what its user may assume.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RuntimeRole {
    /// The authenticated user.
    pub user: String,
    /// The role every query of the session runs as.
    pub role: String,
}

/// Roles, principals and grants, indexed for the engine's questions.
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    roles: BTreeMap<String, Role>,
    users: BTreeMap<String, User>,
    groups: BTreeMap<String, Group>,
    /// Grants by role, in declaration order.
    grants_by_role: BTreeMap<String, Vec<Grant>>,
    /// Tag keys and their values.
    tag_definitions: BTreeMap<String, TagDefinition>,
    /// Tags on databases, tables and columns.
    tagging: Tagging,
    /// Tag masks by role, in declaration order.
    tag_masks_by_role: BTreeMap<String, Vec<TagMask>>,
    /// Tag row filters by role, in declaration order.
    tag_filters_by_role: BTreeMap<String, Vec<TagRowFilter>>,
    /// Roles holding a grant on a tag expression.
    roles_with_tagged_grants: BTreeSet<String>,
}

impl PolicySet {
    /// All roles, by name.
    pub fn roles(&self) -> impl Iterator<Item = &Role> {
        self.roles.values()
    }

    /// All users, by name.
    pub fn users(&self) -> impl Iterator<Item = &User> {
        self.users.values()
    }

    /// All groups, by name.
    pub fn groups(&self) -> impl Iterator<Item = &Group> {
        self.groups.values()
    }

    /// The user named `name`.
    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.get(name)
    }

    /// The role named `name`.
    pub fn role(&self, name: &str) -> Option<&Role> {
        self.roles.get(name)
    }

    /// The grants held by `role`, in declaration order.
    pub fn grants_of(&self, role: &str) -> &[Grant] {
        self.grants_by_role
            .get(role)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// Every grant, grouped by role.
    pub fn grants(&self) -> impl Iterator<Item = &Grant> {
        self.grants_by_role.values().flatten()
    }

    /// The roles `user` may assume, directly or through its groups, sorted.
    pub fn assumable_roles(&self, user: &str) -> BTreeSet<String> {
        self.assumable_roles_of(&Principal::local(user))
    }

    /// The roles `principal` may assume, directly or through its groups
    /// (the catalog's and its identity provider's), sorted.
    pub fn assumable_roles_of(&self, principal: &Principal) -> BTreeSet<String> {
        self.roles
            .keys()
            .filter(|role| self.may_assume_as(principal, role))
            .cloned()
            .collect()
    }

    /// Whether `user` may assume `role` (directly or through a group).
    pub fn may_assume(&self, user: &str, role: &str) -> bool {
        self.may_assume_as(&Principal::local(user), role)
    }

    /// Whether `principal` may assume `role`: the one decision behind
    /// runtime roles and [`PolicySet::assumable_roles_of`]. A catalog user
    /// may assume its own roles and its groups' roles, the groups of its
    /// catalog entry and those its identity provider vouched for alike. A
    /// principal known only to its identity provider may assume its
    /// groups' roles and nothing else; any other unknown user, nothing.
    pub fn may_assume_as(&self, principal: &Principal, role: &str) -> bool {
        if !self.roles.contains_key(role) {
            return false;
        }
        let record = self.users.get(&principal.user);
        if record.is_none() && !principal.provider_only {
            return false;
        }
        let group_may = |group: &String| {
            self.groups
                .get(group)
                .is_some_and(|g| g.may_assume.iter().any(|r| r == role))
        };
        record.is_some_and(|user| {
            user.may_assume.iter().any(|r| r == role) || user.groups.iter().any(group_may)
        }) || principal.provider_groups.iter().any(group_may)
    }

    /// Chooses the runtime role of a session: the requested one if the
    /// principal may assume it, else its default role. A catalog user's
    /// default is its entry's; a principal known only to its identity
    /// provider has one when exactly one role is open to it.
    pub fn runtime_role(
        &self,
        principal: &Principal,
        requested: Option<&str>,
    ) -> Result<RuntimeRole, RoleError> {
        let user = principal.user.as_str();
        let record = self.users.get(user);
        if record.is_none() && !principal.provider_only {
            return Err(RoleError::UnknownUser {
                user: user.to_string(),
            });
        }
        let role = match requested {
            Some(role) => role.to_string(),
            None => self
                .default_role_of(principal)
                .ok_or_else(|| RoleError::NoDefaultRole {
                    user: user.to_string(),
                })?,
        };
        if !self.may_assume_as(principal, &role) {
            return Err(RoleError::MayNotAssume {
                user: user.to_string(),
                role,
            });
        }
        Ok(RuntimeRole {
            user: user.to_string(),
            role,
        })
    }

    /// The role `principal` runs under when it names none, if it has one.
    pub fn default_role_of(&self, principal: &Principal) -> Option<String> {
        match self.users.get(&principal.user) {
            Some(record) => record.default_role.clone(),
            None if principal.provider_only => {
                let roles = self.assumable_roles_of(principal);
                (roles.len() == 1)
                    .then(|| roles.into_iter().next())
                    .flatten()
            }
            None => None,
        }
    }

    /// What `role` may see of `table`, whose stored columns are `table_columns`.
    /// `None`: the role may not even describe it.
    pub fn effective_access(
        &self,
        role: &str,
        table: &TableName,
        table_columns: &[String],
    ) -> Option<EffectiveAccess> {
        if !self.has_tag_policies(role) {
            return EffectiveAccess::resolve(role, table, table_columns, self.grants_of(role));
        }
        let table_tags = self.tagging.table_tags(table);
        let tagged = TaggedTable {
            table_tags: &table_tags,
            column_tags: self.tagging.columns.get(table),
            masks: self.tag_masks_of(role),
            row_filters: self.tag_row_filters_of(role),
        };
        EffectiveAccess::resolve_tagged(role, table, table_columns, self.grants_of(role), &tagged)
    }

    /// What `role` may append to `table`, whose policy columns are
    /// `table_columns`. `None`: no insert grant covers it (default deny).
    pub fn write_access(
        &self,
        role: &str,
        table: &TableName,
        table_columns: &[String],
    ) -> Option<WriteAccess> {
        WriteAccess::resolve(role, table, table_columns, self.grants_of(role))
    }

    /// Whether `role` may create tables in `database`.
    pub fn may_create_table(&self, role: &str, database: &str) -> bool {
        self.grants_of(role).iter().any(|g| {
            g.confers(Privilege::CreateTable)
                && match &g.resource {
                    Resource::AllDatabases => true,
                    Resource::AllTablesIn(db) => db == database,
                    _ => false,
                }
        })
    }

    /// Whether `role` holds a grant on a tag expression, a tag mask or a
    /// tag row filter (its access then depends on tags).
    pub fn has_tag_policies(&self, role: &str) -> bool {
        self.roles_with_tagged_grants.contains(role)
            || self.tag_masks_by_role.contains_key(role)
            || self.tag_filters_by_role.contains_key(role)
    }

    /// Whether `role` may describe `table`, whose stored columns are
    /// `table_columns`: exactly when [`PolicySet::effective_access`] grants
    /// anything (the one decision), answered from the grants alone when no
    /// tag policy of the role is involved.
    pub fn may_describe(&self, role: &str, table: &TableName, table_columns: &[String]) -> bool {
        if !self.roles_with_tagged_grants.contains(role)
            && !self.tag_filters_by_role.contains_key(role)
        {
            return self
                .grants_of(role)
                .iter()
                .any(|g| g.resource.covers(table) && g.confers(Privilege::Describe));
        }
        self.effective_access(role, table, table_columns).is_some()
    }

    /// The tag keys and their allowed values.
    pub fn tag_definitions(&self) -> &BTreeMap<String, TagDefinition> {
        &self.tag_definitions
    }

    /// The tags on databases, tables and columns.
    pub fn tagging(&self) -> &Tagging {
        &self.tagging
    }

    /// The tag masks of `role`, in declaration order.
    pub fn tag_masks_of(&self, role: &str) -> &[TagMask] {
        self.tag_masks_by_role
            .get(role)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// The tag row filters of `role`, in declaration order.
    pub fn tag_row_filters_of(&self, role: &str) -> &[TagRowFilter] {
        self.tag_filters_by_role
            .get(role)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// Every tag mask, grouped by role.
    pub fn tag_masks(&self) -> impl Iterator<Item = &TagMask> {
        self.tag_masks_by_role.values().flatten()
    }

    /// Every tag row filter, grouped by role.
    pub fn tag_row_filters(&self) -> impl Iterator<Item = &TagRowFilter> {
        self.tag_filters_by_role.values().flatten()
    }

    /// Whether `role` holds the administrative privilege (and, when
    /// `grantable`, may pass it on).
    pub fn may_administer(&self, role: &str, grantable: bool) -> bool {
        self.grants_of(role)
            .iter()
            .any(|g| g.confers(Privilege::Administer) && (g.grantable || !grantable))
    }

    /// Whether `role` may set and unset tag `key` (it holds `ASSIGN` on the
    /// key, with grant option when `grantable`).
    pub fn may_assign(&self, role: &str, key: &str, grantable: bool) -> bool {
        self.grants_of(role).iter().any(|g| {
            g.resource == Resource::Tag(key.to_string())
                && g.confers(Privilege::Assign)
                && (g.grantable || !grantable)
        })
    }

    /// Whether `role` holds a grant on every table of every database (a lake
    /// administrator). Such a role may see plans in full.
    pub fn is_lake_admin(&self, role: &str) -> bool {
        self.grants_of(role)
            .iter()
            .any(|g| g.resource == Resource::AllDatabases && g.confers(Privilege::Select))
    }
}
