//! The whole policy of a catalog: roles, users, groups and grants, with the
//! decisions the engine asks of it (which role a session runs as, what a role
//! may see of a table, which databases it may see at all).

use std::collections::{BTreeMap, BTreeSet};

use crate::access::EffectiveAccess;
use crate::model::{Grant, Group, Principal, Privilege, Resource, Role, TableName, User};

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
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Role(name) => write!(f, "role '{name}'"),
            Self::User(name) => write!(f, "user '{name}'"),
            Self::Group(name) => write!(f, "group '{name}'"),
            Self::Grant(name) => write!(f, "grant '{name}'"),
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
    pub partial: PolicySet,
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
}

impl PolicySet {
    /// Builds a policy set, checking that every reference names something
    /// it holds: the roles users and groups may assume, users' groups and
    /// default roles (which must be roles they may assume), grants' roles.
    /// Names are unique per kind (a later duplicate is an error). On error,
    /// [`PolicyErrors::partial`] is the policy without what was wrong.
    pub fn try_new(
        roles: impl IntoIterator<Item = Role>,
        users: impl IntoIterator<Item = User>,
        groups: impl IntoIterator<Item = Group>,
        grants: impl IntoIterator<Item = Grant>,
    ) -> Result<Self, PolicyErrors> {
        let mut errors = Vec::new();
        let mut error =
            |subject: Subject, message: String| errors.push(ReferenceError { subject, message });
        let mut set = Self::default();
        for role in roles {
            if set.roles.contains_key(&role.name) {
                error(Subject::Role(role.name.clone()), "declared twice".into());
                continue;
            }
            set.roles.insert(role.name.clone(), role);
        }
        for mut group in groups {
            let subject = Subject::Group(group.name.clone());
            if set.groups.contains_key(&group.name) {
                error(subject, "declared twice".into());
                continue;
            }
            for role in set.unknown_roles(&mut group.may_assume) {
                error(subject.clone(), format!("may assume unknown role '{role}'"));
            }
            set.groups.insert(group.name.clone(), group);
        }
        for mut user in users {
            let subject = Subject::User(user.name.clone());
            if set.users.contains_key(&user.name) {
                error(subject, "declared twice".into());
                continue;
            }
            for role in set.unknown_roles(&mut user.may_assume) {
                error(subject.clone(), format!("may assume unknown role '{role}'"));
            }
            user.groups.retain(|group| {
                let known = set.groups.contains_key(group);
                if !known {
                    error(
                        subject.clone(),
                        format!("member of unknown group '{group}'"),
                    );
                }
                known
            });
            if let Some(default) = &user.default_role {
                let assumable = user.may_assume.contains(default)
                    || user
                        .groups
                        .iter()
                        .any(|g| set.groups[g].may_assume.contains(default));
                if !assumable {
                    error(
                        subject.clone(),
                        format!("default_role '{default}' is not a role the user may assume"),
                    );
                    user.default_role = None;
                }
            }
            set.users.insert(user.name.clone(), user);
        }
        let mut grant_names = BTreeSet::new();
        for grant in grants {
            let subject = Subject::Grant(grant.name.clone());
            if !grant_names.insert(grant.name.clone()) {
                error(subject, "declared twice".into());
                continue;
            }
            if !set.roles.contains_key(&grant.role) {
                error(subject, format!("unknown role '{}'", grant.role));
                continue;
            }
            set.grants_by_role
                .entry(grant.role.clone())
                .or_default()
                .push(grant);
        }
        if errors.is_empty() {
            Ok(set)
        } else {
            Err(PolicyErrors {
                errors,
                partial: set,
            })
        }
    }

    /// Removes from `roles` those this set does not hold, returning them.
    fn unknown_roles(&self, roles: &mut Vec<String>) -> Vec<String> {
        let (known, unknown) = roles.drain(..).partition(|r| self.roles.contains_key(r));
        *roles = known;
        unknown
    }

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
        EffectiveAccess::resolve(role, table, table_columns, self.grants_of(role))
    }

    /// Whether `role` may describe `table` (any grant covering it).
    pub fn may_describe(&self, role: &str, table: &TableName) -> bool {
        self.grants_of(role)
            .iter()
            .any(|g| g.resource.covers(table) && g.confers(Privilege::Describe))
    }

    /// Whether `role` holds the administrative privilege (and, when
    /// `grantable`, may pass it on).
    pub fn may_administer(&self, role: &str, grantable: bool) -> bool {
        self.grants_of(role)
            .iter()
            .any(|g| g.confers(Privilege::Administer) && (g.grantable || !grantable))
    }

    /// Whether `role` holds a grant on every table of every database (a lake
    /// administrator). Such a role may see plans in full.
    pub fn is_lake_admin(&self, role: &str) -> bool {
        self.grants_of(role)
            .iter()
            .any(|g| g.resource == Resource::AllDatabases && g.confers(Privilege::Select))
    }
}
