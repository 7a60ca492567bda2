//! The Flight SQL service: authentication, the runtime role of each call,
//! and statement queries redeemed through signed tickets.
//!
//! ```text
//! client                                   Lakegate
//!   │ 1. Handshake (authorization: Basic u:p) ─▶ verify Argon2 hash
//!   │ ◀─ authorization: Bearer lg1.<token>       token = sealed {user}, expiring
//!   │ 2. GetFlightInfo(CommandStatementQuery)  ─▶ authenticate, choose the role
//!   │    (x-lakegate-role: r)                      (x-lakegate-role or default),
//!   │                                              plan under the role: schema
//!   │ ◀─ FlightInfo { schema, endpoint { ticket = sealed {user, role, sql} } }
//!   │ 3. DoGet(ticket)                         ─▶ authenticate again; the ticket
//!   │                                              must be the caller's, unexpired,
//!   │                                              untampered; the role is checked
//!   │                                              again and the policy applied as
//!   │ ◀─ Arrow record batches                      of now, then the query streams
//! ```

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::Schema;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::metadata::SqlInfoData;
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, CommandGetCatalogs, CommandGetCrossReference,
    CommandGetDbSchemas, CommandGetExportedKeys, CommandGetImportedKeys, CommandGetPrimaryKeys,
    CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables, CommandGetXdbcTypeInfo,
    CommandPreparedStatementQuery, CommandPreparedStatementUpdate, CommandStatementIngest,
    CommandStatementQuery, CommandStatementUpdate, DoPutPreparedStatementResult, ProstMessageExt,
    SqlInfo, TicketStatementQuery,
};
use arrow_flight::{
    Action, ActionType, FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest,
    HandshakeResponse, IpcMessage, SchemaAsIpc, Ticket,
};
use futures::{Stream, TryStreamExt};
use lakegate_audit::{AuditLog, TableRead};
use lakegate_engine::{Engine, QueryOutput, QuerySession};
use prost::Message;
use serde::{Deserialize, Serialize};
use tonic::{Request, Response, Status, Streaming};

use crate::audit::ReadNote;
use crate::credentials::{Credentials, parse_authorization};
use crate::keep_alive::KeepAlive;
use crate::limits::{LimitedStream, QueryLimits, UserSlots};
use crate::metadata::{
    FOREIGN_KEYS_SCHEMA, PRIMARY_KEYS_SCHEMA, XDBC_TYPE_INFO, no_rows, with_column_metadata,
};
use crate::plain::LakegateFlight;
use crate::prepared::{
    DEFAULT_MAX_PARAMETER_BYTES, PreparedHandle, decode_parameters, encode_parameters,
    too_many_parameter_bytes,
};
use crate::session_options::{
    CATALOG_OPTION, CLOSE_SESSION, CloseSessionResult, CloseSessionStatus, GET_SESSION_OPTIONS,
    GetSessionOptionsResult, OptionValue, SCHEMA_OPTION, SET_SESSION_OPTIONS, SessionOptionError,
    SessionState, SetSessionOptionError, SetSessionOptionsRequest, SetSessionOptionsResult,
    session_cookie, set_cookie, string_value,
};
use crate::signing::{EnvelopeError, EnvelopeKey};
use crate::sql_info::sql_info_data;
use crate::status::{status_of, unauthenticated};
use crate::throttle::LoginThrottle;

/// Call header choosing the runtime role.
pub const ROLE_HEADER: &str = "x-lakegate-role";
/// Call header naming the caller's source identity (a notebook profile, a
/// job), recorded with the call.
pub const SOURCE_IDENTITY_HEADER: &str = "x-lakegate-source-identity";

/// Call header asking for one endpoint per independent part of a result
/// (`true`), for clients that read endpoints in parallel (ADBC's
/// `adbc_execute_partitions`, Spark-style readers). Without it, one endpoint.
pub const PARALLEL_HEADER: &str = "x-lakegate-parallel";

/// Settings of the service.
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    /// How long a bearer token stays valid.
    pub token_ttl: Duration,
    /// How long a ticket stays redeemable.
    pub ticket_ttl: Duration,
    /// Failed sign-ins allowed per user and peer within `login_window`.
    pub max_login_failures: u32,
    /// The window over which failed sign-ins are counted.
    pub login_window: Duration,
    /// Running queries per user, and their timeout.
    pub limits: QueryLimits,
    /// Send an empty batch after this long without one, so that proxies do
    /// not cut a long-running result stream. `None`: never.
    pub keep_alive: Option<Duration>,
    /// The largest parameter set one prepared statement may bind, in bytes
    /// of Arrow data, counted as it arrives.
    pub max_parameter_bytes: usize,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        Self {
            token_ttl: Duration::from_secs(12 * 3600),
            ticket_ttl: Duration::from_secs(300),
            max_login_failures: 5,
            login_window: Duration::from_secs(60),
            limits: QueryLimits::default(),
            keep_alive: Some(Duration::from_secs(15)),
            max_parameter_bytes: DEFAULT_MAX_PARAMETER_BYTES,
        }
    }
}

/// What a bearer token says.
#[derive(Debug, Serialize, Deserialize)]
struct TokenClaims {
    /// The authenticated user.
    user: String,
}

/// What a statement ticket says: everything a server sharing the key needs
/// to run it, bound to the user and role it was issued to.
#[derive(Debug, Serialize, Deserialize)]
struct StatementTicket {
    user: String,
    role: String,
    sql: String,
    /// The current database when the ticket was issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    database: Option<String>,
    /// Bound parameter values (prepared statements), as in [`PreparedHandle`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    parameters: Option<String>,
    /// For one of several parallel endpoints: `[part, parts]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    part: Option<[usize; 2]>,
}

/// The authenticated caller of one call.
#[derive(Debug, Clone)]
struct Caller {
    user: String,
    /// The role asked for with `x-lakegate-role`, if any.
    requested_role: Option<String>,
    /// The current database of the client's session (its session cookie).
    database: Option<String>,
    /// Whether the client asked for parallel endpoints (`x-lakegate-parallel`).
    parallel: bool,
}

/// Lakegate's Flight SQL service.
#[derive(Clone)]
pub struct LakegateFlightService {
    engine: Engine,
    key: Arc<EnvelopeKey>,
    options: ServiceOptions,
    throttle: Arc<LoginThrottle>,
    sql_info: Arc<SqlInfoData>,
    audit: Option<AuditLog>,
    slots: Arc<UserSlots>,
}

impl std::fmt::Debug for LakegateFlightService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LakegateFlightService")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl LakegateFlightService {
    /// A service over `engine`, sealing tokens and tickets with `key`.
    pub fn new(engine: Engine, key: EnvelopeKey, options: ServiceOptions) -> Self {
        let throttle = Arc::new(LoginThrottle::new(
            options.max_login_failures,
            options.login_window,
        ));
        let sql_info = Arc::new(sql_info_data(&engine));
        let slots = Arc::new(UserSlots::new(options.limits));
        Self {
            engine,
            key: Arc::new(key),
            options,
            throttle,
            sql_info,
            audit: None,
            slots,
        }
    }

    /// The largest request message the transport accepts: room for the
    /// longest statement and the largest parameter set, with slack, so that
    /// the engine's own limits, with their clearer errors, are met first.
    pub fn max_request_bytes(&self) -> usize {
        2 * self
            .engine
            .max_statement_bytes()
            .max(self.options.max_parameter_bytes)
    }

    /// Ends every running query's result stream with UNAVAILABLE: the last
    /// step of a graceful shutdown, after running queries had their grace
    /// period to finish.
    pub fn stop_running_queries(&self) {
        self.slots.stop_all();
    }

    /// Records every read and every denied or failed call in `log`.
    pub fn with_audit(mut self, log: AuditLog) -> Self {
        self.audit = Some(log);
        self
    }

    /// The audit log, if calls are audited.
    pub(crate) fn audit_log(&self) -> Option<&AuditLog> {
        self.audit.as_ref()
    }

    /// Who a call says it is, for the audit log: the user of a valid bearer
    /// token, or the user name of Basic credentials (even a wrong one: a
    /// failed sign-in is recorded under the name it claimed).
    pub(crate) fn claimed_user<T>(&self, request: &Request<T>) -> Option<String> {
        let header = request.metadata().get("authorization")?.to_str().ok()?;
        match parse_authorization(header).ok()? {
            Credentials::Basic { user, .. } => Some(user),
            Credentials::Bearer(token) => self.key.open::<TokenClaims>(&token).ok().map(|c| c.user),
        }
    }

    /// The SQL text a ticket or a command carries, for the audit log: a
    /// statement ticket we sealed, a statement query, or a prepared
    /// statement handle. `None` for anything else, or one we cannot open.
    pub(crate) fn statement_of(&self, message: &[u8]) -> Option<String> {
        let any = arrow_flight::sql::Any::decode(message).ok()?;
        let opened = |bytes: &[u8]| std::str::from_utf8(bytes).ok().map(str::to_string);
        if let Ok(Some(ticket)) = any.unpack::<TicketStatementQuery>() {
            let sealed = opened(&ticket.statement_handle)?;
            return self
                .key
                .open::<StatementTicket>(&sealed)
                .ok()
                .map(|t| t.sql);
        }
        if let Ok(Some(query)) = any.unpack::<CommandStatementQuery>() {
            return Some(query.query);
        }
        if let Ok(Some(command)) = any.unpack::<CommandPreparedStatementQuery>() {
            let sealed = opened(&command.prepared_statement_handle)?;
            return self.key.open::<PreparedHandle>(&sealed).ok().map(|h| h.sql);
        }
        None
    }

    /// Authenticates a call from its `authorization` header: Basic (checked
    /// against the catalog's password hashes) or a Bearer token we sealed.
    fn authenticate<T>(&self, request: &Request<T>) -> Result<Caller, Status> {
        let metadata = request.metadata();
        let peer = request.remote_addr().map(|a| a.ip());
        let header = metadata
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                Status::unauthenticated(
                    "authentication required: send Basic credentials or a bearer token",
                )
            })?;
        let user = match parse_authorization(header).map_err(|_| unauthenticated())? {
            Credentials::Basic { user, password } => {
                if let Err(retry_after) = self.throttle.check(&user, peer) {
                    return Err(Status::resource_exhausted(format!(
                        "too many failed sign-in attempts; retry in {} s",
                        retry_after.as_secs().max(1)
                    )));
                }
                if !self.engine.catalog().verify_password(&user, &password) {
                    log::info!("failed sign-in for user '{user}' from {peer:?}");
                    self.throttle.failed(&user, peer);
                    return Err(unauthenticated());
                }
                self.throttle.succeeded(&user, peer);
                user
            }
            Credentials::Bearer(token) => {
                let claims: TokenClaims = self.key.open(&token).map_err(|_| unauthenticated())?;
                claims.user
            }
        };
        let requested_role = header_value(metadata, ROLE_HEADER);
        // A session cookie counts only when it is sealed by us, unexpired,
        // and the caller's own.
        let database = session_cookie(metadata)
            .and_then(|cookie| self.key.open::<SessionState>(&cookie).ok())
            .filter(|state| state.user == user)
            .and_then(|state| state.database);
        let parallel = header_value(metadata, PARALLEL_HEADER).is_some_and(|v| {
            matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes")
        });
        Ok(Caller {
            user,
            requested_role,
            database,
            parallel,
        })
    }

    /// A query session for `user` under `role` (default: the user's default
    /// role), with `database` current when given.
    fn session(
        &self,
        user: &str,
        role: Option<&str>,
        database: Option<&str>,
    ) -> Result<QuerySession, Status> {
        let mut session = self.engine.session(user, role).map_err(status_of)?;
        if let Some(database) = database {
            session.use_database(database).map_err(status_of)?;
        }
        Ok(session)
    }

    /// The query session of a call.
    fn caller_session(&self, caller: &Caller) -> Result<QuerySession, Status> {
        self.session(
            &caller.user,
            caller.requested_role.as_deref(),
            caller.database.as_deref(),
        )
    }

    /// The `set-cookie` value that stores a session with `database` current.
    fn session_cookie_for(&self, user: &str, database: Option<&str>) -> String {
        let state = SessionState {
            user: user.to_string(),
            database: database.map(str::to_string),
        };
        set_cookie(Some(&self.key.seal(&state, self.options.token_ttl)))
    }
}

type DoGetStream =
    Pin<Box<dyn Stream<Item = Result<arrow_flight::FlightData, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl FlightSqlService for LakegateFlightService {
    type FlightService = Self;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<
        Response<Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>>,
        Status,
    > {
        let caller = self.authenticate(&request)?;
        let token = self
            .key
            .seal(&TokenClaims { user: caller.user }, self.options.token_ttl);
        let reply = HandshakeResponse {
            protocol_version: 0,
            payload: token.clone().into(),
        };
        let stream = futures::stream::iter(vec![Ok(reply)]);
        let mut response: Response<
            Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>,
        > = Response::new(Box::pin(stream));
        insert_header(
            response.metadata_mut(),
            "authorization",
            &format!("Bearer {token}"),
        )?;
        Ok(response)
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let caller = self.authenticate(&request)?;
        self.issue_ticket(&caller, query.query, None, request.into_inner())
            .await
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let caller = self.authenticate(&request)?;
        let sealed = std::str::from_utf8(&ticket.statement_handle)
            .map_err(|_| Status::invalid_argument("malformed ticket"))?;
        let ticket: StatementTicket = self.key.open(sealed).map_err(|e| match e {
            EnvelopeError::Expired => {
                Status::permission_denied("the ticket has expired; request a new one")
            }
            EnvelopeError::BadSignature | EnvelopeError::Malformed => {
                Status::permission_denied("invalid ticket")
            }
        })?;
        if ticket.user != caller.user {
            return Err(Status::permission_denied(
                "the ticket was issued to another user",
            ));
        }
        // The role is checked again and the policy applied as of now.
        let parameters = ticket
            .parameters
            .as_deref()
            .map(decode_parameters)
            .transpose()?;
        let query = QueryCall {
            user: &ticket.user,
            role: Some(&ticket.role),
            database: ticket.database.as_deref(),
            sql: &ticket.sql,
            part: ticket.part,
        };
        self.stream_query(query, parameters).await
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder(&self.sql_info).schema();
        self.metadata_info(request, query.as_any(), &schema)
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.authenticate(&request)?;
        let builder = query.into_builder(&self.sql_info);
        one_batch(builder.schema(), builder.build())
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        self.metadata_info(request, query.as_any(), &schema)
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.authenticate(&request)?;
        let mut builder = query.into_builder();
        builder.append(&self.engine.catalog().name);
        one_batch(builder.schema(), builder.build())
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        self.metadata_info(request, query.as_any(), &schema)
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let caller = self.authenticate(&request)?;
        // Only the databases the caller's role may see.
        let session = self.caller_session(&caller)?;
        let mut builder = query.into_builder();
        for database in session.visible_databases() {
            builder.append(&self.engine.catalog().name, database);
        }
        one_batch(builder.schema(), builder.build())
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        self.metadata_info(request, query.as_any(), &schema)
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.authenticate(&request)?;
        let mut builder = query.into_builder();
        builder.append("TABLE");
        one_batch(builder.schema(), builder.build())
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        self.metadata_info(request, query.as_any(), &schema)
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let caller = self.authenticate(&request)?;
        // Only the tables the caller's role may describe, with the columns
        // it sees (masked columns with their masked types).
        let session = self.caller_session(&caller)?;
        let catalog = &self.engine.catalog().name;
        let mut builder = query.into_builder();
        for (database, table) in session.visible_tables() {
            let schema = if builder.include_schema() {
                let Some(schema) = session
                    .table_schema(&database, &table)
                    .await
                    .map_err(status_of)?
                else {
                    continue;
                };
                with_column_metadata(&schema, catalog, &database, &table)
            } else {
                Schema::empty()
            };
            builder
                .append(catalog, &database, &table, "TABLE", &schema)
                .map_err(|e| Status::internal(e.to_string()))?;
        }
        one_batch(builder.schema(), builder.build())
    }

    async fn get_flight_info_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder(&XDBC_TYPE_INFO).schema();
        self.metadata_info(request, query.as_any(), &schema)
    }

    async fn do_get_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.authenticate(&request)?;
        let builder = query.into_builder(&XDBC_TYPE_INFO);
        one_batch(builder.schema(), builder.build())
    }

    async fn get_flight_info_primary_keys(
        &self,
        query: CommandGetPrimaryKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.metadata_info(request, query.as_any(), &PRIMARY_KEYS_SCHEMA)
    }

    async fn do_get_primary_keys(
        &self,
        _query: CommandGetPrimaryKeys,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.authenticate(&request)?;
        // Lakegate tables declare no keys.
        one_batch(
            Arc::clone(&PRIMARY_KEYS_SCHEMA),
            Ok::<_, Status>(no_rows(&PRIMARY_KEYS_SCHEMA)),
        )
    }

    async fn get_flight_info_exported_keys(
        &self,
        query: CommandGetExportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.metadata_info(request, query.as_any(), &FOREIGN_KEYS_SCHEMA)
    }

    async fn do_get_exported_keys(
        &self,
        _query: CommandGetExportedKeys,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.no_foreign_keys(&request)
    }

    async fn get_flight_info_imported_keys(
        &self,
        query: CommandGetImportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.metadata_info(request, query.as_any(), &FOREIGN_KEYS_SCHEMA)
    }

    async fn do_get_imported_keys(
        &self,
        _query: CommandGetImportedKeys,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.no_foreign_keys(&request)
    }

    async fn get_flight_info_cross_reference(
        &self,
        query: CommandGetCrossReference,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.metadata_info(request, query.as_any(), &FOREIGN_KEYS_SCHEMA)
    }

    async fn do_get_cross_reference(
        &self,
        _query: CommandGetCrossReference,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        self.no_foreign_keys(&request)
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let caller = self.authenticate(&request)?;
        let mut session = self.caller_session(&caller)?;
        let statement = self
            .within_query_timeout(async { session.plan(&query.query).await.map_err(status_of) })
            .await?;
        let handle = PreparedHandle {
            user: caller.user,
            sql: query.query,
            parameters: None,
        };
        // A prepared statement lives as long as the caller's sign-in.
        let sealed = self.key.seal(&handle, self.options.token_ttl);
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: sealed.into(),
            dataset_schema: schema_bytes(&statement.schema())?,
            parameter_schema: schema_bytes(&statement.parameter_schema())?,
        })
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        let caller = self.authenticate(&request)?;
        let mut handle = self.open_handle(&caller, &query.prepared_statement_handle)?;
        // Counted as the messages arrive: a client streaming more than the
        // limit is stopped there, not after all of it is held in memory.
        let limit = self.options.max_parameter_bytes;
        let mut received = 0;
        let data = request
            .into_inner()
            .map_err(FlightError::from)
            .and_then(move |data| {
                received += data.data_header.len() + data.data_body.len();
                let over = received > limit;
                async move {
                    if over {
                        Err(FlightError::Tonic(Box::new(too_many_parameter_bytes(
                            received, limit,
                        ))))
                    } else {
                        Ok(data)
                    }
                }
            });
        let batches: Vec<RecordBatch> = FlightRecordBatchStream::new_from_flight_data(data)
            .try_collect()
            .await
            .map_err(|e| match e {
                FlightError::Tonic(status) => *status,
                other => Status::invalid_argument(format!("cannot read bound parameters: {other}")),
            })?;
        handle.parameters = encode_parameters(&batches, limit)?;
        let sealed = self.key.seal(&handle, self.options.token_ttl);
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(sealed.into()),
        })
    }

    async fn get_flight_info_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let caller = self.authenticate(&request)?;
        let handle = self.open_handle(&caller, &query.prepared_statement_handle)?;
        // Planned again under the role of this call, as of now.
        self.issue_ticket(&caller, handle.sql, handle.parameters, request.into_inner())
            .await
    }

    async fn do_action_close_prepared_statement(
        &self,
        query: ActionClosePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<(), Status> {
        // The server keeps nothing for a prepared statement: closing one
        // only checks that it is the caller's.
        let caller = self.authenticate(&request)?;
        self.open_handle(&caller, &query.prepared_statement_handle)
            .map(drop)
            .or_else(|status| match status.code() {
                // An expired handle is closed already.
                tonic::Code::PermissionDenied if status.message().contains("expired") => Ok(()),
                _ => Err(status),
            })
    }

    async fn do_put_statement_update(
        &self,
        _query: CommandStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        self.refuse_write(&request)
    }

    async fn do_put_prepared_statement_update(
        &self,
        _query: CommandPreparedStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        self.refuse_write(&request)
    }

    async fn do_put_statement_ingest(
        &self,
        _query: CommandStatementIngest,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        self.refuse_write(&request)
    }

    async fn do_action_fallback(
        &self,
        request: Request<Action>,
    ) -> Result<Response<DoActionStream>, Status> {
        let caller = self.authenticate(&request)?;
        let action = request.into_inner();
        match action.r#type.as_str() {
            SET_SESSION_OPTIONS => self.set_session_options(&caller, &action.body),
            GET_SESSION_OPTIONS => self.get_session_options(&caller),
            CLOSE_SESSION => {
                let result = CloseSessionResult {
                    status: CloseSessionStatus::Closed.into(),
                };
                let mut response = action_result(result.encode_to_vec());
                insert_header(response.metadata_mut(), "set-cookie", &set_cookie(None))?;
                Ok(response)
            }
            other => Err(Status::invalid_argument(format!(
                "unknown action '{other}'"
            ))),
        }
    }

    async fn list_custom_actions(&self) -> Option<Vec<Result<ActionType, Status>>> {
        let action = |name: &str, description: &str| {
            Ok(ActionType {
                r#type: name.to_string(),
                description: description.to_string(),
            })
        };
        Some(vec![
            action(
                SET_SESSION_OPTIONS,
                "Set session options (catalog, schema).\nRequest Message: SetSessionOptionsRequest\nResponse Message: SetSessionOptionsResult",
            ),
            action(
                GET_SESSION_OPTIONS,
                "Get the session's options.\nRequest Message: GetSessionOptionsRequest\nResponse Message: GetSessionOptionsResult",
            ),
            action(
                CLOSE_SESSION,
                "Close the session.\nRequest Message: CloseSessionRequest\nResponse Message: CloseSessionResult",
            ),
        ])
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}

/// A call header's value, when present and text.
pub(crate) fn header_value(metadata: &tonic::metadata::MetadataMap, name: &str) -> Option<String> {
    metadata
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// One statement to run: who, under which role, in which database.
#[derive(Debug, Clone, Copy)]
struct QueryCall<'a> {
    user: &'a str,
    role: Option<&'a str>,
    database: Option<&'a str>,
    sql: &'a str,
    /// One part of a query read through parallel endpoints: `[part, parts]`.
    part: Option<[usize; 2]>,
}

impl LakegateFlightService {
    /// The answer to every write, once the caller is known: Lakegate serves
    /// reads only.
    fn refuse_write<T>(&self, request: &Request<T>) -> Result<i64, Status> {
        self.authenticate(request)?;
        Err(Status::permission_denied(
            "updates and ingestion are not allowed: Lakegate runs read-only queries",
        ))
    }
}

type DoActionStream = <LakegateFlightService as FlightService>::DoActionStream;

/// A DoAction answer of one result.
fn action_result(body: Vec<u8>) -> Response<DoActionStream> {
    let result = arrow_flight::Result { body: body.into() };
    Response::new(Box::pin(futures::stream::iter([Ok(result)])))
}

/// Adds a response header.
fn insert_header(
    metadata: &mut tonic::metadata::MetadataMap,
    name: &'static str,
    value: &str,
) -> Result<(), Status> {
    let value = value
        .parse()
        .map_err(|_| Status::internal(format!("not a valid {name} header value")))?;
    metadata.insert(name, value);
    Ok(())
}

/// A FlightInfo of one endpoint with no location, whose ticket is `ticket`
/// (a sealed statement ticket, or a metadata command, which carries nothing
/// secret: DoGet authenticates again either way).
fn flight_info(
    ticket: arrow_flight::sql::Any,
    schema: &arrow::datatypes::Schema,
    descriptor: FlightDescriptor,
) -> Result<Response<FlightInfo>, Status> {
    flight_info_of(vec![ticket], schema, descriptor)
}

/// A FlightInfo with one endpoint per ticket, none with a location (any
/// server sharing the key redeems them). Several endpoints are unordered
/// parts of one result.
fn flight_info_of(
    tickets: Vec<arrow_flight::sql::Any>,
    schema: &arrow::datatypes::Schema,
    descriptor: FlightDescriptor,
) -> Result<Response<FlightInfo>, Status> {
    let ordered = tickets.len() == 1;
    let mut info = FlightInfo::new()
        .try_with_schema(schema)
        .map_err(|e| Status::internal(e.to_string()))?
        .with_descriptor(descriptor)
        .with_ordered(ordered);
    for ticket in tickets {
        info = info
            .with_endpoint(FlightEndpoint::new().with_ticket(Ticket::new(ticket.encode_to_vec())));
    }
    Ok(Response::new(info))
}

/// A schema as Flight SQL messages carry it (an encapsulated IPC message).
fn schema_bytes(schema: &arrow::datatypes::Schema) -> Result<prost::bytes::Bytes, Status> {
    let options = arrow::ipc::writer::IpcWriteOptions::default();
    let IpcMessage(bytes) = SchemaAsIpc::new(schema, &options)
        .try_into()
        .map_err(|e: arrow::error::ArrowError| Status::internal(e.to_string()))?;
    Ok(bytes)
}

/// A DoGet answer of one batch.
fn one_batch(
    schema: arrow::datatypes::SchemaRef,
    batch: Result<arrow::array::RecordBatch, impl std::fmt::Display>,
) -> Result<Response<DoGetStream>, Status> {
    let batch = batch.map_err(|e| Status::internal(e.to_string()))?;
    Ok(encode(
        schema,
        futures::stream::once(async move { Ok(batch) }),
    ))
}

/// Encodes record batches as Flight data; a status raised while producing
/// them reaches the client unchanged.
fn encode(
    schema: arrow::datatypes::SchemaRef,
    batches: impl Stream<Item = Result<arrow::array::RecordBatch, Status>> + Send + 'static,
) -> Response<DoGetStream> {
    let stream = FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .build(batches.map_err(|status| FlightError::Tonic(Box::new(status))))
        .map_err(|e| match e {
            FlightError::Tonic(status) => *status,
            other => Status::internal(other.to_string()),
        });
    Response::new(Box::pin(stream))
}

impl LakegateFlightService {
    /// DoGet of a ticket that is SQL text (plain Flight, for notebooks): the
    /// caller is authenticated and the query planned under its role now.
    pub(crate) async fn do_get_sql_text(
        &self,
        sql: String,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let caller = self.authenticate(&request)?;
        let query = QueryCall {
            user: &caller.user,
            role: caller.requested_role.as_deref(),
            database: caller.database.as_deref(),
            sql: &sql,
            part: None,
        };
        self.stream_query(query, None).await
    }

    /// Plans `sql` (with `parameters` bound) under the caller's role, and
    /// answers with a FlightInfo whose ticket is sealed to the caller and role.
    async fn issue_ticket(
        &self,
        caller: &Caller,
        sql: String,
        parameters: Option<String>,
        descriptor: FlightDescriptor,
    ) -> Result<Response<FlightInfo>, Status> {
        let mut session = self.caller_session(caller)?;
        let values = parameters.as_deref().map(decode_parameters).transpose()?;
        // Planned (not run) under the role now, so that the schema is the
        // role's view and a denied query fails here, before any ticket exists.
        // A client that asked for parallel endpoints gets one per independent
        // part of the result (a query bound to several parameter rows is read
        // whole: one part).
        let planned = async {
            let statement = match values {
                Some(values) => session.plan_with_parameters(&sql, values).await,
                None => session.plan(&sql).await,
            }
            .map_err(status_of)?;
            let schema = statement.schema();
            let parts = if caller.parallel {
                statement.into_parts().await.map_err(status_of)?.parts()
            } else {
                1
            };
            Ok((schema, parts))
        };
        let (schema, parts) = self.within_query_timeout(planned).await?;
        let tickets = (0..parts).map(|part| {
            let ticket = StatementTicket {
                user: caller.user.clone(),
                role: session.role().to_string(),
                sql: sql.clone(),
                database: session.current_database().map(str::to_string),
                parameters: parameters.clone(),
                part: (parts > 1).then_some([part, parts]),
            };
            let sealed = self.key.seal(&ticket, self.options.ticket_ttl);
            TicketStatementQuery {
                statement_handle: sealed.into(),
            }
            .as_any()
        });
        flight_info_of(tickets.collect(), &schema, descriptor)
    }

    /// Runs `planning` within the query timeout: planning can wait on a
    /// storage location (listing files), and no call may outlive the limit.
    async fn within_query_timeout<T>(
        &self,
        planning: impl std::future::Future<Output = Result<T, Status>>,
    ) -> Result<T, Status> {
        match self.slots.limits().timeout {
            Some(limit) => tokio::time::timeout(limit, planning)
                .await
                .map_err(|_| Status::deadline_exceeded("the query took too long to plan"))?,
            None => planning.await,
        }
    }

    /// Runs a query and streams its result as Flight data, within the
    /// user's limits: it holds one of the user's query slots until its
    /// stream ends, and ends at the query timeout.
    async fn stream_query(
        &self,
        query: QueryCall<'_>,
        parameters: Option<RecordBatch>,
    ) -> Result<Response<DoGetStream>, Status> {
        let slot = self.slots.acquire(query.user)?;
        let response = self
            .within_query_timeout(self.start_query(query, parameters))
            .await?;
        let slots = Arc::clone(&self.slots);
        Ok(
            response
                .map(|stream| Box::pin(LimitedStream::new(stream, slot, &slots)) as DoGetStream),
        )
    }

    /// Plans and starts a query. With parameters, it runs once per bound
    /// row, in order, and the results follow one another (what Flight SQL
    /// asks of a query bound to several parameter sets). A statement that
    /// changes the current database (`USE db`) answers with the updated
    /// session cookie.
    async fn start_query(
        &self,
        query: QueryCall<'_>,
        parameters: Option<RecordBatch>,
    ) -> Result<Response<DoGetStream>, Status> {
        let QueryCall {
            user,
            role,
            database,
            sql,
            part,
        } = query;
        let mut session = self.session(user, role, database)?;
        let statement = match parameters {
            Some(values) => session.plan_with_parameters(sql, values).await,
            None => session.plan(sql).await,
        }
        .map_err(status_of)?;
        if let Some([part, parts]) = part {
            let planned = statement.into_parts().await.map_err(status_of)?;
            if planned.parts() != parts {
                return Err(Status::failed_precondition(
                    "the query no longer splits as it did when its endpoints were issued; \
                         request them again",
                ));
            }
            let output = planned.execute(part).await.map_err(status_of)?;
            return Ok(self.answer_output(&session, sql, output));
        }
        let output = statement.execute().await.map_err(status_of)?;
        let mut response = self.answer_output(&session, sql, output);
        if session.current_database() != database {
            let cookie = self.session_cookie_for(user, session.current_database());
            insert_header(response.metadata_mut(), "set-cookie", &cookie)?;
        }
        Ok(response)
    }

    /// What the audit log records of a read.
    fn read_note(&self, session: &QuerySession, sql: &str, reads: Vec<TableRead>) -> ReadNote {
        ReadNote {
            role: session.role().to_string(),
            statement: Some(sql.to_string()),
            reads,
        }
    }

    /// The DoGet answer of one started query.
    fn answer_output(
        &self,
        session: &QuerySession,
        sql: &str,
        output: QueryOutput,
    ) -> Response<DoGetStream> {
        let note = self.read_note(session, sql, output.reads);
        let batches = output.stream.map_err(status_of);
        self.answer(output.schema, batches, note)
    }

    /// A DoGet answer streaming a query's batches, with keep-alive batches
    /// while it is idle, and its audit note.
    fn answer(
        &self,
        schema: arrow::datatypes::SchemaRef,
        batches: impl Stream<Item = Result<RecordBatch, Status>> + Send + Unpin + 'static,
        note: ReadNote,
    ) -> Response<DoGetStream> {
        let mut response = match self.options.keep_alive {
            Some(interval) => encode(
                Arc::clone(&schema),
                KeepAlive::new(batches, schema, interval),
            ),
            None => encode(schema, batches),
        };
        response.extensions_mut().insert(note);
        response
    }

    /// GetFlightInfo of a metadata command: the caller is authenticated, and
    /// the ticket is the command itself (DoGet authenticates again).
    fn metadata_info(
        &self,
        request: Request<FlightDescriptor>,
        command: arrow_flight::sql::Any,
        schema: &Schema,
    ) -> Result<Response<FlightInfo>, Status> {
        self.authenticate(&request)?;
        flight_info(command, schema, request.into_inner())
    }

    /// The answer to the foreign-key RPCs: Lakegate tables declare no keys.
    fn no_foreign_keys(&self, request: &Request<Ticket>) -> Result<Response<DoGetStream>, Status> {
        self.authenticate(request)?;
        one_batch(
            Arc::clone(&FOREIGN_KEYS_SCHEMA),
            Ok::<_, Status>(no_rows(&FOREIGN_KEYS_SCHEMA)),
        )
    }

    /// SetSessionOptions: `catalog` (Lakegate's own only) and `schema` (a
    /// database the role may see); each refused option is reported, the
    /// others take effect, and the session cookie carries the result.
    fn set_session_options(
        &self,
        caller: &Caller,
        body: &[u8],
    ) -> Result<Response<DoActionStream>, Status> {
        let request = SetSessionOptionsRequest::decode(body).map_err(|e| {
            Status::invalid_argument(format!("malformed SetSessionOptionsRequest: {e}"))
        })?;
        let mut session = self.caller_session(caller)?;
        let mut database = caller.database.clone();
        let mut errors = HashMap::new();
        let mut refuse = |name: &str, error: SessionOptionError| {
            let value = SetSessionOptionError {
                value: error.into(),
            };
            errors.insert(name.to_string(), value);
        };
        for (name, value) in &request.session_options {
            let text = match &value.option_value {
                Some(OptionValue::StringValue(text)) => Some(text.as_str()),
                None => None,
                Some(_) => {
                    refuse(name, SessionOptionError::InvalidValue);
                    continue;
                }
            };
            match (name.as_str(), text) {
                (CATALOG_OPTION, None) => {}
                (CATALOG_OPTION, Some(catalog)) if catalog == self.engine.catalog().name => {}
                (SCHEMA_OPTION, None) => database = None,
                (SCHEMA_OPTION, Some(schema)) if session.use_database(schema).is_ok() => {
                    database = Some(schema.to_string());
                }
                (CATALOG_OPTION | SCHEMA_OPTION, Some(_)) => {
                    refuse(name, SessionOptionError::InvalidValue)
                }
                _ => refuse(name, SessionOptionError::InvalidName),
            }
        }
        let result = SetSessionOptionsResult { errors };
        let mut response = action_result(result.encode_to_vec());
        let cookie = self.session_cookie_for(&caller.user, database.as_deref());
        insert_header(response.metadata_mut(), "set-cookie", &cookie)?;
        Ok(response)
    }

    /// GetSessionOptions: the catalog and the current database.
    fn get_session_options(&self, caller: &Caller) -> Result<Response<DoActionStream>, Status> {
        let session = self.caller_session(caller)?;
        let mut options = HashMap::from([(
            CATALOG_OPTION.to_string(),
            string_value(&self.engine.catalog().name),
        )]);
        if let Some(database) = session.current_database() {
            options.insert(SCHEMA_OPTION.to_string(), string_value(database));
        }
        let result = GetSessionOptionsResult {
            session_options: options,
        };
        Ok(action_result(result.encode_to_vec()))
    }

    /// Opens a prepared-statement handle the caller created.
    fn open_handle(&self, caller: &Caller, handle: &[u8]) -> Result<PreparedHandle, Status> {
        let sealed = std::str::from_utf8(handle)
            .map_err(|_| Status::invalid_argument("malformed prepared statement handle"))?;
        let handle: PreparedHandle = self.key.open(sealed).map_err(|e| match e {
            EnvelopeError::Expired => {
                Status::permission_denied("the prepared statement has expired; prepare it again")
            }
            EnvelopeError::BadSignature | EnvelopeError::Malformed => {
                Status::permission_denied("invalid prepared statement handle")
            }
        })?;
        if handle.user != caller.user {
            return Err(Status::permission_denied(
                "the prepared statement belongs to another user",
            ));
        }
        Ok(handle)
    }
}

/// The tonic service to mount: Flight SQL, plus plain Flight with SQL text.
pub fn flight_service(
    service: LakegateFlightService,
) -> arrow_flight::flight_service_server::FlightServiceServer<LakegateFlight> {
    arrow_flight::flight_service_server::FlightServiceServer::new(LakegateFlight::new(service))
}
