//! Flows many tests share: accounts, logins, mails read from the folder,
//! second factors, support resets.

use super::*;

impl TestApp {
    pub async fn channel(&self) -> Channel {
        let endpoint = match &self.tls_ca {
            None => Channel::from_shared(format!("http://{}", self.addr)).unwrap(),
            Some(ca) => Channel::from_shared(format!("https://{}", self.addr))
                .unwrap()
                .tls_config(
                    tonic::transport::ClientTlsConfig::new()
                        .ca_certificate(tonic::transport::Certificate::from_pem(ca))
                        .domain_name("localhost"),
                )
                .unwrap(),
        };
        endpoint.connect().await.unwrap()
    }

    pub async fn client(&self) -> AsClient {
        AccountSecurityServiceClient::new(Recorded::new(self.channel().await))
    }

    pub async fn support(&self) -> SupportServiceClient<Recorded> {
        SupportServiceClient::new(Recorded::new(self.channel().await))
    }

    /// Creates an account through the API (service credential) and returns its id.
    pub async fn create_account(&self, login: &str, email: &str, password: &str) -> String {
        self.create_account_in(login, email, password, pb::Locale::En)
            .await
    }

    pub async fn create_account_in(
        &self,
        login: &str,
        email: &str,
        password: &str,
        locale: pb::Locale,
    ) -> String {
        let response = self
            .client()
            .await
            .create_account(authed(
                &self.service_token,
                pb::CreateAccountRequest {
                    login: login.into(),
                    email: email.into(),
                    password: password.into(),
                    locale: locale.into(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap();
        response.into_inner().account.unwrap().account_id
    }

    /// The account of `login`, as GetAccountStatus answers it to a service.
    pub async fn account_by_login(&self, login: &str) -> pb::Account {
        self.client()
            .await
            .get_account_status(authed(
                &self.service_token,
                pb::GetAccountStatusRequest {
                    account_id: String::new(),
                    login: login.into(),
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .account
            .unwrap()
    }

    pub async fn login(
        &self,
        login: &str,
        password: &str,
    ) -> Result<pb::SessionGrant, tonic::Status> {
        let response = self
            .client()
            .await
            .login(pb::LoginRequest {
                login: login.into(),
                password: password.into(),
            })
            .await?;
        match response.into_inner().result {
            Some(pb::login_response::Result::Session(grant)) => Ok(grant),
            other => panic!("expected a session, got {other:?}"),
        }
    }

    pub async fn suspend(&self, account_id: &str) -> pb::SuspendPasswordResponse {
        self.client()
            .await
            .suspend_password(authed(
                &self.security_token,
                pb::SuspendPasswordRequest {
                    account_id: account_id.into(),
                    reason: pb::SuspensionReason::SuspectedCompromise.into(),
                    note: "credentials seen on a paste site".into(),
                    evidence_event_ids: vec![],
                },
            ))
            .await
            .unwrap()
            .into_inner()
    }

    /// Waits (bounded) until `count` e-mails to `recipient` are on disk; returns their texts, oldest first.
    pub async fn wait_for_mails(&self, recipient: &str, count: usize) -> Vec<String> {
        for _ in 0..300 {
            let mails = self.mails_to(recipient);
            if mails.len() >= count {
                return mails;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "expected {count} e-mail(s) to {recipient}, found {}",
            self.mails_to(recipient).len()
        );
    }

    pub fn mails_to(&self, recipient: &str) -> Vec<String> {
        mails_in_dir(&self.mail_dir, recipient)
    }

    /// The reset token from the newest reset e-mail to `recipient`.
    pub async fn reset_token_from_mail(&self, recipient: &str, expected_mails: usize) -> String {
        let mails = self.wait_for_mails(recipient, expected_mails).await;
        let mail = mails
            .iter()
            .rev()
            .find(|m| m.contains("token=gdr_"))
            .expect("no reset e-mail");
        token_in(mail)
    }

    /// `RequestPasswordReset` for `typed` (a login or an e-mail), unwrapped.
    pub async fn request_reset(
        &self,
        typed: &str,
    ) -> tonic::Response<pb::RequestPasswordResetResponse> {
        self.client()
            .await
            .request_password_reset(pb::RequestPasswordResetRequest {
                login_or_email: typed.into(),
            })
            .await
            .unwrap()
    }

    /// `CompletePasswordReset` with `token`, its outcome left to the caller.
    pub async fn complete_reset(
        &self,
        token: &str,
        password: &str,
        second_factor: Option<pb::complete_password_reset_request::SecondFactor>,
    ) -> Result<(), tonic::Status> {
        self.client()
            .await
            .complete_password_reset(pb::CompletePasswordResetRequest {
                reset_token: token.into(),
                new_password: password.into(),
                second_factor,
            })
            .await
            .map(|_| ())
    }

    /// The next reset token (`gdr_…`) e-mailed to `recipient` that is not in `seen`.
    pub async fn next_reset_token(&self, recipient: &str, seen: &[String]) -> String {
        for _ in 0..300 {
            for mail in self.mails_to(recipient) {
                if mail.contains("token=gdr_") {
                    let token = token_in(&mail);
                    if !seen.contains(&token) {
                        return token;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("no new reset e-mail to {recipient}");
    }

    /// Resets the password through the link the request mails to `email` (no second factor).
    pub async fn reset_password_by_email(&self, typed: &str, email: &str, password: &str) {
        let seen: Vec<String> = self
            .mails_to(email)
            .into_iter()
            .filter(|mail| mail.contains("token=gdr_"))
            .map(|mail| token_in(&mail))
            .collect();
        self.request_reset(typed).await;
        let token = self.next_reset_token(email, &seen).await;
        self.complete_reset(&token, password, None).await.unwrap();
    }

    /// Security events of an account, as (kind, actor_kind) pairs, oldest first.
    pub async fn events_of(&self, account_id: &str) -> Vec<String> {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
        gardien::entity::security_event::Entity::find()
            .filter(
                gardien::entity::security_event::Column::AccountId
                    .eq(uuid::Uuid::parse_str(account_id).unwrap()),
            )
            .order_by_asc(gardien::entity::security_event::Column::Id)
            .all(&self.ctx.db)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect()
    }
}

/// The `.eml` files in `dir` addressed to `recipient`, oldest first (by
/// file name); the tokens they carry are registered as secrets.
pub fn mails_in_dir(dir: &std::path::Path, recipient: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut mails: Vec<(String, String)> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .filter_map(|e| {
            Some((
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read_to_string(e.path()).ok()?,
            ))
        })
        .filter(|(_, text)| {
            text.lines()
                .any(|l| l.starts_with("To:") && l.contains(recipient))
        })
        .collect();
    mails.sort();
    mails
        .into_iter()
        .map(|(_, text)| {
            register_tokens_in(&text);
            text
        })
        .collect()
}

pub fn token_in(mail: &str) -> String {
    let start = mail.find("token=gdr_").expect("no token in the e-mail") + "token=".len();
    mail[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect()
}

/// The `ErrorInfo.reason` of a status.
pub fn reason(status: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    status
        .get_details_error_info()
        .map(|i| i.reason)
        .unwrap_or_default()
}

/// The fields named by a status's `BadRequest` details.
pub fn bad_fields(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

/// RFC 6238 code (SHA-1, 6 digits, 30 s) computed here with plain
/// HMAC-SHA1, independently of gardien's TOTP module.
pub fn totp_code(secret_base32: &str, now_ms: i64) -> String {
    use hmac::{Hmac, Mac};
    let secret = base32_decode(secret_base32);
    let step = (now_ms.div_euclid(1000) / 30) as u64;
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(&secret).unwrap();
    mac.update(&step.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = (digest[19] & 0x0f) as usize;
    let value = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    let code = format!("{:06}", value % 1_000_000);
    register_secret(&code);
    code
}

fn base32_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bits = 0u64;
    let mut count = 0;
    let mut out = Vec::new();
    for c in text.trim_end_matches('=').bytes() {
        let value = ALPHABET
            .iter()
            .position(|&a| a == c.to_ascii_uppercase())
            .unwrap() as u64;
        bits = (bits << 5) | value;
        count += 5;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    out
}

impl TestApp {
    /// Logs in, enrols TOTP and confirms it; returns (base32 secret, recovery codes, session).
    pub async fn enable_totp(
        &self,
        login: &str,
        password: &str,
    ) -> (String, Vec<String>, pb::SessionGrant) {
        let enabled = self.enable_totp_noting_code(login, password).await;
        (enabled.secret, enabled.recovery_codes, enabled.session)
    }

    /// [`Self::enable_totp`], also giving the code that confirmed the
    /// enrolment: the clock follows the wall clock, so recomputing it later
    /// may land on the next step.
    pub async fn enable_totp_noting_code(&self, login: &str, password: &str) -> EnabledTotp {
        let session = self.login(login, password).await.unwrap();
        let enrollment = self
            .client()
            .await
            .begin_totp_enrollment(authed(
                &session.session_token,
                pb::BeginTotpEnrollmentRequest::default(),
            ))
            .await
            .unwrap()
            .into_inner();
        let confirm_code = totp_code(&enrollment.secret_base32, self.clock_now());
        let codes = self
            .client()
            .await
            .confirm_totp_enrollment(authed(
                &session.session_token,
                pb::ConfirmTotpEnrollmentRequest {
                    totp_code: confirm_code.clone(),
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .recovery_codes;
        EnabledTotp {
            secret: enrollment.secret_base32,
            recovery_codes: codes,
            session,
            confirm_code,
        }
    }

    pub fn clock_now(&self) -> i64 {
        use gardien::clock::Clock;
        self.clock.now_ms()
    }

    /// `Login` on a 2FA account: the challenge token.
    pub async fn login_challenge(
        &self,
        login: &str,
        password: &str,
    ) -> Result<String, tonic::Status> {
        let response = self
            .client()
            .await
            .login(pb::LoginRequest {
                login: login.into(),
                password: password.into(),
            })
            .await?;
        match response.into_inner().result {
            Some(pb::login_response::Result::Challenge(challenge)) => Ok(challenge.challenge_token),
            other => panic!("expected a challenge, got {other:?}"),
        }
    }

    pub async fn verify_totp(
        &self,
        challenge: &str,
        code: &str,
    ) -> Result<pb::SessionGrant, tonic::Status> {
        self.verify_challenge(
            challenge,
            pb::verify_login_challenge_request::Code::TotpCode(code.into()),
        )
        .await
    }

    pub async fn verify_challenge(
        &self,
        challenge: &str,
        code: pb::verify_login_challenge_request::Code,
    ) -> Result<pb::SessionGrant, tonic::Status> {
        self.client()
            .await
            .verify_login_challenge(pb::VerifyLoginChallengeRequest {
                challenge_token: challenge.into(),
                code: Some(code),
            })
            .await
            .map(|r| r.into_inner().session.unwrap())
    }
}

/// A fresh PostgreSQL database (as `spawn_app` makes one) when
/// `GARDIEN_TEST_POSTGRES_URL` is set, for tests that run the real binary.
pub async fn fresh_postgres_url() -> Option<String> {
    database_url().await
}

// ---------------------------------------------------------------------------
// Support resets of the second factor.
// ---------------------------------------------------------------------------

impl TestApp {
    /// The agent records an identity verification on `ticket_id`.
    pub async fn verify_ticket_identity(&self, ticket_id: &str) {
        use gardien::proto::support::v1 as spb;
        self.support()
            .await
            .verify_ticket_identity(authed(
                &self.agent_token,
                spb::VerifyTicketIdentityRequest {
                    ticket_id: ticket_id.into(),
                    method: spb::IdentityVerificationMethod::VideoCall.into(),
                    evidence_reference: "KYC-CASE-7731".into(),
                },
            ))
            .await
            .unwrap();
    }

    /// The agent asks for a 2FA reset of `account_id` under `ticket_id`.
    pub async fn reset_totp(
        &self,
        account_id: &str,
        ticket_id: &str,
        reason: &str,
    ) -> Result<gardien::proto::support::v1::ResetTotpResponse, tonic::Status> {
        use gardien::proto::support::v1 as spb;
        self.support()
            .await
            .reset_totp(authed(
                &self.agent_token,
                spb::ResetTotpRequest {
                    account_id: account_id.into(),
                    ticket_id: ticket_id.into(),
                    reason: reason.into(),
                },
            ))
            .await
            .map(tonic::Response::into_inner)
    }

    /// Whether the account has TOTP on, read from the database.
    pub async fn totp_enabled(&self, account_id: &str) -> bool {
        use sea_orm::EntityTrait;
        gardien::entity::account::Entity::find_by_id(uuid::Uuid::parse_str(account_id).unwrap())
            .one(&self.ctx.db)
            .await
            .unwrap()
            .unwrap()
            .totp_secret
            .is_some()
    }

    /// Waits (bounded) for the background task to make due factor resets
    /// take effect; the clock must already be past their delay.
    pub async fn wait_until_totp_off(&self, account_id: &str) {
        for _ in 0..500 {
            if !self.totp_enabled(account_id).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("2FA of {account_id} is still on");
    }
}

impl TestApp {
    /// Waits (bounded) until the background task has handled every factor
    /// reset that is due at the current (test) clock.
    pub async fn wait_for_due_factor_resets(&self) {
        use gardien::entity::factor_reset;
        use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
        for _ in 0..500 {
            let due = factor_reset::Entity::find()
                .filter(factor_reset::Column::Status.eq("pending"))
                .filter(factor_reset::Column::DueAt.lte(self.clock_now()))
                .count(&self.ctx.db)
                .await
                .unwrap();
            if due == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("due factor resets were left pending");
    }
}

/// The token of the factor-reset cancel link in an e-mail.
pub fn cancel_token_in(mail: &str) -> String {
    let start = mail
        .find("token=gdf_")
        .expect("no cancel link in the e-mail")
        + "token=".len();
    mail[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect()
}

/// What [`TestApp::enable_totp_noting_code`] gives back.
pub struct EnabledTotp {
    pub secret: String,
    pub recovery_codes: Vec<String>,
    pub session: pb::SessionGrant,
    pub confirm_code: String,
}
