//! A server among others behind a load balancer: it answers the standard
//! gRPC health checks SERVING; at SIGTERM they answer NOT_SERVING at once
//! while calls are still served for the drain period; then new connections
//! are refused, a stream started before the signal is read to its end, and
//! the process exits cleanly.

use std::time::{Duration, Instant};

use futures::TryStreamExt;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::flight::{channel, int64s, query, sql_client};
use crate::generated_sql::serve_demo_lake_with;

async fn health(addr: std::net::SocketAddr, service: &str) -> ServingStatus {
    let mut client = HealthClient::new(channel(addr).await);
    let answer = client
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .unwrap()
        .into_inner();
    answer.status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_turns_health_checks_first_then_stops_taking_connections() {
    let mut server = serve_demo_lake_with(&["--drain-seconds", "3", "--shutdown-grace", "30"]);
    let addr = server.addr;
    for service in ["", "arrow.flight.protocol.FlightService"] {
        assert_eq!(health(addr, service).await, ServingStatus::Serving);
    }
    // A query running since before the signal, its first batch read.
    let rows = 2_000_000_i64;
    let mut running = sql_client(addr, "admin", None).await;
    let info = running
        .execute(
            format!("SELECT value FROM generate_series(1, {rows})"),
            None,
        )
        .await
        .unwrap();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let mut stream = running.do_get(ticket).await.unwrap();
    let first = stream.try_next().await.unwrap().expect("a first batch");

    let signalled = Instant::now();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    // Health checks turn first: calls are still served meanwhile.
    while health(addr, "").await != ServingStatus::NotServing {
        assert!(
            signalled.elapsed() < Duration::from_secs(2),
            "still SERVING"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        health(addr, "arrow.flight.protocol.FlightService").await,
        ServingStatus::NotServing
    );
    let mut late = sql_client(addr, "tina", None).await;
    let answered = query(&mut late, "SELECT count(*) FROM tpc.dl_tpc_web_sales").await;
    assert!(int64s(&answered, 0)[0] > 0);
    assert!(
        signalled.elapsed() < Duration::from_secs(3),
        "answered while draining"
    );

    // Drained: new connections are refused.
    tokio::time::sleep(Duration::from_secs(3).saturating_sub(signalled.elapsed())).await;
    let mut refused = false;
    for _ in 0..50 {
        let connecting = tonic::transport::Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect_timeout(Duration::from_secs(1))
            .connect()
            .await;
        if connecting.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(refused, "a drained server takes no new connections");
    // The running stream is read to its end, within the grace period.
    let mut read = i64::try_from(first.num_rows()).unwrap();
    while let Some(batch) = stream.try_next().await.unwrap() {
        read += i64::try_from(batch.num_rows()).unwrap();
    }
    assert_eq!(read, rows);
    let exited = tokio::task::spawn_blocking(move || {
        let status = server.child.wait().unwrap();
        (status, server)
    })
    .await
    .unwrap();
    assert!(exited.0.success(), "{:?}", exited.0);
}
