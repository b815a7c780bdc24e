//! One client of the crash test's load: accounts taken from creation to a
//! completed reset of their suspended password, every acknowledged call
//! written down in the ledger.

use std::{
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use gardien::proto::{
    accountsecurity::v1::{
        self as pb, account_security_service_client::AccountSecurityServiceClient,
    },
    support::v1::{self as spb, support_service_client::SupportServiceClient},
};
use tonic::{transport::Channel, Status};
use uuid::Uuid;

use super::invariants::Ledger;
use crate::helpers::{authed, mails_in_dir, token_in, NEW_PASSWORD, STRONG_PASSWORD};

/// One client of the load.
pub struct Load {
    pub accounts: AccountSecurityServiceClient<Channel>,
    pub support: SupportServiceClient<Channel>,
    pub service: String,
    pub security: String,
    pub mail_dir: PathBuf,
    pub killed: Arc<AtomicBool>,
    pub ledger: Arc<Mutex<Ledger>>,
}

impl Load {
    /// An account from creation to a completed reset of its suspended
    /// password; stops at the first failed call.
    pub async fn lifecycle(&self, login: &str) -> Result<(), Status> {
        let mut accounts = self.accounts.clone();
        let email = format!("{login}@example.org");
        let created = accounts
            .create_account(authed(
                &self.service,
                pb::CreateAccountRequest {
                    login: login.into(),
                    email: email.clone(),
                    password: STRONG_PASSWORD.into(),
                    locale: pb::Locale::En.into(),
                    ..Default::default()
                },
            ))
            .await?;
        let account_id = created.into_inner().account.unwrap().account_id;
        let account = Uuid::parse_str(&account_id).unwrap();
        self.ledger.lock().unwrap().accounts.push(account);

        let source = Uuid::new_v4().to_string();
        let recorded = accounts
            .record_activity(authed(
                &self.service,
                pb::RecordActivityRequest {
                    account_id: account_id.clone(),
                    service_event_id: source.clone(),
                    kind: pb::ActivityKind::OrderPlaced.into(),
                    reference: format!("ORD-{login}"),
                    amount_minor: 4_200,
                    currency: "EUR".into(),
                    ..Default::default()
                },
            ))
            .await?;
        let event = recorded.into_inner().event.unwrap().event_id;
        let activity = (Uuid::parse_str(&event).unwrap(), source);
        self.ledger.lock().unwrap().activities.push(activity);

        let login_response = accounts
            .login(pb::LoginRequest {
                login: login.into(),
                password: STRONG_PASSWORD.into(),
            })
            .await?;
        let Some(pb::login_response::Result::Session(session)) = login_response.into_inner().result
        else {
            panic!("a login without 2FA gives a session");
        };
        let ticket = self
            .support
            .clone()
            .create_ticket(authed(
                &session.session_token,
                spb::CreateTicketRequest {
                    client_request_id: Uuid::new_v4().to_string(),
                    category: spb::TicketCategory::SecurityVerification.into(),
                    subject: "Was my account used?".into(),
                    body: "Please check the recent orders.".into(),
                    linked_event_ids: vec![event],
                },
            ))
            .await?;
        let ticket = ticket.into_inner().ticket.unwrap().ticket_id;
        self.ledger
            .lock()
            .unwrap()
            .tickets
            .push(Uuid::parse_str(&ticket).unwrap());

        let suspended = accounts
            .suspend_password(authed(
                &self.security,
                pb::SuspendPasswordRequest {
                    account_id: account_id.clone(),
                    reason: pb::SuspensionReason::SuspectedCompromise.into(),
                    note: "order disputed".into(),
                    evidence_event_ids: vec![],
                },
            ))
            .await?;
        let suspension = suspended.into_inner().suspension.unwrap().suspension_id;
        self.ledger
            .lock()
            .unwrap()
            .suspensions
            .push(Uuid::parse_str(&suspension).unwrap());

        accounts
            .request_password_reset(pb::RequestPasswordResetRequest {
                login_or_email: login.into(),
            })
            .await?;
        let token = self.reset_link(&email).await?;
        accounts
            .complete_password_reset(pb::CompletePasswordResetRequest {
                reset_token: token,
                new_password: NEW_PASSWORD.into(),
                second_factor: None,
            })
            .await?;
        self.ledger.lock().unwrap().resets.push(account);
        Ok(())
    }

    /// The token of the reset link e-mailed to `email`, once delivered.
    async fn reset_link(&self, email: &str) -> Result<String, Status> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && !self.killed.load(Ordering::SeqCst) {
            if let Some(mail) = mail_to(&self.mail_dir, email) {
                return Ok(token_in(&mail));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(Status::unavailable("no reset link arrived"))
    }
}

fn mail_to(dir: &Path, email: &str) -> Option<String> {
    mails_in_dir(dir, email)
        .into_iter()
        .find(|text| text.contains("token=gdr_"))
}
