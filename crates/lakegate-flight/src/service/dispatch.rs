//! The Flight SQL dispatch table: each RPC of `FlightSqlService` handed to
//! the part that answers it (see the table in `service.rs`), and the
//! answers of the metadata RPCs that need no more than the builders.

use std::pin::Pin;
use std::sync::Arc;

use arrow::datatypes::Schema;
use arrow_flight::flight_service_server::FlightService;
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
    Action, ActionType, FlightDescriptor, FlightInfo, HandshakeRequest, HandshakeResponse, Ticket,
};
use futures::{Stream, StreamExt};
use prost::Message;
use tonic::{Request, Response, Status, Streaming};

use crate::call::caller_of;
use crate::error::CallError;
use crate::metadata::{FOREIGN_KEYS_SCHEMA, PRIMARY_KEYS_SCHEMA, XDBC_TYPE_INFO, no_rows, tables};
use crate::running::{DoGetStream, as_flight_data, insert_header, one_batch};
use crate::session_options::{session_action, session_action_types};
use crate::statements::flight_info;
use crate::tickets::{PreparedHandle, StatementTicket};

use super::LakegateFlightService;

/// How long the Handshake's answer waits for the client to finish sending.
const HANDSHAKE_DRAIN: std::time::Duration = std::time::Duration::from_secs(10);

impl LakegateFlightService {
    /// GetFlightInfo of a metadata command: the ticket is the command itself
    /// (it carries nothing secret; DoGet authenticates again).
    fn metadata_info(
        &self,
        request: Request<FlightDescriptor>,
        command: arrow_flight::sql::Any,
        schema: &Schema,
    ) -> Result<Response<FlightInfo>, Status> {
        caller_of(&request)?;
        let info = flight_info(vec![command.encode_to_vec()], schema, request.into_inner())?;
        Ok(Response::new(info))
    }

    /// An empty answer to a key RPC (Lakegate tables declare no keys).
    fn no_keys(
        &self,
        request: &Request<Ticket>,
        schema: &arrow::datatypes::SchemaRef,
    ) -> Result<Response<DoGetStream>, Status> {
        caller_of(request)?;
        Ok(one_batch(
            Arc::clone(schema),
            Ok::<_, CallError>(no_rows(schema)),
        )?)
    }
}

type DoActionStream = <LakegateFlightService as FlightService>::DoActionStream;
type HandshakeStream = Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>;

#[tonic::async_trait]
impl FlightSqlService for LakegateFlightService {
    type FlightService = Self;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<HandshakeStream>, Status> {
        let token = self.tokens.issue(&caller_of(&request)?.identity);
        let reply = HandshakeResponse {
            protocol_version: 0,
            payload: token.clone().into(),
        };
        // The answer stays open until the client has sent what it sends
        // (or for HANDSHAKE_DRAIN at most): a gRPC C++ client (pyarrow's
        // auth handlers) that writes after a server already ended the call
        // can block in that write forever.
        let mut requests = request.into_inner();
        let drained = futures::stream::once(async move {
            let _ = tokio::time::timeout(HANDSHAKE_DRAIN, async {
                while let Ok(Some(_)) = requests.message().await {}
            })
            .await;
        })
        .filter_map(|()| std::future::ready(None::<Result<HandshakeResponse, Status>>));
        let answer = futures::stream::iter([Ok(reply)]).chain(drained);
        let mut response: Response<HandshakeStream> = Response::new(Box::pin(answer));
        let bearer = format!("Bearer {token}");
        insert_header(response.metadata_mut(), "authorization", &bearer)?;
        Ok(response)
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let caller = caller_of(&request)?;
        let descriptor = request.get_ref().clone();
        let info = self
            .statements
            .flight_info(caller, query.query, None, descriptor)
            .await?;
        Ok(Response::new(info))
    }

    async fn do_get_statement(
        &self,
        _ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        // The entry opened the ticket (once) and checked that it is the
        // caller's.
        let ticket = request
            .extensions()
            .get::<StatementTicket>()
            .cloned()
            .ok_or_else(|| {
                CallError::Internal("a statement ticket reached DoGet unopened".into())
            })?;
        let answer = self
            .statements
            .run_ticket(caller_of(&request)?, ticket)
            .await?;
        Ok(as_flight_data(answer))
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
        caller_of(&request)?;
        let builder = query.into_builder(&self.sql_info);
        Ok(one_batch(builder.schema(), builder.build())?)
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
        caller_of(&request)?;
        let mut builder = query.into_builder();
        builder.append(self.engine.catalog_name());
        Ok(one_batch(builder.schema(), builder.build())?)
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
        // Only the databases the caller's role may see.
        let session = self.statements.session(caller_of(&request)?)?;
        let mut builder = query.into_builder();
        for database in session.visible_databases() {
            builder.append(self.engine.catalog_name(), database);
        }
        Ok(one_batch(builder.schema(), builder.build())?)
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
        caller_of(&request)?;
        let mut builder = query.into_builder();
        builder.append("TABLE");
        Ok(one_batch(builder.schema(), builder.build())?)
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
        let session = self.statements.session(caller_of(&request)?)?;
        Ok(tables(&session, &self.engine.catalog_name(), query).await?)
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
        caller_of(&request)?;
        let builder = query.into_builder(&XDBC_TYPE_INFO);
        Ok(one_batch(builder.schema(), builder.build())?)
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
        self.no_keys(&request, &PRIMARY_KEYS_SCHEMA)
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
        self.no_keys(&request, &FOREIGN_KEYS_SCHEMA)
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
        self.no_keys(&request, &FOREIGN_KEYS_SCHEMA)
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
        self.no_keys(&request, &FOREIGN_KEYS_SCHEMA)
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let caller = caller_of(&request)?;
        Ok(self.statements.prepare(caller, query.query).await?)
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        let caller = caller_of(&request)?.clone();
        let data = request.into_inner();
        let handle = &query.prepared_statement_handle;
        Ok(self.statements.bind(&caller, handle, data).await?)
    }

    async fn get_flight_info_prepared_statement(
        &self,
        _query: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let caller = caller_of(&request)?;
        let descriptor = request.get_ref().clone();
        // The entry opened the handle (once) and checked that it is the
        // caller's.
        let handle = request
            .extensions()
            .get::<PreparedHandle>()
            .cloned()
            .ok_or_else(|| {
                CallError::Internal("a prepared statement reached GetFlightInfo unopened".into())
            })?;
        let info = self
            .statements
            .prepared_flight_info(caller, handle, descriptor)
            .await?;
        Ok(Response::new(info))
    }

    async fn do_action_close_prepared_statement(
        &self,
        query: ActionClosePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<(), Status> {
        let caller = caller_of(&request)?;
        Ok(self
            .statements
            .close(caller, &query.prepared_statement_handle)?)
    }

    async fn do_put_statement_update(
        &self,
        query: CommandStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let caller = caller_of(&request)?;
        Ok(self.statements.run_update(caller, &query.query).await?)
    }

    async fn do_put_prepared_statement_update(
        &self,
        query: CommandPreparedStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let caller = caller_of(&request)?.clone();
        let handle = self
            .seals
            .open_handle(&query.prepared_statement_handle, caller.user())?;
        let data = request.into_inner();
        Ok(self
            .statements
            .run_prepared_update(&caller, &handle, data)
            .await?)
    }

    async fn do_put_statement_ingest(
        &self,
        query: CommandStatementIngest,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let caller = caller_of(&request)?.clone();
        let data = request.into_inner();
        Ok(self.statements.ingest_command(&caller, query, data).await?)
    }

    async fn do_action_fallback(
        &self,
        request: Request<Action>,
    ) -> Result<Response<DoActionStream>, Status> {
        let caller = caller_of(&request)?;
        let catalog = self.engine.catalog_name();
        let answer = session_action(
            &self.statements,
            &self.seals,
            &catalog,
            caller,
            request.get_ref(),
        )?;
        let result = arrow_flight::Result {
            body: answer.body.into(),
        };
        let mut response: Response<DoActionStream> =
            Response::new(Box::pin(futures::stream::iter([Ok(result)])));
        if let Some(cookie) = answer.set_cookie {
            insert_header(response.metadata_mut(), "set-cookie", &cookie)?;
        }
        Ok(response)
    }

    async fn list_custom_actions(&self) -> Option<Vec<Result<ActionType, Status>>> {
        Some(session_action_types())
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}
