//! `lakegate demo`: the demo lake, the walkthrough as each demo user, and
//! the client snippets printed for the server that follows.

use std::path::Path;

use lakegate::demo_data::{ensure_demo_data, publish_demo_data};
use lakegate::parquet_files::Generation;
use lakegate_catalog::{LoadOptions, StorageEntry, StorageLocation};
use lakegate_engine::{Engine, EngineOptions};

use crate::output::{OutputFormat, print_output};
use crate::{default_audit_dir, load_engine_from};

/// The demo walkthrough: who runs what, as in DESIGN §4.
const WALKTHROUGH: [(&str, Option<&str>, &str); 10] = [
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
    // Seed 000's write story: electronics writes what it counted to a table
    // of its own (it reads Electronics items only, so that is all it
    // counts); sales may not write there at all.
    (
        "tina",
        Some("electronics"),
        "INSERT INTO category_counts \
         SELECT i_category, count(*), current_user(), now() FROM dl_tpc_item GROUP BY i_category",
    ),
    (
        "tina",
        Some("sales"),
        "INSERT INTO category_counts VALUES ('Books', 1, 'tina', now())",
    ),
    (
        "tina",
        Some("electronics"),
        "SELECT category, items, counted_by FROM category_counts",
    ),
];

/// Ready-to-paste client code for the demo server.
pub fn print_connection_snippets(addr: std::net::SocketAddr) {
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

pub async fn demo(
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
        ..Default::default()
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
