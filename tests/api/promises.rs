//! The contract's promises and the tests that hold them.
//!
//! Every sentence of a proto comment that promises a behaviour (an effect,
//! an event, an e-mail, an error, who may call, what is returned) has a row
//! in [`PROMISES`] naming the test that fails when the promise is broken.
//! The compiler checks that each named test exists; the walk over the
//! descriptor set fails when an RPC has no row, so a new RPC without a test
//! shows in review. Promises that hold for a whole service or a type name
//! that service or type instead of an RPC.

use std::{collections::BTreeSet, time::Duration};

use gardien::{
    middleware::auth::allowed_roles,
    proto::{accountsecurity::v1 as pb, support::v1 as spb, FILE_DESCRIPTOR_SET},
};
use prost::Message;
use tonic::{transport::Channel, Code, Status};

use crate::{
    at_rest, attacks, centre, faults, foundation, helpers::*, hostile, login, passkeys, rate_limit,
    recovery, scale_out, sessions, support, two_factor,
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
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService",
        promise: "each RPC admits exactly the roles its comment names; others get PERMISSION_DENIED, or UNAUTHENTICATED without a bearer",
        test: every_rpc_admits_exactly_the_roles_its_comment_names,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService",
        promise: "recent authentication: a wrong current_password is UNAUTHENTICATED / INVALID_CREDENTIALS and the session stays valid",
        test: recent_authentication_rpcs_need_a_fresh_login_or_the_current_password,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService",
        promise: "paging: page_size 0 means 50, above 200 means 200, a bad page_token is INVALID_ARGUMENT",
        test: paging_defaults_to_fifty_caps_at_two_hundred_and_refuses_a_bad_token,
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
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/CreateAccount",
        promise: "sends no e-mail; without a password the customer sets one through RequestPasswordReset",
        test: an_account_without_a_password_gets_one_by_reset_and_creation_sends_no_mail,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/CreateAccount",
        promise: "the password is at most 256 code points after NFKC and not built from the e-mail",
        test: the_password_policy_bounds_length_in_code_points_and_refuses_the_e_mail,
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
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/GetAccountStatus",
        promise: "reports active_sessions, last_login_at, consecutive_failed_logins (0 after a success)",
        test: account_status_counts_sessions_and_failures_and_reads_change_nothing,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/GetAccountStatus",
        promise: "read-only",
        test: account_status_counts_sessions_and_failures_and_reads_change_nothing,
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
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/Login",
        promise: "an unset password answers INVALID_CREDENTIALS like an unknown login",
        test: an_account_without_a_password_gets_one_by_reset_and_creation_sends_no_mail,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/Login",
        promise: "the user agent is taken from the \"user-agent\" metadata",
        test: sessions_are_listed_newest_first_and_the_current_one_can_be_revoked,
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
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/VerifyLoginChallenge",
        promise: "an expired challenge is FAILED_PRECONDITION / TOKEN_EXPIRED",
        test: an_unanswered_challenge_expires,
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
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/Logout",
        promise: "a second call with the same token is UNAUTHENTICATED; records LOGOUT",
        test: sessions_are_listed_newest_first_and_the_current_one_can_be_revoked,
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
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/ListSessions",
        promise: "newest first, revoked sessions left out",
        test: sessions_are_listed_newest_first_and_the_current_one_can_be_revoked,
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
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/RevokeSession",
        promise: "may be the current one; records SESSION_REVOKED",
        test: sessions_are_listed_newest_first_and_the_current_one_can_be_revoked,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/RevokeSession",
        promise: "idempotent: an already ended session succeeds; another account's ended session stays NOT_FOUND",
        test: revoking_an_ended_session_succeeds_and_another_customers_stays_not_found,
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
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/IntrospectSession",
        promise: "an active answer moves idle_expires_at forward and keeps the session alive",
        test: introspection_extends_the_idle_expiry_and_an_inactive_answer_is_empty,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/IntrospectSession",
        promise: "an expired or revoked token answers active=false with every other field empty",
        test: introspection_extends_the_idle_expiry_and_an_inactive_answer_is_empty,
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
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/SuspendPassword",
        promise: "NOT_FOUND for an unknown account; evidence of another account is INVALID_ARGUMENT",
        test: suspension_and_lift_answer_their_errors_and_keep_the_note_for_staff,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/SuspendPassword",
        promise: "roles: security and service; a repeat revokes nothing (sessions_revoked 0)",
        test: suspension_and_lift_answer_their_errors_and_keep_the_note_for_staff,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/SuspendPassword",
        promise: "the staff note is never sent to the customer (e-mail, login answer)",
        test: suspension_and_lift_answer_their_errors_and_keep_the_note_for_staff,
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
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/LiftSuspension",
        promise: "NOT_FOUND; no active suspension is INVALID_STATE_TRANSITION",
        test: suspension_and_lift_answer_their_errors_and_keep_the_note_for_staff,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/LiftSuspension",
        promise: "revoked sessions stay revoked; records SUSPENSION_LIFTED; lifted_by the security team",
        test: suspension_and_lift_answer_their_errors_and_keep_the_note_for_staff,
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
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/RequestPasswordReset",
        promise: "an e-mail shared by several accounts gets one link per account",
        test: a_shared_e_mail_gets_a_link_per_account_and_a_reminder_naming_each_login,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/RequestPasswordReset",
        promise: "the link is still valid at 29 minutes",
        test: a_shared_e_mail_gets_a_link_per_account_and_a_reminder_naming_each_login,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/RequestPasswordReset",
        promise: "an OK request is never dropped, not even by a restart (SIGKILL)",
        test: attacks::requests_answered_ok_survive_a_sigkill,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/RequestPasswordReset",
        promise: "UNAVAILABLE when it cannot be recorded (database down), never OK",
        test: faults::postgres_outage::a_postgresql_outage_answers_unavailable_and_the_same_server_recovers,
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
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/CompletePasswordReset",
        promise: "a wrong code is UNAUTHENTICATED / INVALID_CREDENTIALS and counts towards LOGIN_BACKOFF; the token survives",
        test: a_reset_with_wrong_codes_is_refused_then_backed_off_and_a_recovery_code_is_consumed,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/CompletePasswordReset",
        promise: "a recovery code used there is consumed",
        test: a_reset_with_wrong_codes_is_refused_then_backed_off_and_a_recovery_code_is_consumed,
    },
    // RecoverLogin
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/RecoverLogin",
        promise: "e-mails the login identifier; answers identically whether or not an account matches",
        test: recovery::reset_and_login_recovery_answer_the_same_for_unknown_accounts,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/RecoverLogin",
        promise: "e-mails the login of every account using the e-mail; records LOGIN_RECOVERY_REQUESTED",
        test: a_shared_e_mail_gets_a_link_per_account_and_a_reminder_naming_each_login,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/RecoverLogin",
        promise: "recorded and worked off like RequestPasswordReset: never dropped, not even by a restart",
        test: attacks::requests_answered_ok_survive_a_sigkill,
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
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/ChangePassword",
        promise: "wrong current passwords count towards RESOURCE_EXHAUSTED / LOGIN_BACKOFF; the session stays",
        test: wrong_current_passwords_to_change_password_are_backed_off,
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
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/BeginTotpEnrollment",
        promise: "a new call replaces the pending secret; 2FA is not on until confirmed",
        test: enrolment_replaces_a_pending_secret_and_refuses_what_the_proto_lists,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/BeginTotpEnrollment",
        promise: "TOTP_ALREADY_ENABLED once 2FA is on",
        test: enrolment_replaces_a_pending_secret_and_refuses_what_the_proto_lists,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/BeginTotpEnrollment",
        promise: "a wrong current_password is INVALID_CREDENTIALS",
        test: recent_authentication_rpcs_need_a_fresh_login_or_the_current_password,
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
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/ConfirmTotpEnrollment",
        promise: "a wrong code is INVALID_CREDENTIALS; no pending enrolment is INVALID_STATE_TRANSITION; then TOTP_ALREADY_ENABLED",
        test: enrolment_replaces_a_pending_secret_and_refuses_what_the_proto_lists,
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
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/DisableTotp",
        promise: "current_password required; a wrong one is INVALID_CREDENTIALS",
        test: recent_authentication_rpcs_need_a_fresh_login_or_the_current_password,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/DisableTotp",
        promise: "TOTP_NOT_ENABLED without 2FA; a wrong code is INVALID_CREDENTIALS, then LOGIN_BACKOFF",
        test: disabling_and_regenerating_refuse_wrong_codes_and_disabling_deletes_the_secret,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/DisableTotp",
        promise: "deletes the secret and recovery codes; notifies by e-mail",
        test: disabling_and_regenerating_refuse_wrong_codes_and_disabling_deletes_the_secret,
    },
    // RegenerateRecoveryCodes
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/RegenerateRecoveryCodes",
        promise: "returns 10 new codes; the old ones no longer work",
        test: two_factor::regenerated_recovery_codes_replace_the_old_ones,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/RegenerateRecoveryCodes",
        promise: "recent authentication, or current_password (a wrong one is INVALID_CREDENTIALS)",
        test: recent_authentication_rpcs_need_a_fresh_login_or_the_current_password,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/RegenerateRecoveryCodes",
        promise: "TOTP_NOT_ENABLED without 2FA; a wrong code is INVALID_CREDENTIALS, then LOGIN_BACKOFF; records RECOVERY_CODES_REGENERATED",
        test: disabling_and_regenerating_refuse_wrong_codes_and_disabling_deletes_the_secret,
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
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/GetSecurityOverview",
        promise: "counts active sessions, open tickets, disputed events; shows contact details",
        test: the_overview_counts_sessions_open_tickets_and_disputes,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/GetSecurityOverview",
        promise: "read-only",
        test: account_status_counts_sessions_and_failures_and_reads_change_nothing,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/GetSecurityOverview",
        promise: "explanations are in the account's locale",
        test: a_french_account_reads_its_journal_and_advice_in_french,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.RecommendedActionKind",
        promise: "VERIFY_CONTACT_DETAILS when contact details changed recently or await confirmation",
        test: the_overview_asks_to_check_contact_details_after_a_change_or_while_an_email_change_waits,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.Suspension",
        promise: "the note is shown to staff only; the customer sees the reason",
        test: the_customer_never_reads_the_staff_note_of_a_suspension,
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
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/ListSecurityEvents",
        promise: "newest first; filters by kinds, start_time (inclusive), end_time (exclusive), only_unacknowledged",
        test: the_journal_is_newest_first_filters_and_acknowledges_all_or_nothing,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/ListSecurityEvents",
        promise: "summaries are in the account's locale",
        test: a_french_account_reads_its_journal_and_advice_in_french,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/ListSecurityEvents",
        promise: "details never carry a staff note (only GetAccountReview shows it)",
        test: support::customers_never_read_a_staff_note_an_audit_reason_or_a_secret,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/ListSecurityEvents",
        promise: "client_address and user_agent are empty when staff or a service acted (GetAccountReview shows them)",
        test: support::customers_never_read_a_staff_note_an_audit_reason_or_a_secret,
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
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/AcknowledgeSecurityEvents",
        promise: "idempotent; newly_acknowledged counts what changed; all or nothing with NOT_FOUND",
        test: the_journal_is_newest_first_filters_and_acknowledges_all_or_nothing,
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
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/DisputeSecurityEvent",
        promise: "marks the event disputed, suspends with CUSTOMER_REPORTED, revokes the caller's session too",
        test: a_dispute_marks_the_event_and_links_it_to_the_ticket_and_its_comment,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/DisputeSecurityEvent",
        promise: "the comment is the ticket's first message; EVENT_DISPUTED links event and ticket",
        test: a_dispute_marks_the_event_and_links_it_to_the_ticket_and_its_comment,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/DisputeSecurityEvent",
        promise: "a kind outside information_centre.suspend_on_dispute only ends the other sessions",
        test: a_dispute_marks_the_event_and_links_it_to_the_ticket_and_its_comment,
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
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/ReportUnauthorizedChange",
        promise: "does not revert the change; records UNAUTHORIZED_CHANGE_REPORTED; opens a high-priority ticket",
        test: a_report_from_a_notice_link_does_not_revert_the_change,
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
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/RecordActivity",
        promise: "idempotent per calling credential: another service's same ID is a new event with its name as actor",
        test: activity_is_idempotent_per_credential_and_bounded_in_the_future,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/RecordActivity",
        promise: "occurred_at unset means now; more than 5 minutes ahead is INVALID_ARGUMENT; details reference and items_summary",
        test: activity_is_idempotent_per_credential_and_bounded_in_the_future,
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
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/GetContactDetails",
        promise: "read-only",
        test: account_status_counts_sessions_and_failures_and_reads_change_nothing,
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
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/UpdateContactDetails",
        promise: "phone and postal address apply at once and record CONTACT_DETAILS_CHANGED; an e-mail records CONTACT_EMAIL_CHANGE_REQUESTED",
        test: contact_changes_are_journaled_newest_first_and_a_confirmation_link_expires,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/UpdateContactDetails",
        promise: "a wrong current_password is INVALID_CREDENTIALS",
        test: recent_authentication_rpcs_need_a_fresh_login_or_the_current_password,
    },
    // ConfirmEmailChange
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/ConfirmEmailChange",
        promise: "applies the change; a used token is TOKEN_INVALID",
        test: centre::an_e_mail_change_waits_for_the_new_address_and_tells_the_old_one,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/ConfirmEmailChange",
        promise: "an expired link is FAILED_PRECONDITION / TOKEN_EXPIRED",
        test: contact_changes_are_journaled_newest_first_and_a_confirmation_link_expires,
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
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/ListContactChanges",
        promise: "applied changes only, newest first, each with its event ID",
        test: contact_changes_are_journaled_newest_first_and_a_confirmation_link_expires,
    },
    // Passkeys
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/BeginPasskeyRegistration",
        promise: "answers creation options and a single-use ceremony token; the passkey added from them opens the account",
        test: passkeys::a_passkey_is_registered_then_answers_the_login_challenge_and_signs_in_alone,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/BeginPasskeyRegistration",
        promise: "needs a recent login or the current password; at 10 passkeys INVALID_STATE_TRANSITION",
        test: passkeys::registration_needs_a_recent_login_and_refuses_a_credential_twice_or_an_eleventh,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/FinishPasskeyRegistration",
        promise: "records PASSKEY_ADDED, e-mails the customer, gives 10 recovery codes to a first second factor",
        test: passkeys::a_passkey_is_registered_then_answers_the_login_challenge_and_signs_in_alone,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/FinishPasskeyRegistration",
        promise: "another origin is INVALID_CREDENTIALS",
        test: passkeys::another_origin_or_relying_party_is_refused,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/FinishPasskeyRegistration",
        promise: "another account's ceremony is TOKEN_INVALID",
        test: passkeys::a_ceremony_belongs_to_the_account_that_began_it,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/FinishPasskeyRegistration",
        promise: "a credential registered already is ALREADY_EXISTS",
        test: passkeys::registration_needs_a_recent_login_and_refuses_a_credential_twice_or_an_eleventh,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/FinishPasskeyRegistration",
        promise: "unreadable credential_json or a bad name is INVALID_ARGUMENT naming the field",
        test: passkeys::bad_passkey_input_names_the_field,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/ListPasskeys",
        promise: "lists the caller's passkeys with their last use",
        test: passkeys::a_passkey_is_registered_then_answers_the_login_challenge_and_signs_in_alone,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/RenamePasskey",
        promise: "renames the caller's passkey; another account's is NOT_FOUND",
        test: passkeys::a_removed_passkey_opens_nothing_and_the_customer_is_told,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/RemovePasskey",
        promise: "records PASSKEY_REMOVED, e-mails the customer, the passkey opens nothing; the last factor takes the recovery codes with it",
        test: passkeys::a_removed_passkey_opens_nothing_and_the_customer_is_told,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/RemovePasskey",
        promise: "needs a recent login or the current password",
        test: passkeys::registration_needs_a_recent_login_and_refuses_a_credential_twice_or_an_eleventh,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/BeginPasskeyLogin",
        promise: "answers discoverable request options and a single-use ceremony token",
        test: passkeys::a_passkey_is_registered_then_answers_the_login_challenge_and_signs_in_alone,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/FinishPasskeyLogin",
        promise: "opens a session with second_factor_used from a passkey alone",
        test: passkeys::a_passkey_is_registered_then_answers_the_login_challenge_and_signs_in_alone,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/FinishPasskeyLogin",
        promise: "a ceremony answers once, used up even by a failure; a replayed assertion is refused",
        test: passkeys::replayed_assertions_and_ceremonies_are_refused,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/FinishPasskeyLogin",
        promise: "of concurrent answers to one ceremony exactly one opens a session",
        test: passkeys::concurrent_answers_to_one_ceremony_open_one_session,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/FinishPasskeyLogin",
        promise: "another origin or relying party, or no user verification, is INVALID_CREDENTIALS",
        test: passkeys::another_origin_or_relying_party_is_refused,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/FinishPasskeyLogin",
        promise: "a counter that goes back is refused and recorded as PASSKEY_CLONE_SUSPECTED",
        test: passkeys::a_counter_that_goes_back_is_refused_and_recorded,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/FinishPasskeyLogin",
        promise: "refused as PASSWORD_SUSPENDED while the password is suspended",
        test: passkeys::a_suspended_password_blocks_passwordless_sign_in_and_the_reset_needs_the_passkey,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/FinishPasskeyLogin",
        promise: "an unknown passkey and a bad signature answer the same bytes",
        test: passkeys::passwordless_refusals_do_not_tell_whether_a_passkey_exists,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/FinishPasskeyLogin",
        promise: "an ended ceremony is TOKEN_EXPIRED",
        test: passkeys::an_ended_ceremony_is_token_expired_and_a_reset_without_passkey_has_no_options,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/GetResetPasskeyOptions",
        promise: "answers options bound to the link; CompletePasswordReset takes the assertion",
        test: passkeys::a_suspended_password_blocks_passwordless_sign_in_and_the_reset_needs_the_passkey,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/GetResetPasskeyOptions",
        promise: "an account without passkey is INVALID_STATE_TRANSITION, a bad token TOKEN_INVALID",
        test: passkeys::an_ended_ceremony_is_token_expired_and_a_reset_without_passkey_has_no_options,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/VerifyLoginChallenge",
        promise: "a passkey assertion answers the challenge once; its replay is TOKEN_INVALID",
        test: passkeys::a_passkey_is_registered_then_answers_the_login_challenge_and_signs_in_alone,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/CompletePasswordReset",
        promise: "an account with a passkey needs it (SECOND_FACTOR_REQUIRED without; a stray assertion INVALID_CREDENTIALS)",
        test: passkeys::a_suspended_password_blocks_passwordless_sign_in_and_the_reset_needs_the_passkey,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/GetSecurityOverview",
        promise: "recommends a passkey after a suspension, and counts the passkeys",
        test: passkeys::after_a_suspension_the_overview_recommends_a_passkey,
    },
    Promise {
        rpc: "gardien.support.v1.SupportService/ResetTotp",
        promise: "on an account with passkeys, the delayed reset removes them (PASSKEY_REMOVED) and a passkey sign-in meanwhile cancels it",
        test: passkeys::a_support_factor_reset_removes_the_passkeys_after_its_delay,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.ErrorReason",
        promise: "every error carries ErrorInfo with domain \"gardien\" and the reason without its prefix",
        test: a_french_account_reads_its_journal_and_advice_in_french,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.PasswordState",
        promise: "UNSET: Login answers INVALID_CREDENTIALS; a reset link sets the password",
        test: an_account_without_a_password_gets_one_by_reset_and_creation_sends_no_mail,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.Session",
        promise: "idle expiry 1 h after last use by default",
        test: sessions::an_idle_session_expires_after_the_idle_timeout,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.Session",
        promise: "absolute expiry 12 h after login by default",
        test: sessions::an_active_session_still_ends_at_its_absolute_lifetime,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.SecurityEvent",
        promise: "summary in the account's locale",
        test: a_french_account_reads_its_journal_and_advice_in_french,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.ContactChange",
        promise: "a postal address reads \"line1, line2, postal_code city, country_code\", empty parts omitted",
        test: a_postal_address_change_reads_as_the_proto_renders_it,
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
        rpc: "gardien.support.v1.SupportService",
        promise: "a customer never sees an unverified ticket about their account",
        test: recovery_tickets_are_high_priority_hidden_from_the_customer_and_reviews_cite_tickets,
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
        rpc: "gardien.support.v1.SupportService/CreateTicket",
        promise: "a ticket outside SECURITY_VERIFICATION is NORMAL priority",
        test: ticket_statuses_move_as_the_proto_says,
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
        rpc: "gardien.support.v1.SupportService/CreateRecoveryTicket",
        promise: "the ticket is unverified and high priority",
        test: recovery_tickets_are_high_priority_hidden_from_the_customer_and_reviews_cite_tickets,
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
        rpc: "gardien.support.v1.SupportService/GetTicket",
        promise: "messages oldest first",
        test: ticket_lists_are_ordered_and_filtered_as_documented,
    },
    Promise {
        rpc: "gardien.support.v1.SupportService/GetTicket",
        promise: "an unverified ticket is NOT_FOUND to the account's customer",
        test: recovery_tickets_are_high_priority_hidden_from_the_customer_and_reviews_cite_tickets,
    },
    Promise {
        rpc: "gardien.support.v1.SupportService/ListTickets",
        promise: "lists the caller's tickets only",
        test: support::a_ticket_links_own_events_and_a_retry_returns_the_same_ticket,
    },
    Promise {
        rpc: "gardien.support.v1.SupportService/ListTickets",
        promise: "newest first",
        test: ticket_lists_are_ordered_and_filtered_as_documented,
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
        rpc: "gardien.support.v1.SupportService/AddTicketMessage",
        promise: "a customer message moves PENDING_CUSTOMER or RESOLVED to PENDING_AGENT; an internal note changes no status",
        test: ticket_statuses_move_as_the_proto_says,
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
        rpc: "gardien.support.v1.SupportService/CloseTicket",
        promise: "idempotent: closing a CLOSED ticket succeeds",
        test: ticket_statuses_move_as_the_proto_says,
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
        rpc: "gardien.support.v1.SupportService/ListTicketQueue",
        promise: "oldest first; filters by status, assignee, reference",
        test: ticket_lists_are_ordered_and_filtered_as_documented,
    },
    Promise {
        rpc: "gardien.support.v1.ListTicketQueueRequest",
        promise: "no statuses means all but RESOLVED and CLOSED",
        test: the_queue_without_statuses_leaves_out_resolved_and_closed_tickets,
    },
    Promise {
        rpc: "gardien.support.v1.ListTicketQueueRequest",
        promise: "unassigned_only together with assignee is INVALID_ARGUMENT",
        test: the_queue_refuses_unassigned_only_with_an_assignee,
    },
    Promise {
        rpc: "gardien.support.v1.SupportService/AssignTicket",
        promise: "assigns to the calling agent by default; an unknown agent is INVALID_ARGUMENT",
        test: support::an_agent_works_the_ticket_with_notes_replies_and_status,
    },
    Promise {
        rpc: "gardien.support.v1.SupportService/AssignTicket",
        promise: "reassigning is allowed; empty assignee means the caller",
        test: ticket_lists_are_ordered_and_filtered_as_documented,
    },
    Promise {
        rpc: "gardien.support.v1.SupportService/AssignTicket",
        promise: "NOT_FOUND; a CLOSED ticket is INVALID_STATE_TRANSITION",
        test: ticket_statuses_move_as_the_proto_says,
    },
    Promise {
        rpc: "gardien.support.v1.SupportService/SetTicketStatus",
        promise: "sets the status; to OPEN or from CLOSED is INVALID_STATE_TRANSITION; a resolution is e-mailed",
        test: support::an_agent_works_the_ticket_with_notes_replies_and_status,
    },
    Promise {
        rpc: "gardien.support.v1.SupportService/SetTicketStatus",
        promise: "setting the current status is a no-op; NOT_FOUND for an unknown ticket",
        test: ticket_statuses_move_as_the_proto_says,
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
        rpc: "gardien.support.v1.SupportService/GetAccountReview",
        promise: "NOT_FOUND for an unknown account; the justifying ticket is in the event's details",
        test: recovery_tickets_are_high_priority_hidden_from_the_customer_and_reviews_cite_tickets,
    },
    Promise {
        rpc: "gardien.support.v1.SupportService/ResetTotp",
        promise: "turns 2FA off under a ticket, revokes every session, records TOTP_DISABLED; then TOTP_NOT_ENABLED",
        test: support::an_agent_resets_2fa_under_a_verified_ticket,
    },
    Promise {
        rpc: "gardien.support.v1.SupportService/ResetTotp",
        promise: "refused with IDENTITY_NOT_VERIFIED under a ticket without a recorded identity verification",
        test: attacks::an_anonymous_recovery_ticket_cannot_remove_2fa,
    },
    Promise {
        rpc: "gardien.support.v1.SupportService/ResetTotp",
        promise: "schedules the removal after the delay, e-mails the customer at once with a cancel link, 2FA keeps working meanwhile",
        test: support::a_verified_reset_is_scheduled_announced_at_once_and_2fa_keeps_working,
    },
    Promise {
        rpc: "gardien.support.v1.SupportService/ResetTotp",
        promise: "after the delay the factor is gone, sessions revoked, events name the agent",
        test: support::after_the_delay_the_factor_is_gone_and_the_journal_names_the_agent,
    },
    Promise {
        rpc: "gardien.support.v1.SupportService/ResetTotp",
        promise: "a 2FA login during the delay cancels the reset",
        test: support::a_login_with_the_second_factor_during_the_delay_stops_the_reset,
    },
    Promise {
        rpc: "gardien.support.v1.SupportService/ResetTotp",
        promise: "a dispute of the FACTOR_RESET_REQUESTED event cancels it (FACTOR_RESET_CANCELLED, via dispute)",
        test: support::disputing_the_scheduled_reset_in_the_information_centre_stops_it,
    },
    Promise {
        rpc: "gardien.support.v1.SupportService/ResetTotp",
        promise: "ticket messages in the account's language, never the audit reason",
        test: support::factor_reset_ticket_messages_speak_the_account_language_without_the_audit_reason,
    },
    Promise {
        rpc: "gardien.support.v1.SupportService/VerifyTicketIdentity",
        promise: "records method, agent and evidence reference; bad fields named; needs an open ticket of an account",
        test: support::verify_ticket_identity_names_its_bad_fields_and_needs_an_open_ticket_of_an_account,
    },
    Promise {
        rpc: "gardien.support.v1.SupportService/CancelFactorReset",
        promise: "the e-mailed link cancels the pending reset, once; a used link is TOKEN_INVALID",
        test: support::the_cancel_link_stops_the_reset_and_works_once,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/SuspendPassword",
        promise: "a session ended by the suspension answers SESSION_REVOKED with cause SUSPENSION until its lifetime ends",
        test: sessions::a_session_ended_by_a_suspension_says_so_until_its_lifetime_is_over,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/CompletePasswordReset",
        promise: "old sessions answer SESSION_REVOKED (PASSWORD_RESET) and a SESSION_REVOKED event lists them",
        test: sessions::a_password_reset_tells_every_old_session_and_records_them,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/ChangePassword",
        promise: "other sessions answer SESSION_REVOKED (PASSWORD_CHANGE) and a SESSION_REVOKED event lists them",
        test: sessions::a_password_change_tells_the_other_sessions_and_records_them,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/DisableTotp",
        promise: "other sessions answer SESSION_REVOKED (TOTP_DISABLED) and a SESSION_REVOKED event lists them",
        test: sessions::turning_2fa_off_tells_the_other_sessions_and_records_them,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/DisputeSecurityEvent",
        promise: "sessions ended by a dispute answer SESSION_REVOKED (DISPUTE) and are recorded",
        test: sessions::a_dispute_tells_the_sessions_it_ended_and_records_them,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/DisputeSecurityEvent",
        promise: "a dispute that suspends ends every session as a suspension",
        test: sessions::a_dispute_that_suspends_ends_every_session_as_a_suspension,
    },
    Promise {
        rpc: "gardien.support.v1.SupportService/ResetTotp",
        promise: "sessions ended by the completed reset answer SESSION_REVOKED (SUPPORT_FACTOR_RESET), recorded with the agent",
        test: sessions::a_support_2fa_reset_tells_the_sessions_and_records_them,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/Logout",
        promise: "a logged-out token answers SESSION_REVOKED (LOGOUT); anonymous RPCs still treat it as anonymous",
        test: sessions::revoke_session_and_logout_say_so_and_a_stale_token_stays_anonymous_where_allowed,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/IntrospectSession",
        promise: "unknown and expired tokens keep one generic answer",
        test: sessions::unknown_and_expired_tokens_keep_the_same_generic_answer,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/SuspendPassword",
        promise: "the suspension e-mail is worded for its reason, in both languages, never with the staff note",
        test: centre::each_suspension_reason_has_its_own_wording_in_both_languages,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/ReportUnauthorizedChange",
        promise: "a customer's own report is not told as a suspected compromise",
        test: centre::a_customer_report_is_not_told_as_a_suspected_compromise,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/Login",
        promise: "PASSWORD_SUSPENDED names the suspension reason in metadata, never the note",
        test: centre::a_suspended_login_names_the_reason_and_never_the_note,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/UpdateContactDetails",
        promise: "a phone change is told to the contact e-mail with a report link",
        test: centre::a_phone_change_is_told_to_the_contact_e_mail,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/UpdateContactDetails",
        promise: "a postal address change is told to the contact e-mail with a report link",
        test: centre::a_postal_address_change_is_told_to_the_contact_e_mail,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/ConfirmEmailChange",
        promise: "the old address is told, with a working single-use report link",
        test: centre::a_confirmed_e_mail_change_tells_the_old_address_with_a_working_report_link,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/ConfirmEmailChange",
        promise: "reset, report and reminder links sent to the old address stop working",
        test: attacks::reset_link_mailed_to_the_old_address_outlives_the_e_mail_change,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/RequestPasswordReset",
        promise: "the mailed link is never stored in clear in the database files",
        test: at_rest::mailed_links_cannot_be_carved_from_the_database_files,
    },
    Promise {
        rpc: "gardien.accountsecurity.v1.AccountSecurityService/ReportUnauthorizedChange",
        promise: "a reported e-mail change gives the replaced address back; what follows reaches it, not the disowned one",
        test: attacks::a_reported_e_mail_change_gives_the_address_back_to_the_reporter,
    },

];

/// Full names of every service, RPC ("Service/Method") and type of the gardien packages.
fn contract_names() -> (Vec<String>, BTreeSet<String>) {
    let set = prost_types::FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).unwrap();
    let mut rpcs = Vec::new();
    let mut names = BTreeSet::new();
    for file in set
        .file
        .iter()
        .filter(|f| f.package().starts_with("gardien."))
    {
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
    assert!(
        missing.is_empty(),
        "RPCs without a promise row: {missing:?}"
    );
    let unknown: Vec<_> = PROMISES
        .iter()
        .filter(|row| !names.contains(row.rpc))
        .map(|row| row.rpc)
        .collect();
    assert!(
        unknown.is_empty(),
        "rows naming nothing in the contract: {unknown:?}"
    );
    for row in PROMISES {
        assert!(
            !row.promise.trim().is_empty(),
            "a row of {} says nothing",
            row.rpc
        );
    }
    let tests: BTreeSet<usize> = PROMISES.iter().map(|row| row.test as usize).collect();
    eprintln!("{} promises held by {} tests", PROMISES.len(), tests.len());
}

// ---------------------------------------------------------------------------
// Tests for promises no other test held.
// ---------------------------------------------------------------------------

/// The leading comment of every RPC of the gardien services, by full name.
fn rpc_comments() -> Vec<(String, String)> {
    let set = prost_types::FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).unwrap();
    let mut comments = Vec::new();
    for file in set
        .file
        .iter()
        .filter(|f| f.package().starts_with("gardien."))
    {
        let locations = file
            .source_code_info
            .as_ref()
            .map(|info| info.location.as_slice())
            .unwrap_or_default();
        for (s, service) in file.service.iter().enumerate() {
            for (m, method) in service.method.iter().enumerate() {
                // Path of a method: service (6), its index, method (2), its index.
                let path = [6, s as i32, 2, m as i32];
                let comment = locations
                    .iter()
                    .find(|l| l.path == path)
                    .map(|l| {
                        l.leading_comments()
                            .split_whitespace()
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .unwrap_or_default();
                let name = format!("{}.{}/{}", file.package(), service.name(), method.name());
                comments.push((name, comment));
            }
        }
    }
    comments
}

/// The roles a comment names after "Role:" or "Roles:", up to the first
/// full stop outside parentheses; other words there ("recent
/// authentication", "strictly rate limited") are not roles.
fn documented_roles(comment: &str) -> BTreeSet<&'static str> {
    let start = ["Role: ", "Roles: "]
        .iter()
        .filter_map(|label| comment.find(label).map(|at| at + label.len()))
        .min();
    let Some(start) = start else {
        return BTreeSet::new();
    };
    let mut depth = 0;
    let mut clause = String::new();
    for c in comment[start..].chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            '.' if depth == 0 => break,
            _ if depth == 0 => clause.push(c),
            _ => {}
        }
    }
    clause
        .split(',')
        .filter_map(|part| match part.trim() {
            "customer session" => Some("customer"),
            "anonymous" => Some("anonymous"),
            "service" => Some("service"),
            "security" => Some("security"),
            "agent" => Some("agent"),
            _ => None,
        })
        .collect()
}

/// Sends an empty (all-default) request to `path` with an optional bearer.
async fn call_empty(channel: &Channel, path: &str, token: Option<&str>) -> Result<(), Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.unwrap();
    let mut request = tonic::Request::new(Vec::new());
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    let path = http::uri::PathAndQuery::try_from(path).unwrap();
    grpc.unary(request, path, crate::hostile::RawCodec)
        .await
        .map(|_| ())
}

/// "Role:" in each RPC's comment is the access policy, and each role the
/// comment leaves out is refused: PERMISSION_DENIED for a credential or a
/// session, UNAUTHENTICATED without one.
#[tokio::test]
pub async fn every_rpc_admits_exactly_the_roles_its_comment_names() {
    let app = spawn_app().await;
    app.create_account("roles", "roles@example.fr", STRONG_PASSWORD)
        .await;
    let channel = app.channel().await;
    let mut failures = Vec::new();
    for (rpc, comment) in rpc_comments() {
        let path = format!("/{rpc}");
        let documented = documented_roles(&comment);
        let policy: BTreeSet<&str> = allowed_roles(&path)
            .unwrap_or_default()
            .iter()
            .map(|role| role.as_str())
            .collect();
        if documented.is_empty() || documented != policy {
            failures.push(format!(
                "{rpc}: the comment names {documented:?}, the policy {policy:?}"
            ));
            continue;
        }
        for role in ["anonymous", "customer", "service", "security", "agent"] {
            let token = match role {
                "anonymous" => None,
                // A fresh session each time: the call may be Logout.
                "customer" => Some(
                    app.login("roles", STRONG_PASSWORD)
                        .await
                        .unwrap()
                        .session_token,
                ),
                "service" => Some(app.service_token.clone()),
                "security" => Some(app.security_token.clone()),
                _ => Some(app.agent_token.clone()),
            };
            let answer = call_empty(&channel, &path, token.as_deref()).await;
            let refused_as = match &answer {
                Err(s)
                    if s.code() == Code::PermissionDenied && reason(s) == "PERMISSION_DENIED" =>
                {
                    Some(Code::PermissionDenied)
                }
                Err(s) if s.code() == Code::Unauthenticated && reason(s) == "UNAUTHENTICATED" => {
                    Some(Code::Unauthenticated)
                }
                _ => None,
            };
            let expected = if policy.contains(role) || policy.contains("anonymous") {
                None
            } else if role == "anonymous" {
                Some(Code::Unauthenticated)
            } else {
                Some(Code::PermissionDenied)
            };
            if refused_as != expected {
                failures.push(format!(
                    "{rpc} as {role}: expected {expected:?}, got {answer:?}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The RPCs marked "recent authentication" refuse a stale session without
/// current_password with RECENT_AUTHENTICATION_REQUIRED, a wrong one with
/// INVALID_CREDENTIALS (the session stays valid), and accept the right one.
#[tokio::test]
pub async fn recent_authentication_rpcs_need_a_fresh_login_or_the_current_password() {
    let marked: BTreeSet<String> = rpc_comments()
        .into_iter()
        .filter(|(_, comment)| comment.contains("recent authentication"))
        .map(|(rpc, _)| rpc.rsplit('/').next().unwrap().to_string())
        .collect();
    let checked = BTreeSet::from(
        [
            "BeginPasskeyRegistration",
            "BeginTotpEnrollment",
            "DisableTotp",
            "RegenerateRecoveryCodes",
            "RemovePasskey",
            "RenamePasskey",
            "UpdateContactDetails",
        ]
        .map(String::from),
    );
    assert_eq!(
        marked, checked,
        "the RPCs marked \"recent authentication\" changed: check them here"
    );
    let app = spawn_app_with(|c| c.login.free_failures = 50).await;
    app.create_account("plain", "plain@example.fr", STRONG_PASSWORD)
        .await;
    app.create_account("guarded", "guarded@example.fr", STRONG_PASSWORD)
        .await;
    let (secret, _, _) = app.enable_totp("guarded", STRONG_PASSWORD).await;
    let stale = app.ctx.config.totp.recent_auth_secs + 60;
    let mut failures = Vec::new();
    // Regenerating before disabling, while 2FA is still on.
    for rpc in [
        "BeginTotpEnrollment",
        "RegenerateRecoveryCodes",
        "DisableTotp",
        "UpdateContactDetails",
    ] {
        let token = if rpc == "DisableTotp" || rpc == "RegenerateRecoveryCodes" {
            app.clock.advance(STEP);
            let challenge = app
                .login_challenge("guarded", STRONG_PASSWORD)
                .await
                .unwrap();
            let code = totp_code(&secret, app.clock_now());
            app.verify_totp(&challenge, &code)
                .await
                .unwrap()
                .session_token
        } else {
            app.login("plain", STRONG_PASSWORD)
                .await
                .unwrap()
                .session_token
        };
        app.clock.advance(Duration::from_secs(stale));
        let call = |password: &str| {
            let (app, token, secret) = (&app, token.clone(), secret.clone());
            let password = password.to_string();
            let rpc = rpc.to_string();
            async move {
                let mut client = app.client().await;
                match rpc.as_str() {
                    "BeginTotpEnrollment" => client
                        .begin_totp_enrollment(authed(
                            &token,
                            pb::BeginTotpEnrollmentRequest {
                                current_password: password,
                            },
                        ))
                        .await
                        .map(|_| ()),
                    "DisableTotp" => {
                        app.clock.advance(STEP);
                        client
                            .disable_totp(authed(
                                &token,
                                pb::DisableTotpRequest {
                                    current_password: password,
                                    code: Some(pb::disable_totp_request::Code::TotpCode(
                                        totp_code(&secret, app.clock_now()),
                                    )),
                                },
                            ))
                            .await
                            .map(|_| ())
                    }
                    "RegenerateRecoveryCodes" => {
                        app.clock.advance(STEP);
                        client
                            .regenerate_recovery_codes(authed(
                                &token,
                                pb::RegenerateRecoveryCodesRequest {
                                    current_password: password,
                                    totp_code: totp_code(&secret, app.clock_now()),
                                },
                            ))
                            .await
                            .map(|_| ())
                    }
                    _ => client
                        .update_contact_details(authed(
                            &token,
                            pb::UpdateContactDetailsRequest {
                                phone: "+33612345678".into(),
                                update_mask: Some(prost_types::FieldMask {
                                    paths: vec!["phone".into()],
                                }),
                                current_password: password,
                                ..Default::default()
                            },
                        ))
                        .await
                        .map(|_| ()),
                }
            }
        };
        match call("").await {
            // DisableTotp always needs the password.
            Err(s) if rpc == "DisableTotp" && bad_fields(&s) == ["current_password"] => {}
            Err(s)
                if s.code() == Code::FailedPrecondition
                    && reason(&s) == "RECENT_AUTHENTICATION_REQUIRED" => {}
            other => failures.push(format!("{rpc} without a password: {other:?}")),
        }
        match call("not the password at all").await {
            Err(s) if s.code() == Code::Unauthenticated && reason(&s) == "INVALID_CREDENTIALS" => {}
            other => failures.push(format!("{rpc} with a wrong password: {other:?}")),
        }
        if let Err(status) = list_sessions(&app, &token).await {
            failures.push(format!(
                "{rpc}: a wrong current_password ended the session: {status:?}"
            ));
        }
        if let Err(status) = call(STRONG_PASSWORD).await {
            failures.push(format!("{rpc} with the password: {status:?}"));
        }
    }
    // The passkey RPCs, on an account with a passkey; each session is a
    // fresh passkey sign-in, then grows old.
    app.create_account("keyed", "keyed@example.fr", STRONG_PASSWORD)
        .await;
    let first = app
        .login("keyed", STRONG_PASSWORD)
        .await
        .unwrap()
        .session_token;
    let (mut passkey, finished) = passkeys::register(&app, &first, "Laptop").await;
    let passkey_id = finished.unwrap().passkey.unwrap().passkey_id;
    for rpc in ["BeginPasskeyRegistration", "RenamePasskey", "RemovePasskey"] {
        let token = passkeys::passwordless(&app, &mut passkey)
            .await
            .unwrap()
            .session_token;
        app.clock.advance(Duration::from_secs(stale));
        let call = |password: &str| {
            let (app, token, passkey_id) = (&app, token.clone(), passkey_id.clone());
            let (password, rpc) = (password.to_string(), rpc.to_string());
            async move {
                let mut client = app.client().await;
                match rpc.as_str() {
                    "BeginPasskeyRegistration" => client
                        .begin_passkey_registration(authed(
                            &token,
                            pb::BeginPasskeyRegistrationRequest {
                                current_password: password,
                            },
                        ))
                        .await
                        .map(|_| ()),
                    "RenamePasskey" => client
                        .rename_passkey(authed(
                            &token,
                            pb::RenamePasskeyRequest {
                                passkey_id,
                                name: "Renamed".into(),
                                current_password: password,
                            },
                        ))
                        .await
                        .map(|_| ()),
                    _ => client
                        .remove_passkey(authed(
                            &token,
                            pb::RemovePasskeyRequest {
                                passkey_id,
                                current_password: password,
                            },
                        ))
                        .await
                        .map(|_| ()),
                }
            }
        };
        match call("").await {
            Err(s)
                if s.code() == Code::FailedPrecondition
                    && reason(&s) == "RECENT_AUTHENTICATION_REQUIRED" => {}
            other => failures.push(format!("{rpc} without a password: {other:?}")),
        }
        match call("not the password at all").await {
            Err(s) if s.code() == Code::Unauthenticated && reason(&s) == "INVALID_CREDENTIALS" => {}
            other => failures.push(format!("{rpc} with a wrong password: {other:?}")),
        }
        if let Err(status) = list_sessions(&app, &token).await {
            failures.push(format!(
                "{rpc}: a wrong current_password ended the session: {status:?}"
            ));
        }
        if let Err(status) = call(STRONG_PASSWORD).await {
            failures.push(format!("{rpc} with the password: {status:?}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

const STEP: Duration = Duration::from_secs(30);

async fn list_sessions(app: &TestApp, token: &str) -> Result<Vec<pb::Session>, Status> {
    app.client()
        .await
        .list_sessions(authed(token, pb::ListSessionsRequest::default()))
        .await
        .map(|r| r.into_inner().sessions)
}

fn activity(account_id: &str, service_event_id: &str) -> pb::RecordActivityRequest {
    pb::RecordActivityRequest {
        account_id: account_id.into(),
        service_event_id: service_event_id.into(),
        kind: pb::ActivityKind::OrderPlaced.into(),
        reference: "ORD-7".into(),
        ..Default::default()
    }
}

async fn record(app: &TestApp, request: pb::RecordActivityRequest) -> pb::SecurityEvent {
    app.client()
        .await
        .record_activity(authed(&app.service_token, request))
        .await
        .unwrap()
        .into_inner()
        .event
        .unwrap()
}

/// page_size 0 means 50, above 200 means 200, the last page has no
/// next_page_token, and a bad page_token is INVALID_ARGUMENT on every paged RPC.
#[tokio::test]
pub async fn paging_defaults_to_fifty_caps_at_two_hundred_and_refuses_a_bad_token() {
    let app = spawn_app().await;
    let id = app
        .create_account("pager", "pager@example.fr", STRONG_PASSWORD)
        .await;
    for i in 0..210 {
        record(&app, activity(&id, &format!("bulk-{i}"))).await;
    }
    let token = app
        .login("pager", STRONG_PASSWORD)
        .await
        .unwrap()
        .session_token;
    let page = |page_size: u32, page_token: String| {
        let request = authed(
            &token,
            pb::ListSecurityEventsRequest {
                page_size,
                page_token,
                ..Default::default()
            },
        );
        let app = &app;
        async move {
            app.client()
                .await
                .list_security_events(request)
                .await
                .map(|r| r.into_inner())
        }
    };
    let default = page(0, String::new()).await.unwrap();
    assert_eq!(default.events.len(), 50);
    assert!(!default.next_page_token.is_empty());
    let capped = page(1000, String::new()).await.unwrap();
    assert_eq!(capped.events.len(), 200);
    let last = page(200, capped.next_page_token).await.unwrap();
    assert!(!last.events.is_empty() && last.events.len() < 200);
    assert!(last.next_page_token.is_empty());

    let bad = "not a page token!".to_string();
    let ticket = app
        .support()
        .await
        .create_ticket(authed(
            &token,
            spb::CreateTicketRequest {
                client_request_id: "paging".into(),
                category: spb::TicketCategory::Other.into(),
                subject: "Paging".into(),
                body: "Paging".into(),
                linked_event_ids: vec![],
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .ticket
        .unwrap();
    let mut client = app.client().await;
    let mut support = app.support().await;
    let answers = [
        ("ListSecurityEvents", page(0, bad.clone()).await.map(|_| ())),
        (
            "ListSessions",
            client
                .list_sessions(authed(
                    &token,
                    pb::ListSessionsRequest {
                        page_size: 0,
                        page_token: bad.clone(),
                    },
                ))
                .await
                .map(|_| ()),
        ),
        (
            "ListContactChanges",
            client
                .list_contact_changes(authed(
                    &token,
                    pb::ListContactChangesRequest {
                        page_size: 0,
                        page_token: bad.clone(),
                    },
                ))
                .await
                .map(|_| ()),
        ),
        (
            "ListTickets",
            support
                .list_tickets(authed(
                    &token,
                    spb::ListTicketsRequest {
                        page_token: bad.clone(),
                        ..Default::default()
                    },
                ))
                .await
                .map(|_| ()),
        ),
        (
            "GetTicket",
            support
                .get_ticket(authed(
                    &token,
                    spb::GetTicketRequest {
                        ticket_id: ticket.ticket_id.clone(),
                        page_size: 0,
                        page_token: bad.clone(),
                    },
                ))
                .await
                .map(|_| ()),
        ),
        (
            "ListTicketQueue",
            support
                .list_ticket_queue(authed(
                    &app.agent_token,
                    spb::ListTicketQueueRequest {
                        page_token: bad.clone(),
                        ..Default::default()
                    },
                ))
                .await
                .map(|_| ()),
        ),
    ];
    for (rpc, answer) in answers {
        let status = answer.expect_err(rpc);
        assert_eq!(status.code(), Code::InvalidArgument, "{rpc}: {status:?}");
        assert_eq!(bad_fields(&status), ["page_token"], "{rpc}");
    }
}

/// An account created without a password: no e-mail at creation (with or
/// without a password), login answers as for an unknown login, and the
/// customer sets the password through a reset link.
#[tokio::test]
pub async fn an_account_without_a_password_gets_one_by_reset_and_creation_sends_no_mail() {
    let app = spawn_app().await;
    let id = app.create_account("sanspass", "sans@example.fr", "").await;
    app.create_account("avecpass", "avec@example.fr", STRONG_PASSWORD)
        .await;
    let status = app
        .client()
        .await
        .get_account_status(authed(
            &app.service_token,
            pb::GetAccountStatusRequest {
                account_id: id,
                login: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        status.account.unwrap().password_state(),
        pb::PasswordState::Unset
    );
    let unset = app.login("sanspass", STRONG_PASSWORD).await.unwrap_err();
    let unknown = app
        .login("nobody-at-all", STRONG_PASSWORD)
        .await
        .unwrap_err();
    assert_eq!(reason(&unset), "INVALID_CREDENTIALS");
    assert_eq!(
        (unset.code(), unset.message(), unset.details()),
        (unknown.code(), unknown.message(), unknown.details())
    );

    // The reset e-mails are the first e-mails either address receives.
    for login in ["sanspass", "avecpass"] {
        app.request_reset(login).await;
    }
    let token = app.reset_token_from_mail("sans@example.fr", 1).await;
    app.wait_for_mails("avec@example.fr", 1).await;
    assert_eq!(app.mails_to("sans@example.fr").len(), 1);
    assert_eq!(app.mails_to("avec@example.fr").len(), 1);
    app.complete_reset(&token, NEW_PASSWORD, None)
        .await
        .unwrap();
    app.login("sanspass", NEW_PASSWORD).await.unwrap();
}

/// ListSessions lists live sessions newest first with the user agent sent;
/// RevokeSession may end the calling session; a second
/// Logout with the same token is UNAUTHENTICATED; both are journaled.
#[tokio::test]
pub async fn sessions_are_listed_newest_first_and_the_current_one_can_be_revoked() {
    let app = spawn_app().await;
    let id = app
        .create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let first = app.login("jean", STRONG_PASSWORD).await.unwrap();
    app.clock.advance(Duration::from_secs(2));
    let mut request = tonic::Request::new(pb::LoginRequest {
        login: "jean".into(),
        password: STRONG_PASSWORD.into(),
    });
    request
        .metadata_mut()
        .insert("user-agent", "promise-agent/1.0".parse().unwrap());
    let second = match app
        .client()
        .await
        .login(request)
        .await
        .unwrap()
        .into_inner()
        .result
    {
        Some(pb::login_response::Result::Session(grant)) => grant,
        other => panic!("expected a session, got {other:?}"),
    };
    app.clock.advance(Duration::from_secs(2));
    let third = app.login("jean", STRONG_PASSWORD).await.unwrap();

    let listed = list_sessions(&app, &first.session_token).await.unwrap();
    let ids: Vec<_> = listed.iter().map(|s| s.session_id.as_str()).collect();
    assert_eq!(
        ids,
        [
            third.session_id.as_str(),
            second.session_id.as_str(),
            first.session_id.as_str()
        ]
    );
    assert!(
        listed[1].user_agent.contains("promise-agent/1.0"),
        "{:?}",
        listed[1].user_agent
    );

    let revoke = |token: String, session_id: String| {
        let app = &app;
        async move {
            app.client()
                .await
                .revoke_session(authed(&token, pb::RevokeSessionRequest { session_id }))
                .await
        }
    };
    revoke(first.session_token.clone(), second.session_id.clone())
        .await
        .unwrap();
    let listed = list_sessions(&app, &first.session_token).await.unwrap();
    assert!(listed.iter().all(|s| s.session_id != second.session_id));
    revoke(third.session_token.clone(), third.session_id.clone())
        .await
        .unwrap();
    assert_eq!(
        list_sessions(&app, &third.session_token)
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );

    let logout = || {
        let app = &app;
        let token = first.session_token.clone();
        async move {
            app.client()
                .await
                .logout(authed(&token, pb::LogoutRequest {}))
                .await
        }
    };
    logout().await.unwrap();
    let again = logout().await.unwrap_err();
    assert_eq!(again.code(), Code::Unauthenticated);
    let events = app.events_of(&id).await;
    for kind in ["logout", "session_revoked"] {
        assert!(
            events.iter().any(|e| e == kind),
            "{kind} missing from {events:?}"
        );
    }
}

/// An active introspection moves idle_expires_at forward and keeps the
/// session alive; an inactive answer (idle-expired or logged out) has every
/// other field empty.
#[tokio::test]
pub async fn introspection_extends_the_idle_expiry_and_an_inactive_answer_is_empty() {
    let app = spawn_app().await;
    app.create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let used = app.login("jean", STRONG_PASSWORD).await.unwrap();
    let idle = app.login("jean", STRONG_PASSWORD).await.unwrap();
    let introspect = |token: String| {
        let app = &app;
        async move {
            app.client()
                .await
                .introspect_session(authed(
                    &app.service_token,
                    pb::IntrospectSessionRequest {
                        session_token: token,
                    },
                ))
                .await
                .unwrap()
                .into_inner()
        }
    };
    let before = introspect(used.session_token.clone()).await;
    assert!(before.active);
    assert!(before.authenticated_at.is_some() && before.expires_at.is_some());
    app.clock.advance(Duration::from_secs(50 * 60));
    let later = introspect(used.session_token.clone()).await;
    assert!(later.active);
    assert!(
        later.idle_expires_at.unwrap().seconds > before.idle_expires_at.unwrap().seconds,
        "idle_expires_at did not move"
    );
    app.clock.advance(Duration::from_secs(50 * 60));
    // 100 minutes after login, 50 after the last use: still alive.
    list_sessions(&app, &used.session_token).await.unwrap();
    assert_eq!(
        introspect(idle.session_token.clone()).await,
        pb::IntrospectSessionResponse::default(),
        "an idle-expired session answers active=false and nothing else"
    );
    app.client()
        .await
        .logout(authed(&used.session_token, pb::LogoutRequest {}))
        .await
        .unwrap();
    assert_eq!(
        introspect(used.session_token.clone()).await,
        pb::IntrospectSessionResponse {
            revocation_cause: pb::SessionRevocationCause::Logout.into(),
            ..Default::default()
        },
        "a revoked session answers active=false and its cause, nothing else"
    );
}

async fn account_status(app: &TestApp, account_id: &str) -> pb::GetAccountStatusResponse {
    app.client()
        .await
        .get_account_status(authed(
            &app.service_token,
            pb::GetAccountStatusRequest {
                account_id: account_id.into(),
                login: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
}

/// What the read-only RPCs could change: the account row, its events and
/// its contact changes.
async fn account_state(app: &TestApp, account_id: &str) -> String {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let id = uuid::Uuid::parse_str(account_id).unwrap();
    let account = gardien::entity::account::Entity::find_by_id(id)
        .one(&app.ctx.db)
        .await
        .unwrap();
    let events = gardien::entity::security_event::Entity::find()
        .filter(gardien::entity::security_event::Column::AccountId.eq(id))
        .all(&app.ctx.db)
        .await
        .unwrap();
    let changes = gardien::entity::contact_change::Entity::find()
        .filter(gardien::entity::contact_change::Column::AccountId.eq(id))
        .all(&app.ctx.db)
        .await
        .unwrap();
    format!("{account:?}\n{events:?}\n{changes:?}")
}

/// GetAccountStatus reports sessions, the last login and failures; it and
/// the customer's read-only RPCs change nothing.
#[tokio::test]
pub async fn account_status_counts_sessions_and_failures_and_reads_change_nothing() {
    let app = spawn_app().await;
    let id = app
        .create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let fresh = account_status(&app, &id).await;
    assert!(fresh.last_login_at.is_none());
    assert_eq!(fresh.active_sessions, 0);
    for _ in 0..2 {
        app.login("jean", "not the password at all")
            .await
            .unwrap_err();
    }
    let failed = account_status(&app, &id).await;
    assert_eq!(failed.consecutive_failed_logins, 2);
    let session = app.login("jean", STRONG_PASSWORD).await.unwrap();
    app.login("jean", STRONG_PASSWORD).await.unwrap();
    let logged_in = account_status(&app, &id).await;
    assert_eq!(logged_in.consecutive_failed_logins, 0);
    assert_eq!(logged_in.active_sessions, 2);
    assert!(logged_in.last_login_at.is_some());
    assert!(logged_in.login_backoff_until.is_none());

    let before = account_state(&app, &id).await;
    for token in [&app.service_token, &app.security_token, &app.agent_token] {
        app.client()
            .await
            .get_account_status(authed(
                token,
                pb::GetAccountStatusRequest {
                    account_id: String::new(),
                    login: "jean".into(),
                },
            ))
            .await
            .unwrap();
    }
    let token = &session.session_token;
    let mut client = app.client().await;
    client
        .get_security_overview(authed(token, pb::GetSecurityOverviewRequest {}))
        .await
        .unwrap();
    client
        .get_contact_details(authed(token, pb::GetContactDetailsRequest {}))
        .await
        .unwrap();
    client
        .list_security_events(authed(token, pb::ListSecurityEventsRequest::default()))
        .await
        .unwrap();
    client
        .list_contact_changes(authed(token, pb::ListContactChangesRequest::default()))
        .await
        .unwrap();
    assert_eq!(account_state(&app, &id).await, before);
}

/// SuspendPassword: NOT_FOUND, evidence of another account refused, a repeat
/// revokes nothing, the staff note reaches neither the e-mail nor the login
/// answer. LiftSuspension: NOT_FOUND, INVALID_STATE_TRANSITION without a
/// suspension, revoked sessions stay revoked, SUSPENSION_LIFTED recorded.
#[tokio::test]
pub async fn suspension_and_lift_answer_their_errors_and_keep_the_note_for_staff() {
    let app = spawn_app().await;
    let id = app
        .create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let other = app
        .create_account("marie", "marie@example.fr", STRONG_PASSWORD)
        .await;
    let marie = app.login("marie", STRONG_PASSWORD).await.unwrap();
    let marie_event = app
        .client()
        .await
        .list_security_events(authed(
            &marie.session_token,
            pb::ListSecurityEventsRequest::default(),
        ))
        .await
        .unwrap()
        .into_inner()
        .events[0]
        .event_id
        .clone();
    let note = "staff-only-note seen on paste site 7781";
    let suspend = |account_id: &str, token: &str, evidence: Vec<String>| {
        let request = authed(
            token,
            pb::SuspendPasswordRequest {
                account_id: account_id.into(),
                reason: pb::SuspensionReason::CredentialLeak.into(),
                note: note.into(),
                evidence_event_ids: evidence,
            },
        );
        let app = &app;
        async move {
            app.client()
                .await
                .suspend_password(request)
                .await
                .map(|r| r.into_inner())
        }
    };
    let unknown = uuid::Uuid::now_v7().to_string();
    let missing = suspend(&unknown, &app.security_token, vec![])
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    assert_eq!(reason(&missing), "NOT_FOUND");
    let foreign = suspend(&id, &app.security_token, vec![marie_event])
        .await
        .unwrap_err();
    assert_eq!(foreign.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&foreign), ["evidence_event_ids[0]"]);

    let session = app.login("jean", STRONG_PASSWORD).await.unwrap();
    // A service may suspend.
    let first = suspend(&id, &app.service_token, vec![]).await.unwrap();
    assert_eq!(first.sessions_revoked, 1);
    let again = suspend(&id, &app.security_token, vec![]).await.unwrap();
    assert!(again.already_suspended);
    assert_eq!(again.sessions_revoked, 0);

    let refused = app.login("jean", STRONG_PASSWORD).await.unwrap_err();
    assert_eq!(reason(&refused), "PASSWORD_SUSPENDED");
    let said = format!("{} {:?}", refused.message(), refused.details());
    assert!(
        !said.contains("7781"),
        "the staff note reached the customer: {said}"
    );
    let mails = app.wait_for_mails("jean@example.fr", 1).await;
    assert!(
        mails.iter().all(|m| !m.contains("7781")),
        "the staff note was e-mailed"
    );

    let lift = |account_id: &str| {
        let request = authed(
            &app.security_token,
            pb::LiftSuspensionRequest {
                account_id: account_id.into(),
                note: "false alarm".into(),
            },
        );
        let app = &app;
        async move {
            app.client()
                .await
                .lift_suspension(request)
                .await
                .map(|r| r.into_inner())
        }
    };
    assert_eq!(lift(&unknown).await.unwrap_err().code(), Code::NotFound);
    let not_suspended = lift(&other).await.unwrap_err();
    assert_eq!(not_suspended.code(), Code::FailedPrecondition);
    assert_eq!(reason(&not_suspended), "INVALID_STATE_TRANSITION");
    let lifted = lift(&id).await.unwrap().suspension.unwrap();
    assert!(lifted.lifted_at.is_some());
    assert_eq!(
        lifted.lifted_by.unwrap().kind(),
        pb::ActorKind::SecurityTeam
    );
    assert_eq!(
        list_sessions(&app, &session.session_token)
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated,
        "a lift brings no revoked session back"
    );
    app.login("jean", STRONG_PASSWORD).await.unwrap();
    assert!(app
        .events_of(&id)
        .await
        .contains(&"suspension_lifted".to_string()));
}

/// An e-mail shared by two accounts gets one reset link per account and one
/// login reminder naming both; a link still works at 29 minutes.
#[tokio::test]
pub async fn a_shared_e_mail_gets_a_link_per_account_and_a_reminder_naming_each_login() {
    let app = spawn_app().await;
    let anne = app
        .create_account("anne", "famille@example.fr", STRONG_PASSWORD)
        .await;
    app.create_account("paul", "famille@example.fr", STRONG_PASSWORD)
        .await;
    app.request_reset("famille@example.fr").await;
    let mails = app.wait_for_mails("famille@example.fr", 2).await;
    let tokens: BTreeSet<String> = mails.iter().map(|m| token_in(m)).collect();
    assert_eq!(tokens.len(), 2, "one distinct link per account");

    app.client()
        .await
        .recover_login(pb::RecoverLoginRequest {
            email: "famille@example.fr".into(),
        })
        .await
        .unwrap();
    let mails = app.wait_for_mails("famille@example.fr", 3).await;
    let reminder = mails
        .iter()
        .find(|m| m.contains("Subject: Your login identifier"))
        .expect("a login reminder");
    assert!(reminder.contains("  - anne") && reminder.contains("  - paul"));
    assert!(app
        .events_of(&anne)
        .await
        .contains(&"login_recovery_requested".to_string()));

    app.clock.advance(Duration::from_secs(29 * 60));
    let mut done = 0;
    for token in tokens {
        app.complete_reset(&token, NEW_PASSWORD, None)
            .await
            .unwrap();
        done += 1;
    }
    assert_eq!(done, 2);
    app.login("anne", NEW_PASSWORD).await.unwrap();
    app.login("paul", NEW_PASSWORD).await.unwrap();
}

/// A reset on a 2FA account: a wrong code is INVALID_CREDENTIALS and counts
/// towards LOGIN_BACKOFF; the link survives; a recovery code used there is
/// consumed.
#[tokio::test]
pub async fn a_reset_with_wrong_codes_is_refused_then_backed_off_and_a_recovery_code_is_consumed() {
    let app = spawn_app_with(|c| c.login.free_failures = 2).await;
    app.create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let (_, codes, _) = app.enable_totp("jean", STRONG_PASSWORD).await;
    app.request_reset("jean").await;
    let token = app.reset_token_from_mail("jean@example.fr", 2).await;
    let reset = |factor| app.complete_reset(&token, NEW_PASSWORD, Some(factor));
    use pb::complete_password_reset_request::SecondFactor;
    // Wrong codes in a burst: past the two free failures the delays double
    // (1, 2, 4 s), so a later one meets the back-off whatever the speed.
    let mut wrong_codes = 0;
    let backed_off = loop {
        let status = reset(SecondFactor::TotpCode(never_valid_code(&app)))
            .await
            .unwrap_err();
        if reason(&status) != "INVALID_CREDENTIALS" {
            break status;
        }
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
        wrong_codes += 1;
        assert!(wrong_codes <= 6, "wrong codes are never backed off");
    };
    assert!(
        wrong_codes >= 3,
        "backed off after {wrong_codes} wrong codes"
    );
    assert_eq!(backed_off.code(), Code::ResourceExhausted, "{backed_off:?}");
    assert_eq!(reason(&backed_off), "LOGIN_BACKOFF");
    app.clock.advance(Duration::from_secs(60));
    reset(SecondFactor::RecoveryCode(codes[0].clone()))
        .await
        .unwrap();
    let challenge = app.login_challenge("jean", NEW_PASSWORD).await.unwrap();
    let reused = app
        .verify_challenge(
            &challenge,
            pb::verify_login_challenge_request::Code::RecoveryCode(codes[0].clone()),
        )
        .await
        .unwrap_err();
    assert_eq!(reason(&reused), "INVALID_CREDENTIALS");
}

/// A six-digit code that is none of the last, current or next TOTP codes of
/// any secret with overwhelming likelihood: all digits the same and rotated
/// by the clock, so that a replay-check never sees it twice.
fn never_valid_code(app: &TestApp) -> String {
    let digit = (app.clock_now() / 1000 % 10).to_string();
    digit.repeat(6)
}

/// Wrong current passwords given to ChangePassword count towards the
/// login back-off, and do not end the session.
#[tokio::test]
pub async fn wrong_current_passwords_to_change_password_are_backed_off() {
    let app = spawn_app_with(|c| c.login.free_failures = 2).await;
    app.create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let session = app.login("jean", STRONG_PASSWORD).await.unwrap();
    let change = |current: &str| {
        let request = authed(
            &session.session_token,
            pb::ChangePasswordRequest {
                current_password: current.into(),
                new_password: NEW_PASSWORD.into(),
            },
        );
        let app = &app;
        async move { app.client().await.change_password(request).await }
    };
    // Past the two free failures the delays double (1, 2, 4 s), so a later
    // wrong password meets the back-off whatever the speed.
    let mut wrong = 0;
    let backed_off = loop {
        let status = change("not the password at all").await.unwrap_err();
        if reason(&status) != "INVALID_CREDENTIALS" {
            break status;
        }
        wrong += 1;
        assert!(wrong <= 6, "wrong passwords are never backed off");
    };
    assert!(wrong >= 3, "backed off after {wrong} wrong passwords");
    assert_eq!(backed_off.code(), Code::ResourceExhausted, "{backed_off:?}");
    assert_eq!(reason(&backed_off), "LOGIN_BACKOFF");
    list_sessions(&app, &session.session_token).await.unwrap();
    app.clock.advance(Duration::from_secs(60));
    change(STRONG_PASSWORD).await.unwrap();
}

/// BeginTotpEnrollment replaces a pending secret and 2FA stays off until
/// confirmed; ConfirmTotpEnrollment refuses a wrong code, answers
/// INVALID_STATE_TRANSITION without a pending enrolment, and both answer
/// TOTP_ALREADY_ENABLED once 2FA is on.
#[tokio::test]
pub async fn enrolment_replaces_a_pending_secret_and_refuses_what_the_proto_lists() {
    let app = spawn_app().await;
    app.create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let session = app.login("jean", STRONG_PASSWORD).await.unwrap();
    let token = session.session_token.clone();
    let begin = || {
        let request = authed(&token, pb::BeginTotpEnrollmentRequest::default());
        let app = &app;
        async move {
            app.client()
                .await
                .begin_totp_enrollment(request)
                .await
                .map(|r| r.into_inner())
        }
    };
    let confirm = |code: String| {
        let request = authed(&token, pb::ConfirmTotpEnrollmentRequest { totp_code: code });
        let app = &app;
        async move { app.client().await.confirm_totp_enrollment(request).await }
    };
    let nothing_pending = confirm("123456".into()).await.unwrap_err();
    assert_eq!(nothing_pending.code(), Code::FailedPrecondition);
    assert_eq!(reason(&nothing_pending), "INVALID_STATE_TRANSITION");

    let replaced = begin().await.unwrap();
    let pending = begin().await.unwrap();
    assert_ne!(replaced.secret_base32, pending.secret_base32);
    // Not on until confirmed: the password alone opens a session.
    app.login("jean", STRONG_PASSWORD).await.unwrap();
    let stale = confirm(totp_code(&replaced.secret_base32, app.clock_now()))
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::Unauthenticated);
    assert_eq!(reason(&stale), "INVALID_CREDENTIALS");
    app.clock.advance(STEP);
    confirm(totp_code(&pending.secret_base32, app.clock_now()))
        .await
        .unwrap();
    app.login_challenge("jean", STRONG_PASSWORD).await.unwrap();

    app.clock.advance(STEP);
    let twice = confirm(totp_code(&pending.secret_base32, app.clock_now()))
        .await
        .unwrap_err();
    assert_eq!(reason(&twice), "TOTP_ALREADY_ENABLED");
    let again = begin().await.unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);
    assert_eq!(reason(&again), "TOTP_ALREADY_ENABLED");
}

/// DisableTotp and RegenerateRecoveryCodes: TOTP_NOT_ENABLED without 2FA,
/// INVALID_CREDENTIALS for a wrong code, then LOGIN_BACKOFF; regeneration is
/// journaled; disabling deletes the secret and codes and is e-mailed.
#[tokio::test]
pub async fn disabling_and_regenerating_refuse_wrong_codes_and_disabling_deletes_the_secret() {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let app = spawn_app_with(|c| c.login.free_failures = 2).await;
    app.create_account("plain", "plain@example.fr", STRONG_PASSWORD)
        .await;
    let id = app
        .create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let plain = app.login("plain", STRONG_PASSWORD).await.unwrap();
    let (secret, codes, session) = app.enable_totp("jean", STRONG_PASSWORD).await;
    let disable = |token: String, code: pb::disable_totp_request::Code| {
        let request = authed(
            &token,
            pb::DisableTotpRequest {
                current_password: STRONG_PASSWORD.into(),
                code: Some(code),
            },
        );
        let app = &app;
        async move { app.client().await.disable_totp(request).await }
    };
    let regenerate = |token: String, code: String| {
        let request = authed(
            &token,
            pb::RegenerateRecoveryCodesRequest {
                current_password: String::new(),
                totp_code: code,
            },
        );
        let app = &app;
        async move { app.client().await.regenerate_recovery_codes(request).await }
    };
    use pb::disable_totp_request::Code as Factor;
    let off = disable(
        plain.session_token.clone(),
        Factor::TotpCode("123456".into()),
    )
    .await
    .unwrap_err();
    assert_eq!(
        (off.code(), reason(&off).as_str()),
        (Code::FailedPrecondition, "TOTP_NOT_ENABLED")
    );
    let off = regenerate(plain.session_token.clone(), "123456".into())
        .await
        .unwrap_err();
    assert_eq!(
        (off.code(), reason(&off).as_str()),
        (Code::FailedPrecondition, "TOTP_NOT_ENABLED")
    );

    let token = session.session_token.clone();
    let wrong = regenerate(token.clone(), never_valid_code(&app))
        .await
        .unwrap_err();
    assert_eq!(
        (wrong.code(), reason(&wrong).as_str()),
        (Code::Unauthenticated, "INVALID_CREDENTIALS")
    );
    app.clock.advance(Duration::from_secs(1));
    let wrong = disable(token.clone(), Factor::TotpCode(never_valid_code(&app)))
        .await
        .unwrap_err();
    assert_eq!(
        (wrong.code(), reason(&wrong).as_str()),
        (Code::Unauthenticated, "INVALID_CREDENTIALS")
    );
    app.clock.advance(Duration::from_secs(1));
    disable(token.clone(), Factor::TotpCode(never_valid_code(&app)))
        .await
        .unwrap_err();
    let backed_off = regenerate(token.clone(), totp_code(&secret, app.clock_now()))
        .await
        .unwrap_err();
    assert_eq!(
        (backed_off.code(), reason(&backed_off).as_str()),
        (Code::ResourceExhausted, "LOGIN_BACKOFF")
    );
    let backed_off = disable(token.clone(), Factor::RecoveryCode(codes[0].clone()))
        .await
        .unwrap_err();
    assert_eq!(reason(&backed_off), "LOGIN_BACKOFF");

    app.clock.advance(STEP * 2);
    let fresh = regenerate(token.clone(), totp_code(&secret, app.clock_now()))
        .await
        .unwrap()
        .into_inner()
        .recovery_codes;
    assert!(app
        .events_of(&id)
        .await
        .contains(&"recovery_codes_regenerated".to_string()));
    disable(token.clone(), Factor::RecoveryCode(fresh[0].clone()))
        .await
        .unwrap();
    let account_id = uuid::Uuid::parse_str(&id).unwrap();
    let account = gardien::entity::account::Entity::find_by_id(account_id)
        .one(&app.ctx.db)
        .await
        .unwrap()
        .unwrap();
    assert!(account.totp_secret.is_none());
    let left = gardien::entity::recovery_code::Entity::find()
        .filter(gardien::entity::recovery_code::Column::AccountId.eq(account_id))
        .all(&app.ctx.db)
        .await
        .unwrap();
    assert!(left.is_empty(), "{} recovery codes left", left.len());
    // Waits (bounded) for the notice among the others (2FA on, new codes, code used).
    let mut notified = false;
    for _ in 0..300 {
        let mails = app.mails_to("jean@example.fr");
        if mails
            .iter()
            .any(|m| m.contains("Subject: Two-factor authentication is off"))
        {
            notified = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(notified, "turning 2FA off was not e-mailed");
}

/// A login challenge not answered in time is FAILED_PRECONDITION /
/// TOKEN_EXPIRED, even with a valid code.
#[tokio::test]
pub async fn an_unanswered_challenge_expires() {
    let app = spawn_app().await;
    app.create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let (secret, _, _) = app.enable_totp("jean", STRONG_PASSWORD).await;
    app.clock.advance(STEP);
    let challenge = app.login_challenge("jean", STRONG_PASSWORD).await.unwrap();
    app.clock.advance(Duration::from_secs(6 * 60));
    let status = app
        .verify_totp(&challenge, &totp_code(&secret, app.clock_now()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(reason(&status), "TOKEN_EXPIRED");
}

async fn journal(
    app: &TestApp,
    token: &str,
    request: pb::ListSecurityEventsRequest,
) -> Vec<pb::SecurityEvent> {
    app.client()
        .await
        .list_security_events(authed(token, request))
        .await
        .unwrap()
        .into_inner()
        .events
}

fn ids(events: &[pb::SecurityEvent]) -> Vec<String> {
    events.iter().map(|e| e.event_id.clone()).collect()
}

/// ListSecurityEvents is newest first and filters by kind, time range
/// (start inclusive, end exclusive) and acknowledgement; acknowledging is
/// idempotent, counts what it changed, and is all or nothing.
#[tokio::test]
pub async fn the_journal_is_newest_first_filters_and_acknowledges_all_or_nothing() {
    let app = spawn_app().await;
    let id = app
        .create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let marie = app
        .create_account("marie", "marie@example.fr", STRONG_PASSWORD)
        .await;
    let foreign = record(&app, activity(&marie, "hers")).await;
    let mut recorded = Vec::new();
    for i in 0..3 {
        app.clock.advance(Duration::from_secs(60));
        recorded.push(record(&app, activity(&id, &format!("order-{i}"))).await);
    }
    let token = app
        .login("jean", STRONG_PASSWORD)
        .await
        .unwrap()
        .session_token;
    let all = journal(&app, &token, Default::default()).await;
    let stamps: Vec<_> = all.iter().map(|e| e.event_id.clone()).collect();
    let mut sorted = stamps.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(stamps, sorted, "not newest first");
    assert_eq!(all[0].kind(), pb::SecurityEventKind::LoginSucceeded);

    let orders = journal(
        &app,
        &token,
        pb::ListSecurityEventsRequest {
            kinds: vec![pb::SecurityEventKind::OrderPlaced.into()],
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        ids(&orders),
        recorded
            .iter()
            .rev()
            .map(|e| e.event_id.clone())
            .collect::<Vec<_>>()
    );
    let middle = recorded[1].occurred_at;
    let window = journal(
        &app,
        &token,
        pb::ListSecurityEventsRequest {
            kinds: vec![pb::SecurityEventKind::OrderPlaced.into()],
            start_time: middle,
            end_time: recorded[2].occurred_at,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(ids(&window), [recorded[1].event_id.clone()]);

    let acknowledge = |event_ids: Vec<String>| {
        let request = authed(&token, pb::AcknowledgeSecurityEventsRequest { event_ids });
        let app = &app;
        async move {
            app.client()
                .await
                .acknowledge_security_events(request)
                .await
                .map(|r| r.into_inner().newly_acknowledged)
        }
    };
    let two = vec![recorded[0].event_id.clone(), recorded[1].event_id.clone()];
    assert_eq!(acknowledge(two.clone()).await.unwrap(), 2);
    assert_eq!(acknowledge(two).await.unwrap(), 0, "idempotent");
    let mixed = acknowledge(vec![recorded[2].event_id.clone(), foreign.event_id])
        .await
        .unwrap_err();
    assert_eq!(mixed.code(), Code::NotFound);
    assert_eq!(reason(&mixed), "NOT_FOUND");
    let unseen = journal(
        &app,
        &token,
        pb::ListSecurityEventsRequest {
            kinds: vec![pb::SecurityEventKind::OrderPlaced.into()],
            only_unacknowledged: true,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        ids(&unseen),
        [recorded[2].event_id.clone()],
        "a refused acknowledgement changed something"
    );
}

async fn review(app: &TestApp, account_id: &str) -> spb::GetAccountReviewResponse {
    app.support()
        .await
        .get_account_review(authed(
            &app.agent_token,
            spb::GetAccountReviewRequest {
                account_id: account_id.into(),
                ticket_id: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
}

async fn agent_ticket(app: &TestApp, ticket_id: &str) -> spb::GetTicketResponse {
    app.support()
        .await
        .get_ticket(authed(
            &app.agent_token,
            spb::GetTicketRequest {
                ticket_id: ticket_id.into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
}

/// A dispute marks the event disputed, suspends with reason
/// CUSTOMER_REPORTED, puts the comment first on the ticket and records
/// EVENT_DISPUTED linking event and ticket. For a kind the server is not
/// configured to suspend on, only the other sessions end.
#[tokio::test]
pub async fn a_dispute_marks_the_event_and_links_it_to_the_ticket_and_its_comment() {
    let app = spawn_app().await;
    let id = app
        .create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let order = record(&app, activity(&id, "disputed")).await;
    let key = record(
        &app,
        pb::RecordActivityRequest {
            kind: pb::ActivityKind::ApiKeyCreated.into(),
            ..activity(&id, "api-key")
        },
    )
    .await;
    let here = app.login("jean", STRONG_PASSWORD).await.unwrap();
    let elsewhere = app.login("jean", STRONG_PASSWORD).await.unwrap();
    let dispute = |event_id: String, comment: &str| {
        let request = authed(
            &here.session_token,
            pb::DisputeSecurityEventRequest {
                event_id,
                comment: comment.into(),
            },
        );
        let app = &app;
        async move {
            app.client()
                .await
                .dispute_security_event(request)
                .await
                .map(|r| r.into_inner())
        }
    };
    let light = dispute(key.event_id.clone(), "").await.unwrap();
    assert!(!light.password_suspended);
    assert_eq!(light.sessions_revoked, 1);
    list_sessions(&app, &here.session_token).await.unwrap();
    assert!(list_sessions(&app, &elsewhere.session_token).await.is_err());

    let disputed = dispute(order.event_id.clone(), "I never ordered this server")
        .await
        .unwrap();
    assert!(disputed.password_suspended);
    assert_eq!(
        list_sessions(&app, &here.session_token)
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated,
        "the caller's session ends too"
    );
    let status = account_status(&app, &id).await;
    assert_eq!(
        status.active_suspension.unwrap().reason(),
        pb::SuspensionReason::CustomerReported
    );
    let ticket = agent_ticket(&app, &disputed.ticket_id).await;
    assert_eq!(ticket.messages[0].body, "I never ordered this server");
    let seen = review(&app, &id).await;
    let marked = seen
        .recent_events
        .iter()
        .find(|e| e.event_id == order.event_id)
        .unwrap();
    assert!(marked.disputed);
    let record = seen
        .recent_events
        .iter()
        .find(|e| {
            e.kind() == pb::SecurityEventKind::EventDisputed
                && e.details.get("disputed_event_id") == Some(&order.event_id)
        })
        .expect("an EVENT_DISPUTED event naming the order");
    assert_eq!(record.details["ticket_id"], disputed.ticket_id);
}

/// A report from a notice's link opens a high-priority ticket, records
/// UNAUTHORIZED_CHANGE_REPORTED and suspends, but does not revert the
/// change: the old password stays refused.
#[tokio::test]
pub async fn a_report_from_a_notice_link_does_not_revert_the_change() {
    let app = spawn_app().await;
    let id = app
        .create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let session = app.login("jean", STRONG_PASSWORD).await.unwrap();
    app.client()
        .await
        .change_password(authed(
            &session.session_token,
            pb::ChangePasswordRequest {
                current_password: STRONG_PASSWORD.into(),
                new_password: NEW_PASSWORD.into(),
            },
        ))
        .await
        .unwrap();
    let mails = app.wait_for_mails("jean@example.fr", 1).await;
    let start = mails[0].find("token=gdx_").expect("a report link") + "token=".len();
    let token: String = mails[0][start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    let reference = app
        .client()
        .await
        .report_unauthorized_change(pb::ReportUnauthorizedChangeRequest {
            report_token: token,
            comment: "not me".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .ticket_reference;
    assert_eq!(
        reason(&app.login("jean", STRONG_PASSWORD).await.unwrap_err()),
        "INVALID_CREDENTIALS",
        "the old password came back"
    );
    assert_eq!(
        reason(&app.login("jean", NEW_PASSWORD).await.unwrap_err()),
        "PASSWORD_SUSPENDED"
    );
    assert!(app
        .events_of(&id)
        .await
        .contains(&"unauthorized_change_reported".to_string()));
    let queue = app
        .support()
        .await
        .list_ticket_queue(authed(
            &app.agent_token,
            spb::ListTicketQueueRequest {
                reference: reference.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .tickets;
    assert_eq!(queue.len(), 1);
    assert_eq!(queue[0].priority(), spb::TicketPriority::High);
    assert_eq!(queue[0].account_id, id);
}

/// RecordActivity is idempotent per calling credential: another service
/// with the same service_event_id records its own event; occurred_at
/// defaults to now and may be at most 5 minutes ahead.
#[tokio::test]
pub async fn activity_is_idempotent_per_credential_and_bounded_in_the_future() {
    let app = spawn_app().await;
    let id = app
        .create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let (_, shop) = gardien::domain::credentials::create(
        &app.ctx.db,
        app.ctx.now(),
        "shop",
        gardien::domain::principal::Role::Service,
    )
    .await
    .unwrap();
    let shop = secrecy::ExposeSecret::expose_secret(&shop).to_string();
    register_secret(&shop);
    let billing = record(
        &app,
        pb::RecordActivityRequest {
            items_summary: "1 × VPS".into(),
            ..activity(&id, "same-id")
        },
    )
    .await;
    let now = app.clock_now() / 1000;
    let occurred = billing.occurred_at.unwrap().seconds;
    assert!(
        (now - 5..=now + 5).contains(&occurred),
        "{occurred} vs {now}"
    );
    assert_eq!(billing.details["reference"], "ORD-7");
    assert_eq!(billing.details["items_summary"], "1 × VPS");
    let from_shop = app
        .client()
        .await
        .record_activity(authed(&shop, activity(&id, "same-id")))
        .await
        .unwrap()
        .into_inner();
    assert!(!from_shop.duplicate);
    let shop_event = from_shop.event.unwrap();
    assert_ne!(shop_event.event_id, billing.event_id);
    assert_eq!(shop_event.actor.unwrap().name, "shop");

    let at = |ahead_secs: i64| pb::RecordActivityRequest {
        occurred_at: Some(prost_types::Timestamp {
            seconds: app.clock_now() / 1000 + ahead_secs,
            nanos: 0,
        }),
        ..activity(&id, &format!("ahead-{ahead_secs}"))
    };
    let far = app
        .client()
        .await
        .record_activity(authed(&app.service_token, at(10 * 60)))
        .await
        .unwrap_err();
    assert_eq!(far.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&far), ["occurred_at"]);
    record(&app, at(4 * 60)).await;
}

/// Phone and postal changes apply at once and are journaled; an e-mail
/// change request is journaled; the history is newest first; an
/// unconfirmed link expires.
#[tokio::test]
pub async fn contact_changes_are_journaled_newest_first_and_a_confirmation_link_expires() {
    let app = spawn_app().await;
    let id = app
        .create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let session = app.login("jean", STRONG_PASSWORD).await.unwrap();
    let update = |request: pb::UpdateContactDetailsRequest| {
        let request = authed(&session.session_token, request);
        let app = &app;
        async move {
            app.client()
                .await
                .update_contact_details(request)
                .await
                .unwrap()
                .into_inner()
        }
    };
    let mask = |path: &str| {
        Some(prost_types::FieldMask {
            paths: vec![path.into()],
        })
    };
    update(pb::UpdateContactDetailsRequest {
        phone: "+33612345678".into(),
        update_mask: mask("phone"),
        ..Default::default()
    })
    .await;
    let done = update(pb::UpdateContactDetailsRequest {
        postal_address: Some(pb::PostalAddress {
            line1: "2 rue Kellermann".into(),
            line2: "Bât. B".into(),
            postal_code: "59100".into(),
            city: "Roubaix".into(),
            country_code: "FR".into(),
        }),
        update_mask: mask("postal_address"),
        ..Default::default()
    })
    .await;
    assert_eq!(
        done.contact_details.unwrap().postal_address.unwrap().city,
        "Roubaix"
    );
    let pending = update(pb::UpdateContactDetailsRequest {
        email: "jean.new@example.org".into(),
        update_mask: mask("email"),
        ..Default::default()
    })
    .await;
    assert!(pending.email_change_pending);
    let changes = app
        .client()
        .await
        .list_contact_changes(authed(
            &session.session_token,
            pb::ListContactChangesRequest::default(),
        ))
        .await
        .unwrap()
        .into_inner()
        .changes;
    let fields: Vec<_> = changes.iter().map(|c| c.field()).collect();
    assert_eq!(
        fields,
        [pb::ContactField::PostalAddress, pb::ContactField::Phone],
        "applied changes only, newest first"
    );
    assert!(!changes[0].event_id.is_empty());
    let events = app.events_of(&id).await;
    assert_eq!(
        events
            .iter()
            .filter(|e| *e == "contact_details_changed")
            .count(),
        2,
        "{events:?}"
    );
    assert!(events.contains(&"contact_email_change_requested".to_string()));

    let mails = app.wait_for_mails("jean.new@example.org", 1).await;
    let start = mails[0].find("token=gde_").expect("a confirmation link") + "token=".len();
    let token: String = mails[0][start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    app.clock.advance(Duration::from_secs(8 * 24 * 3600));
    let expired = app
        .client()
        .await
        .confirm_email_change(pb::ConfirmEmailChangeRequest {
            confirmation_token: token,
        })
        .await
        .unwrap_err();
    assert_eq!(expired.code(), Code::FailedPrecondition, "{expired:?}");
    assert_eq!(reason(&expired), "TOKEN_EXPIRED");
}

/// The overview counts active sessions, open tickets and disputed events.
#[tokio::test]
pub async fn the_overview_counts_sessions_open_tickets_and_disputes() {
    let app = spawn_app().await;
    let id = app
        .create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let key = record(
        &app,
        pb::RecordActivityRequest {
            kind: pb::ActivityKind::ApiKeyCreated.into(),
            ..activity(&id, "api-key")
        },
    )
    .await;
    app.login("jean", STRONG_PASSWORD).await.unwrap();
    let token = app
        .login("jean", STRONG_PASSWORD)
        .await
        .unwrap()
        .session_token;
    let overview = || {
        let request = authed(&token, pb::GetSecurityOverviewRequest {});
        let app = &app;
        async move {
            app.client()
                .await
                .get_security_overview(request)
                .await
                .unwrap()
                .into_inner()
        }
    };
    let seen = overview().await;
    assert_eq!(seen.active_sessions, 2);
    assert_eq!((seen.open_tickets, seen.disputed_events), (0, 0));
    assert!(seen.unacknowledged_events >= 3);
    assert_eq!(seen.contact_details.unwrap().email, "jean@example.fr");
    app.client()
        .await
        .dispute_security_event(authed(
            &token,
            pb::DisputeSecurityEventRequest {
                event_id: key.event_id,
                comment: String::new(),
            },
        ))
        .await
        .unwrap();
    let seen = overview().await;
    assert_eq!(seen.disputed_events, 1);
    assert_eq!(seen.open_tickets, 1);
    assert_eq!(seen.active_sessions, 1, "a dispute ends the other sessions");
}

fn ticket_request(
    client_request_id: &str,
    category: spb::TicketCategory,
) -> spb::CreateTicketRequest {
    spb::CreateTicketRequest {
        client_request_id: client_request_id.into(),
        category: category.into(),
        subject: format!("Ticket {client_request_id}"),
        body: "Please help.".into(),
        linked_event_ids: vec![],
    }
}

async fn open_ticket(app: &TestApp, token: &str, client_request_id: &str) -> spb::Ticket {
    app.support()
        .await
        .create_ticket(authed(
            token,
            ticket_request(client_request_id, spb::TicketCategory::Billing),
        ))
        .await
        .unwrap()
        .into_inner()
        .ticket
        .unwrap()
}

/// Ticket states as the proto tells them: a customer message moves
/// PENDING_CUSTOMER or RESOLVED to PENDING_AGENT, an internal note moves
/// nothing, setting the current status is a no-op, closing twice succeeds,
/// a closed ticket cannot be assigned; unknown tickets are NOT_FOUND.
#[tokio::test]
pub async fn ticket_statuses_move_as_the_proto_says() {
    let app = spawn_app().await;
    app.create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let token = app
        .login("jean", STRONG_PASSWORD)
        .await
        .unwrap()
        .session_token;
    let ticket = open_ticket(&app, &token, "states").await;
    assert_eq!(ticket.status(), spb::TicketStatus::Open);
    assert_eq!(ticket.priority(), spb::TicketPriority::Normal);
    let id = ticket.ticket_id.clone();
    let set = |status: spb::TicketStatus, ticket_id: String| {
        let request = authed(
            &app.agent_token,
            spb::SetTicketStatusRequest {
                ticket_id,
                status: status.into(),
            },
        );
        let app = &app;
        async move {
            app.support()
                .await
                .set_ticket_status(request)
                .await
                .map(|r| r.into_inner().ticket.unwrap())
        }
    };
    // As a well-behaved client would, UNAVAILABLE is retried: on SQLite a
    // write can meet the outbox worker's.
    let message = |token: String, internal_note: bool| {
        let request = spb::AddTicketMessageRequest {
            ticket_id: id.clone(),
            body: "A message.".into(),
            internal_note,
        };
        let app = &app;
        async move {
            let mut answer = Err(Status::unavailable("not tried"));
            for _ in 0..5 {
                answer = app
                    .support()
                    .await
                    .add_ticket_message(authed(&token, request.clone()))
                    .await;
                match &answer {
                    Err(status) if status.code() == Code::Unavailable => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    _ => break,
                }
            }
            answer
        }
    };
    let status_now = || async { agent_ticket(&app, &id).await.ticket.unwrap().status() };

    set(spb::TicketStatus::PendingCustomer, id.clone())
        .await
        .unwrap();
    message(app.agent_token.clone(), true).await.unwrap();
    assert_eq!(
        status_now().await,
        spb::TicketStatus::PendingCustomer,
        "a note moved it"
    );
    message(token.clone(), false).await.unwrap();
    assert_eq!(status_now().await, spb::TicketStatus::PendingAgent);
    set(spb::TicketStatus::Resolved, id.clone()).await.unwrap();
    message(token.clone(), false).await.unwrap();
    assert_eq!(status_now().await, spb::TicketStatus::PendingAgent);
    let same = set(spb::TicketStatus::PendingAgent, id.clone())
        .await
        .unwrap();
    assert_eq!(same.status(), spb::TicketStatus::PendingAgent);

    let unknown = uuid::Uuid::now_v7().to_string();
    let missing = set(spb::TicketStatus::Resolved, unknown.clone())
        .await
        .unwrap_err();
    assert_eq!(
        (missing.code(), reason(&missing).as_str()),
        (Code::NotFound, "NOT_FOUND")
    );
    let assign = |ticket_id: String| {
        let request = authed(
            &app.agent_token,
            spb::AssignTicketRequest {
                ticket_id,
                assignee: String::new(),
            },
        );
        let app = &app;
        async move { app.support().await.assign_ticket(request).await }
    };
    assert_eq!(
        assign(unknown.clone()).await.unwrap_err().code(),
        Code::NotFound
    );

    let close = || {
        let request = authed(
            &token,
            spb::CloseTicketRequest {
                ticket_id: id.clone(),
            },
        );
        let app = &app;
        async move { app.support().await.close_ticket(request).await }
    };
    close().await.unwrap();
    let twice = close().await.expect("closing a CLOSED ticket succeeds");
    assert_eq!(
        twice.into_inner().ticket.unwrap().status(),
        spb::TicketStatus::Closed
    );
    let closed = assign(id.clone()).await.unwrap_err();
    assert_eq!(closed.code(), Code::FailedPrecondition);
    assert_eq!(reason(&closed), "INVALID_STATE_TRANSITION");
}

/// Lists as the proto orders them: a customer's tickets newest first, a
/// ticket's messages oldest first, the queue oldest first and filtered by
/// status; AssignTicket may reassign.
#[tokio::test]
pub async fn ticket_lists_are_ordered_and_filtered_as_documented() {
    let app = spawn_app().await;
    app.create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let (_, bob) = gardien::domain::credentials::create(
        &app.ctx.db,
        app.ctx.now(),
        "agent-bob",
        gardien::domain::principal::Role::Agent,
    )
    .await
    .unwrap();
    register_secret(secrecy::ExposeSecret::expose_secret(&bob));
    let token = app
        .login("jean", STRONG_PASSWORD)
        .await
        .unwrap()
        .session_token;
    let first = open_ticket(&app, &token, "first").await;
    let second = open_ticket(&app, &token, "second").await;
    let third = open_ticket(&app, &token, "third").await;
    let mine = app
        .support()
        .await
        .list_tickets(authed(&token, spb::ListTicketsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .tickets;
    let order: Vec<_> = mine.iter().map(|t| t.ticket_id.as_str()).collect();
    assert_eq!(
        order,
        [
            third.ticket_id.as_str(),
            second.ticket_id.as_str(),
            first.ticket_id.as_str()
        ]
    );

    app.support()
        .await
        .add_ticket_message(authed(
            &token,
            spb::AddTicketMessageRequest {
                ticket_id: first.ticket_id.clone(),
                body: "Second message.".into(),
                internal_note: false,
            },
        ))
        .await
        .unwrap();
    let messages = agent_ticket(&app, &first.ticket_id).await.messages;
    let bodies: Vec<_> = messages.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, ["Please help.", "Second message."]);

    app.support()
        .await
        .set_ticket_status(authed(
            &app.agent_token,
            spb::SetTicketStatusRequest {
                ticket_id: second.ticket_id.clone(),
                status: spb::TicketStatus::Resolved.into(),
            },
        ))
        .await
        .unwrap();
    let queue = |request: spb::ListTicketQueueRequest| {
        let request = authed(&app.agent_token, request);
        let app = &app;
        async move {
            app.support()
                .await
                .list_ticket_queue(request)
                .await
                .map(|r| r.into_inner().tickets)
        }
    };
    let waiting: Vec<_> = queue(spb::ListTicketQueueRequest {
        statuses: vec![spb::TicketStatus::Open.into()],
        ..Default::default()
    })
    .await
    .unwrap()
    .into_iter()
    .map(|t| t.ticket_id)
    .collect();
    assert_eq!(waiting, [first.ticket_id.clone(), third.ticket_id.clone()]);
    let resolved = queue(spb::ListTicketQueueRequest {
        statuses: vec![spb::TicketStatus::Resolved.into()],
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0].ticket_id, second.ticket_id);

    for assignee in ["", "agent-bob"] {
        let ticket = app
            .support()
            .await
            .assign_ticket(authed(
                &app.agent_token,
                spb::AssignTicketRequest {
                    ticket_id: third.ticket_id.clone(),
                    assignee: assignee.into(),
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .ticket
            .unwrap();
        let expected = if assignee.is_empty() {
            "agent-alice"
        } else {
            assignee
        };
        assert_eq!(ticket.assignee, expected);
    }
    let bobs = queue(spb::ListTicketQueueRequest {
        assignee: "agent-bob".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(bobs.len(), 1);
}

/// A recovery ticket is high priority and, being unverified, NOT_FOUND to
/// the account's customer; a review records the justifying ticket and an
/// unknown account is NOT_FOUND.
#[tokio::test]
pub async fn recovery_tickets_are_high_priority_hidden_from_the_customer_and_reviews_cite_tickets()
{
    let app = spawn_app().await;
    let id = app
        .create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let reference = app
        .support()
        .await
        .create_recovery_ticket(spb::CreateRecoveryTicketRequest {
            login_or_email: "jean".into(),
            reachable_contact: "+33612345678".into(),
            description: "My mailbox was taken over.".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .ticket_reference;
    let found = app
        .support()
        .await
        .list_ticket_queue(authed(
            &app.agent_token,
            spb::ListTicketQueueRequest {
                reference,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .tickets;
    assert_eq!(found.len(), 1);
    let ticket = &found[0];
    assert_eq!(ticket.priority(), spb::TicketPriority::High);
    assert!(ticket.unverified);
    let token = app
        .login("jean", STRONG_PASSWORD)
        .await
        .unwrap()
        .session_token;
    let hidden = app
        .support()
        .await
        .get_ticket(authed(
            &token,
            spb::GetTicketRequest {
                ticket_id: ticket.ticket_id.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound);

    let missing = app
        .support()
        .await
        .get_account_review(authed(
            &app.agent_token,
            spb::GetAccountReviewRequest {
                account_id: uuid::Uuid::now_v7().to_string(),
                ticket_id: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(
        (missing.code(), reason(&missing).as_str()),
        (Code::NotFound, "NOT_FOUND")
    );
    let asked = open_ticket(&app, &token, "review").await;
    app.support()
        .await
        .get_account_review(authed(
            &app.agent_token,
            spb::GetAccountReviewRequest {
                account_id: id.clone(),
                ticket_id: asked.ticket_id.clone(),
            },
        ))
        .await
        .unwrap();
    let reviewed = journal(&app, &token, Default::default())
        .await
        .into_iter()
        .find(|e| e.kind() == pb::SecurityEventKind::SupportAccountReviewed)
        .expect("the review is journaled");
    assert_eq!(reviewed.details.get("ticket_id"), Some(&asked.ticket_id));
}

/// The password policy of CreateAccountRequest.password: at most 256 code
/// points (1024 bytes), not built from the e-mail.
#[tokio::test]
pub async fn the_password_policy_bounds_length_in_code_points_and_refuses_the_e_mail() {
    let app = spawn_app().await;
    let create = |login: &str, email: &str, password: String| {
        let request = authed(
            &app.service_token,
            pb::CreateAccountRequest {
                login: login.into(),
                email: email.into(),
                password,
                ..Default::default()
            },
        );
        let app = &app;
        async move { app.client().await.create_account(request).await }
    };
    let phrase = |chars: usize| -> String {
        "Vingt mille lieues sous les mers, à bord du Nautilus ! "
            .repeat(6)
            .chars()
            .take(chars)
            .collect()
    };
    create("longest", "longest@example.fr", phrase(256))
        .await
        .unwrap();
    app.login("longest", &phrase(256)).await.unwrap();
    for (login, email, password) in [
        ("toolong", "toolong@example.fr", phrase(257)),
        (
            "mailish",
            "zephyrin.quatremare@example.fr",
            "zephyrin.quatremare 2026".to_string(),
        ),
    ] {
        let status = create(login, email, password).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{login}: {status:?}");
        assert_eq!(reason(&status), "PASSWORD_TOO_WEAK", "{login}");
        assert_eq!(bad_fields(&status), ["password"], "{login}");
    }
}

/// A French account reads its journal summaries and the overview's advice
/// in French; errors have ErrorInfo in the "gardien" domain.
#[tokio::test]
pub async fn a_french_account_reads_its_journal_and_advice_in_french() {
    let app = spawn_app().await;
    app.create_account_in("marie", "marie@example.fr", STRONG_PASSWORD, pb::Locale::Fr)
        .await;
    app.create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let read = |login: &str| {
        let app = &app;
        let login = login.to_string();
        async move {
            let token = app
                .login(&login, STRONG_PASSWORD)
                .await
                .unwrap()
                .session_token;
            let events = journal(app, &token, Default::default()).await;
            let login_summary = events
                .iter()
                .find(|e| e.kind() == pb::SecurityEventKind::LoginSucceeded)
                .unwrap()
                .summary
                .clone();
            let advice = app
                .client()
                .await
                .get_security_overview(authed(&token, pb::GetSecurityOverviewRequest {}))
                .await
                .unwrap()
                .into_inner()
                .recommended_actions
                .into_iter()
                .find(|a| a.kind() == pb::RecommendedActionKind::EnableTotp)
                .unwrap()
                .explanation;
            (login_summary, advice)
        }
    };
    let (fr_summary, fr_advice) = read("marie").await;
    let (en_summary, en_advice) = read("jean").await;
    assert_eq!(fr_summary, "Connexion réussie");
    assert_eq!(en_summary, "Successful login");
    assert_ne!(fr_advice, en_advice);
    assert!(fr_advice.contains("double authentification"), "{fr_advice}");

    let status = app
        .login("jean", "not the password at all")
        .await
        .unwrap_err();
    use tonic_types::StatusExt;
    assert_eq!(status.get_details_error_info().unwrap().domain, "gardien");
}

/// RevokeSession is idempotent: a session of the caller's that has already
/// ended succeeds (and records nothing more); another customer's session,
/// live or ended, stays NOT_FOUND.
#[tokio::test]
pub async fn revoking_an_ended_session_succeeds_and_another_customers_stays_not_found() {
    let app = spawn_app().await;
    let id = app
        .create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    app.create_account("paul", "paul@example.fr", STRONG_PASSWORD)
        .await;
    let jean = app.login("jean", STRONG_PASSWORD).await.unwrap();
    let other = app.login("jean", STRONG_PASSWORD).await.unwrap();
    let paul = app.login("paul", STRONG_PASSWORD).await.unwrap();
    let revoke = |token: String, session_id: String| {
        let app = &app;
        async move {
            app.client()
                .await
                .revoke_session(authed(&token, pb::RevokeSessionRequest { session_id }))
                .await
        }
    };
    for _ in 0..2 {
        revoke(jean.session_token.clone(), other.session_id.clone())
            .await
            .expect("an ended session of the caller's succeeds");
    }
    let revoked = app
        .events_of(&id)
        .await
        .iter()
        .filter(|kind| kind.as_str() == "session_revoked")
        .count();
    assert_eq!(revoked, 1);

    let live = revoke(jean.session_token.clone(), paul.session_id.clone())
        .await
        .unwrap_err();
    assert_eq!(live.code(), Code::NotFound);
    revoke(paul.session_token.clone(), paul.session_id.clone())
        .await
        .unwrap();
    let ended = revoke(jean.session_token.clone(), paul.session_id.clone())
        .await
        .unwrap_err();
    assert_eq!(ended.code(), Code::NotFound);
}

/// ListTicketQueue without statuses lists every ticket but RESOLVED and
/// CLOSED ones.
#[tokio::test]
pub async fn the_queue_without_statuses_leaves_out_resolved_and_closed_tickets() {
    let app = spawn_app().await;
    app.create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let token = app
        .login("jean", STRONG_PASSWORD)
        .await
        .unwrap()
        .session_token;
    let open = open_ticket(&app, &token, "open").await;
    let resolved = open_ticket(&app, &token, "resolved").await;
    let closed = open_ticket(&app, &token, "closed").await;
    app.support()
        .await
        .set_ticket_status(authed(
            &app.agent_token,
            spb::SetTicketStatusRequest {
                ticket_id: resolved.ticket_id.clone(),
                status: spb::TicketStatus::Resolved.into(),
            },
        ))
        .await
        .unwrap();
    app.support()
        .await
        .close_ticket(authed(
            &token,
            spb::CloseTicketRequest {
                ticket_id: closed.ticket_id.clone(),
            },
        ))
        .await
        .unwrap();
    let queue: Vec<_> = app
        .support()
        .await
        .list_ticket_queue(authed(
            &app.agent_token,
            spb::ListTicketQueueRequest::default(),
        ))
        .await
        .unwrap()
        .into_inner()
        .tickets
        .into_iter()
        .map(|t| t.ticket_id)
        .collect();
    assert_eq!(queue, [open.ticket_id]);
}

/// ListTicketQueue refuses unassigned_only together with assignee.
#[tokio::test]
pub async fn the_queue_refuses_unassigned_only_with_an_assignee() {
    let app = spawn_app().await;
    let status = app
        .support()
        .await
        .list_ticket_queue(authed(
            &app.agent_token,
            spb::ListTicketQueueRequest {
                assignee: "agent-alice".into(),
                unassigned_only: true,
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(bad_fields(&status), ["unassigned_only"]);
}

/// A postal address in ContactChange reads "line1, line2, postal_code city,
/// country_code", empty parts omitted.
#[tokio::test]
pub async fn a_postal_address_change_reads_as_the_proto_renders_it() {
    let app = spawn_app().await;
    app.create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let token = app
        .login("jean", STRONG_PASSWORD)
        .await
        .unwrap()
        .session_token;
    for address in [
        pb::PostalAddress {
            line1: "2 rue Kellermann".into(),
            line2: "Bât. B".into(),
            postal_code: "59100".into(),
            city: "Roubaix".into(),
            country_code: "FR".into(),
        },
        pb::PostalAddress {
            line1: "1 place du Général de Gaulle".into(),
            city: "Lille".into(),
            country_code: "FR".into(),
            ..Default::default()
        },
    ] {
        app.client()
            .await
            .update_contact_details(authed(
                &token,
                pb::UpdateContactDetailsRequest {
                    postal_address: Some(address),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["postal_address".into()],
                    }),
                    ..Default::default()
                },
            ))
            .await
            .unwrap();
    }
    let changes = app
        .client()
        .await
        .list_contact_changes(authed(&token, pb::ListContactChangesRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .changes;
    assert_eq!(
        changes[0].old_value,
        "2 rue Kellermann, Bât. B, 59100 Roubaix, FR"
    );
    assert_eq!(
        changes[0].new_value,
        "1 place du Général de Gaulle, Lille, FR"
    );
}

/// The overview recommends checking the contact details after a recent
/// change and while an e-mail change awaits confirmation, not otherwise.
#[tokio::test]
pub async fn the_overview_asks_to_check_contact_details_after_a_change_or_while_an_email_change_waits(
) {
    let app = spawn_app().await;
    app.create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let asks = |token: String| {
        let app = &app;
        async move {
            app.client()
                .await
                .get_security_overview(authed(&token, pb::GetSecurityOverviewRequest {}))
                .await
                .unwrap()
                .into_inner()
                .recommended_actions
                .iter()
                .any(|a| a.kind() == pb::RecommendedActionKind::VerifyContactDetails)
        }
    };
    let update = |token: String, request: pb::UpdateContactDetailsRequest| {
        let app = &app;
        async move {
            app.client()
                .await
                .update_contact_details(authed(&token, request))
                .await
                .unwrap()
        }
    };
    let mask = |path: &str| {
        Some(prost_types::FieldMask {
            paths: vec![path.into()],
        })
    };
    let token = app
        .login("jean", STRONG_PASSWORD)
        .await
        .unwrap()
        .session_token;
    assert!(!asks(token.clone()).await, "nothing changed yet");
    update(
        token.clone(),
        pb::UpdateContactDetailsRequest {
            phone: "+33612345678".into(),
            update_mask: mask("phone"),
            ..Default::default()
        },
    )
    .await;
    assert!(asks(token).await, "right after a phone change");

    app.clock.advance(Duration::from_secs(8 * 24 * 3600));
    let token = app
        .login("jean", STRONG_PASSWORD)
        .await
        .unwrap()
        .session_token;
    assert!(!asks(token.clone()).await, "the change is old");
    update(
        token.clone(),
        pb::UpdateContactDetailsRequest {
            email: "jean.new@example.org".into(),
            update_mask: mask("email"),
            ..Default::default()
        },
    )
    .await;
    assert!(asks(token).await, "while the e-mail change waits");
}

/// The suspension a customer reads in GetSecurityOverview carries the
/// reason, never the staff note.
#[tokio::test]
pub async fn the_customer_never_reads_the_staff_note_of_a_suspension() {
    let app = spawn_app().await;
    let id = app
        .create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let suspended = app.suspend(&id).await;
    assert!(!suspended.suspension.unwrap().note.is_empty());
    // No login opens a session while suspended; one is made directly, as a
    // session would be if any path let one through.
    let grant = gardien::domain::sessions::create(
        &app.ctx.db,
        &app.ctx,
        uuid::Uuid::parse_str(&id).unwrap(),
        &Default::default(),
        false,
        app.ctx.now(),
    )
    .await
    .unwrap();
    let token = secrecy::ExposeSecret::expose_secret(&grant.token).to_string();
    register_secret(&token);
    let suspension = app
        .client()
        .await
        .get_security_overview(authed(&token, pb::GetSecurityOverviewRequest {}))
        .await
        .unwrap()
        .into_inner()
        .active_suspension
        .unwrap();
    assert_eq!(
        suspension.reason(),
        pb::SuspensionReason::SuspectedCompromise
    );
    assert_eq!(suspension.note, "");
}
