//! Building a [`PolicySet`]: every reference checked (roles, users, groups,
//! grants, tags), names unique per kind, and on error the policy without
//! what was wrong.

use super::*;

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
        Self::try_new_tagged(roles, users, groups, grants, TagPolicy::default())
    }

    /// [`PolicySet::try_new`] with tags: besides its checks, every tag
    /// assignment and tag expression names defined keys and values, tag
    /// masks and row filters name known roles, and names are unique among
    /// grants, tag masks and tag row filters together. A grant on a tag
    /// expression carries no column list, row filter or masks (tags choose
    /// its columns; tag masks and tag row filters do the rest).
    pub fn try_new_tagged(
        roles: impl IntoIterator<Item = Role>,
        users: impl IntoIterator<Item = User>,
        groups: impl IntoIterator<Item = Group>,
        grants: impl IntoIterator<Item = Grant>,
        tags: TagPolicy,
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
            if let Resource::Tag(key) = &grant.resource {
                let only_assign = grant.privileges.iter().all(|p| *p == Privilege::Assign);
                let problem = if !tags.definitions.contains_key(key) {
                    Some(format!("unknown tag '{key}'"))
                } else if !only_assign {
                    Some("a grant on a tag key confers assign and nothing else".to_string())
                } else {
                    None
                };
                if let Some(message) = problem {
                    error(subject, message);
                    continue;
                }
            } else if grant.privileges.contains(&Privilege::Assign) {
                error(
                    subject,
                    format!(
                        "assign is granted on a tag key ('tag:key'), not on {}",
                        grant.resource
                    ),
                );
                continue;
            }
            if let Some(message) = write_grant_problem(&grant) {
                error(subject, message);
                continue;
            }
            if let Resource::Tagged(expr) = &grant.resource {
                if let Err(e) = expr.check(&tags.definitions) {
                    error(subject, e.to_string());
                    continue;
                }
                let shaped = grant.columns != crate::model::ColumnSelection::All
                    || grant.row_filter.is_some()
                    || !grant.masks.is_empty();
                if shaped {
                    error(
                        subject,
                        "a grant on a tag expression takes no column list, row filter or \
                         masks (its columns are those the tags match; use tag masks and tag \
                         row filters)"
                            .into(),
                    );
                    continue;
                }
                set.roles_with_tagged_grants.insert(grant.role.clone());
            }
            set.grants_by_role
                .entry(grant.role.clone())
                .or_default()
                .push(grant);
        }
        set.add_tags(tags, &mut grant_names, &mut error);
        if errors.is_empty() {
            Ok(set)
        } else {
            Err(PolicyErrors {
                errors,
                partial: Box::new(set),
            })
        }
    }

    /// Adds the tag definitions, tagging, tag masks and tag row filters,
    /// reporting what does not fit (and leaving it out).
    fn add_tags(
        &mut self,
        tags: TagPolicy,
        names: &mut BTreeSet<String>,
        error: &mut impl FnMut(Subject, String),
    ) {
        let TagPolicy {
            definitions,
            mut tagging,
            masks,
            row_filters,
        } = tags;
        let mut check_assignment = |what: String, own: &mut Tags| {
            if let Err(e) = check_tags(&definitions, own) {
                error(Subject::Tag(what), e.to_string());
                own.retain(|key, value| {
                    definitions
                        .get(key)
                        .is_some_and(|d| d.values.contains(value))
                });
            }
        };
        for (name, own) in &mut tagging.databases {
            check_assignment(format!("database '{name}'"), own);
        }
        for (name, own) in &mut tagging.tables {
            check_assignment(format!("table '{name}'"), own);
        }
        for (table, columns) in &mut tagging.columns {
            for (column, own) in columns {
                check_assignment(format!("column '{table}.{column}'"), own);
            }
        }
        let mut check_rule = |kind: &str, name: &str, role: &str, tagged: &TagExpr| {
            let subject = Subject::Tag(format!("{kind} '{name}'"));
            let problem: Option<String> = if !names.insert(name.to_string()) {
                Some("declared twice (names are unique among grants and tag policies)".into())
            } else if !self.roles.contains_key(role) {
                Some(format!("unknown role '{role}'"))
            } else {
                tagged
                    .check(&definitions)
                    .err()
                    .map(|e: TagError| e.to_string())
            };
            match problem {
                Some(message) => {
                    error(subject, message);
                    false
                }
                None => true,
            }
        };
        for mask in masks {
            if check_rule("tag mask", &mask.name, &mask.role, &mask.tagged) {
                self.tag_masks_by_role
                    .entry(mask.role.clone())
                    .or_default()
                    .push(mask);
            }
        }
        for filter in row_filters {
            if check_rule("tag row filter", &filter.name, &filter.role, &filter.tagged) {
                self.tag_filters_by_role
                    .entry(filter.role.clone())
                    .or_default()
                    .push(filter);
            }
        }
        self.tag_definitions = definitions;
        self.tagging = tagging;
    }

    /// Removes from `roles` those this set does not hold, returning them.
    fn unknown_roles(&self, roles: &mut Vec<String>) -> Vec<String> {
        let (known, unknown) = roles.drain(..).partition(|r| self.roles.contains_key(r));
        *roles = known;
        unknown
    }
}

/// Why a grant's write privileges do not fit it, if they do not: `insert`
/// is granted on tables (one, a database's, or every one) and
/// `create_table` on databases; masks shape what is read, so a grant
/// conferring no read takes none.
fn write_grant_problem(grant: &Grant) -> Option<String> {
    let tables = matches!(
        grant.resource,
        Resource::Table(_) | Resource::AllTablesIn(_) | Resource::AllDatabases
    );
    let databases = matches!(
        grant.resource,
        Resource::AllTablesIn(_) | Resource::AllDatabases
    );
    if grant.privileges.contains(&Privilege::Insert) && !tables {
        return Some(format!(
            "insert is granted on a table, a database ('db.*') or the catalog ('*'), not on {}",
            grant.resource
        ));
    }
    if grant.privileges.contains(&Privilege::CreateTable) && !databases {
        return Some(format!(
            "create_table is granted on a database ('db.*') or the catalog ('*'), not on {}",
            grant.resource
        ));
    }
    let reads = grant.confers(Privilege::Describe);
    if !reads && grant.privileges.iter().any(|p| p.is_write()) && !grant.masks.is_empty() {
        return Some(
            "masks do not apply to writes: a grant of write privileges alone takes none".into(),
        );
    }
    None
}
