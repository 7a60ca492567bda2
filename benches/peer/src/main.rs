//! The benchmark peer: `datafusion-flight-sql-server` serving the eight
//! TPC-H tables of a data directory (`<data-dir>/tpch/<table>/`) to anyone,
//! with no authentication and no policy. It prints `listening on ADDR` once
//! it accepts connections.
//!
//! Usage: `lakegate-bench-peer DATA_DIR [ADDR]` (default `127.0.0.1:0`).

use datafusion::prelude::{ParquetReadOptions, SessionContext};
use datafusion_flight_sql_server::service::FlightSqlService;

const TABLES: [&str; 8] = [
    "region", "nation", "supplier", "customer", "part", "partsupp", "orders", "lineitem",
];

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
    for table in TABLES {
        let dir = format!("{data_dir}/tpch/{table}/");
        ctx.register_parquet(table, &dir, ParquetReadOptions::default())
            .await?;
    }
    let listener = std::net::TcpListener::bind(&addr)?;
    listener.set_nonblocking(true)?;
    println!("listening on {}", listener.local_addr()?);
    FlightSqlService::new(ctx.state())
        .serve_with_listener(listener)
        .await
}
