//! `lakegate`: the command-line entry point.
//!
//! ```text
//! lakegate demo                 generate the TPC-DS demo data, load catalog/demo, run the walkthrough
//! lakegate query ... "SQL"      run one statement in-process under a user and role
//! lakegate access ...           print a role's effective access to tables
//! lakegate catalog check DIR    validate a catalog and print every error
//! lakegate catalog hash-password   make an Argon2 hash for a catalog's user entry
//! lakegate bench data           generate the TPC-H benchmark lake for catalog/tpch
//! ```

mod local_query;
mod output;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use lakegate_audit::{AuditLog, AuditOptions};
use lakegate_catalog::{Catalog, LoadOptions, StorageEntry, StorageLocation, hash_password};
use lakegate_engine::{
    DEFAULT_FILE_LISTING_TTL, DEFAULT_LISTING_CACHE_BYTES, DEFAULT_MAX_STATEMENT_BYTES,
    DEFAULT_METADATA_CACHE_BYTES, Engine, EngineOptions,
};
use lakegate_flight::{
    DEFAULT_MAX_PARAMETER_BYTES, EnvelopeKey, LakegateFlightService, QueryLimits, ServiceOptions,
    TlsIdentity, bind, serve_until_signal,
};
use lakegate_policy::{CellValue, EffectiveAccess, RowFilter, TableName};

use crate::local_query::run_query;
use crate::output::{OutputFormat, print_output};
use lakegate::demo_data::{ensure_demo_data, publish_demo_data};
use lakegate::parquet_files::Generation;
use lakegate::tpch_data::ensure_tpch_data;

#[derive(Parser)]
#[command(
    name = "lakegate",
    version,
    about = "Lake Formation-style fine-grained access to Parquet data lakes"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
        /// The catalog directory.
        #[arg(long, default_value = "catalog/demo")]
        catalog: PathBuf,
        /// The data directory (`${data_dir}` in the catalog).
        #[arg(long, default_value = "./lakegate-data")]
        data_dir: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:50051")]
        listen: std::net::SocketAddr,
        /// How long bearer tokens stay valid, in seconds.
        #[arg(long, default_value_t = 43_200)]
        token_ttl: u64,
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
        /// Memory one query may hold, such as `512MiB` or `2GiB` (operators
        /// that can spill do so at the limit; others fail with
        /// RESOURCE_EXHAUSTED). Default: no limit.
        #[arg(long, value_parser = parse_bytes)]
        query_memory: Option<usize>,
        /// Seconds a table's file list is trusted: files added to or removed
        /// from a table's prefix are seen within this time.
        #[arg(long, default_value_t = DEFAULT_FILE_LISTING_TTL.as_secs())]
        file_listing_ttl: u64,
        /// Memory for Parquet footers kept across queries (validated per
        /// file by size and modification time), in bytes or with a unit (`64MiB`); `0` turns
        /// the cache off and every query reads the footers again.
        #[arg(long, value_parser = parse_bytes, default_value_t = DEFAULT_METADATA_CACHE_BYTES)]
        metadata_cache: usize,
        /// Memory for tables' file listings, kept for --file-listing-ttl
        /// (about 200 bytes an object); a listing that does not fit is
        /// listed again by every query.
        #[arg(long, value_parser = parse_bytes, default_value_t = DEFAULT_LISTING_CACHE_BYTES)]
        listing_cache: usize,
        /// Memory for tables kept decoded across queries (`4GiB`): a table
        /// is loaded whole when first scanned, and read from memory while
        /// its files stay the same; the least recently scanned make room.
        /// Default 0: none.
        #[arg(long, value_parser = parse_bytes, default_value_t = 0)]
        table_cache: usize,
        /// Queries one user may run at once; more get RESOURCE_EXHAUSTED.
        #[arg(long, default_value_t = 64)]
        max_queries_per_user: usize,
        /// Seconds a query may run, results included; 0 means no limit.
        #[arg(long, default_value_t = 3600)]
        query_timeout: u64,
        /// Seconds without a batch after which a result stream sends an
        /// empty one, so that proxies keep it open; 0 means never.
        #[arg(long, default_value_t = 15)]
        keep_alive: u64,
        /// The longest SQL statement accepted, in bytes or with a unit
        /// (`8MiB`); longer ones are refused before they are read.
        #[arg(long, value_parser = parse_bytes, default_value_t = DEFAULT_MAX_STATEMENT_BYTES)]
        max_statement_bytes: usize,
        /// The largest set of parameters one prepared statement may bind,
        /// in bytes of Arrow data or with a unit (`1MiB`).
        #[arg(long, value_parser = parse_bytes, default_value_t = DEFAULT_MAX_PARAMETER_BYTES)]
        max_parameter_bytes: usize,
        /// Send text and binary columns in Arrow's view types (`Utf8View`,
        /// `BinaryView`) instead of `Utf8` and `Binary`, for clients that
        /// read them.
        #[arg(long)]
        view_types: bool,
        /// Seconds running queries get to finish after SIGTERM or Ctrl-C;
        /// then their streams end with UNAVAILABLE and the server exits.
        #[arg(long, default_value_t = DEFAULT_SHUTDOWN_GRACE_SECS)]
        shutdown_grace: u64,
        /// PEM certificate chain: serve over TLS (grpc+tls://) with
        /// `--tls-key`.
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// PEM private key of `--tls-cert`.
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
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
}

#[derive(Subcommand)]
enum BenchCommand {
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
enum CatalogCommand {
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
}

#[tokio::main]
async fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Demo {
            data_dir,
            scale,
            catalog,
            listen,
            no_serve,
            storage,
        } => {
            let engine = demo(&data_dir, scale, &catalog, storage.as_deref()).await?;
            if no_serve {
                return Ok(());
            }
            let options = ServiceOptions::default();
            let audit = open_audit(AuditOptions::in_dir(default_audit_dir(&data_dir)))?;
            let service = LakegateFlightService::new(engine, EnvelopeKey::random(), options)
                .with_audit(audit.clone());
            let (listener, addr) = bind(listen)
                .await
                .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
            print_connection_snippets(addr);
            let grace = std::time::Duration::from_secs(DEFAULT_SHUTDOWN_GRACE_SECS);
            serve_until_signal(listener, service, None, grace, &audit).await
        }
        Command::Query {
            catalog,
            data_dir,
            user,
            role,
            database,
            format,
            sql,
        } => {
            let engine = load_engine(&catalog, &data_dir).await?;
            let audit = open_audit(AuditOptions::in_dir(default_audit_dir(&data_dir)))?;
            let sql = if sql == "-" {
                std::io::read_to_string(std::io::stdin())
                    .map_err(|e| format!("cannot read the statement from standard input: {e}"))?
            } else {
                sql
            };
            let (role, database) = (role.as_deref(), database.as_deref());
            run_query(&engine, &audit, &user, role, database, &sql, format).await
        }
        Command::Access {
            catalog,
            data_dir,
            role,
            table,
        } => {
            let engine = load_engine(&catalog, &data_dir).await?;
            let table = match table.as_deref() {
                Some(text) => Some(
                    text.split_once('.')
                        .map(|(db, table)| TableName::new(db, table))
                        .ok_or_else(|| format!("--table takes db.table, not '{text}'"))?,
                ),
                None => None,
            };
            let access = engine
                .access(&role, table.as_ref())
                .map_err(|e| e.to_string())?;
            print_access(&access, &role, table.as_ref())
        }
        Command::Serve {
            catalog,
            data_dir,
            listen,
            token_ttl,
            key_file,
            audit_dir,
            audit_max_bytes,
            query_memory,
            file_listing_ttl,
            metadata_cache,
            listing_cache,
            table_cache,
            max_queries_per_user,
            query_timeout,
            keep_alive,
            max_statement_bytes,
            max_parameter_bytes,
            view_types,
            shutdown_grace,
            tls_cert,
            tls_key,
        } => {
            let tls = match (&tls_cert, &tls_key) {
                (Some(cert), Some(key)) => Some(TlsIdentity::from_pem_files(cert, key)?),
                _ => None,
            };
            let audit_dir = audit_dir.unwrap_or_else(|| default_audit_dir(&data_dir));
            let engine_options = EngineOptions {
                audit_dir: Some(audit_dir.clone()),
                query_memory,
                file_listing_ttl: std::time::Duration::from_secs(file_listing_ttl),
                metadata_cache_bytes: metadata_cache,
                listing_cache_bytes: listing_cache,
                table_cache_bytes: table_cache,
                max_statement_bytes,
                view_types,
                ..EngineOptions::default()
            };
            let engine = load_engine_with(&catalog, &data_dir, engine_options).await?;
            let key = match key_file {
                Some(path) => EnvelopeKey::from_file(&path)?,
                None => EnvelopeKey::random(),
            };
            if max_queries_per_user == 0 {
                return Err("--max-queries-per-user must be at least 1".into());
            }
            let options = ServiceOptions {
                token_ttl: std::time::Duration::from_secs(token_ttl),
                limits: QueryLimits {
                    max_queries_per_user,
                    timeout: (query_timeout > 0)
                        .then(|| std::time::Duration::from_secs(query_timeout)),
                },
                keep_alive: (keep_alive > 0).then(|| std::time::Duration::from_secs(keep_alive)),
                max_parameter_bytes,
                ..ServiceOptions::default()
            };
            let audit = open_audit(AuditOptions {
                max_file_bytes: audit_max_bytes,
                ..AuditOptions::in_dir(audit_dir)
            })?;
            let service =
                LakegateFlightService::new(engine, key, options).with_audit(audit.clone());
            let (listener, _) = bind(listen)
                .await
                .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
            let grace = std::time::Duration::from_secs(shutdown_grace);
            serve_until_signal(listener, service, tls, grace, &audit).await
        }
        Command::Bench {
            command: BenchCommand::Data { data_dir, scale },
        } => {
            let started = std::time::Instant::now();
            let (generation, rows) =
                ensure_tpch_data(&data_dir, scale).map_err(|e| e.to_string())?;
            let place = data_dir.join("tpch");
            match generation {
                Generation::Reused => {
                    println!("reusing TPC-H data in {} (scale {scale})", place.display())
                }
                Generation::Generated => {
                    for (table, rows) in rows {
                        println!("  {table}: {rows} rows");
                    }
                    println!(
                        "TPC-H scale {scale} written to {} in {:.1} s; serve it with \
                         `lakegate serve --catalog catalog/tpch --data-dir {}`",
                        place.display(),
                        started.elapsed().as_secs_f64(),
                        data_dir.display()
                    );
                }
            }
            Ok(())
        }
        Command::Catalog { command } => match command {
            CatalogCommand::Check { dir, data_dir } => {
                let load = LoadOptions {
                    data_dir,
                    ..Default::default()
                };
                let engine = Engine::check_catalog(&dir, &load, EngineOptions::default())
                    .await
                    .map_err(|e| e.to_string())?;
                let summary = engine.summary();
                println!("catalog '{}' is valid: {summary}", summary.name);
                Ok(())
            }
            CatalogCommand::HashPassword => {
                let mut password = String::new();
                std::io::stdin()
                    .read_line(&mut password)
                    .map_err(|e| format!("cannot read the password: {e}"))?;
                let password = password.trim_end_matches(['\r', '\n']);
                if password.is_empty() {
                    return Err("the password is empty".into());
                }
                println!("{}", hash_password(password));
                Ok(())
            }
        },
    }
}

/// Loads and checks a catalog over `data_dir`; `system.audit` reads the
/// default audit directory.
async fn load_engine(catalog: &Path, data_dir: &Path) -> Result<Engine, String> {
    let options = EngineOptions {
        audit_dir: Some(default_audit_dir(data_dir)),
        ..EngineOptions::default()
    };
    load_engine_with(catalog, data_dir, options).await
}

async fn load_engine_with(
    catalog: &Path,
    data_dir: &Path,
    engine_options: EngineOptions,
) -> Result<Engine, String> {
    let options = LoadOptions {
        data_dir: data_dir.to_path_buf(),
        ..Default::default()
    };
    load_engine_from(catalog, &options, engine_options).await
}

async fn load_engine_from(
    catalog: &Path,
    options: &LoadOptions,
    engine_options: EngineOptions,
) -> Result<Engine, String> {
    let catalog = Catalog::load(catalog, options)
        .await
        .map_err(|e| e.to_string())?;
    Engine::new(catalog, engine_options)
        .await
        .map_err(|e| e.to_string())
}

/// A byte count: a number with an optional unit (`KiB`, `MiB`, `GiB`, `TiB`,
/// or `K`, `M`, `G`, `T` meaning the same powers of 1024).
fn parse_bytes(text: &str) -> Result<usize, String> {
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

/// Seconds running queries get to finish when the server is stopped.
const DEFAULT_SHUTDOWN_GRACE_SECS: u64 = 10;

/// Where the audit log goes unless `--audit-dir` says otherwise.
fn default_audit_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("audit")
}

fn open_audit(options: AuditOptions) -> Result<AuditLog, String> {
    let dir = options.dir.display().to_string();
    AuditLog::open(options).map_err(|e| format!("cannot open the audit log in {dir}: {e}"))
}

/// The demo walkthrough: who runs what, as in DESIGN §4.
const WALKTHROUGH: [(&str, Option<&str>, &str); 7] = [
    ("david", None, "SHOW DATABASES"),
    ("david", None, "SELECT * FROM dl_tpc_customer LIMIT 10"),
    (
        "david",
        None,
        "SELECT * FROM dl_tpc_customer_address LIMIT 10",
    ),
    (
        "tina",
        Some("sales"),
        "SELECT * FROM dl_tpc_web_sales LIMIT 10",
    ),
    (
        "tina",
        Some("electronics"),
        "SELECT * FROM dl_tpc_item LIMIT 10",
    ),
    (
        "tina",
        Some("electronics"),
        "SELECT i_category, count(*) AS items FROM dl_tpc_item GROUP BY i_category",
    ),
    (
        "admin",
        None,
        "SELECT count(*) AS all_web_sales FROM dl_tpc_web_sales",
    ),
];

/// Ready-to-paste client code for the demo server.
fn print_connection_snippets(addr: std::net::SocketAddr) {
    println!(
        r#"
Connect from Python (pip install adbc-driver-flightsql pyarrow):

    import adbc_driver_flightsql.dbapi as flight_sql
    conn = flight_sql.connect("grpc://{addr}", db_kwargs={{
        "username": "tina", "password": "tina-pass",
        "adbc.flight.sql.rpc.call_header.x-lakegate-role": "electronics"}}, autocommit=True)
    cur = conn.cursor()
    cur.execute("SELECT i_category, count(*) FROM dl_tpc_item GROUP BY 1")
    print(cur.fetch_arrow_table())

or with plain pyarrow.flight:

    import pyarrow.flight as flight
    client = flight.FlightClient("grpc://{addr}")
    options = flight.FlightCallOptions(headers=[client.authenticate_basic_token("david", "david-pass")])
    sql = b"SELECT c_customer_id, c_birth_country, c_email_address FROM dl_tpc_customer LIMIT 5"
    print(client.do_get(flight.Ticket(sql), options).read_all())
"#
    );
}

async fn demo(
    data_dir: &Path,
    scale: f64,
    catalog: &Path,
    storage: Option<&str>,
) -> Result<Engine, String> {
    if !scale.is_finite() || scale <= 0.0 {
        return Err(format!("--scale must be positive, not {scale}"));
    }
    if !catalog.join("catalog.toml").exists() {
        return Err(format!(
            "no demo catalog at '{}' (run from the repository root, or pass --catalog)",
            catalog.display()
        ));
    }
    match ensure_demo_data(data_dir, scale, true).map_err(|e| e.to_string())? {
        Generation::Generated => println!("demo data written to {}", data_dir.display()),
        Generation::Reused => println!(
            "reusing demo data in {} (scale {scale})",
            data_dir.display()
        ),
    }
    if let Some(url) = storage {
        let entry = StorageEntry {
            name: "demo_lake".into(),
            url: url.into(),
            ..Default::default()
        };
        let location = StorageLocation::open(&entry, url, Path::new("."))
            .map_err(|e| format!("--storage {url}: {e}"))?;
        match publish_demo_data(data_dir, &location)
            .await
            .map_err(|e| e.to_string())?
        {
            Generation::Generated => println!("demo data copied to {}", location.url),
            Generation::Reused => println!("reusing demo data in {}", location.url),
        }
    }
    let options = LoadOptions {
        data_dir: data_dir.to_path_buf(),
        data_root: storage.map(str::to_string),
    };
    let engine = load_engine_from(
        catalog,
        &options,
        EngineOptions {
            audit_dir: Some(default_audit_dir(data_dir)),
            ..EngineOptions::default()
        },
    )
    .await?;
    for (user, role, sql) in WALKTHROUGH {
        let mut session = engine.session(user, role).map_err(|e| e.to_string())?;
        println!("\n── {user} as {}  ▸ USE tpc; {sql}", session.role());
        session.use_database("tpc").map_err(|e| e.to_string())?;
        match session.execute(sql).await {
            Ok(output) => {
                if let Err(e) = print_output(output, OutputFormat::Table).await {
                    println!("error: {e}");
                }
            }
            Err(e) => println!("error: {e}"),
        }
    }
    println!(
        "\nTry your own: cargo run -- query --data-dir {} --user tina --role electronics \"SELECT i_brand, count(*) FROM dl_tpc_item GROUP BY 1\"",
        data_dir.display()
    );
    Ok(engine)
}

fn print_access(
    tables: &[EffectiveAccess],
    role: &str,
    only: Option<&TableName>,
) -> Result<(), String> {
    if let (Some(name), true) = (only, tables.is_empty()) {
        println!("{name}: no access (no grant)");
    }
    for access in tables {
        let name = &access.table;
        let privilege = if access.can_select {
            "SELECT"
        } else {
            "DESCRIBE only"
        };
        println!("{name}: {privilege} (grants: {})", access.grants.join(", "));
        let hidden = &access.hidden_columns;
        for column in &access.columns {
            let rule = match column.uniform_value(&access.row_filter) {
                Some(CellValue::Raw) => "visible".to_string(),
                Some(CellValue::Masked(mask)) => format!("masked: {}", mask.name),
                None => format!(
                    "cell-level: {}",
                    column
                        .branches
                        .iter()
                        .map(|b| {
                            let value = match &b.value {
                                CellValue::Raw => "raw".to_string(),
                                CellValue::Masked(mask) => mask.name.clone(),
                            };
                            match &b.when {
                                Some(p) => format!("{value} where grant {}", p.grant),
                                None => value,
                            }
                        })
                        .collect::<Vec<_>>()
                        .join("; else ")
                ),
            };
            println!("  {:<28} {rule}", column.name);
        }
        if !hidden.is_empty() {
            println!("  hidden columns: {}", hidden.join(", "));
        }
        match &access.row_filter {
            RowFilter::AllRows => println!("  rows: all"),
            RowFilter::AnyOf(predicates) => {
                println!("  rows: where any of");
                for p in predicates {
                    println!("    [{}] {}", p.grant, p.sql);
                }
            }
        }
    }
    if tables.is_empty() && only.is_none() {
        println!("role '{role}' has no access to any table");
    }
    Ok(())
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
