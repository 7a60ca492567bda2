//! What the benchmarks share: the repository root and the test virtualenv's
//! Python.

#![allow(dead_code)]

use std::path::PathBuf;

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The test virtualenv's Python (`scripts/python-venv` makes it; `scripts/test`
/// runs that first).
pub fn python() -> PathBuf {
    let venv = std::env::var_os("LAKEGATE_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/lakegate-venv")
        });
    let python = venv.join("bin/python");
    assert!(
        python.exists(),
        "no Python at {} (run scripts/python-venv once to make the virtualenv, or set LAKEGATE_VENV)",
        python.display()
    );
    python
}

/// Where benchmarks write their results (`$CARGO_TARGET_DIR/bench-results`).
pub fn results_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("../bench-results");
    std::fs::create_dir_all(&dir).expect("the results directory can be made");
    dir
}
