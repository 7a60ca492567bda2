//! The Flight SQL service in-process, on an ephemeral loopback port, with the
//! arrow-flight clients: authentication, runtime roles, tickets.

use std::net::SocketAddr;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::{HandshakeRequest, Ticket};
use base64::Engine as _;
use futures::TryStreamExt;
use lakegate_audit::{AuditLog, AuditOptions};
use lakegate_engine::{Engine, MASK_METADATA_KEY};
use lakegate_flight::{
    EnvelopeKey, LakegateFlightService, ROLE_HEADER, ServiceOptions, bind, serve_on,
};
use tokio::sync::oneshot;
use tonic::Code;
use tonic::transport::Channel;

use crate::common;

/// A running server; dropping it shuts the server down.
pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    _stop: oneshot::Sender<()>,
    pub(crate) lake: common::ShopLake,
}

pub(crate) async fn start() -> Server {
    start_with(ServiceOptions::default()).await
}

/// A server over the shop lake with `options`, auditing into the lake's
/// audit directory (which its engine reads as `system.audit`).
pub(crate) async fn start_with(options: ServiceOptions) -> Server {
    serve_lake(common::shop_lake().await, options).await
}

/// A server over the shop lake whose engine has `functions` besides
/// DataFusion's, for user SQL.
pub(crate) async fn start_with_functions(
    functions: Vec<std::sync::Arc<datafusion::logical_expr::ScalarUDF>>,
) -> Server {
    let dir = tempfile::tempdir().unwrap();
    common::write_shop_files(dir.path());
    let options = lakegate_engine::EngineOptions {
        functions,
        ..common::test_engine_options(dir.path())
    };
    let engine = common::engine_with(&common::shop_catalog(), dir.path(), options).await;
    serve_lake(common::ShopLake { dir, engine }, ServiceOptions::default()).await
}

/// A server over `lake`'s engine with `options`, auditing into its audit
/// directory.
pub(crate) async fn serve_lake(lake: common::ShopLake, options: ServiceOptions) -> Server {
    let engine: Engine = lake.engine.clone();
    let (listener, addr) = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let audit = AuditLog::open(AuditOptions::in_dir(common::audit_dir(lake.dir.path()))).unwrap();
    let service =
        LakegateFlightService::new(engine, EnvelopeKey::new(vec![7; 32]).unwrap(), options)
            .with_audit(audit);
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(serve_on(listener, service, async {
        let _ = stopped.await;
    }));
    Server {
        addr,
        _stop: stop,
        lake,
    }
}

pub(crate) async fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_timeout(std::time::Duration::from_secs(5))
        .connect()
        .await
        .unwrap()
}

pub(crate) async fn sql_client(
    addr: SocketAddr,
    user: &str,
    role: Option<&str>,
) -> FlightSqlServiceClient<Channel> {
    let mut client = FlightSqlServiceClient::new(channel(addr).await);
    client
        .handshake(user, &format!("{user}-pass"))
        .await
        .unwrap();
    assert!(
        client.token().is_some(),
        "the handshake returns a bearer token"
    );
    if let Some(role) = role {
        client.set_header(ROLE_HEADER, role);
    }
    client
}

pub(crate) async fn query(
    client: &mut FlightSqlServiceClient<Channel>,
    sql: &str,
) -> Vec<RecordBatch> {
    let info = client.execute(sql.to_string(), None).await.unwrap();
    results(client, &info).await
}

/// Redeems the single endpoint of `info` and collects its batches.
pub(crate) async fn results(
    client: &mut FlightSqlServiceClient<Channel>,
    info: &arrow_flight::FlightInfo,
) -> Vec<RecordBatch> {
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    client
        .do_get(ticket)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap()
}

pub(crate) fn int64s(batches: &[RecordBatch], column: usize) -> Vec<i64> {
    batches
        .iter()
        .flat_map(|b| {
            b.column(column)
                .as_primitive::<Int64Type>()
                .values()
                .to_vec()
        })
        .collect()
}

#[tokio::test]
async fn statements_run_under_the_callers_role() {
    let server = start().await;
    let mut auditor = sql_client(server.addr, "ann", Some("auditor")).await;
    let batches = query(
        &mut auditor,
        "SELECT a FROM shop.orders WHERE 10 / (a - 3) > 0 ORDER BY a",
    )
    .await;
    assert_eq!(int64s(&batches, 0), vec![6, 7, 8, 9, 10]);

    let mut analyst = sql_client(server.addr, "ann", Some("analyst")).await;
    let info = analyst
        .execute(
            "SELECT id, email FROM shop.customers ORDER BY id".into(),
            None,
        )
        .await
        .unwrap();
    let schema = info.clone().try_decode_schema().unwrap();
    assert_eq!(
        schema
            .field_with_name("email")
            .unwrap()
            .metadata()
            .get(MASK_METADATA_KEY)
            .map(String::as_str),
        Some("hash"),
        "the FlightInfo schema is the role's view"
    );
    let batches = results(&mut analyst, &info).await;
    assert_eq!(int64s(&batches, 0), vec![1, 3, 5]);
    let emails = batches[0].column(1).as_string::<i32>();
    assert_eq!(
        emails.value(0),
        "ff8d9819fc0e12bf0d24892e45987e249a28dce836a85cad60e28eaaa8c6d976"
    );

    // Without a role header: the user's default role (analyst).
    let mut default = sql_client(server.addr, "ann", None).await;
    let batches = query(&mut default, "SELECT current_role()").await;
    assert_eq!(batches[0].column(0).as_string::<i32>().value(0), "analyst");
}

/// A raw Flight client, to see gRPC status codes.
pub(crate) async fn raw_handshake(
    addr: SocketAddr,
    authorization: &str,
) -> Result<String, tonic::Status> {
    let mut client = FlightServiceClient::new(channel(addr).await);
    let mut request = tonic::Request::new(futures::stream::iter(vec![HandshakeRequest::default()]));
    request
        .metadata_mut()
        .insert("authorization", authorization.parse().unwrap());
    let response = client.handshake(request).await?;
    Ok(response
        .metadata()
        .get("authorization")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string())
}

pub(crate) fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

#[tokio::test]
async fn a_call_with_a_malformed_deadline_is_refused_and_one_with_a_deadline_is_answered() {
    let server = start().await;
    let mut hurried = sql_client(server.addr, "ann", Some("auditor")).await;
    hurried.set_header("grpc-timeout", "soon");
    let refused = hurried
        .execute("SELECT 1".into(), None)
        .await
        .expect_err("a deadline that is not gRPC's");
    let status = refused.to_string();
    assert!(
        status.contains("the grpc-timeout header is not a gRPC timeout")
            && status.contains("invalid argument"),
        "{status}"
    );

    let mut patient = sql_client(server.addr, "ann", Some("auditor")).await;
    patient.set_header("grpc-timeout", "30S");
    let batches = query(&mut patient, "SELECT a FROM shop.orders ORDER BY a LIMIT 2").await;
    assert_eq!(int64s(&batches, 0), vec![6, 7]);
}

#[tokio::test]
async fn authentication() {
    let server = start().await;
    // Unpadded Basic credentials (the ADBC Go driver's habit) are accepted;
    // "root:root-pass" is 14 bytes, so its base64 ends in "=".
    let padded = basic("root", "root-pass");
    assert!(padded.ends_with('='));
    let bearer = raw_handshake(server.addr, padded.trim_end_matches('='))
        .await
        .unwrap();
    assert!(bearer.starts_with("Bearer lg1."));
    // A Bearer handshake (the JDBC driver's token login) is accepted.
    assert!(raw_handshake(server.addr, &bearer).await.is_ok());

    // Wrong password and unknown user: the same answer.
    let wrong = raw_handshake(server.addr, &basic("ann", "nope"))
        .await
        .unwrap_err();
    let unknown = raw_handshake(server.addr, &basic("nobody", "nope"))
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::Unauthenticated);
    assert_eq!(
        (wrong.code(), wrong.message()),
        (unknown.code(), unknown.message())
    );

    // A tampered token.
    let mut tampered = bearer.clone();
    tampered.insert(15, 'x');
    assert_eq!(
        raw_handshake(server.addr, &tampered)
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    assert_eq!(
        raw_handshake(server.addr, "Basic !!!")
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
}

#[tokio::test]
async fn roles_and_tickets_are_checked() {
    let server = start().await;
    // A role the user may not assume.
    let mut client = sql_client(server.addr, "ann", Some("admin")).await;
    let error = client
        .execute("SELECT 1".into(), None)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("may not assume role 'admin'"), "{error}");

    // A ticket redeemed by another user is refused, and so is a tampered one.
    let mut ann = sql_client(server.addr, "ann", Some("auditor")).await;
    let info = ann
        .execute("SELECT a FROM shop.orders".into(), None)
        .await
        .unwrap();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let mut raw = FlightServiceClient::new(channel(server.addr).await);
    let redeem = |ticket: Ticket, authorization: String| {
        let mut request = tonic::Request::new(ticket);
        request
            .metadata_mut()
            .insert("authorization", authorization.parse().unwrap());
        request
    };
    let stolen = raw
        .do_get(redeem(ticket.clone(), basic("root", "root-pass")))
        .await
        .unwrap_err();
    assert_eq!(stolen.code(), Code::PermissionDenied, "{stolen}");
    let mut bytes = ticket.ticket.to_vec();
    let last = bytes.len() - 3;
    bytes[last] ^= 1;
    let tampered = raw
        .do_get(redeem(Ticket::new(bytes), basic("ann", "ann-pass")))
        .await
        .unwrap_err();
    assert_eq!(tampered.code(), Code::PermissionDenied, "{tampered}");

    // Unauthenticated calls are refused.
    let mut anonymous = FlightServiceClient::new(channel(server.addr).await);
    let status = anonymous
        .do_get(tonic::Request::new(ticket))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn failed_sign_ins_are_rate_limited_per_user_and_peer() {
    let server = start().await;
    // ServiceOptions::default() allows 5 failures per minute.
    for _ in 0..5 {
        let status = raw_handshake(server.addr, &basic("ann", "guess"))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated);
    }
    // Now even the right password is refused for a while, with a clear reason.
    let locked = raw_handshake(server.addr, &basic("ann", "ann-pass"))
        .await
        .unwrap_err();
    assert_eq!(locked.code(), Code::ResourceExhausted, "{locked}");
    assert!(
        locked
            .message()
            .contains("too many failed sign-in attempts")
    );
    // Another user is not affected.
    assert!(
        raw_handshake(server.addr, &basic("root", "root-pass"))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn get_sql_info_answers_every_info_for_an_empty_list() {
    let server = start().await;
    let mut client = sql_client(server.addr, "ann", None).await;
    let info = client.get_sql_info(vec![]).await.unwrap();
    let batches = results(&mut client, &info).await;
    let ids: Vec<u32> = batches
        .iter()
        .flat_map(|b| {
            b.column(0)
                .as_primitive::<arrow::datatypes::UInt32Type>()
                .values()
                .to_vec()
        })
        .collect();
    // Server name (0), version (1), read-only (3), identifier quote (504), keywords (508).
    for id in [0, 1, 3, 504, 508, 509, 510] {
        assert!(ids.contains(&id), "info {id} missing from {ids:?}");
    }
    let only = client
        .get_sql_info(vec![arrow_flight::sql::SqlInfo::FlightSqlServerName])
        .await
        .unwrap();
    let batches = results(&mut client, &only).await;
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
}

#[tokio::test]
async fn metadata_lists_only_what_the_role_may_see() {
    let server = start().await;
    let strings = |batches: &[RecordBatch], column: usize| -> Vec<String> {
        batches
            .iter()
            .flat_map(|b| {
                let c = b.column(column).as_string::<i32>();
                (0..c.len())
                    .map(|i| c.value(i).to_string())
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let mut analyst = sql_client(server.addr, "ann", Some("analyst")).await;
    let info = analyst.get_catalogs().await.unwrap();
    let batches = results(&mut analyst, &info).await;
    assert_eq!(strings(&batches, 0), vec!["lakegate"]);

    let request = arrow_flight::sql::CommandGetDbSchemas::default();
    let info = analyst.get_db_schemas(request.clone()).await.unwrap();
    let batches = results(&mut analyst, &info).await;
    assert_eq!(
        strings(&batches, 1),
        vec!["shop"],
        "the analyst sees no hr database"
    );

    let mut root = sql_client(server.addr, "root", None).await;
    let info = root.get_db_schemas(request).await.unwrap();
    let batches = results(&mut root, &info).await;
    // The lake administrator also sees `system` (the audit log).
    assert_eq!(strings(&batches, 1), vec!["hr", "shop", "system"]);

    let info = root.get_table_types().await.unwrap();
    let batches = results(&mut root, &info).await;
    assert_eq!(strings(&batches, 0), vec!["TABLE"]);
}
