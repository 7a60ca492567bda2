//! A panic while planning or running one query fails that query with
//! INTERNAL, naming an incident the server's log explains, is audited, and
//! leaves the server serving. The panic is injected by a function only this
//! test's engine has.

use std::sync::Arc;

use arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use lakegate_audit::{AuditEvent, Outcome};
use tonic::Code;

use crate::common;
use crate::flight::{int64s, query, sql_client, start_with_functions};

/// `lakegate_test_panic(x)`: panics whenever it is evaluated.
#[derive(Debug, PartialEq, Eq, Hash)]
struct PanicFunction {
    signature: Signature,
}

impl ScalarUDFImpl for PanicFunction {
    fn name(&self) -> &str {
        "lakegate_test_panic"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        panic!("the injected panic");
    }
}

fn panic_function() -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::new_from_impl(PanicFunction {
        signature: Signature::exact(vec![DataType::Int64], Volatility::Immutable),
    }))
}

/// How running `sql` fails, at whichever call it fails.
async fn failure(
    client: &mut arrow_flight::sql::client::FlightSqlServiceClient<tonic::transport::Channel>,
    sql: &str,
) -> arrow_flight::error::FlightError {
    use futures::TryStreamExt;
    let info = match client.execute(sql.into(), None).await {
        Ok(info) => info,
        Err(e) => return e,
    };
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    match client.do_get(ticket).await {
        Err(e) => e,
        Ok(stream) => stream.try_collect::<Vec<_>>().await.unwrap_err(),
    }
}

#[tokio::test]
async fn a_panic_fails_its_query_only() {
    let server = start_with_functions(vec![panic_function()]).await;
    let mut ann = sql_client(server.addr, "ann", Some("auditor")).await;
    // On a literal, the optimizer folds the call: a panic while planning
    // (when DoGet plans the query to run it). On a column, it runs per
    // batch: a panic while executing.
    let planning = failure(&mut ann, "SELECT lakegate_test_panic(1)").await;
    let executing = failure(&mut ann, "SELECT lakegate_test_panic(a) FROM shop.orders").await;
    for (error, during) in [(planning, "planning"), (executing, "execution")] {
        let arrow_flight::error::FlightError::Tonic(status) = error else {
            panic!("not a gRPC status: {error}");
        };
        assert_eq!(status.code(), Code::Internal, "{status}");
        assert!(
            status
                .message()
                .contains(&format!("during {during} (incident ")),
            "{status}"
        );
        assert!(!status.message().contains("injected"), "{status}");
    }

    // The server goes on serving, this user and others.
    assert_eq!(
        int64s(
            &query(&mut ann, "SELECT a FROM shop.orders ORDER BY a").await,
            0
        ),
        vec![6, 7, 8, 9, 10]
    );
    let mut root = sql_client(server.addr, "root", None).await;
    assert_eq!(
        int64s(
            &query(&mut root, "SELECT count(*) FROM shop.orders").await,
            0
        ),
        vec![10]
    );

    let path = common::audit_dir(server.lake.dir.path()).join("audit.jsonl");
    let failed: Vec<AuditEvent> = std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str::<AuditEvent>(line).unwrap())
        .filter(|e| e.error_code.as_deref() == Some("INTERNAL"))
        .collect();
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert!(failed.iter().all(|e| e.outcome == Outcome::Error
        && e.error.as_deref().is_some_and(|m| m.contains("incident"))));
}
