//! Administration statements over Flight: who administers (the caller,
//! its role checked as for a query), running a statement through the
//! policy store's administration with the version it made noted for the
//! audit, as an update or as a query whose ticket carries the answer.

use std::sync::Arc;

use arrow_flight::sql::{ProstMessageExt, TicketStatementQuery};
use arrow_flight::{FlightDescriptor, FlightInfo};
use lakegate_admin::{
    Actor, AdminAnswer, AdminError, AdminStatement, Administration, parse_admin, redacted,
};
use prost::Message;

use super::{RunAs, Statements, flight_info};
use crate::audit::HandlerNotes;
use crate::call::Caller;
use crate::error::{CallError, CallResult};
use crate::prepared::encode_parameters;
use crate::tickets::StatementTicket;

/// The administration statement `sql` holds, if it is one (see
/// `lakegate_admin::parse_admin`).
pub(crate) fn administrative(sql: &str) -> Option<CallResult<AdminStatement>> {
    parse_admin(sql).map(|parsed| parsed.map_err(CallError::from))
}

impl Statements {
    /// Runs administration statements through `administration`.
    pub(crate) fn administer_with(&mut self, administration: Arc<Administration>) {
        self.administration = Some(administration);
    }

    /// Who `run_as` administers as (its role checked as for a query), and
    /// the administration, when the server has a store.
    fn actor(&self, run_as: RunAs<'_>) -> CallResult<(Actor, Arc<Administration>)> {
        let administration = self
            .administration
            .as_ref()
            .ok_or(CallError::Admin(AdminError::ReadOnly))?;
        let session = self.session_as(run_as)?;
        let actor = Actor {
            user: run_as.principal.user.clone(),
            role: session.role().to_string(),
        };
        Ok((actor, Arc::clone(administration)))
    }

    /// [`Statements::actor`] for a caller.
    pub(crate) fn administration_for(
        &self,
        caller: &Caller,
    ) -> CallResult<(Actor, Arc<Administration>)> {
        self.actor(caller.into())
    }

    /// Runs an administration statement for `caller`, recording in its
    /// audit event what version it made.
    pub(crate) async fn administer_for(
        &self,
        caller: &Caller,
        statement: &AdminStatement,
    ) -> CallResult<AdminAnswer> {
        self.administer(caller.into(), Some(&caller.notes), statement)
            .await
    }

    /// Runs an administration statement as `run_as`, telling `change` (the
    /// call's audit) what version it made.
    pub(super) async fn administer(
        &self,
        run_as: RunAs<'_>,
        change: Option<&HandlerNotes>,
        statement: &AdminStatement,
    ) -> CallResult<AdminAnswer> {
        let (actor, administration) = self.actor(run_as)?;
        let answer = administration.execute(&actor, statement).await?;
        if let Some(change) = change
            && answer.version_after != answer.version_before
        {
            change.changed(answer.version_before, answer.version_after);
        }
        Ok(answer)
    }

    /// Runs an administration statement sent as an update: the count of
    /// changes it made (1). A `SHOW` has rows to return and is refused here.
    pub(crate) async fn update(
        &self,
        caller: &Caller,
        statement: &AdminStatement,
    ) -> CallResult<i64> {
        if statement.is_show() {
            return Err(CallError::InvalidRequest(format!(
                "{} returns rows: execute it as a query",
                statement.kind()
            )));
        }
        self.administer(caller.into(), Some(&caller.notes), statement)
            .await?;
        Ok(1)
    }

    /// GetFlightInfo of an administration statement: a change is made now,
    /// once, and its ticket carries the answer; a `SHOW` is answered now for
    /// its schema and again, as of then, when its ticket is redeemed.
    pub(super) async fn administration_info(
        &self,
        caller: &Caller,
        sql: &str,
        statement: &AdminStatement,
        descriptor: FlightDescriptor,
    ) -> CallResult<FlightInfo> {
        let answer = self
            .administer(caller.into(), Some(&caller.notes), statement)
            .await?;
        let session = self.session(caller)?;
        let ticket = StatementTicket {
            user: caller.user().to_string(),
            role: session.role().to_string(),
            sql: redacted(sql),
            database: session.current_database().map(str::to_string),
            parameters: None,
            part: None,
            planned: None,
            answer: if statement.is_show() {
                None
            } else {
                encode_parameters(std::slice::from_ref(&answer.batch), usize::MAX)?
            },
        };
        let ticket = TicketStatementQuery {
            statement_handle: self.seals.ticket(&ticket).into(),
        }
        .as_any()
        .encode_to_vec();
        flight_info(vec![ticket], &answer.batch.schema(), descriptor)
    }
}
