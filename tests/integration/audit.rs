//! The audit log and the per-user limits, through the Flight service: what
//! a read, a denial and a failed sign-in record; `system.audit` for lake
//! administrators only; the per-user query cap, the query timeout and the
//! per-query memory limit.

use std::time::Duration;

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use arrow_flight::sql::client::FlightSqlServiceClient;
use futures::{StreamExt, TryStreamExt};
use lakegate_audit::{AuditEvent, Outcome};
use lakegate_flight::{QueryLimits, ROLE_HEADER, ServiceOptions};

use crate::common;
use crate::flight::{Server, basic, channel, query, raw_handshake, sql_client, start, start_with};

/// The events in the server's audit log, oldest first.
fn events(server: &Server) -> Vec<AuditEvent> {
    let path = common::audit_dir(server.lake.dir.path()).join("audit.jsonl");
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[tokio::test]
async fn reads_denials_and_failed_sign_ins_are_audited() {
    let server = start().await;
    // The source identity is sent at sign-in, sealed into the token, and
    // recorded on every event of the calls made with it.
    let mut analyst = FlightSqlServiceClient::new(channel(server.addr).await);
    analyst.set_header("x-lakegate-source-identity", "notebook-7");
    analyst.handshake("ann", "ann-pass").await.unwrap();
    analyst.set_header(ROLE_HEADER, "analyst");
    let batches = query(&mut analyst, "SELECT id, email FROM shop.customers").await;
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    let denied = analyst
        .execute("SELECT * FROM hr.salaries".into(), None)
        .await
        .unwrap_err();
    assert!(denied.to_string().contains("may not read it"));
    assert!(
        raw_handshake(server.addr, &basic("ann", "wrong"))
            .await
            .is_err()
    );

    let events = events(&server);
    let read = events
        .iter()
        .find(|e| e.action.starts_with("DoGet/") && e.outcome == Outcome::Ok)
        .expect("the read is audited");
    assert_eq!(read.user.as_deref(), Some("ann"));
    assert_eq!(read.role.as_deref(), Some("analyst"));
    assert_eq!(read.source_identity.as_deref(), Some("notebook-7"));
    assert_eq!(
        read.statement.as_deref(),
        Some("SELECT id, email FROM shop.customers")
    );
    assert_eq!(read.rows, rows as u64);
    assert!(read.bytes > 0);
    assert_eq!(read.tables.len(), 1);
    assert_eq!(read.tables[0].table, "shop.customers");
    assert_eq!(read.tables[0].columns, ["id", "email"]);
    assert_eq!(read.tables[0].policies, ["analyst_customers"]);
    assert!(read.peer.is_some());

    let denial = events
        .iter()
        .find(|e| e.statement.as_deref() == Some("SELECT * FROM hr.salaries"))
        .expect("the denial is audited");
    assert_eq!(denial.outcome, Outcome::Denied);
    assert_eq!(denial.error_code.as_deref(), Some("PERMISSION_DENIED"));
    assert!(denial.error.as_deref().unwrap().contains("may not read it"));

    let sign_in = events
        .iter()
        .find(|e| e.action == "Handshake" && e.outcome != Outcome::Ok)
        .expect("the failed sign-in is audited");
    assert_eq!(
        (sign_in.user.as_deref(), sign_in.outcome),
        (Some("ann"), Outcome::Denied)
    );
    assert!(
        events
            .iter()
            .all(|e| !e.statement.iter().any(|s| s.contains("region = 'EU'"))),
        "no policy predicate is ever written to the log"
    );

    // Administrators read the log as a table; nobody else sees it.
    let mut root = sql_client(server.addr, "root", None).await;
    let batches = query(
        &mut root,
        "SELECT count(*) FROM system.audit WHERE outcome = 'denied'",
    )
    .await;
    assert!(batches[0].column(0).as_primitive::<Int64Type>().value(0) >= 2);
    let hidden = analyst
        .execute("SELECT * FROM system.audit".into(), None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        hidden.contains("table 'system.audit' does not exist or role 'analyst' may not read it"),
        "{hidden}"
    );
}

#[tokio::test]
async fn a_user_at_the_query_cap_gets_resource_exhausted() {
    let server = start_with(ServiceOptions {
        limits: QueryLimits {
            max_queries_per_user: 1,
            timeout: None,
        },
        ..ServiceOptions::default()
    })
    .await;
    let mut ann = sql_client(server.addr, "ann", Some("auditor")).await;
    // A result far larger than the transport's buffers, left unread: the
    // query stays running and holds ann's only slot.
    let big = ann
        .execute(
            "SELECT value FROM generate_series(1, 100000000)".into(),
            None,
        )
        .await
        .unwrap();
    let mut running = ann
        .do_get(big.endpoint[0].ticket.clone().unwrap())
        .await
        .unwrap();
    assert!(running.next().await.is_some());

    let refused = ann.execute("SELECT 1".into(), None).await.unwrap();
    let Err(status) = ann
        .do_get(refused.endpoint[0].ticket.clone().unwrap())
        .await
    else {
        panic!("a query beyond the cap must be refused");
    };
    assert!(
        status.to_string().contains("already runs 1 queries"),
        "{status}"
    );

    // Other users are not affected, and ann's slot comes back when her
    // stream is dropped.
    let mut root = sql_client(server.addr, "root", None).await;
    assert_eq!(query(&mut root, "SELECT 1").await[0].num_rows(), 1);
    drop(running);
    let mut freed = false;
    for _ in 0..50 {
        let info = ann.execute("SELECT 1".into(), None).await.unwrap();
        if ann
            .do_get(info.endpoint[0].ticket.clone().unwrap())
            .await
            .is_ok()
        {
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        freed,
        "the slot is released when the client drops the stream"
    );
}

#[tokio::test]
async fn a_query_past_its_timeout_is_cancelled() {
    let server = start_with(ServiceOptions {
        limits: QueryLimits {
            max_queries_per_user: 4,
            timeout: Some(Duration::from_secs(1)),
        },
        ..ServiceOptions::default()
    })
    .await;
    let mut ann = sql_client(server.addr, "ann", Some("auditor")).await;
    let started = std::time::Instant::now();
    let info = ann
        .execute(
            "SELECT count(*) FROM generate_series(1, 100000000000)".into(),
            None,
        )
        .await
        .unwrap();
    let outcome: Result<Vec<_>, _> = ann
        .do_get(info.endpoint[0].ticket.clone().unwrap())
        .await
        .unwrap()
        .try_collect()
        .await;
    let error = outcome.unwrap_err().to_string();
    assert!(error.contains("longer than the 1 s allowed"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[tokio::test]
async fn a_query_over_its_memory_limit_gets_resource_exhausted() {
    let lake = common::shop_lake().await;
    let options = lakegate_catalog::LoadOptions {
        data_dir: lake.dir.path().to_path_buf(),
        ..Default::default()
    };
    let catalog =
        lakegate_catalog::Catalog::load(&common::repo_root().join("tests/fixtures/shop"), &options)
            .await
            .unwrap();
    let engine = lakegate_engine::Engine::new(
        catalog,
        lakegate_engine::EngineOptions {
            query_memory: Some(1024 * 1024),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    // A hash join's build side cannot spill: a million rows do not fit in 1 MiB.
    let sql = "SELECT count(*) FROM generate_series(1, 1000000) a \
               JOIN generate_series(1, 1000000) b ON a.value = b.value";
    let mut session = engine.session("root", None).unwrap();
    let error = match session.execute(sql).await {
        Ok(output) => output.collect().await.unwrap_err(),
        Err(error) => error,
    };
    assert!(
        matches!(error, lakegate_engine::EngineError::ResourceExhausted(_)),
        "{error:?}"
    );
    // The limit is per query: a small query in the same engine runs.
    let mut session = engine.session("root", None).unwrap();
    let small = session
        .execute("SELECT count(*) FROM shop.orders")
        .await
        .unwrap();
    assert_eq!(small.collect().await.unwrap()[0].num_rows(), 1);
}
