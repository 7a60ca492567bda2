//! Plain Arrow Flight for notebooks: a descriptor or a ticket that is SQL text.
//!
//! `pyarrow.flight` users write
//! `client.get_flight_info(FlightDescriptor.for_command(b"SELECT ..."))` and
//! `client.do_get(Ticket(b"SELECT ..."))`. arrow-flight's blanket Flight SQL
//! dispatch decodes every command and ticket as a protobuf `Any` and fails on
//! SQL text before any fallback runs. So the service mounted is this wrapper:
//! Flight SQL messages go to [`LakegateFlightService`] unchanged; SQL text
//! becomes a statement query, through the same authentication, role and
//! policy decision.
//!
//! Being the one entry point of every RPC, it is also where calls are
//! audited (see `audit.rs`): every DoGet, and every other call that fails.

use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::server::FlightSqlService;
use arrow_flight::sql::{ActionCreatePreparedStatementRequest, Any, CommandStatementQuery};
use arrow_flight::{
    Action, Criteria, Empty, FlightData, FlightDescriptor, FlightInfo, HandshakeRequest, PollInfo,
    SchemaResult, Ticket,
};
use prost::Message;
use tonic::{Request, Response, Status, Streaming};

use crate::audit::{AuditedStream, PendingAudit, ReadNote};
use crate::service::LakegateFlightService;

/// Flight SQL messages all carry this type URL prefix.
const FLIGHT_SQL_TYPE_PREFIX: &str = "type.googleapis.com/arrow.flight.protocol.sql.";

/// The SQL text in `bytes`, unless they are a Flight SQL message.
fn sql_text(bytes: &[u8]) -> Option<String> {
    if let Ok(any) = Any::decode(bytes)
        && any.type_url.starts_with(FLIGHT_SQL_TYPE_PREFIX)
    {
        return None;
    }
    let text = std::str::from_utf8(bytes).ok()?.trim();
    (!text.is_empty()).then(|| text.to_string())
}

/// The mounted Flight service: Flight SQL, plus SQL text descriptors and tickets.
#[derive(Debug, Clone)]
pub struct LakegateFlight {
    sql: LakegateFlightService,
}

impl LakegateFlight {
    /// Wraps the Flight SQL service.
    pub fn new(sql: LakegateFlightService) -> Self {
        Self { sql }
    }

    /// Starts the audit event of a call, when calls are audited.
    fn audit<T>(
        &self,
        request: &Request<T>,
        action: String,
        statement: Option<String>,
    ) -> Option<PendingAudit> {
        let log = self.sql.audit_log()?;
        let user = self.sql.claimed_user(request);
        Some(PendingAudit::start(log, request, user, &action, statement))
    }

    /// The action name and statement of a descriptor or ticket.
    fn describe(&self, rpc: &str, message: &[u8]) -> (String, Option<String>) {
        if let Some(sql) = sql_text(message) {
            return (format!("{rpc}/sql-text"), Some(sql));
        }
        let kind = Any::decode(message)
            .ok()
            .and_then(|any| {
                any.type_url
                    .strip_prefix(FLIGHT_SQL_TYPE_PREFIX)
                    .map(str::to_string)
            })
            .unwrap_or_else(|| "unknown".into());
        (format!("{rpc}/{kind}"), self.sql.statement_of(message))
    }
}

/// Records a call that failed; passes the result through.
fn audit_failure<R>(pending: Option<PendingAudit>, result: Result<R, Status>) -> Result<R, Status> {
    if let (Some(pending), Err(status)) = (pending, &result) {
        pending.failed(status);
    }
    result
}

type Inner = LakegateFlightService;

#[tonic::async_trait]
impl FlightService for LakegateFlight {
    type HandshakeStream = <Inner as FlightService>::HandshakeStream;
    type ListFlightsStream = <Inner as FlightService>::ListFlightsStream;
    type DoGetStream = <Inner as FlightService>::DoGetStream;
    type DoPutStream = <Inner as FlightService>::DoPutStream;
    type DoActionStream = <Inner as FlightService>::DoActionStream;
    type ListActionsStream = <Inner as FlightService>::ListActionsStream;
    type DoExchangeStream = <Inner as FlightService>::DoExchangeStream;

    async fn handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Self::HandshakeStream>, Status> {
        let pending = self.audit(&request, "Handshake".into(), None);
        audit_failure(pending, FlightService::handshake(&self.sql, request).await)
    }

    async fn list_flights(
        &self,
        request: Request<Criteria>,
    ) -> Result<Response<Self::ListFlightsStream>, Status> {
        FlightService::list_flights(&self.sql, request).await
    }

    async fn get_flight_info(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let (action, statement) = self.describe("GetFlightInfo", &request.get_ref().cmd);
        let pending = self.audit(&request, action, statement);
        let result = match sql_text(&request.get_ref().cmd) {
            Some(query) => {
                let command = CommandStatementQuery {
                    query,
                    transaction_id: None,
                };
                self.sql.get_flight_info_statement(command, request).await
            }
            None => FlightService::get_flight_info(&self.sql, request).await,
        };
        audit_failure(pending, result)
    }

    async fn poll_flight_info(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<PollInfo>, Status> {
        FlightService::poll_flight_info(&self.sql, request).await
    }

    async fn get_schema(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<SchemaResult>, Status> {
        FlightService::get_schema(&self.sql, request).await
    }

    async fn do_get(
        &self,
        request: Request<Ticket>,
    ) -> Result<Response<Self::DoGetStream>, Status> {
        let (action, statement) = self.describe("DoGet", &request.get_ref().ticket);
        let pending = self.audit(&request, action, statement);
        let result = match sql_text(&request.get_ref().ticket) {
            // SQL text as a ticket: authenticated and planned under the
            // caller's role now, like any statement.
            Some(query) => self.sql.do_get_sql_text(query, request).await,
            None => FlightService::do_get(&self.sql, request).await,
        };
        match (pending, result) {
            // A read: recorded when its stream ends.
            (Some(mut pending), Ok(response)) => {
                pending.note(response.extensions().get::<ReadNote>());
                Ok(response.map(|stream| {
                    Box::pin(AuditedStream::new(stream, pending)) as Self::DoGetStream
                }))
            }
            (pending, result) => audit_failure(pending, result),
        }
    }

    async fn do_put(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoPutStream>, Status> {
        let pending = self.audit(&request, "DoPut".into(), None);
        audit_failure(pending, FlightService::do_put(&self.sql, request).await)
    }

    async fn do_action(
        &self,
        request: Request<Action>,
    ) -> Result<Response<Self::DoActionStream>, Status> {
        let action = format!("DoAction/{}", request.get_ref().r#type);
        let statement = Any::decode(&*request.get_ref().body)
            .ok()
            .and_then(|any| any.unpack::<ActionCreatePreparedStatementRequest>().ok()?)
            .map(|prepare| prepare.query);
        let pending = self.audit(&request, action, statement);
        audit_failure(pending, FlightService::do_action(&self.sql, request).await)
    }

    async fn list_actions(
        &self,
        request: Request<Empty>,
    ) -> Result<Response<Self::ListActionsStream>, Status> {
        FlightService::list_actions(&self.sql, request).await
    }

    async fn do_exchange(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoExchangeStream>, Status> {
        FlightService::do_exchange(&self.sql, request).await
    }
}

#[cfg(test)]
mod tests {
    use arrow_flight::sql::ProstMessageExt;

    use super::*;

    #[test]
    fn tells_sql_text_from_flight_sql_messages() {
        assert_eq!(sql_text(b"SELECT 1").as_deref(), Some("SELECT 1"));
        assert_eq!(
            sql_text(b"  select * from t \n").as_deref(),
            Some("select * from t")
        );
        let command = CommandStatementQuery {
            query: "SELECT 1".into(),
            transaction_id: None,
        };
        assert_eq!(sql_text(&command.as_any().encode_to_vec()), None);
        assert_eq!(sql_text(b""), None);
        assert_eq!(sql_text(&[0xff, 0xfe]), None);
    }
}
