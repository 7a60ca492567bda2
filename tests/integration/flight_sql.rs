//! Flight SQL beyond plain statements, in-process with arrow-flight's client:
//! prepared statements with parameters, GetTables, GetXdbcTypeInfo, the key
//! RPCs, session options and writes (refused).

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{AsArray, BinaryArray, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::ipc::convert::try_schema_from_ipc_buffer;
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::sql::{
    ActionCreatePreparedStatementRequest, ActionCreatePreparedStatementResult, Any,
    CommandGetTables, CommandGetXdbcTypeInfo, CommandPreparedStatementQuery,
    CommandStatementIngest, ProstMessageExt, TableDefinitionOptions, TableExistsOption,
    TableNotExistOption,
};
use arrow_flight::{Action, FlightDescriptor, Ticket};
use futures::{StreamExt, TryStreamExt};
use lakegate_flight::ROLE_HEADER;
use lakegate_flight::session_options::{
    CloseSessionResult, GetSessionOptionsResult, SetSessionOptionsRequest, SetSessionOptionsResult,
    string_value as string_option,
};
use prost::Message;
use tonic::transport::Channel;

use crate::flight::{basic, channel, int64s, query, results, sql_client, start};

fn int64_parameters(values: &[i64]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![Field::new("0", DataType::Int64, true)]));
    RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(values.to_vec()))]).unwrap()
}

#[tokio::test]
async fn prepared_statements_bind_parameters_under_the_callers_role() {
    let server = start().await;
    let mut auditor = sql_client(server.addr, "ann", Some("auditor")).await;

    // `?` (JDBC style) and `$1` (DataFusion style) both work.
    for sql in [
        "SELECT a FROM shop.orders WHERE a < ? ORDER BY a",
        "SELECT a FROM shop.orders WHERE a < $1 ORDER BY a",
    ] {
        let mut prepared = auditor.prepare(sql.to_string(), None).await.unwrap();
        let parameters = prepared.parameter_schema().unwrap();
        assert_eq!(parameters.fields().len(), 1, "{parameters:?}");
        assert_eq!(
            prepared.dataset_schema().unwrap().field(0).name(),
            "a",
            "the dataset schema comes with the handle"
        );
        prepared.set_parameters(int64_parameters(&[9])).unwrap();
        let info = prepared.execute().await.unwrap();
        // The row filter (a > 5) holds beneath the bound predicate.
        assert_eq!(
            int64s(&results(&mut auditor, &info).await, 0),
            vec![6, 7, 8]
        );
        prepared.close().await.unwrap();
    }

    // Several bound rows: the query runs once per row, results in order.
    let mut prepared = auditor
        .prepare("SELECT a FROM shop.orders WHERE a = ?".into(), None)
        .await
        .unwrap();
    prepared
        .set_parameters(int64_parameters(&[7, 2, 9]))
        .unwrap();
    let info = prepared.execute().await.unwrap();
    assert_eq!(int64s(&results(&mut auditor, &info).await, 0), vec![7, 9]);

    // Preparing a query on a table the role may not read fails at once.
    let error = auditor
        .prepare("SELECT * FROM hr.salaries WHERE id = ?".into(), None)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("may not read it"), "{error}");

    // Wrong parameter count: a clear error.
    let mut prepared = auditor
        .prepare(
            "SELECT a FROM shop.orders WHERE a < ? AND a > ?".into(),
            None,
        )
        .await
        .unwrap();
    prepared.set_parameters(int64_parameters(&[9])).unwrap();
    let error = prepared.execute().await.unwrap_err().to_string();
    assert!(
        error.contains("takes 2 parameter(s), 1 were bound"),
        "{error}"
    );
}

/// Creates a prepared statement through a raw action and returns its handle.
async fn prepare_handle(
    client: &mut FlightSqlServiceClient<Channel>,
    sql: &str,
) -> prost::bytes::Bytes {
    let request = ActionCreatePreparedStatementRequest {
        query: sql.into(),
        transaction_id: None,
    };
    let action = Action {
        r#type: "CreatePreparedStatement".into(),
        body: request.as_any().encode_to_vec().into(),
    };
    let mut stream = client.do_action(action).await.unwrap();
    let result = stream.next().await.unwrap().unwrap();
    Any::decode(&*result.body)
        .unwrap()
        .unpack::<ActionCreatePreparedStatementResult>()
        .unwrap()
        .unwrap()
        .prepared_statement_handle
}

/// GetFlightInfo of a prepared statement as `user` under `role`.
async fn prepared_info(
    addr: std::net::SocketAddr,
    user: &str,
    role: Option<&str>,
    command: &CommandPreparedStatementQuery,
) -> Result<arrow_flight::FlightInfo, tonic::Status> {
    let mut raw = FlightServiceClient::new(channel(addr).await);
    let descriptor = FlightDescriptor::new_cmd(command.as_any().encode_to_vec());
    let mut request = tonic::Request::new(descriptor);
    let metadata = request.metadata_mut();
    let authorization = basic(user, &format!("{user}-pass"));
    metadata.insert("authorization", authorization.parse().unwrap());
    if let Some(role) = role {
        metadata.insert(ROLE_HEADER, role.parse().unwrap());
    }
    Ok(raw.get_flight_info(request).await?.into_inner())
}

#[tokio::test]
async fn prepared_statement_handles_belong_to_their_creator() {
    let server = start().await;
    let mut ann = sql_client(server.addr, "ann", Some("auditor")).await;
    let handle = prepare_handle(&mut ann, "SELECT a FROM shop.orders ORDER BY a").await;
    let command = CommandPreparedStatementQuery {
        prepared_statement_handle: handle,
    };

    // Another user may not execute it.
    let error = prepared_info(server.addr, "root", None, &command)
        .await
        .unwrap_err();
    assert_eq!(error.code(), tonic::Code::PermissionDenied);
    assert!(
        error.message().contains("belongs to another user"),
        "{error}"
    );

    // The creator may, under any role it may assume: the statement is
    // planned again under the role of the executing call.
    let mut ann_as_analyst = sql_client(server.addr, "ann", Some("analyst")).await;
    let info = prepared_info(server.addr, "ann", Some("analyst"), &command)
        .await
        .unwrap();
    let through_handle = int64s(&results(&mut ann_as_analyst, &info).await, 0);
    let direct = int64s(
        &query(&mut ann_as_analyst, "SELECT a FROM shop.orders ORDER BY a").await,
        0,
    );
    assert_eq!(through_handle, direct);
    let as_auditor = int64s(
        &query(&mut ann, "SELECT a FROM shop.orders ORDER BY a").await,
        0,
    );
    assert_ne!(
        through_handle, as_auditor,
        "the two roles see different rows"
    );
}

fn strings(batches: &[RecordBatch], column: &str) -> Vec<String> {
    batches
        .iter()
        .flat_map(|b| {
            let c = b.column_by_name(column).unwrap().as_string::<i32>();
            c.iter().flatten().map(str::to_string).collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test]
async fn get_tables_shows_the_roles_view_of_each_table() {
    let server = start().await;
    let mut analyst = sql_client(server.addr, "ann", Some("analyst")).await;
    let request = CommandGetTables {
        include_schema: true,
        ..Default::default()
    };
    let info = analyst.get_tables(request.clone()).await.unwrap();
    let batches = results(&mut analyst, &info).await;
    assert_eq!(strings(&batches, "table_name"), vec!["customers", "orders"]);
    assert_eq!(strings(&batches, "table_type"), vec!["TABLE", "TABLE"]);
    let schemas = batches[0]
        .column_by_name("table_schema")
        .unwrap()
        .as_any()
        .downcast_ref::<BinaryArray>()
        .unwrap();
    let customers = try_schema_from_ipc_buffer(schemas.value(0)).unwrap();
    let columns: Vec<&str> = customers
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    assert!(
        !columns.contains(&"card"),
        "excluded column listed: {columns:?}"
    );
    let email = customers.field_with_name("email").unwrap();
    assert_eq!(email.metadata()["lakegate.mask"], "hash");
    assert_eq!(email.metadata()["ARROW:FLIGHT:SQL:TYPE_NAME"], "VARCHAR");
    assert_eq!(email.metadata()["ARROW:FLIGHT:SQL:TABLE_NAME"], "customers");

    // Name filters apply, and a table the role may not describe never shows.
    let filtered = CommandGetTables {
        table_name_filter_pattern: Some("sal%".into()),
        ..Default::default()
    };
    let info = analyst.get_tables(filtered.clone()).await.unwrap();
    assert!(strings(&results(&mut analyst, &info).await, "table_name").is_empty());
    let mut root = sql_client(server.addr, "root", None).await;
    let info = root.get_tables(filtered).await.unwrap();
    assert_eq!(
        strings(&results(&mut root, &info).await, "table_name"),
        vec!["salaries"]
    );
}

#[tokio::test]
async fn xdbc_type_info_and_empty_key_answers() {
    let server = start().await;
    let mut client = sql_client(server.addr, "ann", None).await;
    let info = client
        .get_xdbc_type_info(CommandGetXdbcTypeInfo { data_type: None })
        .await
        .unwrap();
    let batches = results(&mut client, &info).await;
    let names = strings(&batches, "type_name");
    for name in [
        "BIGINT",
        "VARCHAR",
        "DECIMAL",
        "TIMESTAMP",
        "DATE",
        "BOOLEAN",
    ] {
        assert!(
            names.contains(&name.to_string()),
            "{name} missing: {names:?}"
        );
    }
    let request = arrow_flight::sql::CommandGetPrimaryKeys {
        catalog: None,
        db_schema: Some("shop".into()),
        table: "orders".into(),
    };
    let info = client.get_primary_keys(request).await.unwrap();
    let batches = results(&mut client, &info).await;
    assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 0);
    let schema = info.try_decode_schema().unwrap();
    assert_eq!(schema.field(2).name(), "table_name");
}

#[tokio::test]
async fn writes_are_refused() {
    let server = start().await;
    let mut client = sql_client(server.addr, "root", None).await;
    let error = client
        .execute_update("DELETE FROM shop.orders".into(), None)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("read-only"), "{error}");
    // Writes name the privilege they need; a query is told to run as one.
    for (sql, expected) in [
        (
            "INSERT INTO shop.orders VALUES (1, 1, 1, 1.0, 'x')",
            "may not insert into it: that needs INSERT on it",
        ),
        (
            "CREATE TABLE shop.copy AS SELECT 1",
            "may not create tables in it: that needs CREATE_TABLE on it",
        ),
        ("SELECT 1", "this statement is a query"),
    ] {
        let error = client
            .execute_update(sql.into(), None)
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains(expected), "{sql}: {error}");
    }
    // Bulk ingestion (ADBC's adbc_ingest) likewise, by mode.
    let batch = int64_parameters(&[1]);
    for (creates, expected) in [
        (
            false,
            "table 'shop.orders' does not exist or role 'admin' may not insert into it",
        ),
        (
            true,
            "database 'shop' does not exist or role 'admin' may not create tables in it",
        ),
    ] {
        let options = TableDefinitionOptions {
            if_not_exist: if creates {
                TableNotExistOption::Create
            } else {
                TableNotExistOption::Fail
            } as i32,
            if_exists: if creates {
                TableExistsOption::Fail
            } else {
                TableExistsOption::Append
            } as i32,
        };
        let command = CommandStatementIngest {
            table_definition_options: Some(options),
            table: "orders".into(),
            schema: Some("shop".into()),
            ..Default::default()
        };
        let stream = futures::stream::iter([Ok(batch.clone())]);
        let error = client
            .execute_ingest(command, stream)
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains(expected), "creates {creates}: {error}");
    }
}

/// A raw action with Basic credentials; returns the result bodies and the
/// `set-cookie` header.
async fn session_action(
    addr: std::net::SocketAddr,
    kind: &str,
    body: Vec<u8>,
    cookie: Option<&str>,
) -> (Vec<prost::bytes::Bytes>, Option<String>) {
    let mut client = FlightServiceClient::new(channel(addr).await);
    let mut request = tonic::Request::new(Action {
        r#type: kind.into(),
        body: body.into(),
    });
    let metadata = request.metadata_mut();
    metadata.insert("authorization", basic("ann", "ann-pass").parse().unwrap());
    if let Some(cookie) = cookie {
        metadata.insert("cookie", cookie.parse().unwrap());
    }
    let response = client.do_action(request).await.unwrap();
    let set_cookie = response
        .metadata()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_string());
    let bodies = response
        .into_inner()
        .map_ok(|r| r.body)
        .try_collect()
        .await
        .unwrap();
    (bodies, set_cookie)
}

/// `name=value` of a `set-cookie` header.
fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_string()
}

#[tokio::test]
async fn session_options_and_use_persist_the_current_database() {
    let server = start().await;
    // SetSessionOptions: a database the role sees is accepted; an unknown
    // option and a foreign catalog are reported, not fatal.
    let request = SetSessionOptionsRequest {
        session_options: HashMap::from([
            ("schema".to_string(), string_option("shop")),
            ("catalog".to_string(), string_option("elsewhere")),
            ("colour".to_string(), string_option("blue")),
        ]),
    };
    let (bodies, set_cookie) = session_action(
        server.addr,
        "SetSessionOptions",
        request.encode_to_vec(),
        None,
    )
    .await;
    let result = SetSessionOptionsResult::decode(&*bodies[0]).unwrap();
    let mut refused: Vec<&String> = result.errors.keys().collect();
    refused.sort();
    assert_eq!(refused, ["catalog", "colour"]);
    let cookie = cookie_pair(&set_cookie.expect("a session cookie"));

    // With the cookie, bare table names resolve in the chosen database.
    let mut client = sql_client(server.addr, "ann", Some("auditor")).await;
    client.set_header("cookie", cookie.clone());
    let batches = query(&mut client, "SELECT a FROM orders ORDER BY a").await;
    assert_eq!(int64s(&batches, 0), vec![6, 7, 8, 9, 10]);

    let (bodies, _) = session_action(server.addr, "GetSessionOptions", vec![], Some(&cookie)).await;
    let options = GetSessionOptionsResult::decode(&*bodies[0]).unwrap();
    assert_eq!(options.session_options["schema"], string_option("shop"));
    assert_eq!(
        options.session_options["catalog"],
        string_option("lakegate")
    );

    // Without it, there is no current database.
    let mut fresh = sql_client(server.addr, "ann", Some("auditor")).await;
    let error = fresh
        .execute("SELECT a FROM orders".into(), None)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("there is no current database"), "{error}");

    // USE answers with the updated cookie.
    let mut raw = FlightServiceClient::new(channel(server.addr).await);
    let mut request = tonic::Request::new(Ticket::new("USE shop"));
    request
        .metadata_mut()
        .insert("authorization", basic("ann", "ann-pass").parse().unwrap());
    let response = raw.do_get(request).await.unwrap();
    let set_cookie = response
        .metadata()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(
        set_cookie.starts_with("lakegate_session=lg1."),
        "{set_cookie}"
    );

    // CloseSession clears the cookie.
    let (bodies, set_cookie) =
        session_action(server.addr, "CloseSession", vec![], Some(&cookie)).await;
    assert_eq!(CloseSessionResult::decode(&*bodies[0]).unwrap().status, 1);
    assert!(set_cookie.unwrap().contains("Max-Age=0"));
}

#[tokio::test]
async fn a_describe_only_role_is_refused_before_any_ticket_exists() {
    let server = start().await;
    let mut describer = sql_client(server.addr, "ann", Some("describer")).await;
    let error = describer
        .execute("SELECT id FROM shop.customers".into(), None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("may describe table 'shop.customers' but not read its rows"),
        "{error}"
    );
}
