//! Tokens: JWT signed with HS256. The secret is `GODWIT_JWT_SECRET`, or a random one generated
//! into the state directory on first start (mode 0600). Roles: admin, operator, viewer, and
//! agent tokens bound to one agent id. A token travels as `Authorization: Bearer TOKEN` or
//! `X-Auth-Token: TOKEN`. Failures use the catalog's 622 and 700-718.

use std::path::Path;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use godwit_codes::Code;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};

use crate::AppState;
use crate::error::ApiError;

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

    /// A signed token for `sub` with `role`, valid for `ttl`.
    pub fn issue(
        &self,
        sub: &str,
        role: Role,
        agent_id: Option<&str>,
        ttl: std::time::Duration,
    ) -> Result<String, String> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let claims = Claims {
            sub: sub.to_string(),
            role,
            agent_id: agent_id.map(str::to_string),
            iat: now,
            exp: now + ttl.as_secs(),
            jti: uuid::Uuid::new_v4().simple().to_string(),
        };
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(&self.0),
        )
        .map_err(|e| e.to_string())
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

/// The caller of a request, from its token.
#[derive(Debug, Clone)]
pub struct Caller {
    pub claims: Claims,
}

impl Caller {
    /// 403 unless the caller's role is at least `role` (agents are only agents).
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        let ok = match role {
            Role::Agent => self.claims.role == Role::Agent || self.claims.role >= Role::Operator,
            Role::Viewer => true,
            other => self.claims.role >= other && self.claims.role != Role::Agent,
        };
        if ok {
            Ok(())
        } else {
            let name = |r: Role| format!("{r:?}").to_lowercase();
            Err(ApiError::new(Code::HTTP_FORBIDDEN, &[]).details(format!(
                "The token's role ({}) cannot do this: it needs the {} role or higher.",
                name(self.claims.role),
                name(role)
            )))
        }
    }

    /// Whether the caller may change things (operator or admin).
    pub fn require_operator(&self) -> Result<(), ApiError> {
        self.require(Role::Operator)
    }

    /// An agent token acts only for its own agent: 403 for anything of another agent's (or of
    /// no agent). Other roles pass.
    pub fn may_act_for_agent(&self, agent_id: Option<&str>) -> Result<(), ApiError> {
        if self.claims.role != Role::Agent || self.claims.agent_id.as_deref() == agent_id {
            return Ok(());
        }
        Err(ApiError::new(Code::HTTP_FORBIDDEN, &[])
            .details("This agent token is bound to another agent."))
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

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = token_of(parts).filter(|t| !t.is_empty()).ok_or_else(|| {
            ApiError::new(Code::ERR_TOKEN_MISSING, &[]).details(
                "Send a token as `Authorization: Bearer TOKEN` or `X-Auth-Token: TOKEN`; \
                 `godwit token create --role operator` makes one.",
            )
        })?;
        let claims = state.secret.verify(token)?;
        state.limiter.check(&claims.jti)?;
        Ok(Caller { claims })
    }
}
