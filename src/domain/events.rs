//! The security-event journal: every security-relevant change writes one
//! event, in the same transaction as the change.

use sea_orm::ConnectionTrait;
use uuid::Uuid;

use super::{
    error::Result,
    principal::{Actor, ClientInfo},
};
use crate::{entity::security_event, store};

pub use crate::kinds::EventKind;
pub use crate::store::events::Filter as EventFilter;

/// Keys of an event's details kept for staff (GetAccountReview) and never
/// shown to the customer: the security team's note of a lift.
pub const STAFF_ONLY_DETAILS: &[&str] = &["note"];

/// Appends one event to an account's journal. `details` holds no secret.
pub async fn record<C: ConnectionTrait>(
    conn: &C,
    now: i64,
    account_id: Uuid,
    kind: EventKind,
    actor: &Actor,
    client: &ClientInfo,
    details: serde_json::Value,
) -> Result<Uuid> {
    let row = new_row(now, account_id, kind, actor, client, details);
    let id = row.id;
    store::events::insert(conn, row).await?;
    Ok(id)
}

/// The row [`record`] inserts.
pub fn new_row(
    now: i64,
    account_id: Uuid,
    kind: EventKind,
    actor: &Actor,
    client: &ClientInfo,
    details: serde_json::Value,
) -> security_event::Model {
    security_event::Model {
        id: Uuid::now_v7(),
        account_id,
        kind: kind.as_str().to_string(),
        occurred_at: now,
        actor_kind: actor.kind.as_str().to_string(),
        actor_name: actor.name.clone(),
        client_address: client.address.clone(),
        user_agent: client.user_agent.clone(),
        details: details.to_string(),
        acknowledged_at: None,
        disputed_at: None,
        source_event_id: None,
    }
}

/// A one-line summary of an event for the customer, in their language.
pub fn summary(kind: Option<EventKind>, locale: super::types::Locale) -> &'static str {
    use super::types::Locale::{En, Fr};
    use EventKind as K;
    let Some(kind) = kind else {
        return match locale {
            En => "Account activity",
            Fr => "Activité du compte",
        };
    };
    match (kind, locale) {
        (K::AccountCreated, En) => "Your account was created",
        (K::AccountCreated, Fr) => "Votre compte a été créé",
        (K::LoginSucceeded, En) => "Successful login",
        (K::LoginSucceeded, Fr) => "Connexion réussie",
        (K::LoginFailed, En) => "Failed login attempt",
        (K::LoginFailed, Fr) => "Tentative de connexion échouée",
        (K::LoginChallenged, En) => "Password accepted, second factor requested",
        (K::LoginChallenged, Fr) => "Mot de passe accepté, second facteur demandé",
        (K::Logout, En) => "Logged out",
        (K::Logout, Fr) => "Déconnexion",
        (K::SessionRevoked, En) => "A session was ended",
        (K::SessionRevoked, Fr) => "Une session a été fermée",
        (K::PasswordSuspended, En) => "Your password was suspended",
        (K::PasswordSuspended, Fr) => "Votre mot de passe a été suspendu",
        (K::SuspensionLifted, En) => "The password suspension was lifted",
        (K::SuspensionLifted, Fr) => "La suspension du mot de passe a été levée",
        (K::PasswordResetRequested, En) => "A password reset link was requested",
        (K::PasswordResetRequested, Fr) => "Un lien de réinitialisation a été demandé",
        (K::PasswordResetCompleted, En) => "Your password was reset",
        (K::PasswordResetCompleted, Fr) => "Votre mot de passe a été réinitialisé",
        (K::LoginRecoveryRequested, En) => "Your login identifier was requested by e-mail",
        (K::LoginRecoveryRequested, Fr) => "Votre identifiant a été demandé par e-mail",
        (K::PasswordChanged, En) => "Your password was changed",
        (K::PasswordChanged, Fr) => "Votre mot de passe a été modifié",
        (K::TotpEnabled, En) => "Two-factor authentication was turned on",
        (K::TotpEnabled, Fr) => "La double authentification a été activée",
        (K::TotpDisabled, En) => "Two-factor authentication was turned off",
        (K::TotpDisabled, Fr) => "La double authentification a été désactivée",
        (K::RecoveryCodesRegenerated, En) => "New recovery codes were generated",
        (K::RecoveryCodesRegenerated, Fr) => "De nouveaux codes de secours ont été générés",
        (K::RecoveryCodeUsed, En) => "A recovery code was used",
        (K::RecoveryCodeUsed, Fr) => "Un code de secours a été utilisé",
        (K::TicketCreated, En) => "A support ticket was opened",
        (K::TicketCreated, Fr) => "Un ticket d'assistance a été ouvert",
        (K::SupportAccountReviewed, En) => "A support agent reviewed your account",
        (K::SupportAccountReviewed, Fr) => "Un agent du support a consulté votre compte",
        (K::SupportAction, En) => "A support agent acted on your ticket",
        (K::SupportAction, Fr) => "Un agent du support a traité votre ticket",
        (K::OrderPlaced, En) => "An order was placed",
        (K::OrderPlaced, Fr) => "Une commande a été passée",
        (K::ServiceOrdered, En) => "A service was ordered",
        (K::ServiceOrdered, Fr) => "Un service a été commandé",
        (K::ServiceCancelled, En) => "A service was cancelled",
        (K::ServiceCancelled, Fr) => "Un service a été résilié",
        (K::DomainTransfer, En) => "A domain transfer was requested",
        (K::DomainTransfer, Fr) => "Un transfert de domaine a été demandé",
        (K::ApiKeyCreated, En) => "An API key was created",
        (K::ApiKeyCreated, Fr) => "Une clé d'API a été créée",
        (K::EventDisputed, En) => "You reported an action you did not do",
        (K::EventDisputed, Fr) => "Vous avez signalé une action que vous n'avez pas faite",
        (K::UnauthorizedChangeReported, En) => {
            "A change was reported as not yours from a security notice"
        }
        (K::UnauthorizedChangeReported, Fr) => {
            "Un changement a été signalé comme frauduleux depuis une alerte de sécurité"
        }
        (K::ContactDetailsChanged, En) => "Your contact details were changed",
        (K::ContactDetailsChanged, Fr) => "Vos coordonnées ont été modifiées",
        (K::ContactEmailChangeRequested, En) => "A change of your contact e-mail was requested",
        (K::ContactEmailChangeRequested, Fr) => {
            "Un changement d'adresse e-mail de contact a été demandé"
        }
        (K::SupportIdentityVerified, En) => "A support agent verified your identity",
        (K::SupportIdentityVerified, Fr) => "Un agent du support a vérifié votre identité",
        (K::FactorResetRequested, En) => {
            "A support agent scheduled the removal of your two-factor authentication"
        }
        (K::FactorResetRequested, Fr) => {
            "Un agent du support a programmé la suppression de votre double authentification"
        }
        (K::FactorResetCancelled, En) => {
            "The scheduled removal of your two-factor authentication was cancelled"
        }
        (K::FactorResetCancelled, Fr) => {
            "La suppression programmée de votre double authentification a été annulée"
        }
        (K::FactorResetCompleted, En) => {
            "Your two-factor authentication was removed at support's request"
        }
        (K::FactorResetCompleted, Fr) => {
            "Votre double authentification a été supprimée à la demande du support"
        }
        (K::PasskeyAdded, En) => "A passkey was added",
        (K::PasskeyAdded, Fr) => "Une clé d'accès a été ajoutée",
        (K::PasskeyRemoved, En) => "A passkey was removed",
        (K::PasskeyRemoved, Fr) => "Une clé d'accès a été supprimée",
        (K::PasskeyCloneSuspected, En) => {
            "A passkey answered with a counter that went back: it may have been copied"
        }
        (K::PasskeyCloneSuspected, Fr) => {
            "Une clé d'accès a répondu avec un compteur revenu en arrière : elle a peut-être été copiée"
        }
    }
}

/// One page of an account's journal, newest first; the cursor is the last
/// event id (ids are time-ordered UUIDv7), so concurrent inserts never shift
/// a page.
pub async fn list<C: ConnectionTrait>(
    conn: &C,
    account_id: Uuid,
    filter: &EventFilter,
    page_size: u64,
    before: Option<Uuid>,
) -> Result<(Vec<super::records::Event>, Option<Uuid>)> {
    let rows = store::events::list(conn, account_id, filter, page_size + 1, before).await?;
    let (rows, next) = super::page(rows, page_size, |r| r.id);
    Ok((rows.iter().map(super::records::Event::from).collect(), next))
}
