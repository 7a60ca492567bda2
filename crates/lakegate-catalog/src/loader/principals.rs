//! The catalog loader's principals and grants: `[[role]]`, `[[group]]`,
//! `[[user]]` and `[[grant]]` checked entry by entry, then the policy built
//! from them, each problem reported in the file of the entry it is about.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use argon2::password_hash::PasswordHash;
use lakegate_policy::{Grant, Group, PolicySet, Role, Subject, TagPolicy, User};

use super::{Files, Loader, Tables};
use crate::catalog::Database;
use crate::grants::validate_grant;

/// Roles, groups and users as declared (names unique), with the file of
/// each, for the policy's reference check.
#[derive(Default)]
pub(super) struct Principals {
    pub(super) roles: Vec<Role>,
    pub(super) groups: Vec<Group>,
    pub(super) users: Vec<User>,
    pub(super) password_hashes: BTreeMap<String, String>,
    /// The file of each, by its [`Subject`] as shown (`user 'ann'`).
    pub(super) files: BTreeMap<String, PathBuf>,
}

impl Loader {
    /// `[[role]]`, `[[group]]` and `[[user]]`: names unique, password
    /// hashes well formed. Their references are the policy's to check.
    pub(super) fn principals(&mut self, files: &Files) -> Principals {
        let mut principals = Principals::default();
        let mut seen = [BTreeMap::new(), BTreeMap::new(), BTreeMap::new()];
        for (file, content) in files {
            for entry in &content.role {
                if self
                    .findings
                    .unique(&mut seen[0], "role", &entry.name, file)
                {
                    principals.roles.push(Role {
                        name: entry.name.clone(),
                        description: entry.description.clone(),
                    });
                }
            }
            for entry in &content.group {
                if self
                    .findings
                    .unique(&mut seen[1], "group", &entry.name, file)
                {
                    principals.groups.push(Group {
                        name: entry.name.clone(),
                        may_assume: entry.may_assume.clone(),
                    });
                }
            }
            for entry in &content.user {
                if !self
                    .findings
                    .unique(&mut seen[2], "user", &entry.name, file)
                {
                    continue;
                }
                if entry.password_hash.is_empty() {
                    // No password: the user signs in some other way.
                } else if PasswordHash::new(&entry.password_hash).is_err() {
                    self.findings.error(
                        file,
                        &format!("user '{}'", entry.name),
                        "password_hash is not an Argon2 PHC string \
                         (make one with `lakegate catalog hash-password`)",
                    );
                } else {
                    principals
                        .password_hashes
                        .insert(entry.name.clone(), entry.password_hash.clone());
                }
                principals.users.push(User {
                    name: entry.name.clone(),
                    groups: entry.groups.clone(),
                    may_assume: entry.may_assume.clone(),
                    default_role: entry.default_role.clone(),
                });
            }
        }
        let [roles, groups, users] = seen;
        let subjects = (roles.into_iter().map(|(n, f)| (Subject::Role(n), f)))
            .chain(groups.into_iter().map(|(n, f)| (Subject::Group(n), f)))
            .chain(users.into_iter().map(|(n, f)| (Subject::User(n), f)));
        for (subject, file) in subjects {
            principals.files.insert(subject.to_string(), file);
        }
        principals
    }

    /// `[[grant]]`, checked against the roles, databases and tables, with
    /// the file of each.
    pub(super) fn grants(
        &mut self,
        files: &Files,
        roles: &BTreeSet<&str>,
        databases: &BTreeMap<String, Database>,
        tables: &Tables,
    ) -> (Vec<Grant>, BTreeMap<String, PathBuf>) {
        let mut grants = Vec::new();
        let mut grant_files = BTreeMap::new();
        let mut seen = BTreeMap::new();
        for (file, content) in files {
            for entry in &content.grant {
                if !self.findings.unique(&mut seen, "grant", &entry.name, file) {
                    continue;
                }
                if tables.unreadable.iter().any(|t| entry.on == t.to_string()) {
                    // On a declared table whose files could not be read (said
                    // above): its columns, filter and masks cannot be checked.
                    continue;
                }
                if let Some(grant) = validate_grant(
                    &mut self.findings,
                    file,
                    entry,
                    roles,
                    databases,
                    &tables.read,
                ) {
                    grant_files.insert(grant.name.clone(), file.clone());
                    grants.push(grant);
                }
            }
        }
        (grants, grant_files)
    }

    /// The policy of these principals and grants, its references checked by
    /// the policy itself; an error is reported in the file `file_of` gives.
    pub(super) fn policy(
        &mut self,
        roles: Vec<Role>,
        users: Vec<User>,
        groups: Vec<Group>,
        grants: Vec<Grant>,
        tags: TagPolicy,
        file_of: impl Fn(&Subject) -> PathBuf,
    ) -> PolicySet {
        match PolicySet::try_new_tagged(roles, users, groups, grants, tags) {
            Ok(policy) => policy,
            Err(refused) => {
                for error in refused.errors {
                    let file = file_of(&error.subject);
                    self.findings
                        .error(&file, &error.subject.to_string(), error.message);
                }
                *refused.partial
            }
        }
    }
}
