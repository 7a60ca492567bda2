//! The declarative shape of a catalog: every `*.toml` file of a catalog
//! directory (and its subdirectories), each holding any of the sections
//! below, and what a policy store keeps and exports. Unknown keys are
//! errors, so that a typo never silently drops a restriction.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One catalog file, as written.
#[derive(Debug, Default, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogFile {
    /// Catalog-wide settings (at most one file may have them).
    pub catalog: Option<CatalogSettings>,
    /// Storage locations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub storage: Vec<StorageEntry>,
    /// Databases.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub database: Vec<DatabaseEntry>,
    /// Parquet tables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub table: Vec<TableEntry>,
    /// Roles.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub role: Vec<RoleEntry>,
    /// Users.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub user: Vec<UserEntry>,
    /// Groups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group: Vec<GroupEntry>,
    /// Grants.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grant: Vec<GrantEntry>,
    /// Tag keys and their allowed values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tag: Vec<TagEntry>,
    /// Masks on every column whose tags match an expression.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tag_mask: Vec<TagMaskEntry>,
    /// Row filters on every table whose tags match an expression.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tag_row_filter: Vec<TagRowFilterEntry>,
}

impl CatalogFile {
    /// The sections of several files as one file's (a catalog directory's
    /// files, merged for a policy store): entries in order, the last
    /// `[catalog]` section.
    pub fn merged(files: impl IntoIterator<Item = CatalogFile>) -> CatalogFile {
        let mut all = CatalogFile::default();
        for file in files {
            all.catalog = file.catalog.or(all.catalog);
            all.storage.extend(file.storage);
            all.database.extend(file.database);
            all.table.extend(file.table);
            all.role.extend(file.role);
            all.user.extend(file.user);
            all.group.extend(file.group);
            all.grant.extend(file.grant);
            all.tag.extend(file.tag);
            all.tag_mask.extend(file.tag_mask);
            all.tag_row_filter.extend(file.tag_row_filter);
        }
        all
    }
}

/// `[catalog]`
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogSettings {
    /// The catalog's name (shown to clients as the Flight SQL catalog).
    pub name: Option<String>,
    /// The database a session starts in.
    pub default_database: Option<String>,
}

/// `[[storage]]`: a location and how to reach it. Every setting but `name`
/// and `url` is optional; which ones apply depends on the URL's scheme (S3,
/// Google Cloud Storage, Azure), and one that does not apply is an error.
/// Secrets are never written here: the `*_env` settings name environment
/// variables that hold them.
#[derive(Debug, Default, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StorageEntry {
    /// Unique name, referenced by tables.
    pub name: String,
    /// An object_store URL (`file:///...`, `s3://bucket/prefix`,
    /// `gs://bucket/prefix`, `az://container/prefix`), or a path.
    /// `${data_dir}` expands to the data directory the server was started
    /// with.
    pub url: String,

    /// S3: the bucket's region.
    pub region: Option<String>,
    /// S3, GCS, Azure: the service endpoint (S3-compatible servers,
    /// emulators).
    pub endpoint: Option<String>,
    /// S3: `path` (`https://endpoint/bucket/key`) or `virtual-hosted`
    /// (`https://bucket.endpoint/key`).
    pub addressing: Option<String>,
    /// Whether plain HTTP is allowed (default false: TLS only).
    pub allow_http: Option<bool>,

    /// How credentials are found: `environment` (the provider's standard
    /// chain; the default), `profile` (S3: a profile of the shared
    /// credentials file), `variables` (the `*_env` settings below),
    /// `web-identity` (S3: `role_arn` with a web identity token file) or
    /// `anonymous` (unsigned requests to public data).
    pub credentials: Option<String>,
    /// S3: the profile of the shared credentials file to read keys from
    /// (`credentials = "profile"`).
    pub profile: Option<String>,
    /// S3: variable holding the access key id.
    pub access_key_id_env: Option<String>,
    /// S3: variable holding the secret access key.
    pub secret_access_key_env: Option<String>,
    /// S3: variable holding a session token (temporary credentials).
    pub session_token_env: Option<String>,
    /// S3: the role to assume with a web identity token.
    pub role_arn: Option<String>,
    /// S3: the web identity token file (default `AWS_WEB_IDENTITY_TOKEN_FILE`).
    pub web_identity_token_file: Option<String>,
    /// S3: the session name used when assuming `role_arn`.
    pub role_session_name: Option<String>,
    /// S3: the STS endpoint used when assuming `role_arn`.
    pub sts_endpoint: Option<String>,
    /// GCS: path of a service account JSON file.
    pub service_account_path: Option<String>,
    /// GCS: variable holding a service account JSON key.
    pub service_account_key_env: Option<String>,
    /// Azure: the storage account.
    pub account: Option<String>,
    /// Azure: variable holding the account's access key.
    pub access_key_env: Option<String>,
    /// Azure: variable holding a SAS token (`sv=...&sig=...`).
    pub sas_token_env: Option<String>,

    /// S3: server-side encryption of everything Lakegate writes here:
    /// `sse-s3`, `sse-kms` (with `kms_key_id`) or `none` (the bucket's
    /// default).
    pub encryption: Option<String>,
    /// S3: the KMS key for `sse-kms`.
    pub kms_key_id: Option<String>,
    /// S3: use an S3 Bucket Key for `sse-kms`.
    pub bucket_key: Option<bool>,

    /// Time to establish a connection (`5s`).
    pub connect_timeout: Option<String>,
    /// Time one request may take, body included (`30s`).
    pub request_timeout: Option<String>,
    /// Retries of a failed request (throttling, 5xx, resets).
    pub max_retries: Option<usize>,
    /// Time after which a request is no longer retried (`60s`).
    pub retry_timeout: Option<String>,
    /// First retry delay, doubled at each retry (`100ms`).
    pub initial_backoff: Option<String>,
    /// Longest retry delay (`15s`).
    pub max_backoff: Option<String>,

    /// Refused (an inline secret): use `access_key_id_env`.
    pub access_key_id: Option<toml::Value>,
    /// Refused (an inline secret): use `secret_access_key_env`.
    pub secret_access_key: Option<toml::Value>,
    /// Refused (an inline secret): use `session_token_env`.
    pub session_token: Option<toml::Value>,
    /// Refused (an inline secret): use `service_account_key_env`.
    pub service_account_key: Option<toml::Value>,
    /// Refused (an inline secret): use `access_key_env`.
    pub access_key: Option<toml::Value>,
    /// Refused (an inline secret): use `sas_token_env`.
    pub sas_token: Option<toml::Value>,
    /// Refused (an inline secret): secrets have no inline form.
    pub password: Option<toml::Value>,
}

impl StorageEntry {
    /// The inline secrets written in this entry, each with the setting to use
    /// instead. The keys above exist only so that the catalog check can refuse
    /// them by name rather than as unknown keys.
    pub fn inline_secrets(&self) -> Vec<(&'static str, &'static str)> {
        [
            (
                "access_key_id",
                self.access_key_id.is_some(),
                "access_key_id_env",
            ),
            (
                "secret_access_key",
                self.secret_access_key.is_some(),
                "secret_access_key_env",
            ),
            (
                "session_token",
                self.session_token.is_some(),
                "session_token_env",
            ),
            (
                "service_account_key",
                self.service_account_key.is_some(),
                "service_account_key_env",
            ),
            ("access_key", self.access_key.is_some(), "access_key_env"),
            ("sas_token", self.sas_token.is_some(), "sas_token_env"),
            (
                "password",
                self.password.is_some(),
                "an environment variable",
            ),
        ]
        .into_iter()
        .filter(|(_, present, _)| *present)
        .map(|(key, _, instead)| (key, instead))
        .collect()
    }
}

/// `[[database]]`
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseEntry {
    /// Unique name.
    pub name: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Tags (key = value), inherited by the database's tables.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// The storage location where tables created in the database without a
    /// LOCATION go (with `path`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<String>,
    /// The directory under `storage` holding those tables, one directory
    /// per table (`analytics/` puts table `t` at `analytics/t/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// `[[table]]`
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TableEntry {
    /// The database holding the table.
    pub database: String,
    /// Name, unique in its database.
    pub name: String,
    /// The storage location holding the files.
    pub storage: String,
    /// Path under the location: a directory of Parquet files or one file
    /// (`format = "parquet"`), or a Delta table's directory.
    pub path: String,
    /// How the table is stored: `parquet` (the default) or `delta`.
    #[serde(default, skip_serializing_if = "TableFormat::is_parquet")]
    pub format: TableFormat,
    /// Hive-style partition columns, outermost first: files live under
    /// `<path>/<name>=<value>/...`, and queries filtering on these columns
    /// read only the matching directories' files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partition_columns: Vec<PartitionColumnEntry>,
    /// Free text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Tags (key = value), overriding the database's key by key and
    /// inherited by the table's columns.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Tags of single columns (column → key → value), overriding the
    /// table's key by key.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub column_tags: BTreeMap<String, BTreeMap<String, String>>,
    /// The Parquet field id of each column named in `column_tags`, when the
    /// files carry field ids: a column's identity. Its tags follow the id
    /// when the files rename the column.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub column_ids: BTreeMap<String, i32>,
}

/// How a table's files are organised.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TableFormat {
    /// Parquet files under a prefix (or one file): every file listed is
    /// part of the table.
    #[default]
    Parquet,
    /// A Delta Lake table: its `_delta_log` says which Parquet files make
    /// up each version.
    Delta,
}

impl TableFormat {
    /// Whether this is the default, `parquet`.
    pub fn is_parquet(&self) -> bool {
        *self == TableFormat::Parquet
    }

    /// The name catalog files and SQL use (`parquet`, `delta`).
    pub fn name(&self) -> &'static str {
        match self {
            TableFormat::Parquet => "parquet",
            TableFormat::Delta => "delta",
        }
    }
}

impl std::fmt::Display for TableFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A partition column: its name and the type its path values are read as.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionColumnEntry {
    /// The column name (the `name` of `name=value` directories).
    pub name: String,
    /// `string`, `int`, `bigint`, `date` or `boolean`.
    #[serde(rename = "type")]
    pub data_type: String,
}

/// `[[role]]`
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RoleEntry {
    /// Unique name.
    pub name: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

/// `[[user]]`
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    /// Unique name.
    pub name: String,
    /// Argon2 PHC string (`lakegate catalog hash-password` makes one).
    /// Empty or absent: the user has no password, and signs in only
    /// otherwise (an OpenID provider, a client certificate, Kerberos).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub password_hash: String,
    /// Groups the user belongs to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Roles the user may assume directly.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub may_assume: Vec<String>,
    /// Role used when the client names none.
    pub default_role: Option<String>,
}

/// `[[group]]`
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GroupEntry {
    /// Unique name.
    pub name: String,
    /// Roles every member may assume.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub may_assume: Vec<String>,
}

/// `[[grant]]`
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GrantEntry {
    /// Unique name, used in audit events and explanations.
    pub name: String,
    /// The role receiving the grant.
    pub role: String,
    /// `db.table`, `db.*` or `*` (exclusive with `tagged`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub on: String,
    /// A tag expression instead of `on`: every column whose tags match, in
    /// every table (`domain = 'sales' AND pii IS NULL`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tagged: Option<String>,
    /// `select`, `describe`.
    pub privileges: Vec<String>,
    /// Whether the role may pass the grant on.
    #[serde(default)]
    pub grantable: bool,
    /// Only these columns (exclusive with `exclude_columns`).
    pub include_columns: Option<Vec<String>>,
    /// Every column but these.
    pub exclude_columns: Option<Vec<String>>,
    /// SQL boolean expression over the table's columns.
    pub row_filter: Option<String>,
    /// Column → built-in mask name, or `{ name, expression }` for a custom mask.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub masks: BTreeMap<String, MaskEntry>,
}

/// A mask as written: a built-in's name, or a named custom SQL expression.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum MaskEntry {
    /// `"hash"`, `"redact"`, ...
    Builtin(String),
    /// `{ name = "...", expression = "..." }`
    Custom(CustomMaskEntry),
}

/// A custom mask.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CustomMaskEntry {
    /// The mask's name, shown to clients.
    pub name: String,
    /// SQL expression over the table's stored columns.
    pub expression: String,
}

/// `[[tag]]`: a tag key and the values it may take.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TagEntry {
    /// The key, unique.
    pub key: String,
    /// The values a database, table or column may carry for it.
    pub values: Vec<String>,
    /// Free text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

/// `[[tag_mask]]`: a built-in mask on every column whose tags match, for
/// one role.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TagMaskEntry {
    /// Unique among grants and tag policies.
    pub name: String,
    /// The role whose view is masked.
    pub role: String,
    /// The tag expression choosing the columns (`pii = 'email'`).
    pub tagged: String,
    /// A built-in mask's name (`hash`, `redact`, `nullify`, ...).
    pub mask: String,
}

/// `[[tag_row_filter]]`: a row filter on every table whose tags match, for
/// one role.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TagRowFilterEntry {
    /// Unique among grants and tag policies.
    pub name: String,
    /// The role whose rows are filtered.
    pub role: String,
    /// The tag expression choosing the tables (`domain = 'sales'`).
    pub tagged: String,
    /// SQL boolean expression over a matching table's columns.
    pub row_filter: String,
}
