//! The contract's promises and the tests that hold them.
//!
//! Every sentence of a proto comment that promises a behaviour (an effect,
//! an event, an e-mail, an error, who may call, what is returned) has a row
//! in [`PROMISES`] naming the test that fails when the promise is broken.
//! The compiler checks that each named test exists; the walk over the
//! descriptor set fails when an RPC has no row, so a new RPC without a test
//! shows in review. Promises that hold for a whole service or a type name
//! that service or type instead of an RPC.

use std::collections::BTreeSet;

use gardien::proto::FILE_DESCRIPTOR_SET;
use prost::Message;

use crate::{
    attacks, centre, foundation, hostile, login, rate_limit, recovery, scale_out, sessions,
    support, two_factor,
};

/// One promise of the contract and the test that holds it.
pub struct Promise {
    /// Full name of the RPC ("package.Service/Method"), or of the service or
    /// type whose comment makes the promise.
    pub rpc: &'static str,
    /// The promise, in a short sentence.
    pub promise: &'static str,
    /// The test that fails when the promise is broken.
    pub test: fn(),
}

/// Every promise of the proto comments, by RPC in the proto's order.
pub const PROMISES: &[Promise] = &[
    // service-level
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService",
        promise: "every RPC answers UNAUTHENTICATED / UNAUTHENTICATED to a missing or bad bearer where it needs one",
        test: foundation::create_account_without_a_credential_is_unauthenticated,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService",
        promise: "a role outside an RPC's roles gets PERMISSION_DENIED / PERMISSION_DENIED",
        test: foundation::a_role_outside_the_policy_is_permission_denied,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService",
        promise: "every RPC answers hostile input with a documented status, INVALID_ARGUMENT naming the field",
        test: hostile::every_rpc_answers_hostile_input_with_a_documented_status,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService",
        promise: "RESOURCE_EXHAUSTED / RATE_LIMITED comes with RetryInfo",
        test: rate_limit::the_credential_limit_trips_after_the_burst_with_retry_info_and_skips_the_handler,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService",
        promise: "anonymous callers have strict per-address rate limits",
        test: rate_limit::limits_are_independent_per_address_per_class_and_per_principal,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService",
        promise: "UNAVAILABLE / UNAVAILABLE when a dependency is unreachable",
        test: rate_limit::a_redis_outage_fails_closed_for_credentials_and_open_for_reads_then_recovers,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService",
        promise: "a customer session acts on its own account only",
        test: attacks::reading_or_revoking_another_customers_sessions,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService",
        promise: "paging returns every item once, next_page_token empty on the last page",
        test: centre::paging_returns_every_event_exactly_once_under_concurrent_inserts,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService",
        promise: "recent authentication: a stale session without current_password is FAILED_PRECONDITION / RECENT_AUTHENTICATION_REQUIRED",
        test: two_factor::enrolment_needs_a_recent_authentication,
    },
    // CreateAccount
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/CreateAccount",
        promise: "role: service",
        test: foundation::a_role_outside_the_policy_is_permission_denied,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/CreateAccount",
        promise: "creates the account, login stored lowercase, records ACCOUNT_CREATED",
        test: foundation::create_account_records_the_account_and_its_event,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/CreateAccount",
        promise: "not idempotent: a taken login is ALREADY_EXISTS",
        test: foundation::a_taken_login_is_already_exists,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/CreateAccount",
        promise: "INVALID_ARGUMENT names every invalid field",
        test: foundation::create_account_names_every_invalid_field,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/CreateAccount",
        promise: "a weak initial password is INVALID_ARGUMENT / PASSWORD_TOO_WEAK",
        test: foundation::a_weak_initial_password_is_refused_naming_the_field,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/CreateAccount",
        promise: "the password policy refuses short, common and login-like passwords and takes 128 characters",
        test: recovery::the_new_password_must_pass_the_policy,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/CreateAccount",
        promise: "passwords are compared after Unicode normalisation",
        test: login::nfc_and_nfd_forms_of_a_password_both_log_in,
    },
    // GetAccountStatus
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/GetAccountStatus",
        promise: "roles: service, security, agent; by account_id or login",
        test: foundation::get_account_status_finds_by_id_or_login_for_allowed_roles,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/GetAccountStatus",
        promise: "NOT_FOUND for an unknown account; both keys set is INVALID_ARGUMENT",
        test: foundation::get_account_status_finds_by_id_or_login_for_allowed_roles,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/GetAccountStatus",
        promise: "reports consecutive_failed_logins and login_backoff_until",
        test: attacks::parallel_password_guessing_beyond_the_back_off_limit,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/GetAccountStatus",
        promise: "reports the active suspension, unset once lifted by a reset",
        test: recovery::the_seed_path_from_suspension_to_a_new_password,
    },
    // Login
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/Login",
        promise: "a correct password opens a session from the connection's address; records LOGIN_SUCCEEDED",
        test: login::a_correct_password_gives_a_session_that_authenticates,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/Login",
        promise: "a 2FA account gets a challenge, not a session; records LOGIN_CHALLENGED",
        test: two_factor::enrol_confirm_then_log_in_with_a_code_once_and_a_recovery_code_once,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/Login",
        promise: "unknown login and wrong password: UNAUTHENTICATED / INVALID_CREDENTIALS, same bytes",
        test: login::unknown_login_and_wrong_password_answer_byte_for_byte_the_same,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/Login",
        promise: "unknown login and wrong password take the same time",
        test: attacks::login_timing_reveals_which_logins_exist,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/Login",
        promise: "PASSWORD_SUSPENDED with Help, only after the correct password",
        test: recovery::the_seed_path_from_suspension_to_a_new_password,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/Login",
        promise: "LOGIN_BACKOFF with RetryInfo, the delay doubling with each failure",
        test: login::each_failure_past_the_free_ones_doubles_the_delay_the_refusal_states,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/Login",
        promise: "each call counts towards the back-off; a success clears it",
        test: login::back_off_grows_then_expires_and_a_success_clears_it,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/Login",
        promise: "unknown logins are backed off like known ones",
        test: login::unknown_logins_are_backed_off_like_known_ones,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/Login",
        promise: "parallel guesses cannot exceed the back-off",
        test: attacks::parallel_password_guessing_beyond_the_back_off_limit,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/Login",
        promise: "empty login or password is INVALID_ARGUMENT naming the field",
        test: login::empty_login_fields_are_invalid_argument_naming_the_field,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/Login",
        promise: "a login racing a suspension leaves no live session",
        test: attacks::login_racing_a_suspension,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/Login",
        promise: "a login from a new address is notified with a \"this wasn't me\" link",
        test: centre::a_login_from_a_new_address_is_notified_with_a_wasnt_me_link,
    },
    // VerifyLoginChallenge
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/VerifyLoginChallenge",
        promise: "a TOTP code opens the session (second_factor_used) and is accepted once per account",
        test: two_factor::enrol_confirm_then_log_in_with_a_code_once_and_a_recovery_code_once,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/VerifyLoginChallenge",
        promise: "a replayed code is INVALID_CREDENTIALS, even raced through many challenges",
        test: attacks::totp_code_replay,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/VerifyLoginChallenge",
        promise: "a recovery code works once and is consumed",
        test: two_factor::enrol_confirm_then_log_in_with_a_code_once_and_a_recovery_code_once,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/VerifyLoginChallenge",
        promise: "a code one step old is accepted, two steps old refused",
        test: two_factor::a_code_two_steps_old_is_refused_and_one_step_old_accepted,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/VerifyLoginChallenge",
        promise: "wrong codes count towards LOGIN_BACKOFF across fresh challenges",
        test: attacks::totp_guessing_across_fresh_challenges,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/VerifyLoginChallenge",
        promise: "a challenge killed by wrong codes or a suspension is TOKEN_INVALID",
        test: two_factor::a_challenge_dies_after_five_wrong_codes,
    },
    // Logout
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/Logout",
        promise: "ends the calling session: its token fails on the next call",
        test: sessions::logout_and_revocation_take_effect_on_the_very_next_call,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/Logout",
        promise: "introspection of a logged-out token answers active=false",
        test: sessions::introspection_follows_revocation_immediately,
    },
    // ListSessions
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/ListSessions",
        promise: "lists the caller's active sessions, the current one marked",
        test: login::a_correct_password_gives_a_session_that_authenticates,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/ListSessions",
        promise: "an idle session expires after the idle timeout",
        test: sessions::an_idle_session_expires_after_the_idle_timeout,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/ListSessions",
        promise: "a used session still ends at its absolute lifetime",
        test: sessions::an_active_session_still_ends_at_its_absolute_lifetime,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/ListSessions",
        promise: "never lists another customer's sessions",
        test: attacks::reading_or_revoking_another_customers_sessions,
    },
    // RevokeSession
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/RevokeSession",
        promise: "revokes one of the caller's sessions at once",
        test: sessions::logout_and_revocation_take_effect_on_the_very_next_call,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/RevokeSession",
        promise: "another account's session is NOT_FOUND, as an unknown one",
        test: attacks::reading_or_revoking_another_customers_sessions,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/RevokeSession",
        promise: "a revocation through one instance is refused by another on the next call",
        test: scale_out::a_session_revoked_through_one_instance_is_refused_by_the_other_on_the_next_call,
    },
    // IntrospectSession
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/IntrospectSession",
        promise: "role: service; a customer is PERMISSION_DENIED",
        test: sessions::introspection_follows_revocation_immediately,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/IntrospectSession",
        promise: "unknown or revoked token answers active=false, not an error; revoked is inactive immediately",
        test: sessions::introspection_follows_revocation_immediately,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/IntrospectSession",
        promise: "reports second_factor_used",
        test: two_factor::enrol_confirm_then_log_in_with_a_code_once_and_a_recovery_code_once,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/IntrospectSession",
        promise: "revocations elsewhere are seen on the next call",
        test: scale_out::cached_sessions_and_credentials_revoked_elsewhere_are_refused_on_the_next_call,
    },
    // SuspendPassword
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/SuspendPassword",
        promise: "the password opens nothing until reset; records PASSWORD_SUSPENDED; e-mails the procedure",
        test: recovery::the_seed_path_from_suspension_to_a_new_password,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/SuspendPassword",
        promise: "revokes every session",
        test: attacks::stolen_session_used_after_a_suspension,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/SuspendPassword",
        promise: "revokes every pending 2FA challenge",
        test: two_factor::a_suspension_kills_pending_challenges,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/SuspendPassword",
        promise: "revokes every reset link",
        test: recovery::a_suspension_invalidates_outstanding_reset_links,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/SuspendPassword",
        promise: "idempotent: an active suspension is returned with already_suspended=true",
        test: recovery::suspending_twice_is_idempotent_and_lifting_restores_the_password,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/SuspendPassword",
        promise: "password unset is FAILED_PRECONDITION / INVALID_STATE_TRANSITION",
        test: recovery::an_account_without_a_password_cannot_be_suspended,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/SuspendPassword",
        promise: "reason UNSPECIFIED, a long note and a bad evidence ID are INVALID_ARGUMENT naming each",
        test: recovery::suspension_validates_its_fields,
    },
    // LiftSuspension
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/LiftSuspension",
        promise: "the old password works again; lift_method SECURITY_TEAM",
        test: recovery::suspending_twice_is_idempotent_and_lifting_restores_the_password,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/LiftSuspension",
        promise: "role: security; a service is PERMISSION_DENIED",
        test: recovery::suspending_twice_is_idempotent_and_lifting_restores_the_password,
    },
    // RequestPasswordReset
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/RequestPasswordReset",
        promise: "e-mails a reset link; records PASSWORD_RESET_REQUESTED",
        test: recovery::the_seed_path_from_suspension_to_a_new_password,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/RequestPasswordReset",
        promise: "answers identically whether or not the account exists",
        test: recovery::reset_and_login_recovery_answer_the_same_for_unknown_accounts,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/RequestPasswordReset",
        promise: "the link is refused after 30 minutes with TOKEN_EXPIRED",
        test: recovery::a_reset_token_expires_after_thirty_minutes,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/RequestPasswordReset",
        promise: "only the newest link works",
        test: recovery::only_the_newest_reset_link_is_valid,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/RequestPasswordReset",
        promise: "works while logins are backed off",
        test: login::after_the_failure_ceiling_only_a_reset_reopens_login,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/RequestPasswordReset",
        promise: "works while the password is suspended",
        test: recovery::the_seed_path_from_suspension_to_a_new_password,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/RequestPasswordReset",
        promise: "requests over the per-account limit are dropped silently",
        test: recovery::reset_requests_per_account_are_limited,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/RequestPasswordReset",
        promise: "the e-mail is in the account's language",
        test: recovery::a_french_account_gets_french_e_mail,
    },
    // CompletePasswordReset
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/CompletePasswordReset",
        promise: "sets the new password, lifts the suspension, records the events, notifies by e-mail",
        test: recovery::the_seed_path_from_suspension_to_a_new_password,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/CompletePasswordReset",
        promise: "the lift is recorded as LIFT_METHOD_PASSWORD_RESET",
        test: support::the_account_review_shows_the_seed_scenario_and_is_journaled,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/CompletePasswordReset",
        promise: "revokes every session and challenge and does not log in",
        test: attacks::stolen_session_used_after_a_password_reset,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/CompletePasswordReset",
        promise: "other and older reset links are refused after a reset",
        test: attacks::reset_link_reuse_after_another_was_used_or_the_password_changed,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/CompletePasswordReset",
        promise: "a used token is UNAUTHENTICATED / TOKEN_INVALID",
        test: recovery::a_reset_token_works_once,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/CompletePasswordReset",
        promise: "of concurrent uses of one token exactly one wins",
        test: recovery::of_twenty_concurrent_uses_of_one_token_exactly_one_wins,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/CompletePasswordReset",
        promise: "an expired token is FAILED_PRECONDITION / TOKEN_EXPIRED",
        test: recovery::a_reset_token_expires_after_thirty_minutes,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/CompletePasswordReset",
        promise: "a 2FA account without a code is FAILED_PRECONDITION / SECOND_FACTOR_REQUIRED; the token survives",
        test: two_factor::a_reset_on_a_2fa_account_needs_a_code,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/CompletePasswordReset",
        promise: "a weak password is PASSWORD_TOO_WEAK and does not consume the token",
        test: recovery::the_new_password_must_pass_the_policy,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/CompletePasswordReset",
        promise: "clears the login back-off",
        test: login::after_the_failure_ceiling_only_a_reset_reopens_login,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/CompletePasswordReset",
        promise: "a token used on one instance is refused on another",
        test: scale_out::a_reset_link_used_on_one_instance_is_refused_on_the_other,
    },
    // RecoverLogin
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/RecoverLogin",
        promise: "e-mails the login identifier; answers identically whether or not an account matches",
        test: recovery::reset_and_login_recovery_answer_the_same_for_unknown_accounts,
    },
    // ChangePassword
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/ChangePassword",
        promise: "keeps the calling session, revokes the others, records PASSWORD_CHANGED, notifies by e-mail",
        test: sessions::changing_the_password_needs_the_current_one_and_ends_other_sessions,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/ChangePassword",
        promise: "a wrong current password is UNAUTHENTICATED / INVALID_CREDENTIALS",
        test: sessions::changing_the_password_needs_the_current_one_and_ends_other_sessions,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/ChangePassword",
        promise: "a weak new password is INVALID_ARGUMENT / PASSWORD_TOO_WEAK naming new_password",
        test: sessions::changing_the_password_needs_the_current_one_and_ends_other_sessions,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/ChangePassword",
        promise: "a stolen session and pending challenge end; sessions_revoked counts them",
        test: attacks::stolen_session_used_after_a_password_change,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/ChangePassword",
        promise: "revokes every reset link",
        test: attacks::reset_link_reuse_after_another_was_used_or_the_password_changed,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/ChangePassword",
        promise: "the notice carries a \"this wasn't me\" link",
        test: centre::the_wasnt_me_link_of_a_password_notice_suspends_once_and_expires,
    },
    // BeginTotpEnrollment
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/BeginTotpEnrollment",
        promise: "returns a 160-bit base32 secret (32 characters)",
        test: two_factor::enrol_confirm_then_log_in_with_a_code_once_and_a_recovery_code_once,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/BeginTotpEnrollment",
        promise: "returns an otpauth URI and a PNG QR code",
        test: two_factor::enrolment_needs_a_recent_authentication,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/BeginTotpEnrollment",
        promise: "recent authentication, or current_password",
        test: two_factor::enrolment_needs_a_recent_authentication,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/BeginTotpEnrollment",
        promise: "the database never holds the secret in clear",
        test: two_factor::the_database_holds_no_plaintext_secret_or_recovery_code,
    },
    // ConfirmTotpEnrollment
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/ConfirmTotpEnrollment",
        promise: "turns 2FA on, returns 10 recovery codes, records TOTP_ENABLED, notifies by e-mail",
        test: two_factor::enrol_confirm_then_log_in_with_a_code_once_and_a_recovery_code_once,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/ConfirmTotpEnrollment",
        promise: "recovery codes are stored hashed",
        test: two_factor::the_database_holds_no_plaintext_secret_or_recovery_code,
    },
    // DisableTotp
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/DisableTotp",
        promise: "turns 2FA off, revokes the other sessions, records TOTP_DISABLED",
        test: two_factor::disabling_needs_the_password_and_a_code_and_ends_other_sessions,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/DisableTotp",
        promise: "a wrong current password is INVALID_CREDENTIALS; a code is required",
        test: two_factor::disabling_needs_the_password_and_a_code_and_ends_other_sessions,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/DisableTotp",
        promise: "the caller's session stays, a stolen one and pending challenges end",
        test: attacks::stolen_session_used_after_disabling_2fa,
    },
    // RegenerateRecoveryCodes
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/RegenerateRecoveryCodes",
        promise: "returns 10 new codes; the old ones no longer work",
        test: two_factor::regenerated_recovery_codes_replace_the_old_ones,
    },
    // GetSecurityOverview
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/GetSecurityOverview",
        promise: "reports 2FA, recovery codes left and recommends 2FA until enabled",
        test: two_factor::the_security_overview_counts_recovery_codes_and_recommends_2fa_until_enabled,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/GetSecurityOverview",
        promise: "recommends a reset while suspended; counts unacknowledged events",
        test: centre::the_overview_guides_the_seed_scenario_from_reset_to_2fa,
    },
    // ListSecurityEvents
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/ListSecurityEvents",
        promise: "lists the caller's events; activity reported by services included",
        test: centre::an_order_from_billing_shows_in_the_journal_once,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/ListSecurityEvents",
        promise: "paged: every event exactly once under concurrent inserts",
        test: centre::paging_returns_every_event_exactly_once_under_concurrent_inserts,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/ListSecurityEvents",
        promise: "never shows another customer's events, even through a forged cursor",
        test: attacks::reading_acknowledging_or_disputing_another_customers_events,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/ListSecurityEvents",
        promise: "the support review is shown with its agent actor and a summary",
        test: support::the_account_review_shows_the_seed_scenario_and_is_journaled,
    },
    // AcknowledgeSecurityEvents
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/AcknowledgeSecurityEvents",
        promise: "marks events as seen",
        test: centre::the_overview_guides_the_seed_scenario_from_reset_to_2fa,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/AcknowledgeSecurityEvents",
        promise: "another customer's event is NOT_FOUND, as an unknown one, and nothing changes",
        test: attacks::reading_acknowledging_or_disputing_another_customers_events,
    },
    // DisputeSecurityEvent
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/DisputeSecurityEvent",
        promise: "suspends, revokes every session and opens a linked high-priority ticket; records EVENT_DISPUTED",
        test: centre::disputing_an_order_opens_a_ticket_revokes_sessions_and_suspends,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/DisputeSecurityEvent",
        promise: "ALREADY_EXISTS when already disputed; NOT_FOUND for another customer's event",
        test: centre::disputing_twice_or_another_customers_event_is_refused,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/DisputeSecurityEvent",
        promise: "another customer's event answers as an unknown one and leaves their account alone",
        test: attacks::reading_acknowledging_or_disputing_another_customers_events,
    },
    // ReportUnauthorizedChange
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/ReportUnauthorizedChange",
        promise: "suspends from the notice link without login and returns a ticket reference",
        test: centre::the_wasnt_me_link_of_a_password_notice_suspends_once_and_expires,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/ReportUnauthorizedChange",
        promise: "a used token is TOKEN_INVALID; an old one TOKEN_EXPIRED",
        test: centre::the_wasnt_me_link_of_a_password_notice_suspends_once_and_expires,
    },
    // RecordActivity
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/RecordActivity",
        promise: "records the activity as an event the customer sees, with its details and the service as actor",
        test: centre::an_order_from_billing_shows_in_the_journal_once,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/RecordActivity",
        promise: "idempotent on service_event_id: a repeat returns the first event with duplicate=true",
        test: centre::an_order_from_billing_shows_in_the_journal_once,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/RecordActivity",
        promise: "an unknown account is NOT_FOUND; invalid fields are named",
        test: centre::an_order_from_billing_shows_in_the_journal_once,
    },
    // GetContactDetails
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/GetContactDetails",
        promise: "reads the contact details with who changed each and when",
        test: centre::an_e_mail_change_waits_for_the_new_address_and_tells_the_old_one,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/GetContactDetails",
        promise: "another customer's details are never returned",
        test: attacks::reading_another_customers_contact_history,
    },
    // UpdateContactDetails
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/UpdateContactDetails",
        promise: "a phone applies at once; a new e-mail waits for confirmation",
        test: centre::an_e_mail_change_waits_for_the_new_address_and_tells_the_old_one,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/UpdateContactDetails",
        promise: "the current e-mail is told of an e-mail change, with a \"this wasn't me\" link",
        test: centre::an_e_mail_change_waits_for_the_new_address_and_tells_the_old_one,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/UpdateContactDetails",
        promise: "recent authentication: FAILED_PRECONDITION / RECENT_AUTHENTICATION_REQUIRED",
        test: centre::an_e_mail_change_waits_for_the_new_address_and_tells_the_old_one,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/UpdateContactDetails",
        promise: "an unknown update_mask path is INVALID_ARGUMENT",
        test: centre::an_e_mail_change_waits_for_the_new_address_and_tells_the_old_one,
    },
    // ConfirmEmailChange
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/ConfirmEmailChange",
        promise: "applies the change; a used token is TOKEN_INVALID",
        test: centre::an_e_mail_change_waits_for_the_new_address_and_tells_the_old_one,
    },
    // ListContactChanges
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/ListContactChanges",
        promise: "lists applied changes with old and new values and the client address",
        test: centre::an_e_mail_change_waits_for_the_new_address_and_tells_the_old_one,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/ListContactChanges",
        promise: "never lists another customer's changes",
        test: attacks::reading_another_customers_contact_history,
    },
    // Support
    Promise {
        rpc: "gardien.support.v1.SupportService",
        promise: "a customer never sees another customer's ticket: NOT_FOUND as an unknown one",
        test: attacks::reading_or_writing_another_customers_tickets,
    },
    Promise {
        rpc: "gardien.support.v1.SupportService",
        promise: "internal notes are never returned to customers nor e-mailed",
        test: support::an_agent_works_the_ticket_with_notes_replies_and_status,
    },
    Promise {
        rpc: "gardien.support.v1.SupportService/CreateTicket",
        promise: "opens a ticket linked to the caller's events; a repeated client_request_id returns the first",
        test: support::a_ticket_links_own_events_and_a_retry_returns_the_same_ticket,
    },
    Promise {
        rpc: "gardien.support.v1.SupportService/CreateTicket",
        promise: "linking another customer's event is INVALID_ARGUMENT",
        test: support::a_ticket_links_own_events_and_a_retry_returns_the_same_ticket,
    },
    Promise {
        rpc: "gardien.support.v1.SupportService/CreateTicket",
        promise: "records TICKET_CREATED",
        test: support::an_agent_works_the_ticket_with_notes_replies_and_status,
    },
    Promise {
        rpc: "gardien.support.v1.SupportService/CreateTicket",
        promise: "bounds are INVALID_ARGUMENT naming each field",
        test: support::ticket_fields_are_bounded_and_named,
    },
    Promise {
        rpc: "gardien.support.v1.SupportService/CreateRecoveryTicket",
        promise: "opens an unverified recovery ticket; same answer for known and unknown logins",
        test: support::a_recovery_ticket_answers_the_same_for_known_and_unknown_logins,
    },
    Promise {
        rpc: "gardien.support.v1.SupportService/CreateRecoveryTicket",
        promise: "strictly rate limited per client address",
        test: support::recovery_tickets_are_strictly_rate_limited_per_client_address,
    },
    Promise {
        rpc: "gardien.support.v1.SupportService/CreateRecoveryTicket",
        promise: "the account's customer does not see it",
        test: support::a_recovery_ticket_answers_the_same_for_known_and_unknown_logins,
    },
    Promise {
        rpc: "gardien.support.v1.SupportService/GetTicket",
        promise: "a customer reads their ticket without internal notes; an agent reads all",
        test: support::an_agent_works_the_ticket_with_notes_replies_and_status,
    },
    Promise {
        rpc: "gardien.support.v1.SupportService/GetTicket",
        promise: "another customer's ticket is NOT_FOUND",
        test: attacks::reading_or_writing_another_customers_tickets,
    },
    Promise {
        rpc: "gardien.support.v1.SupportService/ListTickets",
        promise: "lists the caller's tickets only",
        test: support::a_ticket_links_own_events_and_a_retry_returns_the_same_ticket,
    },
    Promise {
        rpc: "gardien.support.v1.SupportService/AddTicketMessage",
        promise: "an agent's reply is e-mailed, an internal note is not",
        test: support::an_agent_works_the_ticket_with_notes_replies_and_status,
    },
    Promise {
        rpc: "gardien.support.v1.SupportService/AddTicketMessage",
        promise: "a CLOSED ticket is FAILED_PRECONDITION",
        test: support::an_agent_works_the_ticket_with_notes_replies_and_status,
    },
    Promise {
        rpc: "gardien.support.v1.SupportService/AddTicketMessage",
        promise: "an internal note from a customer is PERMISSION_DENIED; another's ticket NOT_FOUND",
        test: attacks::reading_or_writing_another_customers_tickets,
    },
    Promise {
        rpc: "gardien.support.v1.SupportService/CloseTicket",
        promise: "closes the caller's ticket for good",
        test: support::an_agent_works_the_ticket_with_notes_replies_and_status,
    },
    Promise {
        rpc: "gardien.support.v1.SupportService/CloseTicket",
        promise: "another customer's ticket is NOT_FOUND",
        test: attacks::reading_or_writing_another_customers_tickets,
    },
    Promise {
        rpc: "gardien.support.v1.SupportService/ListTicketQueue",
        promise: "role: agent; lists tickets with the unassigned and unverified filters",
        test: support::an_agent_works_the_ticket_with_notes_replies_and_status,
    },
    Promise {
        rpc: "gardien.support.v1.SupportService/ListTicketQueue",
        promise: "a customer is PERMISSION_DENIED",
        test: attacks::reading_or_writing_another_customers_tickets,
    },
    Promise {
        rpc: "gardien.support.v1.SupportService/AssignTicket",
        promise: "assigns to the calling agent by default; an unknown agent is INVALID_ARGUMENT",
        test: support::an_agent_works_the_ticket_with_notes_replies_and_status,
    },
    Promise {
        rpc: "gardien.support.v1.SupportService/SetTicketStatus",
        promise: "sets the status; to OPEN or from CLOSED is INVALID_STATE_TRANSITION; a resolution is e-mailed",
        test: support::an_agent_works_the_ticket_with_notes_replies_and_status,
    },
    Promise {
        rpc: "gardien.support.v1.SupportService/GetAccountReview",
        promise: "shows account, suspensions and events with addresses; records SUPPORT_ACCOUNT_REVIEWED",
        test: support::the_account_review_shows_the_seed_scenario_and_is_journaled,
    },
    Promise {
        rpc: "gardien.support.v1.SupportService/GetAccountReview",
        promise: "a customer is PERMISSION_DENIED",
        test: attacks::reading_or_writing_another_customers_tickets,
    },
    Promise {
        rpc: "gardien.support.v1.SupportService/ResetTotp",
        promise: "turns 2FA off under a ticket, revokes every session, records TOTP_DISABLED; then TOTP_NOT_ENABLED",
        test: support::an_agent_resets_2fa_under_a_ticket,
    },
];

/// Full names of every service, RPC ("Service/Method") and type of the gardien packages.
fn contract_names() -> (Vec<String>, BTreeSet<String>) {
    let set = prost_types::FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).unwrap();
    let mut rpcs = Vec::new();
    let mut names = BTreeSet::new();
    for file in set.file.iter().filter(|f| f.package().starts_with("gardien.")) {
        let package = file.package();
        for service in &file.service {
            let service_name = format!("{package}.{}", service.name());
            for method in &service.method {
                rpcs.push(format!("{service_name}/{}", method.name()));
            }
            names.insert(service_name);
        }
        for message in &file.message_type {
            names.insert(format!("{package}.{}", message.name()));
        }
        for enumeration in &file.enum_type {
            names.insert(format!("{package}.{}", enumeration.name()));
        }
    }
    names.extend(rpcs.iter().cloned());
    (rpcs, names)
}

#[tokio::test]
async fn every_rpc_of_both_services_has_a_promise_row() {
    let (rpcs, names) = contract_names();
    assert!(rpcs.len() >= 39, "only {} RPCs found", rpcs.len());
    let missing: Vec<_> = rpcs
        .iter()
        .filter(|rpc| !PROMISES.iter().any(|row| row.rpc == rpc.as_str()))
        .collect();
    assert!(missing.is_empty(), "RPCs without a promise row: {missing:?}");
    let unknown: Vec<_> = PROMISES
        .iter()
        .filter(|row| !names.contains(row.rpc))
        .map(|row| row.rpc)
        .collect();
    assert!(unknown.is_empty(), "rows naming nothing in the contract: {unknown:?}");
    for row in PROMISES {
        assert!(!row.promise.trim().is_empty(), "a row of {} says nothing", row.rpc);
    }
}
