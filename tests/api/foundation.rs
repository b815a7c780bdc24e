//! The foundation: health, reflection, the access policy, authentication,
//! the error model, `CreateAccount` and `GetAccountStatus`.

use gardien::{
    middleware::auth::allowed_roles,
    proto::{accountsecurity::v1 as pb, FILE_DESCRIPTOR_SET},
};
use prost::Message;
use tonic::Code;

use crate::helpers::*;

#[tokio::test]
async fn every_rpc_in_the_descriptor_set_has_an_access_policy_entry() {
    let set = prost_types::FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).unwrap();
    let mut checked = 0;
    for file in &set.file {
        let package = file.package();
        for service in &file.service {
            for method in &service.method {
                let path = format!("/{package}.{}/{}", service.name(), method.name());
                assert!(
                    allowed_roles(&path).is_some(),
                    "{path} has no access-policy entry"
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 39, "only {checked} RPCs found");
    assert!(
        allowed_roles("/gardien.accountsecurity.v1.AccountSecurityService/NoSuchMethod").is_none()
    );
}

#[tokio::test]
async fn health_reports_serving_for_both_services() {
    let app = spawn_app().await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(app.channel().await);
    for service in [
        "gardien.accountsecurity.v1.AccountSecurityService",
        "gardien.support.v1.SupportService",
    ] {
        let response = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            response.status(),
            tonic_health::pb::health_check_response::ServingStatus::Serving,
            "{service}"
        );
    }
}

#[tokio::test]
async fn reflection_lists_the_gardien_services() {
    use tonic_reflection::pb::v1::{
        server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
        ServerReflectionRequest,
    };
    let app = spawn_app().await;
    let mut client = ServerReflectionClient::new(app.channel().await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = client
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let response = stream.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection answer");
    };
    let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [
        "gardien.accountsecurity.v1.AccountSecurityService",
        "gardien.support.v1.SupportService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
}

#[tokio::test]
pub async fn create_account_without_a_credential_is_unauthenticated() {
    let app = spawn_app().await;
    let status = app
        .client()
        .await
        .create_account(pb::CreateAccountRequest {
            login: "jean".into(),
            email: "jean@example.fr".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(reason(&status), "UNAUTHENTICATED");

    let status = app
        .client()
        .await
        .create_account(authed(
            "gdc_not-a-real-credential-000000000000000000000",
            pb::CreateAccountRequest::default(),
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
}

#[tokio::test]
pub async fn a_role_outside_the_policy_is_permission_denied() {
    let app = spawn_app().await;
    let status = app
        .client()
        .await
        .create_account(authed(
            &app.agent_token,
            pb::CreateAccountRequest {
                login: "jean".into(),
                email: "jean@example.fr".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(reason(&status), "PERMISSION_DENIED");
}

/// Issue 23 item 2: a method the server does not have is UNIMPLEMENTED, as
/// gRPC says, whatever credential comes with it (none, a live one, an
/// unknown one, a malformed header); it was PERMISSION_DENIED, which told
/// callers their role was wrong.
#[tokio::test]
async fn a_made_up_method_is_unimplemented_with_or_without_credentials() {
    let app = spawn_app().await;
    let channel = app.channel().await;
    let unknown_credential = format!("gdc_{}", "A".repeat(43));
    let credentials = [
        None,
        Some(format!("Bearer {}", app.service_token)),
        Some(format!("Bearer {unknown_credential}")),
        Some("Basic bm90OmJlYXJlcg==".to_string()),
    ];
    for path in [
        "/gardien.accountsecurity.v1.AccountSecurityService/NoSuchMethod",
        "/gardien.support.v1.SupportService/NoSuchMethod",
        "/no.such.Service/X",
    ] {
        for credential in &credentials {
            let mut request = tonic::Request::new(Vec::new());
            if let Some(value) = credential {
                request
                    .metadata_mut()
                    .insert("authorization", value.parse().unwrap());
            }
            let mut grpc = tonic::client::Grpc::new(channel.clone());
            grpc.ready().await.unwrap();
            let refused = grpc
                .unary(
                    request,
                    http::uri::PathAndQuery::from_static(path),
                    crate::hostile::RawCodec,
                )
                .await
                .unwrap_err();
            assert_eq!(
                refused.code(),
                Code::Unimplemented,
                "{path} with {:?}: {refused:?}",
                credential.as_ref().map(|c| c.split(' ').next())
            );
        }
    }
}

#[tokio::test]
pub async fn create_account_names_every_invalid_field() {
    let app = spawn_app().await;
    let status = app
        .client()
        .await
        .create_account(authed(
            &app.service_token,
            pb::CreateAccountRequest {
                login: "x".into(),
                email: "not-an-email".into(),
                phone: "0612345678".into(),
                locale: 99,
                postal_address: Some(pb::PostalAddress {
                    country_code: "FRANCE".into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(reason(&status), "INVALID_ARGUMENT");
    let fields = bad_fields(&status);
    for field in [
        "login",
        "email",
        "phone",
        "locale",
        "postal_address.country_code",
    ] {
        assert!(
            fields.iter().any(|f| f == field),
            "{field} not named in {fields:?}"
        );
    }
    assert!(status.message().contains("login"));
}

#[tokio::test]
pub async fn create_account_records_the_account_and_its_event() {
    let app = spawn_app().await;
    let response = app
        .client()
        .await
        .create_account(authed(
            &app.service_token,
            pb::CreateAccountRequest {
                login: "Jean.Martin".into(),
                email: "jean@Example.FR".into(),
                phone: "+33612345678".into(),
                locale: pb::Locale::Fr.into(),
                password: STRONG_PASSWORD.into(),
                postal_address: Some(pb::PostalAddress {
                    line1: "2 rue Kellermann".into(),
                    postal_code: "59100".into(),
                    city: "Roubaix".into(),
                    country_code: "fr".into(),
                    ..Default::default()
                }),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let account = response.account.unwrap();
    assert_eq!(account.login, "jean.martin");
    assert_eq!(account.email, "jean@example.fr");
    assert_eq!(account.locale(), pb::Locale::Fr);
    assert_eq!(account.password_state(), pb::PasswordState::Active);
    assert_eq!(account.postal_address.unwrap().country_code, "FR");
    assert_eq!(
        app.events_of(&account.account_id).await,
        ["account_created"]
    );
}

#[tokio::test]
pub async fn a_taken_login_is_already_exists() {
    let app = spawn_app().await;
    app.create_account("jean", "jean@example.fr", "").await;
    let status = app
        .client()
        .await
        .create_account(authed(
            &app.service_token,
            pb::CreateAccountRequest {
                login: "JEAN".into(),
                email: "other@example.fr".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);
    assert_eq!(bad_fields(&status), ["login"]);
}

#[tokio::test]
pub async fn a_weak_initial_password_is_refused_naming_the_field() {
    let app = spawn_app().await;
    let status = app
        .client()
        .await
        .create_account(authed(
            &app.service_token,
            pb::CreateAccountRequest {
                login: "jean".into(),
                email: "jean@example.fr".into(),
                password: "short".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(reason(&status), "PASSWORD_TOO_WEAK");
    assert_eq!(bad_fields(&status), ["password"]);
}

#[tokio::test]
pub async fn get_account_status_finds_by_id_or_login_for_allowed_roles() {
    let app = spawn_app().await;
    let id = app
        .create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    for token in [&app.service_token, &app.security_token, &app.agent_token] {
        let by_id = app
            .client()
            .await
            .get_account_status(authed(
                token,
                pb::GetAccountStatusRequest {
                    account_id: id.clone(),
                    login: String::new(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(by_id.account.unwrap().login, "jean");
    }
    let by_login = app
        .client()
        .await
        .get_account_status(authed(
            &app.service_token,
            pb::GetAccountStatusRequest {
                account_id: String::new(),
                login: "Jean".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_login.account.unwrap().account_id, id);

    let missing = app
        .client()
        .await
        .get_account_status(authed(
            &app.service_token,
            pb::GetAccountStatusRequest {
                account_id: uuid::Uuid::now_v7().to_string(),
                login: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);

    let both = app
        .client()
        .await
        .get_account_status(authed(
            &app.service_token,
            pb::GetAccountStatusRequest {
                account_id: id,
                login: "jean".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(both.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&both), ["account_id"]);
}

#[tokio::test]
async fn the_request_id_is_echoed_or_generated() {
    let app = spawn_app().await;
    let mut request = tonic::Request::new(pb::LoginRequest {
        login: "nobody".into(),
        password: "whatever-it-is".into(),
    });
    request
        .metadata_mut()
        .insert("x-request-id", "trace-me-123".parse().unwrap());
    let status = app.client().await.login(request).await.unwrap_err();
    assert_eq!(
        status.metadata().get("x-request-id").unwrap(),
        "trace-me-123"
    );

    let status = app
        .client()
        .await
        .login(pb::LoginRequest {
            login: "nobody".into(),
            password: "whatever-it-is".into(),
        })
        .await
        .unwrap_err();
    assert!(!status.metadata().get("x-request-id").unwrap().is_empty());
}
