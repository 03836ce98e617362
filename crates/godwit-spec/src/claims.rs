//! What a godwit token says: who it is for, its role, the agent it is bound to. The control
//! plane signs and verifies tokens; an agent only reads its own.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything, changes nothing.
    Viewer,
    /// An agent: only its own migrations.
    Agent,
    /// Creates and changes endpoints, projects, migrations; starts and stops commands.
    Operator,
    /// Everything, including agents and tokens.
    Admin,
}

impl Role {
    /// The role's name, as tokens, the API and the docs spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Viewer => "viewer",
            Role::Agent => "agent",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "admin" => Some(Role::Admin),
            "operator" => Some(Role::Operator),
            "viewer" => Some(Role::Viewer),
            "agent" => Some(Role::Agent),
            _ => None,
        }
    }
}

/// The claims godwit puts in a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Who the token is for.
    pub sub: String,
    pub role: Role,
    /// The agent an agent token is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    pub iat: u64,
    pub exp: u64,
    /// A random id, so that rate limits count per token.
    pub jti: String,
}

impl Claims {
    /// The claims of `token` without checking its signature: what an agent reads of its own
    /// token (its agent id). Never used to decide anything on the control plane.
    pub fn read_unverified(token: &str) -> Option<Claims> {
        let payload = token.split('.').nth(1)?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload.trim_end_matches('='))
            .ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_agent_reads_its_own_token() {
        let claims = Claims {
            sub: "a".into(),
            role: Role::Agent,
            agent_id: Some("ag-1".into()),
            iat: 1,
            exp: 2,
            jti: "j".into(),
        };
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&claims).unwrap());
        let token = format!("eyJhbGciOiJIUzI1NiJ9.{payload}.c2ln");
        assert_eq!(Claims::read_unverified(&token), Some(claims));
        assert_eq!(Claims::read_unverified("not a token"), None);
    }
}
