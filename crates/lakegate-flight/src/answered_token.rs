//! A bearer token in the answer to a call that signed in with credentials
//! meant for one use.
//!
//! A Kerberos token may be accepted once (GSSAPI's replay cache refuses it
//! again), but clients that send a fixed `authorization` header (ADBC's
//! `adbc.flight.sql.authorization_header`) send it on every call and never
//! call the Handshake. They do replace that header with an `authorization`
//! header the server answers with. So a call that signs in with Negotiate
//! credentials is answered with `authorization: Bearer <token>`, as the
//! Handshake is, and the client's later calls carry the token.
//!
//! ```text
//! AnsweredTokenLayer: a slot in the request's extensions ─▶ the entry signs the call in,
//!                     and fills the slot for a Negotiate sign-in
//!                     the answer's headers ◀── the slot's token, when filled
//! ```

use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use tonic::codegen::Service;
use tonic::codegen::http::{self, HeaderValue};

/// Where the entry leaves the token the answer carries.
#[derive(Debug, Clone, Default)]
pub(crate) struct AnsweredToken(Arc<OnceLock<String>>);

impl AnsweredToken {
    /// Answers the call with `token`.
    pub(crate) fn answer_with(&self, token: String) {
        let _ = self.0.set(token);
    }
}

/// Gives every call an [`AnsweredToken`] slot and answers with what the
/// entry put in it.
#[derive(Debug, Clone, Copy, Default)]
pub struct AnsweredTokenLayer;

impl<S> tower_layer::Layer<S> for AnsweredTokenLayer {
    type Service = AnswerToken<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AnswerToken { inner }
    }
}

/// The service [`AnsweredTokenLayer`] makes.
#[derive(Debug, Clone)]
pub struct AnswerToken<S> {
    inner: S,
}

impl<S, B, R> Service<http::Request<B>> for AnswerToken<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<R>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let slot = AnsweredToken::default();
        request.extensions_mut().insert(slot.clone());
        let answer = self.inner.call(request);
        Box::pin(async move {
            let mut response = answer.await?;
            if let Some(token) = slot.0.get()
                && let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}"))
            {
                response.headers_mut().insert("authorization", value);
            }
            Ok(response)
        })
    }
}
