//! sea-orm entities, one file per table. Times are Unix milliseconds.

pub mod account;
pub mod compromised_password;
pub mod contact_change;
pub mod credential;
pub mod email_change;
pub mod factor_reset;
pub mod identity_verification;
pub mod login_challenge;
pub mod login_throttle;
pub mod outbox;
pub mod passkey;
pub mod passkey_ceremony;
pub mod pending_request;
pub mod recovery_code;
pub mod report_token;
pub mod reset_token;
pub mod security_event;
pub mod session;
pub mod suspension;
pub mod ticket;
pub mod ticket_message;
