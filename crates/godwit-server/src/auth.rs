//! Tokens: JWT signed with HS256. The secret is `GODWIT_JWT_SECRET`, or a random one generated
//! into the state directory on first start (mode 0600). Roles: admin, operator, viewer, and
//! agent tokens bound to one agent id. A token travels as `Authorization: Bearer TOKEN` or
//! `X-Auth-Token: TOKEN`.
//!
//! Every token the control plane accepts is one it recorded when it issued it (the store's
//! `tokens`, by the token's id): on every request the signature and expiry are checked, then
//! the record (a revoked or unknown token is 707), then, for an agent token, its agent (deleted
//! 903, deactivated 862). Failures use the catalog's 622 and 700-718; a client that keeps
//! failing is held off with 429 (see `limit.rs`). What each role may do is in one place,
//! [`Caller`]'s checks, and the table in docs/control-plane.md that the role-matrix test reads.

use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use godwit_codes::Code;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};

use crate::AppState;
use crate::error::{ApiError, DomainError};
use crate::store::{Store, TokenRecord};

pub use godwit_spec::{Claims, Role};

/// The signing secret.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    pub fn from_bytes(bytes: &[u8]) -> Secret {
        Secret(bytes.to_vec())
    }

    /// `GODWIT_JWT_SECRET`, else the secret in `state_dir/jwt-secret`, created (0600) if missing.
    pub fn load(state_dir: &Path) -> Result<Secret, String> {
        if let Ok(s) = std::env::var("GODWIT_JWT_SECRET")
            && !s.is_empty()
        {
            return Ok(Secret(s.into_bytes()));
        }
        let path = state_dir.join("jwt-secret");
        match std::fs::read(&path) {
            Ok(b) if b.len() >= 32 => return Ok(Secret(b)),
            Ok(_) => {
                return Err(format!(
                    "{}: the secret is shorter than 32 bytes",
                    path.display()
                ));
            }
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(format!("{}: {e}", path.display()));
            }
            Err(_) => {}
        }
        crate::private_dir(state_dir).map_err(|e| format!("{}: {e}", state_dir.display()))?;
        // 64 hex digits from two random UUIDs (244 random bits).
        let text = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        f.write_all(text.as_bytes())
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Secret(text.into_bytes()))
    }

    /// `claims` signed: a token. Only [`issue`] should call it for tokens the control plane
    /// hands out, so that every token it accepts is one it recorded.
    pub fn sign(&self, claims: &Claims) -> Result<String, String> {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(&self.0),
        )
        .map_err(|e| e.to_string())
    }

    /// The dashboard's CSRF token for the session of token `jti`: an HMAC-SHA256 of it under
    /// this secret (a page of another site cannot know it; it dies with the session).
    pub fn csrf(&self, jti: &str) -> String {
        self.tag(b"godwit-csrf-v1\n", jti.as_bytes())
    }

    /// What control-plane replicas compare to know they sign tokens with the same secret (an
    /// HMAC under it: the secret cannot be learnt from it).
    pub fn replica_check(&self) -> String {
        self.tag(b"godwit-replica-v1\n", b"")
    }

    fn tag(&self, label: &[u8], data: &[u8]) -> String {
        use hmac::Mac as _;
        let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.0) else {
            return String::new();
        };
        mac.update(label);
        mac.update(data);
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The claims of `token`, or the 70x error that says why it is refused.
    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(&self.0), &validation)
            .map(|d| d.claims)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind as K;
                match e.kind() {
                    K::InvalidToken | K::Base64(_) | K::Json(_) | K::Utf8(_) => {
                        ApiError::new(Code::AUTH_ERR_JWT_VALIDATION_MALFORMED, &[])
                    }
                    K::InvalidSignature => {
                        ApiError::new(Code::AUTH_ERR_JWT_VALIDATION_INVALID, &[])
                    }
                    K::ExpiredSignature => ApiError::new(
                        Code::AUTH_ERR_JWT_VALIDATION_OTHERS,
                        &[("reason", "it has expired")],
                    ),
                    _ => ApiError::new(
                        Code::AUTH_ERR_JWT_VALIDATION_OTHERS,
                        &[("reason", &e.to_string())],
                    ),
                }
            })
    }
}

/// The claims of a new token for `sub` with `role`, valid for `ttl` from now.
pub fn claims(sub: &str, role: Role, agent_id: Option<&str>, ttl: std::time::Duration) -> Claims {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Claims {
        sub: sub.to_string(),
        role,
        agent_id: agent_id.map(str::to_string),
        iat: now,
        exp: now.saturating_add(ttl.as_secs()),
        jti: uuid::Uuid::new_v4().simple().to_string(),
    }
}

/// Signs a new token and records it (without its text) in `store`: the only way to make a
/// token the control plane accepts. Returns the token and its record.
pub async fn issue(
    store: &Store,
    secret: &Secret,
    sub: &str,
    role: Role,
    agent_id: Option<&str>,
    ttl: std::time::Duration,
) -> Result<(String, TokenRecord), DomainError> {
    let c = claims(sub, role, agent_id, ttl);
    let token = secret.sign(&c).map_err(|e| {
        DomainError::new(Code::AUTH_ERR_JWT_SHARED_SECRET_ENV_MISSING, &[]).details(e)
    })?;
    let ms = |s: u64| i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX);
    let record = TokenRecord {
        id: c.jti.clone(),
        subject: c.sub.clone(),
        role: role.as_str().to_string(),
        agent_id: c.agent_id.clone(),
        issued_ms: ms(c.iat),
        expires_ms: ms(c.exp),
        revoked_ms: None,
        revoked_by: None,
    };
    store.record_token(&record).await?;
    Ok((token, record))
}

/// What the audit log is told about a request: who asked (once the token is read) and, when
/// the handler says more than the route does, what was asked. The audit layer in `api/audit.rs`
/// puts one in every request and writes it out with the answer's outcome.
#[derive(Debug, Clone, Default)]
pub struct AuditNote {
    pub subject: Option<(String, Role)>,
    pub action: Option<String>,
}

tokio::task_local! {
    /// The audit note of the request being answered, for a caller that is not the API's token
    /// extractor (a dashboard session).
    pub static REQUEST_AUDIT: AuditSlot;
}

/// The note of one request, shared by the audit layer and the handler.
#[derive(Debug, Clone, Default)]
pub struct AuditSlot(pub Arc<Mutex<AuditNote>>);

impl AuditSlot {
    pub fn take(&self) -> AuditNote {
        self.0
            .lock()
            .map(|n| n.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }
    fn update(&self, f: impl FnOnce(&mut AuditNote)) {
        let mut note = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut note);
    }
}

/// The caller of a request, from its token, with what its role may do.
#[derive(Debug, Clone)]
pub struct Caller {
    pub claims: Claims,
    audit: Option<AuditSlot>,
}

fn forbidden(details: String) -> ApiError {
    ApiError::new(Code::HTTP_FORBIDDEN, &[]).details(details)
}

impl Caller {
    /// The caller a dashboard session stands for: the same checks of its role as the API's.
    /// What it does is written to the audit log as the API's requests are, under its token's
    /// subject and role.
    pub(crate) fn of_session(claims: Claims) -> Caller {
        let audit = REQUEST_AUDIT.try_with(AuditSlot::clone).ok();
        if let Some(slot) = &audit {
            let who = (claims.sub.clone(), claims.role);
            slot.update(|n| n.subject = Some(who));
        }
        Caller { claims, audit }
    }

    fn role(&self) -> &'static str {
        self.claims.role.as_str()
    }

    /// Admin only: agents, tokens, the audit log.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.claims.role == Role::Admin {
            return Ok(());
        }
        Err(forbidden(format!(
            "The token's role ({}) cannot do this: only an admin can.",
            self.role()
        )))
    }

    /// Admin or operator: creating and changing things, starting and stopping commands.
    pub fn require_operator(&self) -> Result<(), ApiError> {
        if matches!(self.claims.role, Role::Admin | Role::Operator) {
            return Ok(());
        }
        Err(forbidden(format!(
            "The token's role ({}) cannot do this: it needs the operator role or admin.",
            self.role()
        )))
    }

    /// A person's token (admin, operator, viewer): what an agent has no need to read.
    pub fn require_person(&self) -> Result<(), ApiError> {
        if self.claims.role != Role::Agent {
            return Ok(());
        }
        Err(forbidden(
            "An agent token reads only its own agent, its migrations and their endpoints."
                .to_string(),
        ))
    }

    /// The agent an agent token acts for; None for a person's token.
    pub fn agent(&self) -> Option<&str> {
        (self.claims.role == Role::Agent).then(|| self.claims.agent_id.as_deref().unwrap_or(""))
    }

    /// An agent token acts only for its own agent: 403 for anything of another agent's (or of
    /// no agent). Other roles pass.
    pub fn may_act_for_agent(&self, agent_id: Option<&str>) -> Result<(), ApiError> {
        match self.agent() {
            Some(own) if Some(own) != agent_id => Err(forbidden(
                "This agent token is bound to another agent.".to_string(),
            )),
            _ => Ok(()),
        }
    }

    /// Tells the audit log what this request does, when the route alone does not say
    /// (`command.start copy`).
    pub fn note(&self, action: impl Into<String>) {
        if let Some(slot) = &self.audit {
            let action = action.into();
            slot.update(|n| n.action = Some(action));
        }
    }
}

fn token_of(parts: &Parts) -> Option<&str> {
    if let Some(v) = parts.headers.get("x-auth-token") {
        return v.to_str().ok().map(str::trim);
    }
    let v = parts.headers.get(axum::http::header::AUTHORIZATION)?;
    let v = v.to_str().ok()?.trim();
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// Who is asking, for the limit on failed attempts: the peer's address when the server knows
/// it (it always does when serving), else one shared key.
fn client_of(parts: &Parts) -> String {
    parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map_or_else(|| "unknown".to_string(), |c| c.0.ip().to_string())
}

/// The claims of a request's token, checked against the signature, the record and the agent.
async fn authenticate(parts: &Parts, state: &AppState) -> Result<Claims, ApiError> {
    let token = token_of(parts).filter(|t| !t.is_empty()).ok_or_else(|| {
        ApiError::new(Code::ERR_TOKEN_MISSING, &[]).details(
            "Send a token as `Authorization: Bearer TOKEN` or `X-Auth-Token: TOKEN`; \
             `godwit token create --role operator` makes one.",
        )
    })?;
    let claims = state.secret.verify(token)?;
    still_valid(state, &claims).await?;
    Ok(claims)
}

/// What a well-signed, unexpired token must still be: recorded and not revoked (707), and for
/// an agent token, of an agent that exists (903) and is not deactivated (862). Checked on every
/// request, and on an agent's open connection at every heartbeat.
pub async fn still_valid(state: &AppState, claims: &Claims) -> Result<(), ApiError> {
    match state.store.token(&claims.jti).await? {
        None => {
            return Err(ApiError::new(
                Code::AUTH_ERR_JWT_INVALID,
                &[("reason", "this control plane has no record of issuing it")],
            ));
        }
        Some(t) if t.revoked_ms.is_some() => {
            return Err(ApiError::new(
                Code::AUTH_ERR_JWT_INVALID,
                &[("reason", "it was revoked")],
            ));
        }
        Some(_) => {}
    }
    if claims.role == Role::Agent {
        let id = claims.agent_id.as_deref().unwrap_or("");
        match state.store.get_agent(id).await {
            Ok(a) if a.state.code == "902" => {
                crate::retire::came_back(state, &a).await;
                return Err(ApiError::new(
                    Code::WEBSOCKET_REQUEST_ERR_AGENT_STATUS_DEACTIVATED,
                    &[("agent_id", id)],
                ));
            }
            Ok(_) => {}
            Err(e) if e.is_not_found() => {
                return Err(ApiError::new(
                    Code::AGENT_STATE_DELETED,
                    &[("agent_id", id)],
                ));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let client = client_of(parts);
        state.auth_failures.held_off(&client)?;
        let claims = match authenticate(parts, state).await {
            Ok(c) => c,
            Err(e) => {
                if e.status() == axum::http::StatusCode::UNAUTHORIZED {
                    state.auth_failures.take(&client);
                }
                return Err(e);
            }
        };
        state.limiter.check(&claims.jti)?;
        // The request's span (api/system.rs) names who asked; never the token.
        tracing::Span::current().record("subject", claims.sub.as_str());
        let audit = parts.extensions.get::<AuditSlot>().cloned();
        if let Some(slot) = &audit {
            let who = (claims.sub.clone(), claims.role);
            slot.update(|n| n.subject = Some(who));
        }
        Ok(Caller { claims, audit })
    }
}
