//! The `lakegate` binary, run as a user runs it.

use std::process::Command;

use crate::common;

fn lakegate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lakegate"))
}

#[test]
fn query_prints_a_table_for_the_demo_roles() {
    let data_dir = common::demo_data_dir();
    let run = |user: &str, role: &str, sql: &str, format: &str| {
        let output = lakegate()
            .current_dir(common::repo_root())
            .args(["query", "--data-dir"])
            .arg(&data_dir)
            .args(["--user", user, "--role", role, "--format", format, sql])
            .output()
            .unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).to_string(),
            String::from_utf8_lossy(&output.stderr).to_string(),
        )
    };
    let (ok, stdout, stderr) = run(
        "tina",
        "electronics",
        "SELECT DISTINCT i_category FROM dl_tpc_item",
        "table",
    );
    assert!(ok, "{stderr}");
    assert!(stdout.contains("| Electronics |"), "{stdout}");
    assert!(stdout.contains("1 row(s)"), "{stdout}");

    let (ok, stdout, _) = run(
        "david",
        "marketing",
        "SELECT c_customer_sk, c_email_address FROM dl_tpc_customer ORDER BY 1 LIMIT 2",
        "csv",
    );
    assert!(ok);
    assert!(
        stdout.starts_with("c_customer_sk,c_email_address\n"),
        "{stdout}"
    );

    let (ok, stdout, _) = run("david", "marketing", "SELECT 1 AS one", "json");
    assert!(ok);
    assert_eq!(stdout.trim(), r#"{"one":1}"#);

    let (ok, _, stderr) = run(
        "david",
        "marketing",
        "SELECT * FROM dl_tpc_customer_address LIMIT 10",
        "table",
    );
    assert!(!ok);
    assert!(
        stderr.contains(
            "table 'tpc.dl_tpc_customer_address' does not exist or role 'marketing' may not read it"
        ),
        "{stderr}"
    );

    let (ok, _, stderr) = run("david", "sales", "SELECT 1", "table");
    assert!(!ok);
    assert!(
        stderr.contains("user 'david' may not assume role 'sales'"),
        "{stderr}"
    );

    // Each run is audited like a Flight call: who, which role, what it read.
    let log = std::fs::read_to_string(common::audit_dir(&data_dir).join("audit.jsonl")).unwrap();
    let events: Vec<lakegate_audit::AuditEvent> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let read = events
        .iter()
        .rev()
        .find(|e| e.statement.as_deref() == Some("SELECT DISTINCT i_category FROM dl_tpc_item"))
        .expect("the query is audited");
    assert_eq!(
        (
            read.user.as_deref(),
            read.role.as_deref(),
            read.action.as_str()
        ),
        (Some("tina"), Some("electronics"), "query")
    );
    assert_eq!(read.outcome, lakegate_audit::Outcome::Ok);
    assert_eq!(read.rows, 1);
    assert_eq!(read.tables[0].table, "tpc.dl_tpc_item");
    let denied = events
        .iter()
        .rev()
        .find(|e| e.statement.as_deref() == Some("SELECT * FROM dl_tpc_customer_address LIMIT 10"))
        .expect("the refusal is audited");
    assert_eq!(denied.outcome, lakegate_audit::Outcome::Denied);
    assert!(
        denied
            .source_identity
            .as_deref()
            .is_some_and(|s| s.starts_with("lakegate query"))
    );
}

#[test]
fn access_prints_the_effective_access() {
    let output = lakegate()
        .current_dir(common::repo_root())
        .args(["access", "--data-dir"])
        .arg(common::demo_data_dir())
        .args(["--role", "marketing"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("tpc.dl_tpc_customer: SELECT"), "{stdout}");
    assert!(stdout.contains("masked: hash"), "{stdout}");
    assert!(
        stdout.contains("hidden columns: c_salutation, c_first_name, c_last_name"),
        "{stdout}"
    );
    assert!(!stdout.contains("dl_tpc_customer_address"), "{stdout}");
}

#[test]
fn catalog_check_lists_errors_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.toml"),
        "[[role]]\nname = \"r\"\n[[role]]\nname = \"r\"\n[[grant]]\nname = \"g\"\nrole = \"x\"\non = \"nope\"\nprivileges = [\"select\"]\n",
    )
    .unwrap();
    let output = lakegate()
        .args(["catalog", "check"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("bad.toml: role 'r': duplicate name"),
        "{stderr}"
    );
    assert!(
        stderr.contains("bad.toml: grant 'g': unknown role 'x'"),
        "{stderr}"
    );

    let output = lakegate()
        .args([
            "catalog",
            "check",
            "tests/fixtures/shop",
            "--data-dir",
            "/nonexistent",
        ])
        .current_dir(common::repo_root())
        .output()
        .unwrap();
    assert!(!output.status.success());
    // One error for the location, naming its tables.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("storage 'lake': none of its 3 tables (shop.customers, "),
        "{stderr}"
    );
    assert!(stderr.contains("file:///nonexistent"), "{stderr}");
}
