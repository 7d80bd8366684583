//! A WebSocket route behind `with_diag`: the upgrade goes through (the handler gets the
//! connection, messages flow both ways), in diagnostic mode too, where the `101` is
//! captured and nothing stays in flight; the request counts under its route template.
//! A raw handshake over TCP, so no client library decides anything for the test.

mod common;

use axum::Router;
use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::routing::get;
use diag_axum::DiagRouterExt;
use diag_conformance::{TOKEN, Target, wait_for_capture, wait_until_nothing_in_flight};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Upgrades `/ws/{room}` and echoes text messages.
async fn serve() -> std::net::SocketAddr {
    let diag = diag_conformance::diag();
    let app = Router::new()
        .route(
            "/ws/{room}",
            get(|ws: WebSocketUpgrade| async move {
                ws.on_upgrade(|mut socket| async move {
                    while let Some(Ok(Message::Text(text))) = socket.recv().await {
                        if socket.send(Message::Text(text)).await.is_err() {
                            break;
                        }
                    }
                })
            }),
        )
        .with_diag(&diag);
    common::serve(app).await
}

/// Opens a WebSocket to `path` (with `X-Debug` when `debug`): the connection and the
/// `101` response head.
async fn open(addr: std::net::SocketAddr, path: &str, debug: bool) -> (TcpStream, String) {
    let mut conn = TcpStream::connect(addr).await.unwrap();
    let debug = if debug {
        format!("x-debug: {TOKEN}\r\n")
    } else {
        String::new()
    };
    let head = format!(
        "GET {path} HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\nupgrade: websocket\r\n\
         sec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n{debug}\r\n"
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        assert_eq!(conn.read(&mut byte).await.unwrap(), 1, "closed: {got:?}");
        got.push(byte[0]);
    }
    (conn, String::from_utf8(got).unwrap().to_ascii_lowercase())
}

/// Sends `text` as a masked text frame (clients must mask) and reads the echo.
async fn echo(conn: &mut TcpStream, text: &str) -> String {
    let mask = [0x12, 0x34, 0x56, 0x78];
    let mut frame = vec![0x81, 0x80 | text.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(text.bytes().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    conn.write_all(&frame).await.unwrap();
    let mut head = [0u8; 2];
    conn.read_exact(&mut head).await.unwrap();
    assert_eq!(head[0], 0x81, "a final text frame");
    let mut payload = vec![0u8; usize::from(head[1] & 0x7f)];
    conn.read_exact(&mut payload).await.unwrap();
    String::from_utf8(payload).unwrap()
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websockets_upgrade_through_diag_in_and_out_of_diagnostic_mode() {
    let addr = serve().await;
    let target = Target::new(format!("http://{addr}"));

    let (mut plain, head) = open(addr, "/ws/lobby", false).await;
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(header(&head, "traceparent").is_some(), "{head}");
    assert_eq!(echo(&mut plain, "hello").await, "hello");

    let (mut debugged, head) = open(addr, "/ws/kitchen", true).await;
    assert!(head.starts_with("http/1.1 101"), "{head}");
    let id = header(&head, "x-debug-id").expect("x-debug-id").to_owned();
    assert_eq!(
        echo(&mut debugged, "in diagnostic mode").await,
        "in diagnostic mode"
    );
    // The socket stays usable after its capture is stored.
    let capture = wait_for_capture(&target, &id).await;
    assert_eq!(capture["response"]["status"], 101, "{capture}");
    assert_eq!(capture["request"]["route"], "/ws/{room}", "{capture}");
    let text = target.authed_text(&format!("/debug/requests/{id}")).await;
    assert!(
        text.contains("what it carried after the response head is not captured"),
        "{text}"
    );
    assert_eq!(echo(&mut debugged, "still open").await, "still open");
    assert_eq!(echo(&mut plain, "both").await, "both");

    drop((plain, debugged));
    wait_until_nothing_in_flight(&target).await;
    let metrics = target.metrics().await;
    let series = r#"http_server_requests_total{method="GET",route="/ws/{room}",status="101"} 2"#;
    assert!(metrics.contains(series), "{metrics}");
}
