//! The statements' SQL form: each statement written back as SQL that parses
//! to it, every password shown as `'***'` (what the audit log records of an
//! administration API call), and the quoting it is written with.

use std::fmt;

use lakegate_policy::{Privilege, TableName};

use super::{AdminStatement, Columns, Grantee, MaskSpec, Target, tags};

/// A name as SQL reads it back: bare when it is lower case letters, digits
/// and `_` (as an unquoted name is read), quoted otherwise.
pub(super) fn sql_name(name: &str) -> String {
    let bare = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.chars().next().is_some_and(|c| !c.is_ascii_digit());
    if bare {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// A string literal.
pub(super) fn sql_string(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

pub(super) fn sql_table(name: &TableName) -> String {
    format!("{}.{}", sql_name(&name.database), sql_name(&name.table))
}

pub(super) fn sql_names(names: &[String]) -> String {
    names
        .iter()
        .map(|n| sql_name(n))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A column or a nested field's dotted path, each part as [`sql_name`].
pub(super) fn sql_column(path: &str) -> String {
    path.split('.').map(sql_name).collect::<Vec<_>>().join(".")
}

pub(super) fn sql_columns(paths: &[String]) -> String {
    paths
        .iter()
        .map(|p| sql_column(p))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn sql_privileges(privileges: &[Privilege]) -> String {
    privileges
        .iter()
        .map(|p| p.name().to_ascii_uppercase())
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn sql_comment(comment: &str) -> String {
    if comment.is_empty() {
        String::new()
    } else {
        format!(" COMMENT {}", sql_string(comment))
    }
}

impl fmt::Display for Grantee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::User(name) => write!(f, "USER {}", sql_name(name)),
            Self::Group(name) => write!(f, "GROUP {}", sql_name(name)),
        }
    }
}

/// The statement as SQL that parses back to it, every password shown as
/// `'***'`: what the audit log records of an administration API call.
impl fmt::Display for AdminStatement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CreateLocation {
                name,
                url,
                settings,
            } => {
                write!(
                    f,
                    "CREATE LOCATION {} URL {}",
                    sql_name(name),
                    sql_string(url)
                )?;
                if !settings.is_empty() {
                    let shown: Vec<String> = settings
                        .iter()
                        .map(|(key, value)| match value {
                            toml::Value::String(text) => {
                                format!("{} = {}", sql_name(key), sql_string(text))
                            }
                            other => format!("{} = {other}", sql_name(key)),
                        })
                        .collect();
                    write!(f, " WITH ({})", shown.join(", "))?;
                }
                Ok(())
            }
            Self::DropLocation(name) => write!(f, "DROP LOCATION {}", sql_name(name)),
            Self::SetDefaultDatabase(name) => {
                write!(f, "ALTER CATALOG SET DEFAULT DATABASE {}", sql_name(name))
            }
            Self::CreateDatabase {
                name,
                location,
                comment,
            } => {
                let location = location
                    .as_deref()
                    .map(|url| format!(" LOCATION {}", sql_string(url)))
                    .unwrap_or_default();
                write!(
                    f,
                    "CREATE DATABASE {}{location}{}",
                    sql_name(name),
                    sql_comment(comment)
                )
            }
            Self::DropDatabase(name) => write!(f, "DROP DATABASE {}", sql_name(name)),
            Self::CreateTable {
                name,
                url,
                format,
                partition_columns,
                comment,
            } => {
                write!(
                    f,
                    "CREATE EXTERNAL TABLE {} STORED AS {} LOCATION {}",
                    sql_table(name),
                    format.name().to_ascii_uppercase(),
                    sql_string(url)
                )?;
                if !partition_columns.is_empty() {
                    let columns: Vec<String> = partition_columns
                        .iter()
                        .map(|(column, data_type)| {
                            format!("{} {}", sql_name(column), sql_name(data_type))
                        })
                        .collect();
                    write!(f, " PARTITIONED BY ({})", columns.join(", "))?;
                }
                write!(f, "{}", sql_comment(comment))
            }
            Self::DropTable(name) => write!(f, "DROP TABLE {}", sql_table(name)),
            Self::CreateRole { name, comment } => {
                write!(f, "CREATE ROLE {}{}", sql_name(name), sql_comment(comment))
            }
            Self::DropRole(name) => write!(f, "DROP ROLE {}", sql_name(name)),
            Self::CreateUser {
                name,
                password,
                default_role,
            } => {
                write!(f, "CREATE USER {}", sql_name(name))?;
                if password.is_some() {
                    write!(f, " PASSWORD '***'")?;
                }
                match default_role {
                    Some(role) => write!(f, " DEFAULT ROLE {}", sql_name(role)),
                    None => Ok(()),
                }
            }
            Self::SetPassword { user, .. } => {
                write!(f, "ALTER USER {} SET PASSWORD '***'", sql_name(user))
            }
            Self::SetDefaultRole { user, role } => write!(
                f,
                "ALTER USER {} SET DEFAULT ROLE {}",
                sql_name(user),
                sql_name(role)
            ),
            Self::DropUser(name) => write!(f, "DROP USER {}", sql_name(name)),
            Self::CreateGroup(name) => write!(f, "CREATE GROUP {}", sql_name(name)),
            Self::DropGroup(name) => write!(f, "DROP GROUP {}", sql_name(name)),
            Self::AlterGroup { group, user, add } => write!(
                f,
                "ALTER GROUP {} {} USER {}",
                sql_name(group),
                if *add { "ADD" } else { "REMOVE" },
                sql_name(user)
            ),
            Self::GrantRole { role, to } => write!(f, "GRANT ROLE {} TO {to}", sql_name(role)),
            Self::RevokeRole { role, from } => {
                write!(f, "REVOKE ROLE {} FROM {from}", sql_name(role))
            }
            Self::Grant(grant) => {
                write!(
                    f,
                    "GRANT {} ON {} TO ROLE {}",
                    sql_privileges(&grant.privileges),
                    grant.target,
                    sql_name(&grant.role)
                )?;
                match &grant.columns {
                    Columns::All => {}
                    Columns::Only(columns) => write!(f, " COLUMNS ({})", sql_columns(columns))?,
                    Columns::Excluding(columns) => {
                        write!(f, " EXCLUDING COLUMNS ({})", sql_columns(columns))?
                    }
                }
                if !grant.masks.is_empty() {
                    let masks: Vec<String> = grant
                        .masks
                        .iter()
                        .map(|(column, mask)| match mask {
                            MaskSpec::Builtin(name) => {
                                format!("{} USING {}", sql_column(column), sql_name(name))
                            }
                            MaskSpec::Expression(sql) => {
                                format!("{} USING ({sql})", sql_column(column))
                            }
                        })
                        .collect();
                    write!(f, " MASK {}", masks.join(", "))?;
                }
                if let Some(filter) = &grant.row_filter {
                    write!(f, " WHERE {filter}")?;
                }
                if let Some(name) = &grant.name {
                    write!(f, " AS {}", sql_name(name))?;
                }
                if grant.grantable {
                    f.write_str(" WITH GRANT OPTION")?;
                }
                Ok(())
            }
            Self::Revoke {
                privileges,
                target,
                role,
            } => write!(
                f,
                "REVOKE {} ON {target} FROM ROLE {}",
                sql_privileges(privileges),
                sql_name(role)
            ),
            Self::RevokeGrant(name) => write!(f, "REVOKE GRANT {}", sql_name(name)),
            Self::ShowGrants { role, table } => {
                f.write_str("SHOW GRANTS")?;
                if let Some(role) = role {
                    write!(f, " TO ROLE {}", sql_name(role))?;
                }
                if let Some(table) = table {
                    write!(f, " ON TABLE {}", sql_table(table))?;
                }
                Ok(())
            }
            Self::ShowRoles => f.write_str("SHOW ROLES"),
            Self::ShowUsers => f.write_str("SHOW USERS"),
            Self::ShowGroups => f.write_str("SHOW GROUPS"),
            Self::ShowLocations => f.write_str("SHOW LOCATIONS"),
            Self::ShowEffectiveAccess { role, table } => write!(
                f,
                "SHOW EFFECTIVE ACCESS FOR ROLE {} ON TABLE {}",
                sql_name(role),
                sql_table(table)
            ),
            tags => tags::fmt_tag_statement(tags, f),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Table(name) => write!(f, "TABLE {}", sql_table(name)),
            Self::Database(database) => write!(f, "DATABASE {}", sql_name(database)),
            Self::Catalog => f.write_str("CATALOG"),
            Self::Tagged(expr) => write!(f, "TAGGED {expr}"),
            Self::Tag(key) => write!(f, "TAG {}", sql_name(key)),
        }
    }
}
