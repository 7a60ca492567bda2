//! The benchmark peer: `datafusion-flight-sql-server` serving the TPC-H
//! tables of a data directory (each directory `<data-dir>/tpch/<table>/`,
//! as `lakegate bench data` writes them) to anyone,
//! with no authentication and no policy. It prints `listening on ADDR` once
//! it accepts connections.
//!
//! Usage: `lakegate-bench-peer DATA_DIR [ADDR]` (default `127.0.0.1:0`).

use datafusion::prelude::{ParquetReadOptions, SessionContext};
use datafusion_flight_sql_server::service::FlightSqlService;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let data_dir = args
        .next()
        .ok_or("usage: lakegate-bench-peer DATA_DIR [ADDR]")?;
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:0".to_string());
    // DataFusion as it ships: default settings, one listing table per
    // directory.
    let ctx = SessionContext::new();
    for entry in std::fs::read_dir(format!("{data_dir}/tpch"))? {
        let entry = entry?;
        if !entry.file_type()?.is_dir() {
            continue;
        }
        let table = entry
            .file_name()
            .into_string()
            .map_err(|_| "a non-UTF-8 name")?;
        let dir = format!("{data_dir}/tpch/{table}/");
        ctx.register_parquet(&table, &dir, ParquetReadOptions::default())
            .await?;
    }
    let listener = std::net::TcpListener::bind(&addr)?;
    listener.set_nonblocking(true)?;
    println!("listening on {}", listener.local_addr()?);
    FlightSqlService::new(ctx.state())
        .serve_with_listener(listener)
        .await
}
