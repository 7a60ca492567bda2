//! Writes over Flight: an INSERT or a CREATE TABLE AS sent as an update,
//! as a prepared update with parameter rows, or as a query (written when
//! its FlightInfo is asked for), and bulk ingestion. Each opens an engine
//! session for the caller, which decides and checks everything
//! (`lakegate_engine::QuerySession::execute_write`, `create_table_as`);
//! here the call's limits are applied (one of the user's query slots, the
//! query timeout, `--max-write-bytes` on what a client sends) and the audit
//! event is told what was written.
//!
//! ```text
//! DoPut(CommandStatementUpdate)            ─▶ run_update: administration, a write, or refused
//! DoPut(CommandStatementUpdate: INSERT)    ─▶ write
//! DoPut(CommandStatementUpdate: CREATE TABLE AS) ─▶ write ─▶ create_table_as ─▶ declare
//! DoPut(CommandPreparedStatementUpdate)    ─▶ prepared_write ─▶ write (every parameter row, one write)
//! GetFlightInfo(INSERT as a query)         ─▶ write_info: written once, the ticket carries rows_written
//! DoPut(CommandStatementIngest)            ─▶ ingest_command ─▶ ingest (batches matched by name)
//!                                                          └─▶ (mode create) a new table ─▶ declare
//! ```
//!
//! A created table is declared in the policy store (owned by the caller's
//! role) once its files are written; if the store refuses it, the files
//! are removed. Declaring runs to its end on a task of its own, so a call
//! cancelled or timed out meanwhile never leaves written files undeclared.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow_flight::sql::{
    CommandStatementIngest, ProstMessageExt, TableExistsOption, TableNotExistOption,
    TicketStatementQuery,
};
use arrow_flight::{FlightData, FlightDescriptor, FlightInfo};
use futures::Stream;
use lakegate_admin::CreatedTable as DeclaredTable;
use lakegate_audit::TableWrite;
use lakegate_engine::{CreatedTable, EngineError, WriteOutcome, rows_written};
use prost::Message;
use tonic::Status;

use crate::call::Caller;
use crate::error::{CallError, CallResult};
use crate::prepared::{decode_parameters, encode_parameters, receive_batches};
use crate::statements::{Statements, administrative, flight_info};
use crate::tickets::{PreparedHandle, StatementTicket};

/// Tells the audit of `caller`'s call what a write did (or, refused, the
/// table it named, when known), and answers with the rows written.
fn noted_write(
    caller: &Caller,
    statement: Option<&str>,
    table: Option<String>,
    result: CallResult<WriteOutcome>,
) -> CallResult<i64> {
    match result {
        Ok(outcome) => {
            caller.notes.wrote(
                statement,
                Some(outcome.audit_record()),
                outcome.reads.clone(),
            );
            Ok(i64::try_from(outcome.rows).unwrap_or(i64::MAX))
        }
        Err(error) => {
            let refused = table.map(|table| TableWrite {
                table,
                rows: 0,
                bytes: 0,
                grants: Vec::new(),
                object: None,
                version: None,
            });
            caller.notes.wrote(statement, refused, Vec::new());
            Err(error)
        }
    }
}

impl Statements {
    /// An update `sql` of `caller`'s (ADBC's execute_update, JDBC's
    /// executeUpdate): an administration statement is made, an INSERT or
    /// CREATE TABLE AS runs; anything else gets the SQL gate's answer, or
    /// is told to run as a query.
    pub(crate) async fn run_update(&self, caller: &Caller, sql: &str) -> CallResult<i64> {
        if let Some(statement) = administrative(sql) {
            return self.update(caller, &statement?).await;
        }
        let session = self.session(caller)?;
        if session.is_write(sql) {
            return self.write(caller, sql, None).await;
        }
        Err(CallError::from(session.update_refusal(sql)))
    }

    /// A prepared statement executed as an update (what DB-API's
    /// `executemany` and ADBC's execute_update send): an administration
    /// statement is made; an INSERT runs with the parameter rows sent with
    /// it (or bound before), all as one write; any other prepared statement
    /// is a query, and an update would discard its rows.
    pub(crate) async fn run_prepared_update(
        &self,
        caller: &Caller,
        handle: &PreparedHandle,
        data: impl Stream<Item = Result<FlightData, Status>> + Send + 'static,
    ) -> CallResult<i64> {
        if let Some(statement) = administrative(&handle.sql) {
            return self.update(caller, &statement?).await;
        }
        if self.session(caller)?.is_write(&handle.sql) {
            return self.prepared_write(caller, handle, data).await;
        }
        Err(CallError::Refused(
            "the prepared statement is a query, and executing it as an update \
             (executemany, execute_update) would discard its rows: bind the parameter \
             rows and execute it as a query, which runs it once per row and returns \
             every result"
                .into(),
        ))
    }

    /// Runs the INSERT `sql` for `caller` (every row of `parameters` bound
    /// in turn, as one write): the number of rows written. The audit event
    /// records the statement, the table, what was committed and the grants
    /// that accepted it, or the refusal.
    pub(crate) async fn write(
        &self,
        caller: &Caller,
        sql: &str,
        parameters: Option<RecordBatch>,
    ) -> CallResult<i64> {
        if self.session(caller)?.is_create_table_as(sql) {
            return self.create_table_as(caller, sql, parameters).await;
        }
        let result = self
            .runner
            .run_write(caller.user(), async {
                let session = self.session(caller)?;
                Ok(session.execute_write(sql, parameters).await?)
            })
            .await;
        noted_write(caller, Some(sql), None, result)
    }

    /// Runs the `CREATE TABLE ... AS` `sql` for `caller`: the table written,
    /// then declared (see the module documentation); the rows written.
    async fn create_table_as(
        &self,
        caller: &Caller,
        sql: &str,
        parameters: Option<RecordBatch>,
    ) -> CallResult<i64> {
        let result = self
            .runner
            .run_write(caller.user(), async {
                if parameters.is_some_and(|p| p.num_rows() > 0) {
                    return Err(CallError::InvalidRequest(
                        "CREATE TABLE AS takes no parameters".into(),
                    ));
                }
                let session = self.session(caller)?;
                if self.administration_for(caller).is_err() {
                    return Err(session.update_refusal(sql).into());
                }
                match session.create_table_as(sql).await? {
                    Some(created) => Ok(Some(self.declare(caller, created).await?)),
                    None => Ok(None),
                }
            })
            .await;
        match result {
            // IF NOT EXISTS, and the table exists: nothing was done.
            Ok(None) => {
                caller.notes.wrote(Some(sql), None, Vec::new());
                Ok(0)
            }
            Ok(Some(outcome)) => noted_write(caller, Some(sql), None, Ok(outcome)),
            Err(error) => noted_write(caller, Some(sql), None, Err(error)),
        }
    }

    /// Declares `created` in the policy store, owned by `caller`'s role, or
    /// removes its files when the store refuses it; on a task of its own,
    /// so that it finishes even if the call is cancelled.
    async fn declare(&self, caller: &Caller, created: CreatedTable) -> CallResult<WriteOutcome> {
        let (actor, administration) = self.administration_for(caller)?;
        let declared = tokio::spawn(async move {
            let record = DeclaredTable {
                name: created.table.clone(),
                storage: created.storage.clone(),
                path: created.path.clone(),
                format: created.format,
            };
            match administration.register_created_table(&actor, &record).await {
                Ok(answer) => Ok((created.outcome, answer)),
                Err(error) => {
                    created.discard().await;
                    Err(error)
                }
            }
        })
        .await
        .map_err(|e| CallError::Internal(format!("declaring the created table failed: {e}")))?;
        let (outcome, answer) = declared?;
        caller
            .notes
            .changed(answer.version_before, answer.version_after);
        Ok(outcome)
    }

    /// Appends `batches` (of `schema`) to `table` of `database` (or the
    /// caller's database) for `caller`, or, when `creates`, makes a new
    /// table of them and declares it (bulk ingestion in mode create): the
    /// number of rows written.
    async fn ingest(
        &self,
        caller: &Caller,
        database: Option<&str>,
        table: &str,
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
        creates: bool,
    ) -> CallResult<i64> {
        let result = self
            .runner
            .run_write(caller.user(), async {
                let session = self.session(caller)?;
                if !creates {
                    return Ok(session.ingest(database, table, schema, batches).await?);
                }
                if self.administration_for(caller).is_err() {
                    return Err(session.create_refusal(database, table).into());
                }
                let created = session
                    .create_ingested(database, table, schema, batches)
                    .await?;
                self.declare(caller, created).await
            })
            .await;
        let named = database
            .or(caller.database.as_deref())
            .map(|database| format!("{database}.{table}"));
        noted_write(caller, None, named, result)
    }

    /// GetFlightInfo of an INSERT sent as a query (ADBC's `cursor.execute`
    /// sends everything so): written now, once, and its ticket carries the
    /// answer, one row holding the count of rows written.
    pub(crate) async fn write_info(
        &self,
        caller: &Caller,
        sql: &str,
        parameters: Option<RecordBatch>,
        descriptor: FlightDescriptor,
    ) -> CallResult<FlightInfo> {
        let rows = self.write(caller, sql, parameters).await?;
        let batch = rows_written(u64::try_from(rows).unwrap_or_default());
        let session = self.session(caller)?;
        let ticket = StatementTicket {
            user: caller.user().to_string(),
            role: session.role().to_string(),
            sql: sql.to_string(),
            database: session.current_database().map(str::to_string),
            parameters: None,
            part: None,
            planned: None,
            answer: encode_parameters(std::slice::from_ref(&batch), usize::MAX)?,
        };
        let ticket = TicketStatementQuery {
            statement_handle: self.seals.ticket(&ticket).into(),
        }
        .as_any()
        .encode_to_vec();
        flight_info(vec![ticket], &batch.schema(), descriptor)
    }

    /// An INSERT prepared by `caller` and executed as an update
    /// (`executemany`, ADBC's `execute_update`): run with the parameter
    /// rows sent with it, or else those bound before, all as one write.
    pub(crate) async fn prepared_write(
        &self,
        caller: &Caller,
        handle: &PreparedHandle,
        data: impl Stream<Item = Result<FlightData, Status>> + Send + 'static,
    ) -> CallResult<i64> {
        let (_, sent) = receive_batches(data, self.max_parameter_bytes, |size, limit| {
            CallError::InvalidRequest(format!(
                "bound parameters take {size} bytes or more, more than the {limit} allowed \
                 (--max-parameter-bytes); bind fewer rows per execution, or ingest the rows \
                 (ADBC adbc_ingest)"
            ))
        })
        .await?;
        let parameters = match (sent.first(), &handle.parameters) {
            (Some(first), _) => Some(
                arrow::compute::concat_batches(&first.schema(), &sent)
                    .map_err(|e| CallError::InvalidRequest(format!("parameters: {e}")))?,
            ),
            (None, Some(bound)) => Some(decode_parameters(bound)?),
            (None, None) => None,
        };
        self.write(caller, &handle.sql, parameters).await
    }

    /// Bulk ingestion (`CommandStatementIngest`, ADBC's `adbc_ingest`):
    /// mode append appends the batches sent as an INSERT of those rows
    /// would; mode create makes a new Parquet table of them in the
    /// database's place for new tables (CREATE_TABLE on the database);
    /// create_append appends when the role sees the table, else creates.
    /// Replace and temporary tables are refused.
    pub(crate) async fn ingest_command(
        &self,
        caller: &Caller,
        command: CommandStatementIngest,
        data: impl Stream<Item = Result<FlightData, Status>> + Send + 'static,
    ) -> CallResult<i64> {
        let (if_exists, if_not_exist) = command
            .table_definition_options
            .map_or((TableExistsOption::Fail, TableNotExistOption::Fail), |o| {
                (o.if_exists(), o.if_not_exist())
            });
        if if_exists == TableExistsOption::Replace {
            return Err(CallError::Refused(
                "ingestion in mode replace would drop the table's rows first: Lakegate only \
                 appends (mode append)"
                    .into(),
            ));
        }
        if command.temporary {
            return Err(CallError::Refused(
                "temporary tables are not supported".into(),
            ));
        }
        let serves = self.engine.catalog_name();
        if let Some(catalog) = command.catalog.as_deref()
            && catalog != serves
        {
            return Err(CallError::InvalidRequest(format!(
                "there is no catalog '{catalog}': this server serves '{serves}'"
            )));
        }
        let limit = self.engine.max_write_bytes();
        let (schema, batches) = receive_batches(data, limit, |size, limit| {
            CallError::Engine(EngineError::ResourceExhausted(format!(
                "the ingested data takes {size} bytes or more, more than the {limit} one write \
                 may take (--max-write-bytes); ingest it in parts"
            )))
        })
        .await?;
        let schema = schema.ok_or_else(|| {
            CallError::InvalidRequest("the ingestion sent no schema and no rows".into())
        })?;
        let creates = match (if_not_exist, if_exists) {
            (TableNotExistOption::Create, TableExistsOption::Fail) => true,
            (TableNotExistOption::Create, _) => {
                let session = self.session(caller)?;
                let database = command
                    .schema
                    .as_deref()
                    .or(session.current_database())
                    .unwrap_or_default()
                    .to_string();
                !session
                    .visible_tables()
                    .contains(&(database, command.table.clone()))
            }
            _ => false,
        };
        self.ingest(
            caller,
            command.schema.as_deref(),
            &command.table,
            schema,
            batches,
            creates,
        )
        .await
    }
}
