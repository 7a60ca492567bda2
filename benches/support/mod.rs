//! What the benchmarks share: the repository root, the test virtualenv's
//! Python, and the many-grant lake of the planning benchmarks.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::prelude::{SessionConfig, SessionContext};
use lakegate_catalog::hash_password;
use parquet::arrow::ArrowWriter;

/// The value of the environment variable `name`, or `default` when unset;
/// a value that does not parse stops the run with its name.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(text) => text
            .parse()
            .unwrap_or_else(|_| panic!("{name}={text} is not a valid value")),
        Err(_) => default,
    }
}

/// The TPC-H lake at `scale` in the target directory (the layout `lakegate
/// bench data` writes), generated on first use and kept across runs.
pub fn tpch_lake(scale: f64) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "tpch-sf{scale}-layout{}",
        lakegate::tpch_data::TPCH_LAYOUT
    ));
    lakegate::tpch_data::ensure_tpch_data(&dir, scale).expect("TPC-H data");
    dir
}

/// The middle of `samples` once sorted (the upper one of an even count).
pub fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn venv_python() -> PathBuf {
    let venv = std::env::var_os("LAKEGATE_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/lakegate-venv")
        });
    venv.join("bin/python")
}

/// The test virtualenv's Python (`scripts/python-venv` makes it; `scripts/test`
/// runs that first).
pub fn python() -> PathBuf {
    let python = venv_python();
    assert!(
        python.exists(),
        "no Python at {} (run scripts/python-venv once to make the virtualenv, or set LAKEGATE_VENV)",
        python.display()
    );
    python
}

/// The test virtualenv's Python if there is one. When `LAKEGATE_VENV` names
/// a virtualenv (as `scripts/test` does) it must exist: the suite never skips
/// what it was asked to run.
pub fn python_if_present() -> Option<PathBuf> {
    if std::env::var_os("LAKEGATE_VENV").is_some() {
        return Some(python());
    }
    let python = venv_python();
    python.exists().then_some(python)
}

/// An engine over the demo catalog (`catalog/demo`) and the demo data in
/// `data_dir`, with `options`.
pub async fn demo_engine(
    data_dir: &Path,
    options: lakegate_engine::EngineOptions,
) -> lakegate_engine::Engine {
    let load = lakegate_catalog::LoadOptions {
        data_dir: data_dir.to_path_buf(),
        ..Default::default()
    };
    let catalog = lakegate_catalog::Catalog::load(&repo_root().join("catalog/demo"), &load)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    lakegate_engine::Engine::new(catalog, options)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Where benchmarks write their results (`$CARGO_TARGET_DIR/bench-results`).
pub fn results_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("../bench-results");
    std::fs::create_dir_all(&dir).expect("the results directory can be made");
    dir
}

/// The planning benchmarks' query: a 5-table join over tables that role
/// `r000` of [`write_planning_lake`] holds grants with row filters and masks on.
pub const PLANNING_JOIN: &str = "SELECT a.id, b.email, c.region, d.v, e.k \
    FROM t0000 a JOIN t0010 b ON a.id = b.id JOIN t0020 c ON b.id = c.id \
    JOIN t0030 d ON c.id = d.id JOIN t0040 e ON d.id = e.id \
    WHERE a.region = 'EU' AND e.k > 3";

/// Plain DataFusion over the same `tables` tables of [`write_planning_lake`],
/// unsecured: the planning benchmarks' baseline.
pub async fn planning_lake_context(data_dir: &Path, tables: usize) -> SessionContext {
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(2));
    let url =
        ListingTableUrl::parse(format!("file://{}/shared.parquet", data_dir.display())).unwrap();
    let options = ListingOptions::new(Arc::new(ParquetFormat::default()));
    let schema = options.infer_schema(&ctx.state(), &url).await.unwrap();
    for t in 0..tables {
        let config = ListingTableConfig::new(url.clone())
            .with_listing_options(options.clone())
            .with_schema(Arc::clone(&schema));
        ctx.register_table(format!("t{t:04}"), baseline_table(&ctx, config))
            .unwrap();
    }
    ctx
}

/// A plain DataFusion listing table for a baseline, with the runtime's file
/// statistics cache, as the engine opens its tables: only Lakegate's code
/// differs between a baseline and the engine.
pub fn baseline_table(ctx: &SessionContext, config: ListingTableConfig) -> Arc<ListingTable> {
    let statistics = ctx.runtime_env().cache_manager.get_file_statistic_cache();
    Arc::new(
        ListingTable::try_new(config)
            .unwrap()
            .with_cache(statistics),
    )
}

/// A lake for planning benchmarks: `tables` tables that all read one small
/// file (the benchmarks are about planning), and `roles` roles with
/// `grants_per_role` grants each, every grant with a row filter and a mask;
/// user `u` (password `u-pass`) may assume every role, `r000` by default.
pub fn write_planning_lake(
    data_dir: &Path,
    catalog_dir: &Path,
    tables: usize,
    roles: usize,
    grants_per_role: usize,
) {
    std::fs::create_dir_all(catalog_dir).unwrap();
    write_shared_file(data_dir);
    write_grant_catalog(catalog_dir, tables, roles, grants_per_role);
}

/// The same lake as [`write_planning_lake`], governed by tags: every table
/// tagged `slot = 's<t mod 10>'` and its `email` column `pii = 'email'`;
/// role `r<n>` reads the tables of its slot (`GRANT SELECT ON TAGGED slot =
/// ...`, which reaches what its ten-apart per-table grants reach), under a
/// tag row filter `region <> 'APAC'` and a tag mask hashing `pii = 'email'`.
pub fn write_tagged_planning_lake(
    data_dir: &Path,
    catalog_dir: &Path,
    tables: usize,
    roles: usize,
) {
    std::fs::create_dir_all(catalog_dir).unwrap();
    write_shared_file(data_dir);
    let mut toml = String::from(
        "[catalog]\nname = \"lakegate\"\ndefault_database = \"bench\"\n\n\
         [[storage]]\nname = \"data\"\nurl = \"${data_dir}\"\n\n\
         [[database]]\nname = \"bench\"\n\n\
         [[tag]]\nkey = \"slot\"\nvalues = [\"s0\", \"s1\", \"s2\", \"s3\", \"s4\", \"s5\", \"s6\", \"s7\", \"s8\", \"s9\"]\n\n\
         [[tag]]\nkey = \"pii\"\nvalues = [\"email\"]\n\n",
    );
    for t in 0..tables {
        toml.push_str(&format!(
            "[[table]]\ndatabase = \"bench\"\nname = \"t{t:04}\"\nstorage = \"data\"\npath = \"shared.parquet\"\n\
             tags = {{ slot = \"s{}\" }}\ncolumn_tags = {{ email = {{ pii = \"email\" }} }}\n\n",
            t % 10
        ));
    }
    let roles: Vec<String> = (0..roles).map(|r| format!("r{r:03}")).collect();
    toml.push_str(&format!(
        "[[user]]\nname = \"u\"\npassword_hash = \"{}\"\nmay_assume = [{}]\ndefault_role = \"r000\"\n\n",
        hash_password("u-pass"),
        roles.iter().map(|r| format!("\"{r}\"")).collect::<Vec<_>>().join(", ")
    ));
    for (r, role) in roles.iter().enumerate() {
        toml.push_str(&format!(
            "[[role]]\nname = \"{role}\"\n\n\
             [[grant]]\nname = \"g_{r}\"\nrole = \"{role}\"\ntagged = \"slot = 's{slot}'\"\nprivileges = [\"select\"]\n\n\
             [[tag_row_filter]]\nname = \"f_{r}\"\nrole = \"{role}\"\ntagged = \"slot = 's{slot}'\"\nrow_filter = \"region <> 'APAC'\"\n\n\
             [[tag_mask]]\nname = \"m_{r}\"\nrole = \"{role}\"\ntagged = \"pii = 'email'\"\nmask = \"hash\"\n\n",
            slot = r % 10
        ));
    }
    std::fs::write(catalog_dir.join("catalog.toml"), toml).unwrap();
}

fn write_shared_file(dir: &Path) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("k", DataType::Int64, false),
        Field::new("region", DataType::Utf8, false),
        Field::new("email", DataType::Utf8, true),
        Field::new("v", DataType::Float64, false),
    ]));
    let n = 100i64;
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(Int64Array::from((0..n).collect::<Vec<_>>())),
            Arc::new(Int64Array::from((0..n).map(|i| i % 10).collect::<Vec<_>>())),
            Arc::new(StringArray::from(
                (0..n)
                    .map(|i| ["EU", "US", "APAC"][i as usize % 3])
                    .collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                (0..n)
                    .map(|i| format!("user{i}@example.com"))
                    .collect::<Vec<_>>(),
            )),
            Arc::new(Float64Array::from(
                (0..n).map(|i| i as f64).collect::<Vec<_>>(),
            )),
        ],
    )
    .unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let file = std::fs::File::create(dir.join("shared.parquet")).unwrap();
    let mut writer = ArrowWriter::try_new(file, schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

fn write_grant_catalog(dir: &Path, tables: usize, roles: usize, grants_per_role: usize) {
    let mut toml = String::from(
        "[catalog]\nname = \"lakegate\"\ndefault_database = \"bench\"\n\n\
         [[storage]]\nname = \"data\"\nurl = \"${data_dir}\"\n\n\
         [[database]]\nname = \"bench\"\n\n",
    );
    for t in 0..tables {
        toml.push_str(&format!(
            "[[table]]\ndatabase = \"bench\"\nname = \"t{t:04}\"\nstorage = \"data\"\npath = \"shared.parquet\"\n\n"
        ));
    }
    let roles: Vec<String> = (0..roles).map(|r| format!("r{r:03}")).collect();
    for role in &roles {
        toml.push_str(&format!("[[role]]\nname = \"{role}\"\n\n"));
    }
    toml.push_str(&format!(
        "[[user]]\nname = \"u\"\npassword_hash = \"{}\"\nmay_assume = [{}]\ndefault_role = \"r000\"\n\n",
        hash_password("u-pass"),
        roles.iter().map(|r| format!("\"{r}\"")).collect::<Vec<_>>().join(", ")
    ));
    for (r, role) in roles.iter().enumerate() {
        for j in 0..grants_per_role {
            // Distinct tables per role; role r000 holds t0000, t0010, t0020, ...
            let table = (r + j * 10) % tables;
            toml.push_str(&format!(
                "[[grant]]\nname = \"g_{r}_{j}\"\nrole = \"{role}\"\non = \"bench.t{table:04}\"\n\
                 privileges = [\"select\"]\nrow_filter = \"region <> 'APAC' AND k >= {}\"\n\
                 masks = {{ email = \"hash\" }}\n\n",
                j % 3
            ));
        }
    }
    std::fs::write(dir.join("catalog.toml"), toml).unwrap();
}

/// nginx balancing gRPC (`grpc_pass`, round robin per call) over servers,
/// as `docs/deployment.md` configures it; stopped on drop.
pub struct Balancer {
    child: std::process::Child,
    /// `grpc://127.0.0.1:<port>`.
    pub address: String,
    _dir: tempfile::TempDir,
}

impl Balancer {
    /// nginx in front of `servers` (`host:port`), when nginx is installed
    /// (`scripts/test` installs it); `None` otherwise.
    pub fn start(servers: &[std::net::SocketAddr]) -> Option<Self> {
        let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .map(PathBuf::from)
            .find(|path| path.exists())?;
        let dir = tempfile::tempdir().expect("a temporary directory");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|probe| probe.local_addr())
            .expect("a free port")
            .port();
        let upstreams: String = servers
            .iter()
            .map(|server| format!("        server {server} max_fails=1 fail_timeout=10s;\n"))
            .collect();
        let d = dir.path().display();
        let conf = format!(
            "worker_processes 1;\ndaemon off;\nuser root;\npid {d}/nginx.pid;\n\
             error_log {d}/error.log warn;\nevents {{ worker_connections 1024; }}\n\
             http {{\n    access_log off;\n    client_body_temp_path {d}/body;\n\
             proxy_temp_path {d}/proxy;\n    fastcgi_temp_path {d}/fastcgi;\n\
             uwsgi_temp_path {d}/uwsgi;\n    scgi_temp_path {d}/scgi;\n\
             upstream lakegate {{\n{upstreams}    }}\n\
             server {{\n        listen 127.0.0.1:{port} http2;\n\
             client_max_body_size 64m;\n        location / {{\n\
             grpc_pass grpc://lakegate;\n            grpc_read_timeout 300s;\n\
             grpc_send_timeout 300s;\n            grpc_next_upstream error timeout;\n\
             }}\n    }}\n}}\n"
        );
        let path = dir.path().join("nginx.conf");
        std::fs::write(&path, conf).expect("the configuration is written");
        let child = std::process::Command::new(nginx)
            .arg("-c")
            .arg(&path)
            .arg("-p")
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("nginx starts");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "nginx did not start");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Some(Self {
            child,
            address: format!("grpc://127.0.0.1:{port}"),
            _dir: dir,
        })
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
