//! The administration statements, as data, and their SQL form: what the
//! parser (`parse.rs`) makes of a text, what the administration applies,
//! and how the audit log shows a statement that came through the API
//! (`statement/sql.rs`). Neither form ever shows a password.

use std::fmt;

use lakegate_catalog::TableFormat;
use lakegate_policy::{Privilege, TableName, TagExpr};

pub use tags::TagTarget;

mod sql;
mod tags;

/// A principal a role is granted to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grantee {
    /// A user.
    User(String),
    /// A group: every member.
    Group(String),
}

/// What a data grant is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One table.
    Table(TableName),
    /// Every table of a database, present and future.
    Database(String),
    /// Every table (and, for `ADMINISTER`, the catalog itself).
    Catalog,
    /// Every column whose tags match, in every table, present and future.
    Tagged(TagExpr),
    /// A tag key, for `ASSIGN` (setting and unsetting it).
    Tag(String),
}

impl Target {
    /// The catalog spelling of a grant's `on` (empty for a tag expression,
    /// which a catalog writes as `tagged`).
    pub fn on(&self) -> String {
        match self {
            Self::Table(name) => name.to_string(),
            Self::Database(database) => format!("{database}.*"),
            Self::Catalog => "*".into(),
            Self::Tagged(_) => String::new(),
            Self::Tag(key) => format!("tag:{key}"),
        }
    }

    /// The catalog spelling of a grant's `tagged`, for a tag expression.
    pub fn tagged(&self) -> Option<String> {
        match self {
            Self::Tagged(expr) => Some(expr.to_string()),
            _ => None,
        }
    }
}

/// Which columns a table grant exposes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Columns {
    /// Every column.
    #[default]
    All,
    /// `COLUMNS (...)`.
    Only(Vec<String>),
    /// `EXCLUDING COLUMNS (...)`.
    Excluding(Vec<String>),
}

/// A mask in a grant: a built-in's name or a SQL expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MaskSpec {
    /// `USING hash`.
    Builtin(String),
    /// `USING (expression)`.
    Expression(String),
}

/// `GRANT privileges ON target TO ROLE role ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataGrant {
    /// What is granted.
    pub privileges: Vec<Privilege>,
    /// On what.
    pub target: Target,
    /// To which role.
    pub role: String,
    /// Which columns.
    pub columns: Columns,
    /// Masks by column.
    pub masks: Vec<(String, MaskSpec)>,
    /// The row filter, as SQL.
    pub row_filter: Option<String>,
    /// The grant's name (`AS name`); one is made up when absent.
    pub name: Option<String>,
    /// `WITH GRANT OPTION`.
    pub grantable: bool,
}

/// One administration statement. Its `Debug` and `Display` forms never
/// show a password.
#[derive(Clone, PartialEq)]
pub enum AdminStatement {
    /// `CREATE LOCATION name URL 'url' [WITH (key = value, ...)]`.
    CreateLocation {
        /// Its name.
        name: String,
        /// Its URL.
        url: String,
        /// The `[[storage]]` settings.
        settings: Vec<(String, toml::Value)>,
    },
    /// `DROP LOCATION name`.
    DropLocation(String),
    /// `ALTER CATALOG SET DEFAULT DATABASE name`: where sessions start.
    SetDefaultDatabase(String),
    /// `CREATE DATABASE name [LOCATION 'url'] [COMMENT '...']`.
    CreateDatabase {
        /// Its name.
        name: String,
        /// Where its tables created without a LOCATION go: a directory
        /// under a registered location.
        location: Option<String>,
        /// Free text.
        comment: String,
    },
    /// `DROP DATABASE name`.
    DropDatabase(String),
    /// `CREATE EXTERNAL TABLE db.t STORED AS PARQUET|DELTA LOCATION 'url'
    /// [PARTITIONED BY (column type, ...)] [COMMENT '...']`.
    CreateTable {
        /// Its name.
        name: TableName,
        /// Where its files are: under a registered location.
        url: String,
        /// How its files are organised.
        format: TableFormat,
        /// Hive-style partition columns and their types.
        partition_columns: Vec<(String, String)>,
        /// Free text.
        comment: String,
    },
    /// `DROP TABLE db.t`.
    DropTable(TableName),
    /// `CREATE ROLE name [COMMENT '...']`.
    CreateRole {
        /// Its name.
        name: String,
        /// Free text.
        comment: String,
    },
    /// `DROP ROLE name`.
    DropRole(String),
    /// `CREATE USER name PASSWORD '...' [DEFAULT ROLE role]`.
    CreateUser {
        /// Its name.
        name: String,
        /// Its password (never shown: see `parse::redacted`); none: the
        /// user signs in otherwise (an identity provider, a certificate,
        /// Kerberos).
        password: Option<String>,
        /// The role it runs as when it names none.
        default_role: Option<String>,
    },
    /// `ALTER USER name SET PASSWORD '...'`.
    SetPassword {
        /// The user.
        user: String,
        /// The new password.
        password: String,
    },
    /// `ALTER USER name SET DEFAULT ROLE role`.
    SetDefaultRole {
        /// The user.
        user: String,
        /// The role.
        role: String,
    },
    /// `DROP USER name`.
    DropUser(String),
    /// `CREATE GROUP name`.
    CreateGroup(String),
    /// `DROP GROUP name`.
    DropGroup(String),
    /// `ALTER GROUP group ADD USER user` / `REMOVE USER user`.
    AlterGroup {
        /// The group.
        group: String,
        /// The user.
        user: String,
        /// Added (true) or removed.
        add: bool,
    },
    /// `GRANT ROLE role TO USER u | GROUP g`: may assume.
    GrantRole {
        /// The role.
        role: String,
        /// Who may assume it.
        to: Grantee,
    },
    /// `REVOKE ROLE role FROM USER u | GROUP g`.
    RevokeRole {
        /// The role.
        role: String,
        /// Who may no longer assume it.
        from: Grantee,
    },
    /// `GRANT ... ON ... TO ROLE ...`.
    Grant(DataGrant),
    /// `REVOKE privileges ON target FROM ROLE role`: those privileges of
    /// every grant of the role on exactly that target.
    Revoke {
        /// What is revoked.
        privileges: Vec<Privilege>,
        /// On what.
        target: Target,
        /// From which role.
        role: String,
    },
    /// `REVOKE GRANT name`.
    RevokeGrant(String),
    /// `SHOW GRANTS [TO ROLE r | ON TABLE db.t]`.
    ShowGrants {
        /// Only the grants of this role.
        role: Option<String>,
        /// Only the grants covering this table.
        table: Option<TableName>,
    },
    /// `SHOW ROLES`.
    ShowRoles,
    /// `SHOW USERS`.
    ShowUsers,
    /// `SHOW GROUPS`.
    ShowGroups,
    /// `SHOW LOCATIONS`.
    ShowLocations,
    /// `SHOW EFFECTIVE ACCESS FOR ROLE r ON TABLE db.t`.
    ShowEffectiveAccess {
        /// The role.
        role: String,
        /// The table.
        table: TableName,
    },
    /// `CREATE TAG key VALUES ('a', ...) [COMMENT '...']`.
    CreateTag {
        /// The key.
        key: String,
        /// Its allowed values.
        values: Vec<String>,
        /// Free text.
        comment: String,
    },
    /// `DROP TAG key`.
    DropTag(String),
    /// `ALTER DATABASE | TABLE ... SET TAGS (key = 'value', ...)`.
    SetTags {
        /// What is tagged.
        on: TagTarget,
        /// The tags set (replacing a value the key had there).
        tags: Vec<(String, String)>,
    },
    /// `ALTER DATABASE | TABLE ... UNSET TAGS (key, ...)`.
    UnsetTags {
        /// What is untagged.
        on: TagTarget,
        /// The keys removed.
        keys: Vec<String>,
    },
    /// `MASK COLUMNS TAGGED <expr> USING mask FOR ROLE r [AS name]`.
    CreateTagMask {
        /// The columns masked.
        tagged: TagExpr,
        /// A built-in mask's name.
        mask: String,
        /// The role.
        role: String,
        /// Its name; one is made up when absent.
        name: Option<String>,
    },
    /// `ROW FILTER ON TAGGED <expr> FOR ROLE r WHERE <sql> [AS name]`.
    CreateTagRowFilter {
        /// The tables filtered.
        tagged: TagExpr,
        /// The role.
        role: String,
        /// The filter, as SQL.
        row_filter: String,
        /// Its name; one is made up when absent.
        name: Option<String>,
    },
    /// `DROP MASK name`: a tag mask.
    DropTagMask(String),
    /// `DROP ROW FILTER name`: a tag row filter.
    DropTagRowFilter(String),
    /// `SHOW TAGS [ON TABLE db.t]`.
    ShowTags {
        /// The table whose tags (and its columns') are listed; none: the
        /// tag definitions.
        table: Option<TableName>,
    },
}

impl fmt::Debug for AdminStatement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AdminStatement({self})")
    }
}

impl AdminStatement {
    /// Whether the statement only reads the policy (`SHOW ...`).
    pub fn is_show(&self) -> bool {
        matches!(
            self,
            Self::ShowGrants { .. }
                | Self::ShowRoles
                | Self::ShowUsers
                | Self::ShowGroups
                | Self::ShowLocations
                | Self::ShowEffectiveAccess { .. }
                | Self::ShowTags { .. }
        )
    }

    /// The statement's kind, for messages and the audit log
    /// (`CREATE USER`, `GRANT`).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::CreateLocation { .. } => "CREATE LOCATION",
            Self::DropLocation(_) => "DROP LOCATION",
            Self::SetDefaultDatabase(_) => "ALTER CATALOG",
            Self::CreateDatabase { .. } => "CREATE DATABASE",
            Self::DropDatabase(_) => "DROP DATABASE",
            Self::CreateTable { .. } => "CREATE EXTERNAL TABLE",
            Self::DropTable(_) => "DROP TABLE",
            Self::CreateRole { .. } => "CREATE ROLE",
            Self::DropRole(_) => "DROP ROLE",
            Self::CreateUser { .. } => "CREATE USER",
            Self::SetPassword { .. } | Self::SetDefaultRole { .. } => "ALTER USER",
            Self::DropUser(_) => "DROP USER",
            Self::CreateGroup(_) => "CREATE GROUP",
            Self::DropGroup(_) => "DROP GROUP",
            Self::AlterGroup { .. } => "ALTER GROUP",
            Self::GrantRole { .. } => "GRANT ROLE",
            Self::RevokeRole { .. } => "REVOKE ROLE",
            Self::Grant(_) => "GRANT",
            Self::Revoke { .. } | Self::RevokeGrant(_) => "REVOKE",
            Self::ShowGrants { .. } => "SHOW GRANTS",
            Self::ShowRoles => "SHOW ROLES",
            Self::ShowUsers => "SHOW USERS",
            Self::ShowGroups => "SHOW GROUPS",
            Self::ShowLocations => "SHOW LOCATIONS",
            Self::ShowEffectiveAccess { .. } => "SHOW EFFECTIVE ACCESS",
            Self::CreateTag { .. } => "CREATE TAG",
            Self::DropTag(_) => "DROP TAG",
            Self::SetTags { on, .. } | Self::UnsetTags { on, .. } => match on {
                TagTarget::Database(_) => "ALTER DATABASE",
                _ => "ALTER TABLE",
            },
            Self::CreateTagMask { .. } => "MASK COLUMNS",
            Self::CreateTagRowFilter { .. } => "ROW FILTER",
            Self::DropTagMask(_) => "DROP MASK",
            Self::DropTagRowFilter(_) => "DROP ROW FILTER",
            Self::ShowTags { .. } => "SHOW TAGS",
        }
    }
}
