//! Statements over Flight: planning under the caller's role for a FlightInfo
//! (whose tickets are sealed to the caller and role), redeeming a ticket,
//! preparing and binding, and the schema of a statement. Every one of them
//! opens an engine session for the caller and asks the engine; nothing here
//! decides what a role may see.
//!
//! ```text
//! GetFlightInfo(sql | handle) ─▶ flight_info: plan under the role ─▶ schema, tickets
//! DoGet(ticket)               ─▶ run_ticket: the role checked again, planned as of now,
//!                                 run within the user's limits (running.rs)
//! CreatePreparedStatement     ─▶ prepare: plan ─▶ handle, dataset and parameter schemas
//! DoPut(handle, parameters)   ─▶ bind: the parameters sealed into a new handle
//! ```
//!
//! Administration statements are run in `statements/administration.rs`,
//! writes in `writes.rs`.

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use arrow_flight::sql::{
    ActionCreatePreparedStatementResult, DoPutPreparedStatementResult, ProstMessageExt,
    TicketStatementQuery,
};
use arrow_flight::{FlightDescriptor, FlightEndpoint, FlightInfo, IpcMessage, SchemaAsIpc, Ticket};
use std::sync::Arc;

use futures::{Stream, TryStreamExt};
use lakegate_admin::{Administration, change_result_schema, redacted};
use lakegate_engine::{Engine, EngineError, PlannedStatement, QueryOutput, QuerySession};
use lakegate_identity::Principal;
use prost::Message;
use tonic::{Response, Status};

use crate::audit::ReadNote;
use crate::call::Caller;
use crate::error::{CallError, CallResult};
use crate::flight_messages::MessageStream;
use crate::prepared::{decode_parameters, receive_parameters};
use crate::running::{Answer, QueryRunner};
mod administration;

pub(crate) use administration::administrative;

use crate::tickets::{
    Planned, PreparedHandle, Seals, StatementTicket, column_digest, schema_digest,
};

/// Plans and runs the statements of calls.
#[derive(Debug, Clone)]
pub(crate) struct Statements {
    pub(crate) engine: Engine,
    pub(crate) seals: Seals,
    pub(crate) runner: QueryRunner,
    pub(crate) max_parameter_bytes: usize,
    /// The policy store's administration, when the server has a store.
    administration: Option<Arc<Administration>>,
}

/// Who runs a statement, under which role, in which database.
#[derive(Debug, Clone, Copy)]
struct RunAs<'a> {
    principal: &'a Principal,
    role: Option<&'a str>,
    database: Option<&'a str>,
}

impl<'a> From<&'a Caller> for RunAs<'a> {
    fn from(caller: &'a Caller) -> Self {
        Self {
            principal: caller.principal(),
            role: caller.requested_role(),
            database: caller.database.as_deref(),
        }
    }
}

impl Statements {
    pub(crate) fn new(
        engine: Engine,
        seals: Seals,
        runner: QueryRunner,
        max_parameter_bytes: usize,
    ) -> Self {
        Self {
            engine,
            seals,
            runner,
            max_parameter_bytes,
            administration: None,
        }
    }

    /// The query runner (slots, timeout).
    pub(crate) fn runner(&self) -> &QueryRunner {
        &self.runner
    }

    /// A query session for the caller: its role (asked for or default) and
    /// its session's current database.
    pub(crate) fn session(&self, caller: &Caller) -> CallResult<QuerySession> {
        self.session_as(caller.into())
    }

    fn session_as(&self, run_as: RunAs<'_>) -> CallResult<QuerySession> {
        let mut session = self.engine.session_for(run_as.principal, run_as.role)?;
        if let Some(database) = run_as.database {
            session.use_database(database)?;
        }
        Ok(session)
    }

    /// Plans `sql` (with `parameters` bound) under the caller's role, and
    /// answers with a FlightInfo whose tickets are sealed to the caller and
    /// role. Planned, not run, so that the schema is the role's view and a
    /// denied query fails here, before any ticket exists. A caller that asked
    /// for parallel endpoints gets one per independent part of the result.
    pub(crate) async fn flight_info(
        &self,
        caller: &Caller,
        sql: String,
        parameters: Option<String>,
        descriptor: FlightDescriptor,
    ) -> CallResult<FlightInfo> {
        if let Some(statement) = administrative(&sql) {
            if parameters.is_some() {
                return Err(CallError::InvalidRequest(
                    "administration statements take no parameters".into(),
                ));
            }
            return self
                .administration_info(caller, &sql, &statement?, descriptor)
                .await;
        }
        let mut session = self.session(caller)?;
        let values = parameters.as_deref().map(decode_parameters).transpose()?;
        if session.is_write(&sql) {
            return self.write_info(caller, &sql, values, descriptor).await;
        }
        let planned = async {
            let statement = plan(&mut session, &sql, values).await?;
            let schema = statement.schema();
            let parts = if caller.headers.parallel {
                statement.into_parts().await?.parts()
            } else {
                1
            };
            Ok((schema, parts))
        };
        let (schema, parts) = self.runner.within_timeout(planned).await?;
        let planned = Planned {
            version: session.policy_version(),
            schema: schema_digest(&schema),
        };
        let tickets = (0..parts).map(|part| {
            let ticket = StatementTicket {
                user: caller.user().to_string(),
                role: session.role().to_string(),
                sql: sql.clone(),
                database: session.current_database().map(str::to_string),
                parameters: parameters.clone(),
                part: (parts > 1).then_some([part, parts]),
                answer: None,
                planned: Some(planned.clone()),
            };
            TicketStatementQuery {
                statement_handle: self.seals.ticket(&ticket).into(),
            }
            .as_any()
            .encode_to_vec()
        });
        flight_info(tickets.collect(), &schema, descriptor)
    }

    /// The schema the caller's role gets for `sql`, as GetFlightInfo gives it.
    pub(crate) async fn schema(&self, caller: &Caller, sql: &str) -> CallResult<SchemaRef> {
        if let Some(statement) = administrative(sql) {
            // A change's schema is known without making it; a SHOW's is
            // its answer's.
            let statement = statement?;
            if !statement.is_show() {
                return Ok(change_result_schema());
            }
            let answer = self.administer(caller.into(), None, &statement).await?;
            return Ok(answer.batch.schema());
        }
        let mut session = self.session(caller)?;
        let planned = async { Ok(plan(&mut session, sql, None).await?.schema()) };
        self.runner.within_timeout(planned).await
    }

    /// Runs an opened statement ticket (the caller's): the role is checked
    /// again and the policy applied as of now.
    pub(crate) async fn run_ticket(
        &self,
        caller: &Caller,
        ticket: StatementTicket,
    ) -> CallResult<Response<MessageStream>> {
        let run_as = RunAs {
            principal: caller.principal(),
            role: Some(&ticket.role),
            database: ticket.database.as_deref(),
        };
        if let Some(answer) = &ticket.answer {
            let batch = decode_parameters(answer)?;
            let answer = one_answer(&ticket.role, &ticket.sql, batch);
            return self.runner.run(&ticket.user, async { Ok(answer) }).await;
        }
        let parameters = ticket
            .parameters
            .as_deref()
            .map(decode_parameters)
            .transpose()?;
        let start = self.start(
            run_as,
            &ticket.sql,
            parameters,
            ticket.part,
            ticket.planned.as_ref(),
        );
        self.runner.run(&ticket.user, start).await
    }

    /// Runs SQL text a plain Flight client sent as its ticket, under the
    /// caller's role, planned now.
    pub(crate) async fn run_sql(
        &self,
        caller: &Caller,
        sql: &str,
    ) -> CallResult<Response<MessageStream>> {
        if let Some(statement) = administrative(sql) {
            let statement = statement?;
            let answer = self
                .administer(caller.into(), Some(&caller.notes), &statement)
                .await?;
            let role = self.session(caller)?.role().to_string();
            let answer = one_answer(&role, &redacted(sql), answer.batch);
            return self.runner.run(caller.user(), async { Ok(answer) }).await;
        }
        let start = self.start(caller.into(), sql, None, None, None);
        self.runner.run(caller.user(), start).await
    }

    /// Plans and starts a statement (one part of it, for a parallel
    /// endpoint). A statement that changes the current database (`USE db`)
    /// answers with the updated session cookie. A ticket's statement
    /// (`planned`) is planned under the policy served now: if that is a later
    /// version and the result's columns changed, it is refused.
    async fn start(
        &self,
        run_as: RunAs<'_>,
        sql: &str,
        parameters: Option<RecordBatch>,
        part: Option<[usize; 2]>,
        planned: Option<&Planned>,
    ) -> CallResult<Answer> {
        if let Some(statement) = administrative(sql) {
            // A SHOW ticket, answered as of now. (A change's ticket carries
            // its answer and never reaches here.)
            let statement = statement?;
            if !statement.is_show() {
                return Err(CallError::Internal(
                    "a change's ticket reached DoGet without its answer".into(),
                ));
            }
            let answer = self.administer(run_as, None, &statement).await?;
            let role = self.session_as(run_as)?.role().to_string();
            return Ok(one_answer(&role, sql, answer.batch));
        }
        let mut session = self.session_as(run_as)?;
        let statement = plan(&mut session, sql, parameters).await?;
        if let Some(planned) = planned
            && planned.version != session.policy_version()
            && planned.schema != schema_digest(&statement.schema())
        {
            return Err(CallError::Engine(EngineError::PermissionDenied(format!(
                "the access policy changed since this ticket was issued (policy version {} \
                 then, {} now) and the result's columns with it: run the statement again",
                planned.version,
                session.policy_version()
            ))));
        }
        let output = match part {
            Some([part, parts]) => {
                let planned = statement.into_parts().await?;
                if planned.parts() != parts {
                    return Err(CallError::Stale(
                        "the query no longer splits as it did when its endpoints were issued; \
                         request them again"
                            .into(),
                    ));
                }
                planned.execute(part).await?
            }
            None => statement.execute().await?,
        };
        let set_cookie = (session.current_database() != run_as.database).then(|| {
            self.seals
                .session_cookie(&run_as.principal.user, session.current_database())
        });
        Ok(answer(&session, sql, output, set_cookie))
    }

    /// Plans a statement to prepare: the handle, and the schemas of its
    /// result and its parameters.
    pub(crate) async fn prepare(
        &self,
        caller: &Caller,
        sql: String,
    ) -> CallResult<ActionCreatePreparedStatementResult> {
        if administrative(&sql).is_some() {
            // Prepared as clients prepare everything (ADBC's cursor.execute
            // does): made when executed, never when prepared.
            let schema = self.schema(caller, &sql).await?;
            return self.unplanned_handle(caller, sql, &schema, &Schema::empty());
        }
        let mut session = self.session(caller)?;
        if session.is_write(&sql) {
            // An INSERT returns no rows (clients then execute it as an
            // update); preparing it checks the role may write the table.
            let parameters = session.write_parameter_schema(&sql).await?;
            return self.unplanned_handle(caller, sql, &Schema::empty(), &parameters);
        }
        let statement = self
            .runner
            .within_timeout(plan(&mut session, &sql, None))
            .await?;
        let handle = PreparedHandle {
            user: caller.user().to_string(),
            sql,
            parameters: None,
            planned: Some(Planned {
                version: session.policy_version(),
                schema: column_digest(&statement.schema()),
            }),
        };
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: self.seals.handle(&handle).into(),
            dataset_schema: schema_bytes(&statement.schema())?,
            parameter_schema: schema_bytes(&statement.parameter_schema())?,
        })
    }

    /// A prepared statement that is run, not planned, when executed (an
    /// administration statement, an INSERT): its handle carries no plan.
    fn unplanned_handle(
        &self,
        caller: &Caller,
        sql: String,
        dataset_schema: &Schema,
        parameter_schema: &Schema,
    ) -> CallResult<ActionCreatePreparedStatementResult> {
        let handle = PreparedHandle {
            user: caller.user().to_string(),
            sql,
            parameters: None,
            planned: None,
        };
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: self.seals.handle(&handle).into(),
            dataset_schema: schema_bytes(dataset_schema)?,
            parameter_schema: schema_bytes(parameter_schema)?,
        })
    }

    /// Binds the parameters a client streams to one of its handles.
    pub(crate) async fn bind(
        &self,
        caller: &Caller,
        handle: &[u8],
        data: impl Stream<Item = Result<arrow_flight::FlightData, Status>> + Send + 'static,
    ) -> CallResult<DoPutPreparedStatementResult> {
        let mut handle = self.seals.open_handle(handle, caller.user())?;
        handle.parameters = receive_parameters(data, self.max_parameter_bytes).await?;
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(self.seals.handle(&handle).into()),
        })
    }

    /// GetFlightInfo of one of the caller's prepared statements (its handle
    /// opened at the entry): planned again under the role of this call, as
    /// of now.
    pub(crate) async fn prepared_flight_info(
        &self,
        caller: &Caller,
        handle: PreparedHandle,
        descriptor: FlightDescriptor,
    ) -> CallResult<FlightInfo> {
        if let Some(planned) = &handle.planned
            && planned.version != self.engine.policy_version()
        {
            // Prepared under another policy version: refused if the columns
            // the caller sees have changed since.
            let schema = self.schema(caller, &handle.sql).await?;
            if column_digest(&schema) != planned.schema {
                return Err(CallError::Engine(EngineError::PermissionDenied(format!(
                    "the access policy changed since this statement was prepared (policy \
                     version {} then, {} now) and the result's columns with it: prepare it \
                     again",
                    planned.version,
                    self.engine.policy_version()
                ))));
            }
        }
        self.flight_info(caller, handle.sql, handle.parameters, descriptor)
            .await
    }

    /// Closes a prepared statement. The server keeps nothing for one:
    /// closing only checks that it is the caller's; an expired one is closed
    /// already.
    pub(crate) fn close(&self, caller: &Caller, handle: &[u8]) -> CallResult<()> {
        match self.seals.open_handle(handle, caller.user()) {
            Ok(_) | Err(CallError::Expired(..)) => Ok(()),
            Err(other) => Err(other),
        }
    }
}

/// Plans `sql`, bound to `parameters` when given.
async fn plan(
    session: &mut QuerySession,
    sql: &str,
    parameters: Option<RecordBatch>,
) -> CallResult<PlannedStatement> {
    Ok(match parameters {
        Some(values) => session.plan_with_parameters(sql, values).await?,
        None => session.plan(sql).await?,
    })
}

/// The DoGet answer of an administration statement: one batch.
fn one_answer(role: &str, sql: &str, batch: RecordBatch) -> Answer {
    Answer {
        schema: batch.schema(),
        batches: Box::pin(futures::stream::iter([Ok(batch)])),
        note: ReadNote {
            role: role.to_string(),
            statement: Some(sql.to_string()),
            reads: Vec::new(),
        },
        set_cookie: None,
    }
}

/// The DoGet answer of a started query, with what the audit records of it.
fn answer(
    session: &QuerySession,
    sql: &str,
    output: QueryOutput,
    set_cookie: Option<String>,
) -> Answer {
    Answer {
        schema: output.schema,
        batches: Box::pin(output.stream.map_err(CallError::from)),
        note: ReadNote {
            role: session.role().to_string(),
            statement: Some(sql.to_string()),
            reads: output.reads,
        },
        set_cookie,
    }
}

/// A FlightInfo with one endpoint per ticket, none with a location (any
/// server sharing the key redeems them). Several endpoints are unordered
/// parts of one result.
pub(crate) fn flight_info(
    tickets: Vec<Vec<u8>>,
    schema: &arrow::datatypes::Schema,
    descriptor: FlightDescriptor,
) -> CallResult<FlightInfo> {
    let ordered = tickets.len() == 1;
    let mut info = FlightInfo::new()
        .try_with_schema(schema)
        .map_err(|e| CallError::Internal(e.to_string()))?
        .with_descriptor(descriptor)
        .with_ordered(ordered);
    for ticket in tickets {
        info = info.with_endpoint(FlightEndpoint::new().with_ticket(Ticket::new(ticket)));
    }
    Ok(info)
}

/// A schema as Flight SQL messages carry it (an encapsulated IPC message).
pub(crate) fn schema_bytes(schema: &arrow::datatypes::Schema) -> CallResult<prost::bytes::Bytes> {
    let options = arrow::ipc::writer::IpcWriteOptions::default();
    let IpcMessage(bytes) = SchemaAsIpc::new(schema, &options)
        .try_into()
        .map_err(|e: arrow::error::ArrowError| CallError::Internal(e.to_string()))?;
    Ok(bytes)
}
