//! gRPC-Web on the same port: a browser-style HTTP/1.1 request with a
//! gRPC-Web frame reaches Login, and CORS follows the configuration.

use gardien::proto::accountsecurity::v1 as pb;
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::*;

/// Sends one HTTP/1.1 request and returns the whole raw response.
async fn http1(app: &TestApp, head: &str, body: &[u8]) -> Vec<u8> {
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut response),
    )
    .await
    .expect("no answer")
    .unwrap();
    response
}

pub(crate) fn grpc_web_login(app: &TestApp, login: &str, password: &str) -> (String, Vec<u8>) {
    let message = pb::LoginRequest {
        login: login.into(),
        password: password.into(),
    }
    .encode_to_vec();
    let mut frame = vec![0u8];
    frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
    frame.extend_from_slice(&message);
    let head = format!(
        "POST /gardien.accountsecurity.v1.AccountSecurityService/Login HTTP/1.1\r\n\
         Host: {}\r\ncontent-type: application/grpc-web+proto\r\nx-grpc-web: 1\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n",
        app.addr,
        frame.len()
    );
    (head, frame)
}

/// The body of a chunked or plain HTTP/1.1 response, de-chunked.
pub(crate) fn body_of(response: &[u8]) -> Vec<u8> {
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let (head, mut rest) = (
        String::from_utf8_lossy(&response[..split]).to_ascii_lowercase(),
        &response[split..],
    );
    if !head.contains("transfer-encoding: chunked") {
        return rest.to_vec();
    }
    let mut body = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).unwrap().trim(), 16)
                .unwrap();
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&rest[line_end + 2..line_end + 2 + size]);
        rest = &rest[line_end + 2 + size + 2..];
    }
}

#[tokio::test]
async fn a_grpc_web_request_over_http1_logs_in() {
    let app = spawn_app().await;
    app.create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;

    let (head, frame) = grpc_web_login(&app, "jean", STRONG_PASSWORD);
    let response = http1(&app, &head, &frame).await;
    let text = String::from_utf8_lossy(&response).to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 200"), "{text}");
    assert!(text.contains("content-type: application/grpc-web"));
    let body = body_of(&response);
    assert_eq!(body[0], 0, "the first frame carries the message");
    let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
    let answer = pb::LoginResponse::decode(&body[5..5 + len]).unwrap();
    let Some(pb::login_response::Result::Session(grant)) = answer.result else {
        panic!("no session");
    };
    assert!(grant.session_token.starts_with("gds_"));
    let trailers = String::from_utf8_lossy(&body[5 + len..]);
    assert!(trailers.contains("grpc-status:0"), "{trailers}");

    let (head, frame) = grpc_web_login(&app, "jean", "not the right password");
    let refused = String::from_utf8_lossy(&http1(&app, &head, &frame).await).to_ascii_lowercase();
    assert!(
        refused.contains("grpc-status: 16") || refused.contains("grpc-status:16"),
        "{refused}"
    );
}

#[tokio::test]
async fn cors_allows_only_the_configured_origins() {
    let app =
        spawn_app_with(|c| c.cors_allowed_origins = vec!["https://account.example.com".into()])
            .await;
    let preflight = |origin: &str| {
        format!(
            "OPTIONS /gardien.accountsecurity.v1.AccountSecurityService/Login HTTP/1.1\r\n\
             Host: {}\r\nOrigin: {origin}\r\nAccess-Control-Request-Method: POST\r\n\
             Access-Control-Request-Headers: content-type,x-grpc-web\r\nconnection: close\r\n\r\n",
            app.addr
        )
    };
    let allowed =
        String::from_utf8_lossy(&http1(&app, &preflight("https://account.example.com"), b"").await)
            .to_ascii_lowercase();
    assert!(
        allowed.contains("access-control-allow-origin: https://account.example.com"),
        "{allowed}"
    );
    let other =
        String::from_utf8_lossy(&http1(&app, &preflight("https://evil.example.net"), b"").await)
            .to_ascii_lowercase();
    assert!(!other.contains("access-control-allow-origin"), "{other}");
}

/// Calls without an `Origin` header (services, not browsers) skip CORS: no
/// `Vary` or `Access-Control-*` headers on their answers; a browser's call
/// from an allowed origin gets them.
#[tokio::test]
async fn cors_headers_go_only_to_browser_calls() {
    let app =
        spawn_app_with(|c| c.cors_allowed_origins = vec!["https://account.example.com".into()])
            .await;
    app.create_account("jean", "jean@example.fr", STRONG_PASSWORD)
        .await;
    let (head, frame) = grpc_web_login(&app, "jean", STRONG_PASSWORD);
    let service = String::from_utf8_lossy(&http1(&app, &head, &frame).await).to_ascii_lowercase();
    assert!(service.starts_with("http/1.1 200"), "{service}");
    assert!(!service.contains("\r\nvary:"), "{service}");
    assert!(!service.contains("access-control-"), "{service}");

    let (head, frame) = grpc_web_login(&app, "jean", STRONG_PASSWORD);
    let head = head.replacen(
        "\r\n\r\n",
        "\r\norigin: https://account.example.com\r\n\r\n",
        1,
    );
    let browser = String::from_utf8_lossy(&http1(&app, &head, &frame).await).to_ascii_lowercase();
    assert!(browser.starts_with("http/1.1 200"), "{browser}");
    assert!(
        browser.contains("access-control-allow-origin: https://account.example.com"),
        "{browser}"
    );
    assert!(browser.contains("\r\nvary:"), "{browser}");
}
