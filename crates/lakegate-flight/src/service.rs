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

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::sql::metadata::SqlInfoData;
use arrow_flight::sql::server::FlightSqlService;
use arrow_flight::sql::{
    CommandGetCatalogs, CommandGetDbSchemas, CommandGetSqlInfo, CommandGetTableTypes,
    CommandStatementQuery, ProstMessageExt, SqlInfo, TicketStatementQuery,
};
use arrow_flight::{
    FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse, Ticket,
};
use futures::{Stream, TryStreamExt};
use lakegate_engine::{Engine, EngineError, QuerySession};
use prost::Message;
use serde::{Deserialize, Serialize};
use tonic::{Request, Response, Status, Streaming};

use crate::credentials::{Credentials, parse_authorization};
use crate::plain::LakegateFlight;
use crate::signing::{EnvelopeError, EnvelopeKey};
use crate::sql_info::sql_info_data;
use crate::status::{status_of, unauthenticated};
use crate::throttle::LoginThrottle;

/// Call header choosing the runtime role.
pub const ROLE_HEADER: &str = "x-lakegate-role";
/// Call header naming the caller's source identity (a notebook profile, a
/// job), recorded with the call.
pub const SOURCE_IDENTITY_HEADER: &str = "x-lakegate-source-identity";

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
}

impl Default for ServiceOptions {
    fn default() -> Self {
        Self {
            token_ttl: Duration::from_secs(12 * 3600),
            ticket_ttl: Duration::from_secs(300),
            max_login_failures: 5,
            login_window: Duration::from_secs(60),
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
}

/// The authenticated caller of one call.
#[derive(Debug, Clone)]
struct Caller {
    user: String,
    /// The role asked for with `x-lakegate-role`, if any.
    requested_role: Option<String>,
}

/// Lakegate's Flight SQL service.
#[derive(Clone)]
pub struct LakegateFlightService {
    engine: Engine,
    key: Arc<EnvelopeKey>,
    options: ServiceOptions,
    throttle: Arc<LoginThrottle>,
    sql_info: Arc<SqlInfoData>,
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
        Self {
            engine,
            key: Arc::new(key),
            options,
            throttle,
            sql_info,
        }
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
        let requested_role = metadata
            .get(ROLE_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Ok(Caller {
            user,
            requested_role,
        })
    }

    fn session(&self, user: &str, role: Option<&str>) -> Result<QuerySession, Status> {
        self.engine.session(user, role).map_err(status_of)
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
        let header = format!("Bearer {token}")
            .parse()
            .map_err(|_| Status::internal("token is not a valid header value"))?;
        response.metadata_mut().insert("authorization", header);
        Ok(response)
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let caller = self.authenticate(&request)?;
        let mut session = self.session(&caller.user, caller.requested_role.as_deref())?;
        // Planned (not run) under the role now, so that the schema is the
        // role's view and a denied query fails here, before any ticket exists.
        let schema = session
            .output_schema(&query.query)
            .await
            .map_err(status_of)?;
        let ticket = StatementTicket {
            user: caller.user,
            role: session.role().to_string(),
            sql: query.query,
        };
        let sealed = self.key.seal(&ticket, self.options.ticket_ttl);
        let ticket = TicketStatementQuery {
            statement_handle: sealed.into(),
        };
        flight_info(ticket.as_any(), &schema, request.into_inner())
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
        self.stream_query(&ticket.user, Some(&ticket.role), &ticket.sql)
            .await
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.authenticate(&request)?;
        let schema = query.clone().into_builder(&self.sql_info).schema();
        flight_info(query.as_any(), &schema, request.into_inner())
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
        self.authenticate(&request)?;
        let schema = query.into_builder().schema();
        flight_info(query.as_any(), &schema, request.into_inner())
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
        self.authenticate(&request)?;
        let schema = query.clone().into_builder().schema();
        flight_info(query.as_any(), &schema, request.into_inner())
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let caller = self.authenticate(&request)?;
        // Only the databases the caller's role may see.
        let session = self.session(&caller.user, caller.requested_role.as_deref())?;
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
        self.authenticate(&request)?;
        let schema = query.into_builder().schema();
        flight_info(query.as_any(), &schema, request.into_inner())
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

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}

/// A FlightInfo of one endpoint with no location, whose ticket is `ticket`
/// (a sealed statement ticket, or a metadata command, which carries nothing
/// secret: DoGet authenticates again either way).
fn flight_info(
    ticket: arrow_flight::sql::Any,
    schema: &arrow::datatypes::Schema,
    descriptor: FlightDescriptor,
) -> Result<Response<FlightInfo>, Status> {
    let endpoint = FlightEndpoint::new().with_ticket(Ticket::new(ticket.encode_to_vec()));
    let info = FlightInfo::new()
        .try_with_schema(schema)
        .map_err(|e| Status::internal(e.to_string()))?
        .with_endpoint(endpoint)
        .with_descriptor(descriptor);
    Ok(Response::new(info))
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
        self.stream_query(&caller.user, caller.requested_role.as_deref(), &sql)
            .await
    }

    /// Runs `sql` as `user` under `role` and streams the result as Flight data.
    async fn stream_query(
        &self,
        user: &str,
        role: Option<&str>,
        sql: &str,
    ) -> Result<Response<DoGetStream>, Status> {
        let mut session = self.session(user, role)?;
        let output = session.execute(sql).await.map_err(status_of)?;
        let batches = output
            .stream
            .map_err(|e| status_of(EngineError::from_execution(e)));
        Ok(encode(output.schema, batches))
    }
}

/// The tonic service to mount: Flight SQL, plus plain Flight with SQL text.
pub fn flight_service(
    service: LakegateFlightService,
) -> arrow_flight::flight_service_server::FlightServiceServer<LakegateFlight> {
    arrow_flight::flight_service_server::FlightServiceServer::new(LakegateFlight::new(service))
}
