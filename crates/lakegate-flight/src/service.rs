//! The Flight SQL service: a dispatch table from Flight SQL's RPCs to the
//! parts that answer them. Every call arrives here through the entry
//! (`entry.rs`), which has authenticated the caller once and put it in the
//! request's extensions; the handlers read it with `call::caller_of`.
//!
//! ```text
//! client                                   Lakegate
//!   │ 1. Handshake (authorization: Basic u:p) ─▶ entry: authenticate
//!   │ ◀─ authorization: Bearer lg1.<token>       token = sealed {user}, expiring
//!   │ 2. GetFlightInfo(CommandStatementQuery)  ─▶ statements.rs: plan under the role
//!   │    (x-lakegate-role: r)                      (x-lakegate-role or default)
//!   │ ◀─ FlightInfo { schema, endpoint { ticket = sealed {user, role, sql} } }
//!   │ 3. DoGet(ticket)                         ─▶ entry: authenticate, open the ticket
//!   │                                              (the caller's, unexpired, untampered);
//!   │                                              statements.rs: the role checked again,
//!   │ ◀─ Arrow record batches                      the policy applied as of now
//! ```
//!
//! | part | answers |
//! |---|---|
//! | `auth.rs` | who the credentials prove (a trait; passwords and tokens first) |
//! | `tickets.rs` | sealing and opening tickets, handles, session cookies |
//! | `statements.rs` | planning, tickets, prepared statements, running |
//! | `running.rs` | per-user slots, timeout, keep-alive, encoding |
//! | `metadata.rs`, `sql_info.rs` | the catalog RPCs |
//! | `session_options.rs` | session actions |
//!
//! This file builds the service; `service/dispatch.rs` is the dispatch
//! table itself (the `FlightSqlService` implementation).

mod dispatch;

use std::sync::Arc;

use arrow_flight::sql::metadata::SqlInfoData;
use lakegate_admin::Administration;
use lakegate_audit::AuditLog;
use lakegate_engine::Engine;

use crate::auth::{Authenticator, SignIn, TokenIssuer};
use crate::error::{CallError, CallResult};
use crate::options::ServiceOptions;
use crate::running::QueryRunner;
use crate::signing::EnvelopeKey;
use crate::sql_info::sql_info_data;
use crate::statements::Statements;
use crate::throttle::LoginThrottle;
use crate::tickets::Seals;

/// Lakegate's Flight SQL service.
#[derive(Clone)]
pub struct LakegateFlightService {
    engine: Engine,
    authenticator: Arc<dyn Authenticator>,
    /// Failed sign-ins (the authenticator's), counted in a shared store
    /// once the service administers one.
    throttle: Arc<LoginThrottle>,
    tokens: TokenIssuer,
    seals: Seals,
    statements: Statements,
    sql_info: Arc<SqlInfoData>,
    audit: Option<AuditLog>,
    administration: Option<Arc<Administration>>,
    max_parameter_bytes: usize,
}

impl std::fmt::Debug for LakegateFlightService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LakegateFlightService")
            .field("authenticator", &self.authenticator)
            .finish_non_exhaustive()
    }
}

impl LakegateFlightService {
    /// A service over `engine`, sealing tokens and tickets with `key`, and
    /// signing callers in with their catalog passwords, its tokens, and the
    /// methods `options.sign_in` turns on.
    pub fn new(engine: Engine, key: EnvelopeKey, options: ServiceOptions) -> Self {
        let key = Arc::new(key);
        let tokens = TokenIssuer::new(Arc::clone(&key), options.token_ttl);
        let throttle = Arc::new(LoginThrottle::new(
            options.max_login_failures,
            options.login_window,
        ));
        let authenticator = SignIn::new(
            engine.clone(),
            Arc::clone(&throttle),
            tokens.clone(),
            options.sign_in.clone(),
        );
        // Prepared statements and session cookies live as long as a sign-in.
        let seals = Seals::new(key, options.ticket_ttl, options.token_ttl);
        let runner = QueryRunner::new(options.limits, options.keep_alive);
        let statements = Statements::new(
            engine.clone(),
            seals.clone(),
            runner,
            options.max_parameter_bytes,
        );
        Self {
            sql_info: Arc::new(sql_info_data(&engine)),
            engine,
            authenticator: Arc::new(authenticator),
            throttle,
            tokens,
            seals,
            statements,
            audit: None,
            administration: None,
            max_parameter_bytes: options.max_parameter_bytes,
        }
    }

    /// The largest request message the transport accepts: room for the
    /// longest statement and the largest parameter set, with slack, so that
    /// the engine's own limits, with their clearer errors, are met first.
    pub fn max_request_bytes(&self) -> usize {
        2 * self
            .engine
            .max_statement_bytes()
            .max(self.max_parameter_bytes)
    }

    /// Ends every running query's result stream with UNAVAILABLE: the last
    /// step of a graceful shutdown, after running queries had their grace
    /// period to finish.
    pub fn stop_running_queries(&self) {
        self.statements.runner().stop_all();
    }

    /// Records every call in `log`.
    pub fn with_audit(mut self, log: AuditLog) -> Self {
        self.audit = Some(log);
        self
    }

    /// Administers the policy store the engine serves: administration
    /// statements change it, and every call is served on its current
    /// version. Without it the catalog is read-only.
    pub fn with_administration(mut self, administration: Arc<Administration>) -> Self {
        self.statements.administer_with(Arc::clone(&administration));
        if let Some(store) = administration.shared_store() {
            self.throttle.count_in(store.clone());
        }
        self.administration = Some(administration);
        self
    }

    /// Where the policy comes from: `declarative`, `sqlite` or `postgres`.
    pub(crate) fn policy_source(&self) -> &'static str {
        self.administration
            .as_ref()
            .map_or("declarative", |administration| administration.store_kind())
    }

    /// Brings the policy served to the store's current version (nothing to
    /// do for a declarative catalog).
    pub(crate) async fn ensure_current_policy(&self) -> CallResult<()> {
        match &self.administration {
            Some(administration) => administration
                .ensure_current()
                .await
                .map_err(|e| CallError::PolicyUnavailable(e.to_string())),
            None => Ok(()),
        }
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    pub(crate) fn authenticator(&self) -> &dyn Authenticator {
        self.authenticator.as_ref()
    }

    pub(crate) fn tokens(&self) -> &TokenIssuer {
        &self.tokens
    }

    pub(crate) fn seals(&self) -> &Seals {
        &self.seals
    }

    pub(crate) fn statements(&self) -> &Statements {
        &self.statements
    }

    pub(crate) fn audit_log(&self) -> Option<&AuditLog> {
        self.audit.as_ref()
    }
}
