//! Authentication and the access policy.
//!
//! `authorization: Bearer …` resolves to a typed [`Principal`] (a service,
//! agent or security credential, or a customer session) that travels in the
//! request extensions. [`POLICY`] gives every RPC exactly the roles allowed
//! to call it; a path missing from it is a method the server does not have
//! (`UNIMPLEMENTED`), refused before any handler.

use std::task::{Context, Poll};

use http::{Request, Response};
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tower::{Layer, Service};

use super::BoxFuture;
use crate::{
    clock::{Millis, RequestTime},
    crypto::token::TokenKind,
    domain::{
        self, credentials,
        principal::{Principal, Role},
        sessions,
    },
    grpc::status,
    middleware::locale,
};

use Role::{Agent, Anonymous, Customer, Security, Service as Svc};

const AS: &str = "/gardien.accountsecurity.v1.AccountSecurityService/";
const SUP: &str = "/gardien.support.v1.SupportService/";

/// (service prefix, method, roles allowed). One entry per RPC.
pub const POLICY: &[(&str, &str, &[Role])] = &[
    (AS, "CreateAccount", &[Svc]),
    (AS, "GetAccountStatus", &[Svc, Security, Agent]),
    (AS, "Login", &[Anonymous]),
    (AS, "VerifyLoginChallenge", &[Anonymous]),
    (AS, "Logout", &[Customer]),
    (AS, "ListSessions", &[Customer]),
    (AS, "RevokeSession", &[Customer]),
    (AS, "IntrospectSession", &[Svc]),
    (AS, "SuspendPassword", &[Security, Svc]),
    (AS, "LiftSuspension", &[Security]),
    (AS, "RequestPasswordReset", &[Anonymous]),
    (AS, "CompletePasswordReset", &[Anonymous]),
    (AS, "RecoverLogin", &[Anonymous]),
    (AS, "ChangePassword", &[Customer]),
    (AS, "BeginTotpEnrollment", &[Customer]),
    (AS, "ConfirmTotpEnrollment", &[Customer]),
    (AS, "DisableTotp", &[Customer]),
    (AS, "RegenerateRecoveryCodes", &[Customer]),
    (AS, "GetSecurityOverview", &[Customer]),
    (AS, "ListSecurityEvents", &[Customer]),
    (AS, "AcknowledgeSecurityEvents", &[Customer]),
    (AS, "DisputeSecurityEvent", &[Customer]),
    (AS, "ReportUnauthorizedChange", &[Anonymous]),
    (AS, "RecordActivity", &[Svc]),
    (AS, "GetContactDetails", &[Customer]),
    (AS, "UpdateContactDetails", &[Customer]),
    (AS, "ConfirmEmailChange", &[Anonymous]),
    (AS, "ListContactChanges", &[Customer]),
    (AS, "BeginPasskeyRegistration", &[Customer]),
    (AS, "FinishPasskeyRegistration", &[Customer]),
    (AS, "ListPasskeys", &[Customer]),
    (AS, "RenamePasskey", &[Customer]),
    (AS, "RemovePasskey", &[Customer]),
    (AS, "BeginPasskeyLogin", &[Anonymous]),
    (AS, "FinishPasskeyLogin", &[Anonymous]),
    (AS, "GetResetPasskeyOptions", &[Anonymous]),
    (SUP, "CreateTicket", &[Customer]),
    (SUP, "CreateRecoveryTicket", &[Anonymous]),
    (SUP, "GetTicket", &[Customer, Agent]),
    (SUP, "ListTickets", &[Customer]),
    (SUP, "AddTicketMessage", &[Customer, Agent]),
    (SUP, "CloseTicket", &[Customer]),
    (SUP, "ListTicketQueue", &[Agent]),
    (SUP, "AssignTicket", &[Agent]),
    (SUP, "SetTicketStatus", &[Agent]),
    (SUP, "GetAccountReview", &[Agent]),
    (SUP, "VerifyTicketIdentity", &[Agent]),
    (SUP, "ResetTotp", &[Agent]),
    (SUP, "CancelFactorReset", &[Anonymous]),
    ("/grpc.health.v1.Health/", "Check", &[Anonymous]),
    ("/grpc.health.v1.Health/", "Watch", &[Anonymous]),
    ("/grpc.health.v1.Health/", "List", &[Anonymous]),
    (
        "/grpc.reflection.v1.ServerReflection/",
        "ServerReflectionInfo",
        &[Anonymous],
    ),
    (
        "/grpc.reflection.v1alpha.ServerReflection/",
        "ServerReflectionInfo",
        &[Anonymous],
    ),
];

/// The roles allowed to call `path` (`/package.Service/Method`), if listed.
pub fn allowed_roles(path: &str) -> Option<&'static [Role]> {
    POLICY
        .iter()
        .find(|(service, method, _)| {
            path.len() == service.len() + method.len()
                && path.starts_with(service)
                && path.ends_with(method)
        })
        .map(|(_, _, roles)| *roles)
}

#[derive(Clone)]
pub struct AuthLayer {
    ctx: domain::Context,
}

impl AuthLayer {
    pub fn new(ctx: domain::Context) -> Self {
        Self { ctx }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            ctx: self.ctx.clone(),
        }
    }
}

#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    ctx: domain::Context,
}

enum Presented {
    None,
    Malformed,
    Token(String),
}

fn bearer<B>(request: &Request<B>) -> Presented {
    let Some(value) = request.headers().get(http::header::AUTHORIZATION) else {
        return Presented::None;
    };
    let Ok(text) = value.to_str() else {
        return Presented::Malformed;
    };
    match text.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Presented::Token(token.trim().to_string())
        }
        _ => Presented::Malformed,
    }
}

/// A client certificate identity, by the field it comes from.
#[derive(Debug, PartialEq, Eq)]
enum Identity {
    Uri(String),
    Dns(String),
    CommonName(String),
}

impl Identity {
    /// A stored binding (see `credentials::parse_certificate_identity`).
    fn of_binding(binding: &str) -> Self {
        if let Some(name) = binding.strip_prefix("dns:") {
            Identity::Dns(name.to_string())
        } else if let Some(name) = binding.strip_prefix("cn:") {
            Identity::CommonName(name.to_string())
        } else {
            Identity::Uri(binding.to_string())
        }
    }
}

/// The identities of the connection's client certificate, verified against
/// `tls.client_ca_file` in the handshake: its URI names as they are, its
/// DNS names in lower case without a final dot, and its subject common
/// name when it has exactly one. Each is compared only with bindings of
/// its own kind: a URI spelling `dns:…` is still a URI.
fn client_identities<B>(request: &Request<B>) -> Vec<Identity> {
    use x509_parser::extensions::GeneralName;
    let Some(certs) = request
        .extensions()
        .get::<TlsConnectInfo<TcpConnectInfo>>()
        .and_then(TlsConnectInfo::peer_certs)
    else {
        return Vec::new();
    };
    let Some(leaf) = certs.first() else {
        return Vec::new();
    };
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(leaf) else {
        return Vec::new();
    };
    let mut names = Vec::new();
    if let Ok(Some(alternative)) = cert.subject_alternative_name() {
        for name in &alternative.value.general_names {
            match name {
                GeneralName::URI(uri) => names.push(Identity::Uri((*uri).to_string())),
                GeneralName::DNSName(dns) => names.push(Identity::Dns(
                    dns.trim_end_matches('.').to_ascii_lowercase(),
                )),
                _ => {}
            }
        }
    }
    let common_names: Vec<&str> = cert
        .subject()
        .iter_common_name()
        .filter_map(|common_name| common_name.as_str().ok())
        .collect();
    if let [common_name] = common_names.as_slice() {
        names.push(Identity::CommonName((*common_name).to_string()));
    }
    names
}

/// Resolves a presented secret to a principal; `Ok(None)` when it is not
/// live, `Error::SessionRevoked` for a session revoked while live.
async fn resolve(
    ctx: &domain::Context,
    now: Millis,
    secret: &str,
) -> domain::Result<Option<Principal>> {
    match TokenKind::of(secret) {
        Some(TokenKind::Credential) => credentials::authenticate(ctx, secret).await,
        Some(TokenKind::Session) => Ok(sessions::authenticate(ctx, now, secret)
            .await?
            .map(Principal::Customer)),
        _ => Ok(None),
    }
}

impl<S, B, R> Service<Request<B>> for AuthService<S>
where
    S: Service<Request<B>, Response = Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
    R: Default + Send + 'static,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // The clone that was driven to readiness serves this call.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let ctx = self.ctx.clone();
        Box::pin(async move {
            let cache = ctx.auth_cache.clone();
            cache.during_call(authorize(ctx, inner, request)).await
        })
    }
}

/// Resolves the caller, checks the method's policy, then runs the call with
/// the principal in its extensions.
async fn authorize<S, B, R>(
    ctx: domain::Context,
    mut inner: S,
    mut request: Request<B>,
) -> Result<Response<R>, S::Error>
where
    S: Service<Request<B>, Response = Response<R>>,
    R: Default,
{
    let path = request.uri().path().to_string();
    // Every method the server has is in the policy (a test walks the
    // descriptor set): any other path is one it does not have, answered
    // as gRPC says before any credential is looked at.
    let Some(roles) = allowed_roles(&path) else {
        return Ok(tonic::Status::unimplemented("no such method").into_http());
    };
    let anonymous_allowed = roles.contains(&Anonymous);
    let now = ctx.now();
    request.extensions_mut().insert(RequestTime(now));
    let principal = match bearer(&request) {
        Presented::None => Principal::Anonymous,
        Presented::Malformed if anonymous_allowed => Principal::Anonymous,
        Presented::Malformed => return Ok(status::unauthenticated().into_http()),
        Presented::Token(secret) => match resolve(&ctx, now, &secret).await {
            Ok(Some(principal)) => principal,
            Ok(None) if anonymous_allowed => Principal::Anonymous,
            Err(error)
                if anonymous_allowed
                    && matches!(error.kind(), domain::Error::SessionRevoked { .. }) =>
            {
                Principal::Anonymous
            }
            Ok(None) => return Ok(status::unauthenticated().into_http()),
            // A revoked session says why (SESSION_REVOKED and its cause).
            Err(error) => return Ok(tonic::Status::from(error).into_http()),
        },
    };
    // A credential bound to a client certificate comes with it or not at all.
    if let Principal::Credential {
        bound_certificate: Some(identity),
        name,
        ..
    } = &principal
    {
        if !client_identities(&request).contains(&Identity::of_binding(identity)) {
            tracing::warn!(
                credential = %name,
                "a certificate-bound credential came without the client certificate it is bound to"
            );
            return Ok(status::unauthenticated().into_http());
        }
    }
    // A customer is told in their account's language, whatever the
    // request's `accept-language`, from here on (a refusal of the method
    // included).
    let language = match &principal {
        Principal::Customer(session) => {
            match sessions::account_language(&ctx.db, session.account_id).await {
                Ok(language) => language,
                Err(error) => return Ok(tonic::Status::from(error).into_http()),
            }
        }
        _ => None,
    };
    if !roles.contains(&principal.role()) {
        if principal == Principal::Anonymous {
            return Ok(status::unauthenticated().into_http());
        }
        if !anonymous_allowed {
            tracing::Span::current().record("principal", principal.log_label());
            let denied = || status::permission_denied(&path);
            let denied = match language {
                Some(language) => locale::in_language(language, denied),
                None => denied(),
            };
            return Ok(denied.into_http());
        }
    }
    tracing::Span::current().record("principal", principal.log_label());
    request.extensions_mut().insert(principal);
    match language {
        Some(language) => {
            let call = locale::in_language(language, || inner.call(request));
            locale::scope(language, call).await
        }
        None => inner.call(request).await,
    }
}
