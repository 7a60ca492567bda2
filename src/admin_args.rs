//! `lakegate admin ...`: the administration subcommands and their flags
//! (clap); `admin_cli.rs` carries them out against a server's administration
//! API.

use clap::Subcommand;

/// How `lakegate admin` prints answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AdminFormat {
    /// An aligned text table.
    Table,
    /// One JSON object per row.
    Json,
}

/// What a grant or revoke is on: exactly one of the five.
#[derive(clap::Args, Debug, Clone)]
#[group(required = true, multiple = false)]
pub struct TargetArgs {
    /// One table, `database.table`.
    #[arg(long)]
    pub table: Option<String>,
    /// Every table of a database, present and future.
    #[arg(long)]
    pub database: Option<String>,
    /// Every table (and, for `administer`, the catalog itself).
    #[arg(long)]
    pub catalog: bool,
    /// Every column whose tags match this tag expression, in every table,
    /// present and future (`"domain = 'sales' AND pii IS NULL"`).
    #[arg(long)]
    pub tagged: Option<String>,
    /// A tag key, for `assign` (setting and unsetting the key).
    #[arg(long)]
    pub tag_key: Option<String>,
}

/// Who a role is granted to: exactly one of the two.
#[derive(clap::Args, Debug, Clone)]
#[group(required = true, multiple = false)]
pub struct PrincipalArgs {
    /// A user.
    #[arg(long)]
    pub user: Option<String>,
    /// A group.
    #[arg(long)]
    pub group: Option<String>,
}

#[derive(Subcommand)]
pub enum AdminCommand {
    /// GRANT privileges ON ... TO ROLE role [...].
    Grant {
        /// select, describe, insert, create_table, administer, assign (comma-separated).
        #[arg(long, value_delimiter = ',', required = true)]
        privileges: Vec<String>,
        #[command(flatten)]
        target: TargetArgs,
        /// The role receiving the grant.
        #[arg(long)]
        role: String,
        /// Only these columns (comma-separated).
        #[arg(long, value_delimiter = ',', conflicts_with = "excluding_columns")]
        columns: Vec<String>,
        /// Every column but these (comma-separated).
        #[arg(long, value_delimiter = ',')]
        excluding_columns: Vec<String>,
        /// `column=mask` with a built-in mask (hash, redact, nullify,
        /// show_last_4, show_first_4, year_only); repeatable.
        #[arg(long)]
        mask: Vec<String>,
        /// `column=SQL expression`, a custom mask; repeatable.
        #[arg(long)]
        mask_expression: Vec<String>,
        /// The row filter, as SQL.
        #[arg(long = "where")]
        row_filter: Option<String>,
        /// The grant's name (default: role_database_table).
        #[arg(long)]
        name: Option<String>,
        /// The role may pass the grant on.
        #[arg(long)]
        with_grant_option: bool,
    },
    /// REVOKE privileges ON ... FROM ROLE role.
    Revoke {
        /// select, describe, insert, create_table, administer, assign (comma-separated).
        #[arg(long, value_delimiter = ',', required = true)]
        privileges: Vec<String>,
        #[command(flatten)]
        target: TargetArgs,
        /// The role losing them.
        #[arg(long)]
        role: String,
    },
    /// REVOKE GRANT name.
    RevokeGrant {
        /// The grant's name.
        name: String,
    },
    /// SHOW GRANTS [TO ROLE role] [ON TABLE table].
    ListGrants {
        /// Only this role's grants.
        #[arg(long)]
        role: Option<String>,
        /// Only grants covering this table, `database.table`.
        #[arg(long)]
        table: Option<String>,
    },
    /// SHOW EFFECTIVE ACCESS FOR ROLE role ON TABLE table.
    EffectiveAccess {
        /// The role.
        #[arg(long)]
        role: String,
        /// The table, `database.table`.
        #[arg(long)]
        table: String,
    },
    /// GRANT ROLE role TO USER | GROUP.
    GrantRole {
        /// The role.
        role: String,
        #[command(flatten)]
        to: PrincipalArgs,
    },
    /// REVOKE ROLE role FROM USER | GROUP.
    RevokeRole {
        /// The role.
        role: String,
        #[command(flatten)]
        from: PrincipalArgs,
    },
    /// CREATE ROLE name.
    CreateRole {
        name: String,
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// DROP ROLE name.
    DropRole { name: String },
    /// CREATE USER name, its password from LAKEGATE_NEW_PASSWORD.
    CreateUser {
        name: String,
        /// The role it runs as by default (and may assume).
        #[arg(long)]
        default_role: Option<String>,
        /// No password: the user signs in only otherwise (an OpenID
        /// provider, a client certificate, Kerberos). Without it the
        /// password comes from LAKEGATE_NEW_PASSWORD.
        #[arg(long)]
        no_password: bool,
    },
    /// DROP USER name.
    DropUser { name: String },
    /// CREATE GROUP name.
    CreateGroup { name: String },
    /// DROP GROUP name.
    DropGroup { name: String },
    /// ALTER GROUP group ADD | REMOVE USER user.
    AlterGroup {
        group: String,
        /// Add this user.
        #[arg(long, conflicts_with = "remove", required_unless_present = "remove")]
        add: Option<String>,
        /// Remove this user.
        #[arg(long)]
        remove: Option<String>,
    },
    /// CREATE LOCATION name URL [WITH (...)].
    CreateLocation {
        name: String,
        url: String,
        /// `key=value`, a [[storage]] setting; repeatable. Secrets are named
        /// by environment variable (`secret_access_key_env=...`).
        #[arg(long = "set")]
        settings: Vec<String>,
    },
    /// DROP LOCATION name.
    DropLocation { name: String },
    /// CREATE DATABASE name [LOCATION url].
    CreateDatabase {
        name: String,
        /// Where tables created in it without a LOCATION go (CREATE TABLE
        /// AS, ingestion in mode create): a URL under a registered location.
        #[arg(long, default_value = "")]
        location: String,
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// DROP DATABASE name.
    DropDatabase { name: String },
    /// CREATE EXTERNAL TABLE database.table STORED AS PARQUET|DELTA LOCATION url.
    CreateTable {
        /// `database.table`.
        name: String,
        /// Its files' URL, under a registered location.
        url: String,
        /// `parquet` (files under a prefix) or `delta` (a Delta Lake table).
        #[arg(long, default_value = "parquet")]
        format: String,
        /// `name:type` (string, int, bigint, date, boolean); repeatable.
        #[arg(long = "partition")]
        partitions: Vec<String>,
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// DROP TABLE database.table.
    DropTable { name: String },
    /// Tags: definitions, tags on databases, tables and columns, and the
    /// masks and row filters attached to tag expressions.
    #[command(subcommand)]
    Tag(crate::admin_tag_cli::TagCommand),
    /// The policy version the server serves.
    PolicyVersion,
    /// Whether the server serves and reaches its policy store (no sign-in).
    Health,
}
