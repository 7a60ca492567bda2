//! The command line: every subcommand and flag (clap), with their defaults.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use lakegate_engine::{
    DEFAULT_FILE_LISTING_TTL, DEFAULT_LISTING_CACHE_BYTES, DEFAULT_MAX_STATEMENT_BYTES,
    DEFAULT_MAX_WRITE_BYTES, DEFAULT_METADATA_CACHE_BYTES, DEFAULT_PARQUET_FILTER_PUSHDOWN,
    EngineOptions,
};
use lakegate_flight::{DEFAULT_MAX_PARAMETER_BYTES, QueryLimits, ServiceOptions};

pub use crate::admin_args::{AdminCommand, AdminFormat, PrincipalArgs, TargetArgs};
use crate::output::OutputFormat;

#[derive(Parser)]
#[command(
    name = "lakegate",
    version,
    about = "Lake Formation-style fine-grained access to Parquet data lakes"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Generate the demo TPC-DS data (if missing), load the demo catalog, run
    /// the demo walkthrough as each demo user, then serve it over Flight SQL.
    Demo {
        /// Where the Parquet data lives (generated on first run, reused after).
        #[arg(long, default_value = "./lakegate-data")]
        data_dir: PathBuf,
        /// TPC-DS scale factor of the generated data.
        #[arg(long, default_value_t = 1.0)]
        scale: f64,
        /// The demo catalog directory.
        #[arg(long, default_value = "catalog/demo")]
        catalog: PathBuf,
        /// Address to serve on after the walkthrough.
        #[arg(long, default_value = "127.0.0.1:50051")]
        listen: std::net::SocketAddr,
        /// Stop after the walkthrough instead of serving.
        #[arg(long)]
        no_serve: bool,
        /// Serve the demo tables from this object store URL
        /// (`s3://bucket/prefix`) instead of the data directory: they are
        /// generated under --data-dir, then copied under the prefix (once;
        /// nothing else is created). The standard AWS variables apply
        /// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION,
        /// AWS_ENDPOINT_URL, AWS_ALLOW_HTTP, AWS_SERVER_SIDE_ENCRYPTION...).
        #[arg(long)]
        storage: Option<String>,
    },
    /// Run one SQL statement in-process as USER under ROLE and print the result.
    ///
    /// An operator tool: whoever runs it can read the catalog and data files
    /// already, so it asks for no password. Clients connect over Flight SQL.
    Query {
        /// The catalog directory.
        #[arg(long, default_value = "catalog/demo")]
        catalog: PathBuf,
        /// The data directory (`${data_dir}` in the catalog).
        #[arg(long, default_value = "./lakegate-data")]
        data_dir: PathBuf,
        /// The user to run as.
        #[arg(long)]
        user: String,
        /// The runtime role (default: the user's default role).
        #[arg(long)]
        role: Option<String>,
        /// The current database (default: the catalog's default database).
        #[arg(long)]
        database: Option<String>,
        /// How to print the result.
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
        /// The statement; `-` reads it from standard input (for statements
        /// longer than a command line may be).
        sql: String,
    },
    /// Print what a role may see: visible columns, masks and row filter.
    Access {
        /// The catalog directory.
        #[arg(long, default_value = "catalog/demo")]
        catalog: PathBuf,
        /// The data directory (`${data_dir}` in the catalog).
        #[arg(long, default_value = "./lakegate-data")]
        data_dir: PathBuf,
        /// The role.
        #[arg(long)]
        role: String,
        /// Only this table (`db.table`).
        #[arg(long)]
        table: Option<String>,
    },
    /// Serve the catalog over Arrow Flight SQL.
    Serve {
        /// The catalog directory (default `catalog/demo` without `--store`).
        /// With `--store`, applied to the store at every start: its entries
        /// replace the store's entries of the same names.
        #[arg(long)]
        catalog: Option<PathBuf>,
        /// The policy store, `sqlite://PATH` (created if missing) or
        /// `postgres://USER@HOST/DB`: the catalog is read from it. An empty
        /// store needs LAKEGATE_BOOTSTRAP_ADMIN=name:password in the
        /// environment once, to create its first administrator.
        #[arg(long)]
        store: Option<String>,
        /// The data directory (`${data_dir}` in the catalog).
        #[arg(long, default_value = "./lakegate-data")]
        data_dir: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:50051")]
        listen: std::net::SocketAddr,
        /// File holding the server key (32 bytes or more) that signs tokens
        /// and tickets. Servers sharing a load balancer need the same key;
        /// without it a random key is made, valid for this process only.
        #[arg(long)]
        key_file: Option<PathBuf>,
        /// Directory of the audit log (`audit.jsonl`, rotated by size);
        /// default `<data-dir>/audit`. Lake administrators query it as
        /// `system.audit`.
        #[arg(long)]
        audit_dir: Option<PathBuf>,
        /// Rotate the audit log when it reaches this many bytes.
        #[arg(long, default_value_t = 64 * 1024 * 1024)]
        audit_max_bytes: u64,
        /// The query engine's settings.
        #[command(flatten)]
        engine: EngineArgs,
        /// The Flight service's settings.
        #[command(flatten)]
        service: ServiceArgs,
        /// Seconds running queries get to finish after SIGTERM or Ctrl-C;
        /// then their streams end with UNAVAILABLE and the server exits.
        #[arg(long, default_value_t = DEFAULT_SHUTDOWN_GRACE_SECS)]
        shutdown_grace: u64,
        /// Seconds calls are still served after SIGTERM or Ctrl-C while
        /// health checks (grpc.health.v1) answer NOT_SERVING, before new
        /// connections are refused: behind a load balancer, at least its
        /// health-check interval times its unhealthy threshold.
        #[arg(long, default_value_t = 0)]
        drain_seconds: u64,
        /// PEM certificate chain: serve over TLS (grpc+tls://) with
        /// `--tls-key`.
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// PEM private key of `--tls-cert`.
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// How callers may sign in beyond catalog passwords.
        #[command(flatten)]
        identity: IdentityArgs,
        /// Workers (`lakegate worker`) large queries run across, as
        /// comma-separated URLs (`http://10.0.0.5:50061,...`). Needs
        /// --key-file: the workers hold the same key.
        #[arg(long, value_delimiter = ',', requires = "key_file")]
        workers: Vec<url::Url>,
        /// With --workers: a query whose scans read at least this many bytes
        /// of files runs across the workers; 0 sends every query that reads
        /// a file.
        #[arg(long, default_value_t = lakegate_engine::DEFAULT_DISTRIBUTE_FROM_BYTES)]
        distribute_from_bytes: u64,
        /// With --workers: about how many bytes of files one task of a
        /// distributed scan reads (a scan runs as its bytes / this many
        /// tasks, at most one per worker up).
        #[arg(long, default_value_t = lakegate_engine::DEFAULT_TASK_BYTES)]
        task_bytes: usize,
    },
    /// Run a worker for distributed queries: it runs the stages of query
    /// plans that servers holding its key (`serve --workers`) send it, and
    /// reads files through the storage locations of its catalog. It reads
    /// nothing else of the catalog: no table, principal or grant.
    Worker {
        /// Address to listen on (servers reach it as http://ADDR).
        #[arg(long, default_value = "127.0.0.1:50061")]
        listen: std::net::SocketAddr,
        /// File holding the fleet's server key, the servers' --key-file: a
        /// worker runs only plans signed with it.
        #[arg(long)]
        key_file: PathBuf,
        /// The catalog directory whose `[[storage]]` locations the worker
        /// reads through (with their credentials and settings).
        #[arg(long, default_value = "catalog/demo")]
        catalog: PathBuf,
        /// The data directory (`${data_dir}` in the catalog).
        #[arg(long, default_value = "./lakegate-data")]
        data_dir: PathBuf,
    },
    /// Catalog tools.
    Catalog {
        #[command(subcommand)]
        command: CatalogCommand,
    },
    /// Benchmark tools (the runner itself is `cargo bench --bench tpch`).
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
    /// Administer a running server's policy store through its administration
    /// API: the operations of the administration SQL (docs/administration.md).
    /// The password comes from LAKEGATE_PASSWORD, never a flag.
    Admin {
        /// The server: grpc://HOST:PORT, or grpc+tls://HOST:PORT.
        #[arg(long, default_value = "grpc://127.0.0.1:50051")]
        server: String,
        /// The user to sign in as (its password in LAKEGATE_PASSWORD).
        #[arg(long, env = "LAKEGATE_USER")]
        user: String,
        /// The runtime role to act as (default: the user's default role).
        #[arg(long)]
        role: Option<String>,
        /// PEM certificate authority to trust for grpc+tls:// (default: the
        /// system's).
        #[arg(long)]
        tls_ca: Option<PathBuf>,
        /// How to print answers.
        #[arg(long, value_enum, default_value = "table")]
        format: AdminFormat,
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Generate the TPC-H tables that `catalog/tpch` serves, as Parquet under
    /// `<data-dir>/tpch/` (reused when already there at this scale).
    Data {
        /// Where the Parquet data goes (`${data_dir}` of catalog/tpch).
        #[arg(long, default_value = "./lakegate-data")]
        data_dir: PathBuf,
        /// TPC-H scale factor (1 is about 6 million line items, 300 MB).
        #[arg(long, default_value_t = 1.0)]
        scale: f64,
    },
}

#[derive(Subcommand)]
pub enum CatalogCommand {
    /// Load and validate a catalog (files, names, references, schemas, row
    /// filters and masks) and print every error found.
    Check {
        /// The catalog directory.
        dir: PathBuf,
        /// The data directory (`${data_dir}` in the catalog).
        #[arg(long, default_value = "./lakegate-data")]
        data_dir: PathBuf,
    },
    /// Read a password from standard input and print its Argon2 hash for a
    /// user's `password_hash`.
    HashPassword,
    /// Write what a policy store holds into DIR as a catalog directory
    /// (`DIR/catalog.toml`), which loads to the same state.
    Export {
        /// The policy store (`sqlite://PATH` or `postgres://...`).
        #[arg(long)]
        store: String,
        /// The directory to write.
        dir: PathBuf,
    },
}

/// `lakegate serve`'s query engine flags.
#[derive(clap::Args)]
#[command(next_help_heading = "Query engine")]
pub struct EngineArgs {
    /// Memory one query may hold, such as `512MiB` or `2GiB` (operators
    /// that can spill do so at the limit; others fail with
    /// RESOURCE_EXHAUSTED). Default: no limit.
    #[arg(long, value_parser = parse_bytes)]
    pub query_memory: Option<usize>,
    /// Seconds a table's file list is trusted: files added to or removed
    /// from a table's prefix are seen within this time.
    #[arg(long, default_value_t = DEFAULT_FILE_LISTING_TTL.as_secs())]
    pub file_listing_ttl: u64,
    /// Memory for Parquet footers kept across queries (validated per
    /// file by size and modification time), in bytes or with a unit (`64MiB`); `0` turns
    /// the cache off and every query reads the footers again.
    #[arg(long, value_parser = parse_bytes, default_value_t = DEFAULT_METADATA_CACHE_BYTES)]
    pub metadata_cache: usize,
    /// Memory for tables' file listings, kept for --file-listing-ttl
    /// (about 200 bytes an object); a listing that does not fit is
    /// listed again by every query.
    #[arg(long, value_parser = parse_bytes, default_value_t = DEFAULT_LISTING_CACHE_BYTES)]
    pub listing_cache: usize,
    /// Memory for tables kept decoded across queries (`4GiB`): a table
    /// is loaded whole when first scanned, and read from memory while
    /// its files stay the same; the least recently scanned make room.
    /// Default 0: none.
    #[arg(long, value_parser = parse_bytes, default_value_t = 0)]
    pub table_cache: usize,
    /// The longest SQL statement accepted, in bytes or with a unit
    /// (`8MiB`); longer ones are refused before they are read.
    #[arg(long, value_parser = parse_bytes, default_value_t = DEFAULT_MAX_STATEMENT_BYTES)]
    pub max_statement_bytes: usize,
    /// The most Parquet one write (an INSERT, one bulk ingestion) may
    /// write, and the most Arrow data one ingestion may send, in bytes or
    /// with a unit (`256MiB`); past it the write fails and nothing is
    /// written.
    #[arg(long, value_parser = parse_bytes, default_value_t = DEFAULT_MAX_WRITE_BYTES)]
    pub max_write_bytes: usize,
    /// Send text and binary columns in Arrow's view types (`Utf8View`,
    /// `BinaryView`) instead of `Utf8` and `Binary`, for clients that
    /// read them.
    #[arg(long)]
    pub view_types: bool,
    /// Whether Parquet scans apply filters while decoding (`true`: the
    /// filter's columns first, the rest only for the rows that pass, so a
    /// join's runtime filter drops rows in the scan) or only skip row
    /// groups by their statistics (`false`).
    #[arg(long, default_value_t = DEFAULT_PARQUET_FILTER_PUSHDOWN, action = clap::ArgAction::Set)]
    pub parquet_filter_pushdown: bool,
    /// Whether each query's inner joins are ordered by estimated cost, from
    /// the tables' statistics (`false`: in the order the query writes them).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub reorder_joins: bool,
}

impl EngineArgs {
    /// The engine's options these flags ask for, auditing into `audit_dir`.
    pub fn options(&self, audit_dir: PathBuf) -> EngineOptions {
        EngineOptions {
            audit_dir: Some(audit_dir),
            query_memory: self.query_memory,
            file_listing_ttl: Duration::from_secs(self.file_listing_ttl),
            metadata_cache_bytes: self.metadata_cache,
            listing_cache_bytes: self.listing_cache,
            table_cache_bytes: self.table_cache,
            max_statement_bytes: self.max_statement_bytes,
            max_write_bytes: self.max_write_bytes,
            view_types: self.view_types,
            parquet_filter_pushdown: self.parquet_filter_pushdown,
            reorder_joins: self.reorder_joins,
            ..EngineOptions::default()
        }
    }
}

/// `lakegate serve`'s Flight service flags.
#[derive(clap::Args)]
#[command(next_help_heading = "Flight service")]
pub struct ServiceArgs {
    /// How long bearer tokens stay valid, in seconds.
    #[arg(long, default_value_t = 43_200)]
    pub token_ttl: u64,
    /// Queries one user may run at once; more get RESOURCE_EXHAUSTED.
    #[arg(long, default_value_t = 64)]
    pub max_queries_per_user: usize,
    /// Seconds a query may run, results included; 0 means no limit.
    #[arg(long, default_value_t = 3600)]
    pub query_timeout: u64,
    /// Seconds without a batch after which a result stream sends an
    /// empty one, so that proxies keep it open; 0 means never.
    #[arg(long, default_value_t = 15)]
    pub keep_alive: u64,
    /// The largest set of parameters one prepared statement may bind,
    /// in bytes of Arrow data or with a unit (`1MiB`).
    #[arg(long, value_parser = parse_bytes, default_value_t = DEFAULT_MAX_PARAMETER_BYTES)]
    pub max_parameter_bytes: usize,
}

impl ServiceArgs {
    /// The service's options these flags ask for.
    pub fn options(&self) -> Result<ServiceOptions, String> {
        if self.max_queries_per_user == 0 {
            return Err("--max-queries-per-user must be at least 1".into());
        }
        let seconds = |s: u64| (s > 0).then(|| Duration::from_secs(s));
        Ok(ServiceOptions {
            token_ttl: Duration::from_secs(self.token_ttl),
            limits: QueryLimits {
                max_queries_per_user: self.max_queries_per_user,
                timeout: seconds(self.query_timeout),
            },
            keep_alive: seconds(self.keep_alive),
            max_parameter_bytes: self.max_parameter_bytes,
            ..ServiceOptions::default()
        })
    }
}

/// Sign-in methods of `lakegate serve` beyond catalog passwords
/// (docs/identity.md).
#[derive(Debug, Clone, clap::Args)]
pub struct IdentityArgs {
    /// Identity settings (TOML): the OpenID providers whose tokens sign
    /// callers in, the certificate field naming a user, Kerberos name
    /// mapping.
    #[arg(long)]
    pub identity: Option<PathBuf>,
    /// PEM certificate authority of client certificates: callers sign in
    /// with a certificate it issued (mutual TLS; needs `--tls-cert`).
    #[arg(long, requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    /// Whether every client must present a certificate (`required`) or
    /// may sign in otherwise without one (`optional`).
    #[arg(long, value_enum, default_value_t = ClientAuth::Required, requires = "tls_client_ca")]
    pub tls_client_auth: ClientAuth,
    /// The keytab holding `--kerberos-principal`'s key: the Handshake
    /// accepts Kerberos (SPNEGO) tokens (a build with `--features kerberos`).
    #[arg(long, requires = "kerberos_principal")]
    pub kerberos_keytab: Option<PathBuf>,
    /// The service principal clients get tickets for, `HTTP/host@REALM`.
    #[arg(long, requires = "kerberos_keytab")]
    pub kerberos_principal: Option<String>,
}

/// Whether clients must present a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClientAuth {
    /// Every client presents one.
    Required,
    /// Clients without one connect and sign in otherwise.
    Optional,
}

/// Seconds running queries get to finish when the server is stopped.
pub const DEFAULT_SHUTDOWN_GRACE_SECS: u64 = 10;

/// A byte count: a number with an optional unit (`KiB`, `MiB`, `GiB`, `TiB`,
/// or `K`, `M`, `G`, `T` meaning the same powers of 1024).
pub fn parse_bytes(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: usize = number
        .parse()
        .map_err(|_| format!("'{text}' is not a size such as 512MiB"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" => 10,
        "m" | "mib" => 20,
        "g" | "gib" => 30,
        "t" | "tib" => 40,
        other => {
            return Err(format!(
                "unknown size unit '{other}' (use KiB, MiB, GiB, TiB)"
            ));
        }
    };
    number
        .checked_mul(1usize << shift)
        .ok_or_else(|| format!("'{text}' is too large"))
}

#[cfg(test)]
mod tests {
    use super::parse_bytes;

    #[test]
    fn sizes_take_binary_units() {
        assert_eq!(parse_bytes("512"), Ok(512));
        assert_eq!(parse_bytes("512MiB"), Ok(512 << 20));
        assert_eq!(parse_bytes("2G"), Ok(2 << 30));
        assert!(parse_bytes("2 parsecs").is_err());
        assert!(parse_bytes("MiB").is_err());
    }
}
