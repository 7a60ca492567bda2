//! `lakegate query`: one statement run in-process as a user and role, and
//! audited like a Flight call (it reads or writes data, so it leaves a
//! record): who, which role, what was read or written, how it ended.

use std::time::Instant;

use lakegate_audit::{AuditEvent, AuditLog};
use lakegate_engine::{Engine, QueryOutput};

use crate::output::{OutputFormat, print_output};

/// Where a local query comes from, as the audit log records it.
fn source_identity() -> String {
    let os_user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    format!("lakegate query (OS user {os_user})")
}

/// Runs `sql` as `user` under `role` (or its default role) in `database`,
/// prints the result and records the run in `audit`.
pub async fn run_query(
    engine: &Engine,
    audit: &AuditLog,
    user: &str,
    role: Option<&str>,
    database: Option<&str>,
    sql: &str,
    format: OutputFormat,
) -> Result<(), String> {
    let started = Instant::now();
    let mut event = AuditEvent::new("query");
    event.user = Some(user.to_string());
    event.role = role
        .map(str::to_string)
        .or_else(|| engine.default_role(user));
    event.source_identity = Some(source_identity());
    event.statement = Some(sql.to_string());
    let ran = async {
        let mut session = engine.session(user, role)?;
        if let Some(database) = database {
            session.use_database(database)?;
        }
        if session.is_write(sql) {
            let outcome = session.execute_write(sql, None).await?;
            event.tables = outcome.reads.clone();
            event.written = Some(outcome.audit_record());
            return print_output(QueryOutput::written(&outcome), format).await;
        }
        let output = session.execute(sql).await?;
        event.tables = output.reads.clone();
        print_output(output, format).await
    };
    let result = ran.await;
    match &result {
        Ok(printed) => {
            event.rows = printed.rows;
            event.bytes = printed.bytes;
        }
        Err(error) => event.fail(error.code().name(), error.to_string()),
    }
    event.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    audit.record(&event);
    audit
        .sync()
        .map_err(|e| format!("cannot sync the audit log: {e}"))?;
    result.map(drop).map_err(|e| e.to_string())
}
