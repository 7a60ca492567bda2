//! The entry of every call: the mounted Flight service.
//!
//! ```text
//! RPC ─▶ admit: x-lakegate-* headers read once (an unknown one refused)
//!               credentials ─▶ Authenticator ─▶ Caller (user, headers, session database)
//!     ─▶ what the call carries, read once:
//!          SQL text (plain Flight)           ─▶ a statement
//!          a path descriptor [db, table]     ─▶ SELECT * FROM db.table
//!          a statement ticket / handle       ─▶ opened (the caller's, unexpired, ours)
//!          any other Flight SQL message      ─▶ service.rs, Flight SQL's dispatch
//!     ─▶ the audit event: who, the role asked for or defaulted to, source
//!        identity, statement; recorded when the call ends (a read: when its
//!        stream ends)
//! ```
//!
//! `pyarrow.flight` users write
//! `client.get_flight_info(FlightDescriptor.for_command(b"SELECT ..."))`,
//! `client.do_get(Ticket(b"SELECT ..."))`, `client.get_schema(...)` and
//! `client.list_flights()`. arrow-flight's Flight SQL dispatch decodes every
//! command and ticket as a protobuf `Any` and fails on SQL text, so those
//! forms are answered here, through the same caller, role and engine.

use std::future::Future;

use arrow_flight::flight_descriptor::DescriptorType;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::{
    ActionCreatePreparedStatementRequest, Any, CommandPreparedStatementQuery,
    CommandStatementQuery, TicketStatementQuery,
};
use arrow_flight::{
    Action, Criteria, Empty, FlightData, FlightDescriptor, FlightInfo, HandshakeRequest, PollInfo,
    SchemaAsIpc, SchemaResult, Ticket,
};
use futures::TryStreamExt;
use futures::stream::BoxStream;
use prost::Message;
use tonic::{Request, Response, Status, Streaming};

use crate::answered_token::AnsweredToken;
use crate::audit::{AuditStart, AuditedStream, HandlerNotes, PendingAudit, ReadNote};
use crate::auth::Presented;
use crate::call::{CallHeaders, Caller};
use crate::credentials::{Credentials, parse_authorization};
use crate::error::{CallError, CallResult};
use crate::flight_messages::{FlightMessage, MessageStream};
use crate::grpc_server::ClientCertificates;
use crate::running::as_flight_data;
use crate::service::LakegateFlightService;
use crate::statements::flight_info;

/// Flight SQL messages all carry this type URL prefix.
const FLIGHT_SQL_TYPE_PREFIX: &str = "type.googleapis.com/arrow.flight.protocol.sql.";

/// What a descriptor or ticket carries.
#[derive(Debug)]
enum Carried {
    /// SQL text, from a plain Flight client.
    Sql(String),
    /// A Flight SQL message.
    FlightSql(Any),
    /// Something else.
    Unknown,
}

impl Carried {
    fn of(bytes: &[u8]) -> Self {
        if let Ok(any) = Any::decode(bytes)
            && any.type_url.starts_with(FLIGHT_SQL_TYPE_PREFIX)
        {
            return Self::FlightSql(any);
        }
        match std::str::from_utf8(bytes).map(str::trim) {
            Ok(text) if !text.is_empty() => Self::Sql(text.to_string()),
            _ => Self::Unknown,
        }
    }

    /// The action name of an RPC carrying this (`DoGet/TicketStatementQuery`).
    fn action(&self, rpc: &str) -> String {
        match self {
            Self::Sql(_) => format!("{rpc}/sql-text"),
            Self::FlightSql(any) => format!(
                "{rpc}/{}",
                any.type_url.trim_start_matches(FLIGHT_SQL_TYPE_PREFIX)
            ),
            Self::Unknown => format!("{rpc}/unknown"),
        }
    }
}

/// The SQL a path descriptor stands for: `[database, table]`, or `[table]`
/// in the session's current database.
fn path_sql(path: &[String]) -> CallResult<String> {
    let quoted = |name: &str| format!("\"{}\"", name.replace('"', "\"\""));
    match path {
        [table] => Ok(format!("SELECT * FROM {}", quoted(table))),
        [database, table] => Ok(format!(
            "SELECT * FROM {}.{}",
            quoted(database),
            quoted(table)
        )),
        _ => Err(CallError::InvalidRequest(format!(
            "a path descriptor names a table as [database, table] (as ListFlights \
             gives them); this one has {} elements",
            path.len()
        ))),
    }
}

/// The statement a descriptor asks for, when it is SQL text, a path or a
/// statement query.
fn descriptor_sql(descriptor: &FlightDescriptor) -> CallResult<Option<String>> {
    if descriptor.r#type() == DescriptorType::Path {
        return path_sql(&descriptor.path).map(Some);
    }
    Ok(match Carried::of(&descriptor.cmd) {
        Carried::Sql(sql) => Some(sql),
        Carried::FlightSql(any) => any
            .unpack::<CommandStatementQuery>()
            .ok()
            .flatten()
            .map(|q| q.query),
        Carried::Unknown => None,
    })
}

/// The mounted Flight service: every call enters here.
#[derive(Debug, Clone)]
pub struct LakegateFlight {
    service: LakegateFlightService,
}

/// A call being served: its caller (or why it has none) and its audit event.
pub(crate) struct Call {
    pub(crate) caller: CallResult<Caller>,
    pub(crate) audit: AuditStart,
}

impl LakegateFlight {
    pub(crate) fn new(service: LakegateFlightService) -> Self {
        Self { service }
    }

    /// The service behind the entry.
    pub(crate) fn service(&self) -> &LakegateFlightService {
        &self.service
    }

    /// Reads a call's headers and credentials, once: the caller, and the
    /// start of its audit event. First of all, the policy served is brought
    /// to the policy store's current version: a change committed anywhere is
    /// in force for this call, sign-in included.
    pub(crate) async fn admit<T>(&self, request: &Request<T>, action: String) -> Call {
        let current = self.service.ensure_current_policy().await;
        let metadata = request.metadata();
        let peer = request.remote_addr();
        let headers = CallHeaders::read(metadata);
        let credentials = metadata.get("authorization").map(|value| {
            value
                .to_str()
                .ok()
                .and_then(|text| parse_authorization(text).ok())
                .ok_or(CallError::InvalidCredentials)
        });
        let certificates = request
            .extensions()
            .get::<ClientCertificates>()
            .map(|certificates| certificates.0.clone());
        let sent_source = headers
            .as_ref()
            .ok()
            .and_then(|h| h.source_identity.as_deref());
        let identity = match &credentials {
            Some(Err(_)) => Err(CallError::InvalidCredentials),
            credentials => {
                let presented = Presented {
                    credentials: credentials.as_ref().and_then(|c| c.as_ref().ok()),
                    peer: peer.map(|p| p.ip()),
                    certificate: certificates
                        .as_ref()
                        .and_then(|chain| chain.first())
                        .map(|leaf| leaf.as_ref()),
                    source_identity: sent_source,
                };
                self.service.authenticator().authenticate(presented).await
            }
        };
        // Single-use credentials off the Handshake: the answer carries a
        // token for the client's later calls (answered_token.rs).
        if let (Some(Ok(Credentials::Negotiate(_))), Ok(identity)) = (&credentials, &identity)
            && let Some(slot) = request.extensions().get::<AnsweredToken>()
        {
            slot.answer_with(self.service.tokens().issue(identity));
        }
        // Who the call is recorded under: the authenticated user, else the
        // one the credentials claim (a failed sign-in is recorded under the
        // name it tried).
        let user = match (&identity, &credentials) {
            (Ok(identity), _) => Some(identity.principal.user.clone()),
            (Err(_), Some(Ok(Credentials::Basic { user, .. }))) => Some(user.clone()),
            (Err(_), Some(Ok(Credentials::Bearer(token)))) => self
                .service
                .tokens()
                .open(token)
                .map(|identity| identity.principal.user),
            (Err(_), _) => None,
        };
        let requested = headers.as_ref().ok().and_then(|h| h.role.clone());
        let role = requested.or_else(|| match &identity {
            Ok(identity) => self.service.engine().default_role_of(&identity.principal),
            Err(_) => self.service.engine().default_role(user.as_deref()?),
        });
        // The source identity bound at sign-in, else the one the call sent.
        let source_identity = match &identity {
            Ok(identity) => identity.source_identity.clone(),
            Err(_) => sent_source.map(str::to_string),
        };
        let notes = HandlerNotes::default();
        let audit = AuditStart {
            user,
            role,
            source_identity,
            sign_in: identity.as_ref().ok().map(|identity| identity.method),
            peer: peer.map(|p| p.to_string()),
            action,
            statement: None,
            policy_version: Some(self.service.engine().policy_version()),
            notes: notes.clone(),
        };
        let caller = current.and(headers).and_then(|headers| {
            let identity = identity?;
            let database = self
                .service
                .seals()
                .session_database(metadata, &identity.principal.user);
            Ok(Caller {
                identity,
                headers,
                database,
                notes,
            })
        });
        Call { caller, audit }
    }

    /// A call the entry only admits and audits: handed to Flight SQL's
    /// dispatch with its caller, recorded when it returns.
    async fn pass_on<T, R, F>(
        &self,
        mut request: Request<T>,
        call: Call,
        dispatch: impl FnOnce(Request<T>) -> F,
    ) -> Result<R, Status>
    where
        F: Future<Output = Result<R, Status>>,
    {
        let pending = self.audit(call.audit);
        let result = match call.caller {
            Ok(caller) => {
                request.extensions_mut().insert(caller);
                dispatch(request).await
            }
            Err(error) => Err(error.into()),
        };
        recorded(pending, result)
    }

    /// Starts recording a call, when calls are audited.
    pub(crate) fn audit(&self, start: AuditStart) -> Option<PendingAudit> {
        let log = self.service.audit_log()?;
        Some(PendingAudit::start(log, start))
    }

    /// DoGet: the caller admitted, the ticket opened once and run, and the
    /// read audited when its stream ends. A statement's answer comes as
    /// Flight messages whose bodies are the batches' own buffers
    /// (`flight_messages.rs`); `do_get_frames.rs` sends them as they are.
    pub(crate) async fn do_get_messages(
        &self,
        mut request: Request<Ticket>,
    ) -> Result<Response<MessageStream>, Status> {
        let carried = Carried::of(&request.get_ref().ticket);
        let mut call = self.admit(&request, carried.action("DoGet")).await;
        // A statement ticket is opened once, here.
        let ticket = match (&call.caller, &carried) {
            (Ok(caller), Carried::FlightSql(any)) => any
                .unpack::<TicketStatementQuery>()
                .ok()
                .flatten()
                .map(|t| {
                    let seals = self.service.seals();
                    seals.open_ticket(&t.statement_handle, caller.user())
                }),
            _ => None,
        };
        call.audit.statement = match (&carried, &ticket) {
            (Carried::Sql(sql), _) => Some(sql.clone()),
            (_, Some(Ok(ticket))) => Some(ticket.sql.clone()),
            _ => None,
        };
        let pending = self.audit(call.audit);
        let result = async {
            let caller = call.caller?;
            if let Carried::Sql(sql) = &carried {
                return Ok(self.service.statements().run_sql(&caller, sql).await?);
            }
            if let Some(ticket) = ticket {
                let statements = self.service.statements();
                return Ok(statements.run_ticket(&caller, ticket?).await?);
            }
            request.extensions_mut().insert(caller);
            let response = FlightService::do_get(&self.service, request).await?;
            Ok(response
                .map(|stream| Box::pin(stream.map_ok(FlightMessage::whole)) as MessageStream))
        };
        match (pending, result.await) {
            // A read: recorded when its stream ends.
            (Some(mut pending), Ok(response)) => {
                pending.note(response.extensions().get::<ReadNote>());
                Ok(response
                    .map(|stream| Box::pin(AuditedStream::new(stream, pending)) as MessageStream))
            }
            (pending, result) => recorded(pending, result),
        }
    }
}

/// Records a finished call; passes its result through.
pub(crate) fn recorded<R>(
    pending: Option<PendingAudit>,
    result: Result<R, Status>,
) -> Result<R, Status> {
    if let Some(pending) = pending {
        match &result {
            Ok(_) => pending.finish(),
            Err(status) => pending.failed(status),
        }
    }
    result
}

type Inner = LakegateFlightService;
type ListFlightsStream = BoxStream<'static, Result<FlightInfo, Status>>;

#[tonic::async_trait]
impl FlightService for LakegateFlight {
    type HandshakeStream = <Inner as FlightService>::HandshakeStream;
    type ListFlightsStream = ListFlightsStream;
    type DoGetStream = <Inner as FlightService>::DoGetStream;
    type DoPutStream = <Inner as FlightService>::DoPutStream;
    type DoActionStream = <Inner as FlightService>::DoActionStream;
    type ListActionsStream = <Inner as FlightService>::ListActionsStream;
    type DoExchangeStream = <Inner as FlightService>::DoExchangeStream;

    async fn handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Self::HandshakeStream>, Status> {
        let call = self.admit(&request, "Handshake".into()).await;
        self.pass_on(request, call, |request| {
            FlightService::handshake(&self.service, request)
        })
        .await
    }

    async fn list_flights(
        &self,
        request: Request<Criteria>,
    ) -> Result<Response<Self::ListFlightsStream>, Status> {
        let call = self.admit(&request, "ListFlights".into()).await;
        let pending = self.audit(call.audit);
        let result = async {
            let caller = call.caller?;
            if !request.get_ref().expression.is_empty() {
                return Err(CallError::InvalidRequest(
                    "ListFlights takes no criteria: it lists every table the role may read".into(),
                )
                .into());
            }
            // Each table the role may read, with the schema a query of it
            // would have under the role.
            let statements = self.service.statements();
            let session = statements.session(&caller)?;
            let mut infos = Vec::new();
            for (database, table) in session.visible_tables() {
                let path = vec![database, table];
                let schema = statements.schema(&caller, &path_sql(&path)?).await?;
                let descriptor = FlightDescriptor::new_path(path);
                infos.push(Ok(flight_info(Vec::new(), &schema, descriptor)?));
            }
            let stream: ListFlightsStream = Box::pin(futures::stream::iter(infos));
            Ok::<_, Status>(Response::new(stream))
        };
        recorded(pending, result.await)
    }

    async fn get_flight_info(
        &self,
        mut request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let descriptor = request.get_ref().clone();
        let carried = Carried::of(&descriptor.cmd);
        let mut call = match descriptor.r#type() {
            DescriptorType::Path => self.admit(&request, "GetFlightInfo/path".into()).await,
            _ => self.admit(&request, carried.action("GetFlightInfo")).await,
        };
        call.audit.statement = descriptor_sql(&descriptor).ok().flatten();
        let prepared = match &carried {
            Carried::FlightSql(any) => any.unpack::<CommandPreparedStatementQuery>().ok().flatten(),
            _ => None,
        };
        // A prepared statement's handle is opened once, here.
        let handle = match (&call.caller, prepared) {
            (Ok(caller), Some(command)) => Some(
                self.service
                    .seals()
                    .open_handle(&command.prepared_statement_handle, caller.user()),
            ),
            _ => None,
        };
        if let Some(Ok(handle)) = &handle {
            call.audit.statement = Some(handle.sql.clone());
        }
        let pending = self.audit(call.audit);
        let result = async {
            let caller = call.caller?;
            let statements = self.service.statements();
            if let Some(handle) = handle {
                request.extensions_mut().insert(handle?);
            }
            let sql = match (descriptor.r#type(), carried) {
                (DescriptorType::Path, _) => path_sql(&descriptor.path)?,
                (_, Carried::Sql(sql)) => sql,
                (_, Carried::FlightSql(_)) => {
                    request.extensions_mut().insert(caller);
                    return FlightService::get_flight_info(&self.service, request).await;
                }
                (_, Carried::Unknown) => return Err(unknown_descriptor().into()),
            };
            let info = statements.flight_info(&caller, sql, None, descriptor);
            Ok::<_, Status>(Response::new(info.await?))
        };
        recorded(pending, result.await)
    }

    async fn poll_flight_info(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<PollInfo>, Status> {
        let call = self.admit(&request, "PollFlightInfo".into()).await;
        let pending = self.audit(call.audit);
        let result = call.caller.and_then(|_| -> CallResult<Response<PollInfo>> {
            Err(CallError::Unsupported(
                "PollFlightInfo is not supported: call GetFlightInfo, which plans the query \
                 at once"
                    .into(),
            ))
        });
        recorded(pending, result.map_err(Status::from))
    }

    async fn get_schema(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<SchemaResult>, Status> {
        let descriptor = request.get_ref();
        let mut call = self.admit(&request, "GetSchema".into()).await;
        let sql = descriptor_sql(descriptor);
        call.audit.statement = sql.as_ref().ok().cloned().flatten();
        let pending = self.audit(call.audit);
        let result = async {
            let caller = call.caller?;
            let sql = sql?.ok_or_else(unknown_descriptor)?;
            let schema = self.service.statements().schema(&caller, &sql).await?;
            let options = arrow::ipc::writer::IpcWriteOptions::default();
            let result: SchemaResult = SchemaAsIpc::new(&schema, &options)
                .try_into()
                .map_err(|e: arrow::error::ArrowError| CallError::Internal(e.to_string()))?;
            Ok::<_, Status>(Response::new(result))
        };
        recorded(pending, result.await)
    }

    async fn do_get(
        &self,
        request: Request<Ticket>,
    ) -> Result<Response<Self::DoGetStream>, Status> {
        Ok(as_flight_data(self.do_get_messages(request).await?))
    }

    async fn do_put(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoPutStream>, Status> {
        let call = self.admit(&request, "DoPut".into()).await;
        self.pass_on(request, call, |request| {
            FlightService::do_put(&self.service, request)
        })
        .await
    }

    async fn do_action(
        &self,
        request: Request<Action>,
    ) -> Result<Response<Self::DoActionStream>, Status> {
        let mut call = self
            .admit(&request, format!("DoAction/{}", request.get_ref().r#type))
            .await;
        call.audit.statement = Any::decode(&*request.get_ref().body)
            .ok()
            .and_then(|any| any.unpack::<ActionCreatePreparedStatementRequest>().ok()?)
            .map(|prepare| prepare.query);
        self.pass_on(request, call, |request| {
            FlightService::do_action(&self.service, request)
        })
        .await
    }

    async fn list_actions(
        &self,
        request: Request<Empty>,
    ) -> Result<Response<Self::ListActionsStream>, Status> {
        let call = self.admit(&request, "ListActions".into()).await;
        self.pass_on(request, call, |request| {
            FlightService::list_actions(&self.service, request)
        })
        .await
    }

    async fn do_exchange(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoExchangeStream>, Status> {
        let call = self.admit(&request, "DoExchange".into()).await;
        let pending = self.audit(call.audit);
        let result = call
            .caller
            .and_then(|_| -> CallResult<Response<Self::DoExchangeStream>> {
                Err(CallError::Unsupported(
                    "DoExchange is not supported: Lakegate answers queries with GetFlightInfo \
                 and DoGet"
                        .into(),
                ))
            });
        recorded(pending, result.map_err(Status::from))
    }
}

/// The refusal of a descriptor that is none of the forms Lakegate reads.
fn unknown_descriptor() -> CallError {
    CallError::InvalidRequest(
        "the descriptor is not a query: send SQL text as its command, a path \
         [database, table], or a Flight SQL command"
            .into(),
    )
}

#[cfg(test)]
mod tests {
    use arrow_flight::sql::ProstMessageExt;

    use super::*;

    #[test]
    fn tells_sql_text_from_flight_sql_messages() {
        assert!(matches!(Carried::of(b"SELECT 1"), Carried::Sql(s) if s == "SELECT 1"));
        assert!(
            matches!(Carried::of(b"  select * from t \n"), Carried::Sql(s) if s == "select * from t")
        );
        let command = CommandStatementQuery {
            query: "SELECT 1".into(),
            transaction_id: None,
        };
        assert!(matches!(
            Carried::of(&command.as_any().encode_to_vec()),
            Carried::FlightSql(_)
        ));
        assert!(matches!(Carried::of(b""), Carried::Unknown));
        assert!(matches!(Carried::of(&[0xff, 0xfe]), Carried::Unknown));
    }

    #[test]
    fn paths_name_tables_quoted() {
        let path = |p: &[&str]| path_sql(&p.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            path(&["shop", "or\"ders"]).unwrap(),
            "SELECT * FROM \"shop\".\"or\"\"ders\""
        );
        assert_eq!(path(&["t"]).unwrap(), "SELECT * FROM \"t\"");
        let error = path(&["a", "b", "c"]).unwrap_err().to_string();
        assert!(error.contains("[database, table]"), "{error}");
    }
}
