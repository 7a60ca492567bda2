//! A `lakegate worker` process on a free loopback port, for the benchmarks
//! and the tests that run queries across workers (included by both).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A `lakegate worker` process, killed when dropped.
pub struct WorkerProcess {
    /// The process.
    pub child: Child,
    /// Where servers reach it (`http://127.0.0.1:PORT/`).
    pub url: url::Url,
    /// The file its standard error (its log) goes to.
    pub log: PathBuf,
}

impl WorkerProcess {
    /// Starts `lakegate worker` (the binary at `binary`) in `repo_root`, over
    /// the storage locations of `catalog` and `data_dir`, with `key_file`.
    pub fn start(
        binary: &Path,
        repo_root: &Path,
        catalog: &Path,
        data_dir: &Path,
        key_file: &Path,
    ) -> Self {
        let log = tempfile::NamedTempFile::new()
            .unwrap()
            .into_temp_path()
            .keep()
            .unwrap();
        let mut child = Command::new(binary)
            .current_dir(repo_root)
            .args(["worker", "--listen", "127.0.0.1:0", "--key-file"])
            .arg(key_file)
            .arg("--catalog")
            .arg(catalog)
            .arg("--data-dir")
            .arg(data_dir)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
        let line = lines
            .find(|line| line.contains("worker on http://"))
            .expect("the worker announces its address");
        // Read on, so that what the worker prints later never meets a
        // closed pipe.
        std::thread::spawn(move || lines.for_each(drop));
        let url = line
            .split_whitespace()
            .find(|word| word.starts_with("http://"))
            .and_then(|word| url::Url::parse(word).ok())
            .expect("a URL");
        Self { child, url, log }
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
