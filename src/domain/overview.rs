//! The information centre's checklist in one call (`GetSecurityOverview`):
//! password state, 2FA, sessions, unseen and disputed events, and the
//! actions the customer should take, explained in the account's locale.

use super::{
    accounts::AccountSelector,
    deps::{Db, Settings},
    error::Result,
    principal::CustomerSession,
    records::{Account, PasswordState, Suspension},
    types::Locale,
};
use crate::{clock::Millis, store};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    ResetPassword,
    EnableTotp,
    ReviewEvents,
    VerifyContactDetails,
    OpenTicket,
    RegenerateRecoveryCodes,
    AddPasskey,
}

/// Recovery codes at or below this count call for new ones.
const FEW_RECOVERY_CODES: u64 = 2;

/// A contact change this recent calls for a check: as long as the link to
/// report it as unauthorized stays valid.
const RECENT_CONTACT_CHANGE_MS: i64 = super::notices::REPORT_TTL_MS;

pub struct Overview {
    pub account: Account,
    pub active_suspension: Option<Suspension>,
    pub recovery_codes_remaining: u64,
    pub active_sessions: u64,
    pub unacknowledged_events: u64,
    pub disputed_events: u64,
    pub open_tickets: u64,
    pub contacts: super::contacts::ContactView,
    pub actions: Vec<(Action, &'static str)>,
}

pub async fn overview(
    ctx: &(impl Db + Settings),
    now: Millis,
    caller: &CustomerSession,
) -> Result<Overview> {
    let status = super::accounts::status(ctx, &AccountSelector::Id(caller.account_id), now).await?;
    let account = status.account;
    let (unacknowledged_events, disputed_events) =
        store::events::unacknowledged_and_disputed(ctx.db(), account.id).await?;
    let open_tickets = store::tickets::open_of_account(ctx.db(), account.id).await?;
    let contacts = super::contacts::get(ctx.db(), account.id, now).await?;
    let totp_enabled = account.totp_enabled;
    let second_factor = totp_enabled || account.passkeys > 0;
    let recovery_codes_remaining = if second_factor {
        super::two_factor::recovery_codes_left(ctx.db(), account.id).await?
    } else {
        0
    };
    let suspended = account.password_state == PasswordState::Suspended;
    let contacts_changed = contacts.pending_email.is_some()
        || contacts
            .last_changes
            .iter()
            .any(|c| c.changed_at > now - RECENT_CONTACT_CHANGE_MS);
    let locale = account.locale;
    let mut actions = Vec::new();
    let mut recommend = |action| actions.push((action, explanation(action, locale)));
    if suspended {
        recommend(Action::ResetPassword);
    }
    if suspended || contacts_changed {
        recommend(Action::VerifyContactDetails);
    }
    if unacknowledged_events > 0 {
        recommend(Action::ReviewEvents);
    }
    if (suspended || disputed_events > 0) && open_tickets == 0 {
        recommend(Action::OpenTicket);
    }
    if !second_factor {
        recommend(Action::EnableTotp);
    } else if recovery_codes_remaining <= FEW_RECOVERY_CODES {
        recommend(Action::RegenerateRecoveryCodes);
    }
    // After a suspension, a factor that a phished password cannot replace.
    if account.passkeys == 0
        && (suspended
            || !store::suspensions::recent(ctx.db(), account.id, 1)
                .await?
                .is_empty())
    {
        recommend(Action::AddPasskey);
    }
    Ok(Overview {
        account,
        active_suspension: status.active_suspension,
        recovery_codes_remaining,
        active_sessions: status.active_sessions,
        unacknowledged_events,
        disputed_events,
        open_tickets,
        contacts,
        actions,
    })
}

fn explanation(action: Action, locale: Locale) -> &'static str {
    match (action, locale) {
        (Action::ResetPassword, Locale::En) => "Your password is suspended: reset it with the link sent to your contact e-mail.",
        (Action::ResetPassword, Locale::Fr) => "Votre mot de passe est suspendu : réinitialisez-le avec le lien envoyé à votre adresse e-mail de contact.",
        (Action::VerifyContactDetails, Locale::En) => "Check that your e-mail address, phone number and postal address are still yours.",
        (Action::VerifyContactDetails, Locale::Fr) => "Vérifiez que votre adresse e-mail, votre téléphone et votre adresse postale sont toujours les vôtres.",
        (Action::ReviewEvents, Locale::En) => "Review the recent activity on your account and report anything you did not do.",
        (Action::ReviewEvents, Locale::Fr) => "Consultez l'activité récente de votre compte et signalez toute action que vous n'avez pas faite.",
        (Action::OpenTicket, Locale::En) => "In any doubt, open a support ticket so that an agent runs further checks.",
        (Action::OpenTicket, Locale::Fr) => "En cas de doute, ouvrez un ticket d'assistance afin qu'un agent procède à des vérifications.",
        (Action::EnableTotp, Locale::En) => "Turn on two-factor authentication so that a password alone no longer opens your account.",
        (Action::EnableTotp, Locale::Fr) => "Activez la double authentification : un mot de passe seul n'ouvrira plus votre compte.",
        (Action::RegenerateRecoveryCodes, Locale::En) => "Few recovery codes are left: generate new ones.",
        (Action::RegenerateRecoveryCodes, Locale::Fr) => "Il vous reste peu de codes de secours : générez-en de nouveaux.",
        (Action::AddPasskey, Locale::En) => "Your password was suspended once: add a passkey, which a stolen password cannot replace.",
        (Action::AddPasskey, Locale::Fr) => "Votre mot de passe a été suspendu : ajoutez une clé d'accès, qu'un mot de passe volé ne peut pas remplacer.",
    }
}
