//! `lakegate`: the command-line entry point.
//!
//! ```text
//! lakegate demo                 generate the TPC-DS demo data, load catalog/demo, run the walkthrough
//! lakegate query ... "SQL"      run one statement in-process under a user and role
//! lakegate access ...           print a role's effective access to tables
//! lakegate catalog check DIR    validate a catalog and print every error
//! lakegate catalog hash-password   make an Argon2 hash for a catalog's user entry
//! lakegate bench data           generate the TPC-H benchmark lake for catalog/tpch
//! lakegate admin ...            administer a server's policy store (grant, revoke, list, ...)
//! lakegate worker ...           run a worker that servers with --workers send query stages to
//! ```

mod access;
mod admin_args;
mod admin_cli;
mod admin_tag_cli;
mod cli;
mod demo;
mod local_query;
mod output;
mod policy_source;
mod sign_in;
mod worker;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use lakegate_admin::Administration;
use lakegate_audit::{AuditLog, AuditOptions};
use lakegate_catalog::{Catalog, LoadOptions, hash_password};
use lakegate_engine::{Engine, EngineOptions};
use lakegate_flight::{
    EnvelopeKey, LakegateFlightService, ServiceOptions, Stopping, TlsIdentity, bind, read_key_file,
    serve_until_signal,
};
use lakegate_policy::TableName;

use crate::access::print_access;
use crate::cli::{BenchCommand, CatalogCommand, Cli, Command, DEFAULT_SHUTDOWN_GRACE_SECS};
use crate::demo::{demo, print_connection_snippets};
use crate::local_query::run_query;
use crate::policy_source::{export, load_catalog};
use lakegate::parquet_files::Generation;
use lakegate::tpch_data::ensure_tpch_data;

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = Cli::parse();
    // Before any thread exists: Kerberos reads its keytab from the
    // environment (sign_in.rs).
    if let Command::Serve { identity, .. } = &cli.command
        && let Some(keytab) = &identity.kerberos_keytab
        && let Err(message) = sign_in::use_keytab(keytab)
    {
        eprintln!("error: {message}");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
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
            let stopping = Stopping {
                drain: std::time::Duration::ZERO,
                grace: std::time::Duration::from_secs(DEFAULT_SHUTDOWN_GRACE_SECS),
            };
            serve_until_signal(listener, service, None, stopping, &audit).await
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
            store,
            data_dir,
            listen,
            key_file,
            audit_dir,
            audit_max_bytes,
            engine,
            service,
            shutdown_grace,
            drain_seconds,
            tls_cert,
            tls_key,
            identity,
            workers,
            distribute_from_bytes,
            task_bytes,
        } => {
            let tls = match (&tls_cert, &tls_key) {
                (Some(cert), Some(key)) => Some(TlsIdentity::from_pem_files(cert, key)?),
                _ => None,
            };
            let (sign_in, tls) = sign_in::sign_in_methods(&identity, tls).await?;
            let options = ServiceOptions {
                sign_in,
                ..service.options()?
            };
            let audit_dir = audit_dir.unwrap_or_else(|| default_audit_dir(&data_dir));
            let key_secret = key_file.as_deref().map(read_key_file).transpose()?;
            let mut engine_options = engine.options(audit_dir.clone());
            if let Some(secret) = &key_secret
                && !workers.is_empty()
            {
                let fleet = worker::Fleet {
                    urls: workers,
                    distribute_from_bytes,
                    task_bytes,
                };
                engine_options.workers = Some(fleet.watched(secret));
            }
            let load = LoadOptions {
                data_dir: data_dir.clone(),
                ..Default::default()
            };
            let source = load_catalog(catalog.as_deref(), store.as_deref(), &load).await?;
            let version = source.store.as_ref().map_or(0, |(_, version)| *version);
            let engine = Engine::new_at(source.catalog, engine_options, version)
                .await
                .map_err(|e| e.to_string())?;
            let key = match key_secret {
                Some(secret) => EnvelopeKey::new(secret)?,
                None => EnvelopeKey::random(),
            };
            let audit = open_audit(AuditOptions {
                max_file_bytes: audit_max_bytes,
                ..AuditOptions::in_dir(audit_dir)
            })?;
            let mut service =
                LakegateFlightService::new(engine.clone(), key, options).with_audit(audit.clone());
            if let Some((store, _)) = source.store {
                let administration = Administration::new(store, engine, load);
                administration.watch();
                service = service.with_administration(administration);
            }
            let (listener, _) = bind(listen)
                .await
                .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
            let stopping = Stopping {
                drain: std::time::Duration::from_secs(drain_seconds),
                grace: std::time::Duration::from_secs(shutdown_grace),
            };
            serve_until_signal(listener, service, tls, stopping, &audit).await
        }
        Command::Worker {
            listen,
            key_file,
            catalog,
            data_dir,
        } => worker::run_worker(listen, &key_file, &catalog, &data_dir).await,
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
        Command::Admin {
            server,
            user,
            role,
            tls_ca,
            format,
            command,
        } => {
            let connection = admin_cli::Connection {
                server: &server,
                user: &user,
                role: role.as_deref(),
                tls_ca: tls_ca.as_deref(),
            };
            admin_cli::run_admin(connection, format, command).await
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
            CatalogCommand::Export { store, dir } => {
                let store = lakegate_store::PolicyStore::open(&store)
                    .await
                    .map_err(|e| e.to_string())?;
                let path = export(&store, &dir).await?;
                println!("wrote {}", path.display());
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

/// Where the audit log goes unless `--audit-dir` says otherwise.
fn default_audit_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("audit")
}

fn open_audit(options: AuditOptions) -> Result<AuditLog, String> {
    let dir = options.dir.display().to_string();
    AuditLog::open(options).map_err(|e| format!("cannot open the audit log in {dir}: {e}"))
}
