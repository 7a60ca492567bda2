//! Auditing Flight calls: every call becomes one [`AuditEvent`], a DoGet (a
//! read) when its stream ends.
//!
//! ```text
//! the entry (entry.rs), for each RPC:
//!   PendingAudit::start(AuditStart)  who (authenticated, or claimed when sign-in failed),
//!                                    the role asked for or defaulted to, source
//!                                    identity, peer, action, statement text
//!   call the Flight SQL service
//!   Err(status)      ─▶ record: denied (UNAUTHENTICATED, PERMISSION_DENIED) or error
//!   Ok(DoGet stream) ─▶ AuditedStream counts rows and bytes as they leave;
//!                       at the end: ok / error; dropped early: cancelled
//!   Ok(other)        ─▶ record: ok
//! ```
//!
//! What the statement read (tables, columns, the grants applied) and the
//! role it ran under are known only inside the service: it leaves them in
//! the response's extensions as a [`ReadNote`].

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use futures::Stream;
use lakegate_admin::redacted;
use lakegate_audit::{AuditEvent, AuditLog, Outcome, TableRead, TableWrite};
use lakegate_identity::SignInMethod;
use tonic::{Code, Status};

use crate::flight_messages::FlightMessage;

/// What the service tells the audit about a read it started.
#[derive(Debug, Clone)]
pub(crate) struct ReadNote {
    /// The role the statement runs under.
    pub role: String,
    /// The statement text.
    pub statement: Option<String>,
    /// What it reads.
    pub reads: Vec<TableRead>,
}

/// An event being built while its call runs.
#[derive(Debug)]
pub(crate) struct PendingAudit {
    log: AuditLog,
    started: Instant,
    event: AuditEvent,
    notes: HandlerNotes,
}

/// The name of a gRPC code as the audit log writes it.
fn code_name(code: Code) -> String {
    // tonic's Display gives prose; the log uses the protocol's names.
    format!("{code:?}")
        .chars()
        .enumerate()
        .flat_map(|(i, c)| {
            let separator = (i > 0 && c.is_uppercase()).then_some('_');
            separator.into_iter().chain(c.to_uppercase())
        })
        .collect()
}

/// Where a call's handler tells the audit what it changed: the policy
/// versions before and after (an administration statement), or what it
/// wrote to a table. The entry keeps one end, the caller carries the other.
#[derive(Debug, Clone, Default)]
pub(crate) struct HandlerNotes(Arc<Mutex<Notes>>);

#[derive(Debug, Default)]
struct Notes {
    policy_change: Option<(i64, i64)>,
    written: Option<TableWrite>,
    /// The statement a DoPut carried (its descriptor is in the stream).
    statement: Option<String>,
    /// What a write's source read.
    reads: Vec<TableRead>,
}

impl HandlerNotes {
    /// Records that the call took the policy from `before` to `after`.
    pub(crate) fn changed(&self, before: i64, after: i64) {
        self.0.lock().expect("never poisoned").policy_change = Some((before, after));
    }

    /// Records what the call wrote (or, refused, to which table), by
    /// which statement, and what its rows were read from.
    pub(crate) fn wrote(
        &self,
        statement: Option<&str>,
        written: Option<TableWrite>,
        reads: Vec<TableRead>,
    ) {
        let mut notes = self.0.lock().expect("never poisoned");
        notes.statement = statement.map(str::to_string);
        notes.written = written;
        notes.reads = reads;
    }

    fn taken(&self) -> Notes {
        std::mem::take(&mut *self.0.lock().expect("never poisoned"))
    }
}

/// A statement as the audit log may keep it: passwords given in SQL
/// (`CREATE USER ... PASSWORD '...'`) replaced. Only texts that mention a
/// password are tokenized.
pub(crate) fn auditable(sql: String) -> String {
    let mentions = sql
        .as_bytes()
        .windows(b"password".len())
        .any(|w| w.eq_ignore_ascii_case(b"password"));
    if mentions { redacted(&sql) } else { sql }
}

/// What the entry knows of a call when it starts.
#[derive(Debug, Default)]
pub(crate) struct AuditStart {
    /// The authenticated user, or the one a failed sign-in claimed.
    pub(crate) user: Option<String>,
    /// The role asked for, or the user's default role.
    pub(crate) role: Option<String>,
    /// The caller's source identity: bound at sign-in, or named by the call.
    pub(crate) source_identity: Option<String>,
    /// How the caller signed in, when it did.
    pub(crate) sign_in: Option<SignInMethod>,
    /// The peer's address.
    pub(crate) peer: Option<String>,
    /// The RPC, and what it carried (`DoGet/TicketStatementQuery`).
    pub(crate) action: String,
    /// The statement text, when the call carries one.
    pub(crate) statement: Option<String>,
    /// The policy version served when the call was admitted.
    pub(crate) policy_version: Option<i64>,
    /// Filled by the handler of a policy change.
    pub(crate) notes: HandlerNotes,
}

impl PendingAudit {
    /// Starts the event of a call.
    pub(crate) fn start(log: &AuditLog, start: AuditStart) -> Self {
        let mut event = AuditEvent::new(start.action);
        event.user = start.user;
        event.role = start.role;
        event.source_identity = start.source_identity;
        event.sign_in = start.sign_in.map(|method| method.to_string());
        event.peer = start.peer;
        event.statement = start.statement.map(auditable);
        event.policy_version = start.policy_version;
        Self {
            log: log.clone(),
            started: Instant::now(),
            event,
            notes: start.notes,
        }
    }

    /// Adds what the service said about the read.
    pub(crate) fn note(&mut self, note: Option<&ReadNote>) {
        if let Some(note) = note {
            self.event.role = Some(note.role.clone());
            if note.statement.is_some() {
                self.event.statement = note.statement.clone().map(auditable);
            }
            self.event.tables = note.reads.clone();
        }
    }

    /// Records the call as failed with `status`.
    pub(crate) fn failed(mut self, status: &Status) {
        self.event.fail(&code_name(status.code()), status.message());
        self.finish();
    }

    /// Records the call as done.
    pub(crate) fn finish(mut self) {
        self.event.duration_ms = self.started.elapsed().as_secs_f64() * 1000.0;
        let notes = self.notes.taken();
        if let Some((before, after)) = notes.policy_change {
            self.event.policy_version = Some(before);
            self.event.policy_version_after = Some(after);
        }
        self.event.written = notes.written;
        if let Some(statement) = notes.statement {
            self.event.statement = Some(auditable(statement));
        }
        if !notes.reads.is_empty() {
            self.event.tables = notes.reads;
        }
        self.log.record(&self.event);
    }

    /// Counts one message of a DoGet answer.
    fn count(&mut self, message: &FlightMessage) {
        self.event.bytes += (message.data.data_header.len() + message.body_len()) as u64;
        if let Ok(message) = arrow::ipc::root_as_message(&message.data.data_header)
            && let Some(batch) = message.header_as_record_batch()
        {
            self.event.rows += batch.length().max(0) as u64;
        }
    }
}

/// A DoGet answer that records its audit event when it ends.
pub(crate) struct AuditedStream<S> {
    inner: S,
    pending: Option<PendingAudit>,
}

impl<S> AuditedStream<S> {
    pub(crate) fn new(inner: S, pending: PendingAudit) -> Self {
        Self {
            inner,
            pending: Some(pending),
        }
    }
}

impl<S> Stream for AuditedStream<S>
where
    S: Stream<Item = Result<FlightMessage, Status>> + Unpin,
{
    type Item = Result<FlightMessage, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let item = Pin::new(&mut self.inner).poll_next(cx);
        match &item {
            Poll::Ready(Some(Ok(data))) => {
                if let Some(pending) = self.pending.as_mut() {
                    pending.count(data);
                }
            }
            Poll::Ready(Some(Err(status))) => {
                if let Some(pending) = self.pending.take() {
                    pending.failed(status);
                }
            }
            Poll::Ready(None) => {
                if let Some(pending) = self.pending.take() {
                    pending.finish();
                }
            }
            Poll::Pending => {}
        }
        item
    }
}

impl<S> Drop for AuditedStream<S> {
    fn drop(&mut self) {
        // The client went away (or cancelled) before the end of the stream.
        if let Some(mut pending) = self.pending.take() {
            pending.event.outcome = Outcome::Cancelled;
            pending.event.error_code = Some(code_name(Code::Cancelled));
            pending.finish();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_names_are_the_protocols() {
        assert_eq!(code_name(Code::PermissionDenied), "PERMISSION_DENIED");
        assert_eq!(code_name(Code::Unauthenticated), "UNAUTHENTICATED");
        assert_eq!(code_name(Code::Ok), "OK");
    }
}
