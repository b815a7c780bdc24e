//! Who is calling: the authenticated principal the auth layer puts into the
//! request extensions, and the actor recorded on security events.

use uuid::Uuid;

/// Roles of the access-policy table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Role {
    /// Not logged in; only the public recovery and login RPCs.
    Anonymous,
    /// A customer with a session token from `Login`.
    Customer,
    /// An internal microservice.
    Service,
    /// A support agent.
    Agent,
    /// The security team.
    Security,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Anonymous => "anonymous",
            Role::Customer => "customer",
            Role::Service => "service",
            Role::Agent => "agent",
            Role::Security => "security",
        }
    }

    pub fn parse(value: &str) -> Option<Role> {
        [
            Role::Service,
            Role::Agent,
            Role::Security,
            Role::Customer,
            Role::Anonymous,
        ]
        .into_iter()
        .find(|role| role.as_str() == value)
    }
}

/// The caller of an RPC, resolved from `authorization: Bearer …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Anonymous,
    Customer(CustomerSession),
    Credential {
        id: Uuid,
        name: String,
        role: Role,
        /// The client certificate identity it must come with, if bound.
        bound_certificate: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerSession {
    pub account_id: Uuid,
    pub session_id: Uuid,
    /// When the customer last proved who they are (the session's creation).
    pub authenticated_at: i64,
    pub second_factor_used: bool,
}

impl Principal {
    pub fn role(&self) -> Role {
        match self {
            Principal::Anonymous => Role::Anonymous,
            Principal::Customer(_) => Role::Customer,
            Principal::Credential { role, .. } => *role,
        }
    }

    /// How this principal appears in the customer's journal.
    pub fn actor(&self) -> Actor {
        match self {
            Principal::Anonymous => Actor::system(),
            Principal::Customer(_) => Actor::customer(),
            Principal::Credential { name, role, .. } => Actor {
                kind: match role {
                    Role::Agent => ActorKind::SupportAgent,
                    Role::Security => ActorKind::SecurityTeam,
                    _ => ActorKind::Service,
                },
                name: Some(name.clone()),
            },
        }
    }

    pub fn customer(&self) -> Option<&CustomerSession> {
        match self {
            Principal::Customer(session) => Some(session),
            _ => None,
        }
    }

    /// A short description for logs: kind and id, never a secret.
    pub fn log_label(&self) -> String {
        match self {
            Principal::Anonymous => "anonymous".into(),
            Principal::Customer(s) => format!("customer:{}", s.account_id),
            Principal::Credential { role, name, .. } => {
                format!("{}:{}", role.as_str(), name.escape_debug())
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorKind {
    Customer,
    SupportAgent,
    SecurityTeam,
    Service,
    System,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::Customer => "customer",
            ActorKind::SupportAgent => "support_agent",
            ActorKind::SecurityTeam => "security_team",
            ActorKind::Service => "service",
            ActorKind::System => "system",
        }
    }

    pub fn parse(value: &str) -> ActorKind {
        match value {
            "customer" => ActorKind::Customer,
            "support_agent" => ActorKind::SupportAgent,
            "security_team" => ActorKind::SecurityTeam,
            "service" => ActorKind::Service,
            _ => ActorKind::System,
        }
    }
}

/// Who did something, as the customer's journal shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub kind: ActorKind,
    pub name: Option<String>,
}

impl Actor {
    pub fn customer() -> Self {
        Actor {
            kind: ActorKind::Customer,
            name: None,
        }
    }

    pub fn system() -> Self {
        Actor {
            kind: ActorKind::System,
            name: None,
        }
    }
}

/// Where a call came from, as recorded on sessions and events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    pub address: Option<String>,
    pub user_agent: Option<String>,
}
