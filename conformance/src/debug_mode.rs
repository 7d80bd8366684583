//! Checks of diagnostic mode and the middleware's other duties: bodies untouched,
//! captures complete or not, trace context, bad credentials.

use futures_util::StreamExt;
use serde_json::Value;

use crate::*;

/// The handler gets exactly the bytes the client sent: a 5 MiB body streamed in uneven
/// chunks comes back from `/echo` identical, in diagnostic mode too (then the capture is
/// complete and truncated at its cap).
pub async fn handler_sees_byte_identical_streamed_body(t: &Target, debug: bool) {
    let payload = pattern(5 * 1024 * 1024 + 17);
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = payload
        .chunks(64 * 1024 + 3)
        .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
        .collect();
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let mut req = t
        .client
        .post(format!("{}/echo", t.base))
        .header("content-type", "application/octet-stream")
        .body(body);
    if debug {
        req = req.header("x-debug", TOKEN);
    }
    let res = req.send().await.expect("request");
    assert_eq!(res.status(), 200);
    let debug_id = header(&res, "x-debug-id");
    assert_eq!(debug_id.is_some(), debug);
    assert_eq!(content_type(&res), "application/octet-stream");
    let mut got = Vec::with_capacity(payload.len());
    let mut stream = res.bytes_stream();
    while let Some(chunk) = stream.next().await {
        got.extend_from_slice(&chunk.expect("chunk"));
    }
    assert_eq!(got.len(), payload.len());
    assert!(got == payload, "echoed body differs from what was sent");
    if let Some(id) = debug_id {
        let capture = wait_for_capture(t, &id).await;
        assert_eq!(capture["complete"], true, "{capture}");
        assert_eq!(capture["request"]["body"]["truncated"], true);
        assert_eq!(capture["request"]["body"]["total_bytes"], payload.len());
        assert_eq!(capture["response"]["body"]["total_bytes"], payload.len());
    }
}

/// A client that hangs up in the middle of a debug request's streamed echo: the capture
/// is stored, marked incomplete, and the request no longer counts as in flight. Over
/// HTTP/1.1 the TCP connection closes; over HTTP/2 too, taking every stream with it.
pub async fn client_that_goes_away_leaves_an_incomplete_capture(t: &Target) {
    if t.version == reqwest::Version::HTTP_2 {
        return client_that_goes_away_leaves_an_incomplete_capture_h2(t).await;
    }
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = t.base.trim_start_matches("http://");
    let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST /echo HTTP/1.1\r\nhost: x\r\nx-debug: {TOKEN}\r\n\
         content-type: application/octet-stream\r\ncontent-length: {}\r\n\r\n",
        8 * 1024 * 1024
    );
    conn.write_all(head.as_bytes()).await.expect("write");
    conn.write_all(&pattern(256 * 1024)).await.expect("write");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let end_of_head = loop {
        if let Some(at) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let n = conn.read(&mut buf).await.expect("read");
        assert!(n > 0, "closed before the response head");
        got.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&got[..end_of_head]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let id = head
        .lines()
        .find_map(|l| l.strip_prefix("x-debug-id:"))
        .map(|v| v.trim().to_owned())
        .expect("x-debug-id");
    drop(conn);

    let capture = wait_for_capture(t, &id).await;
    let bodies = (
        &capture["request"]["body"]["total_bytes"],
        &capture["response"]["body"]["total_bytes"],
    );
    assert_eq!(
        capture["complete"], false,
        "capture {id}, bodies {bodies:?}"
    );
    assert!(
        capture["panicked"].is_null(),
        "a client going away is no panic: {capture}"
    );
    wait_until_nothing_in_flight(t).await;
}

/// The same over HTTP/2: the connection is lost while a debug request's body is still
/// streaming in and its echo streaming out; every stream on it ends at once.
async fn client_that_goes_away_leaves_an_incomplete_capture_h2(t: &Target) {
    use http_body_util::StreamBody;
    let addr = t.base.trim_start_matches("http://");
    // A second handle on the socket, to cut the connection from outside: hyper drives an
    // HTTP/2 connection from a task of its own, which dropping `conn` would not stop.
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect")
        .into_std()
        .expect("socket");
    let cutter = tcp.try_clone().expect("socket");
    let tcp = tokio::net::TcpStream::from_std(tcp).expect("socket");
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    .expect("HTTP/2 handshake");
    let conn = tokio::spawn(conn);
    // The request body: 256 KiB, then nothing more for as long as the test runs.
    let (tx, rx) =
        tokio::sync::mpsc::channel::<Result<hyper::body::Frame<bytes::Bytes>, std::io::Error>>(4);
    let first = hyper::body::Frame::data(bytes::Bytes::from(pattern(256 * 1024)));
    tx.send(Ok(first)).await.expect("send");
    let body = StreamBody::new(Box::pin(futures_util::stream::unfold(rx, |mut rx| async {
        rx.recv().await.map(|frame| (frame, rx))
    })));
    let req = http::Request::post(format!("{}/echo", t.base))
        .header("x-debug", TOKEN)
        .header("content-type", "application/octet-stream")
        .body(body)
        .expect("request");
    let res = sender.send_request(req).await.expect("response head");
    assert_eq!(res.status(), 200);
    let id = res
        .headers()
        .get("x-debug-id")
        .and_then(|v| v.to_str().ok())
        .expect("x-debug-id")
        .to_owned();
    cutter.shutdown(std::net::Shutdown::Both).expect("shutdown");
    let _ = conn.await;

    let capture = wait_for_capture(t, &id).await;
    assert_eq!(capture["complete"], false, "capture {id}");
    wait_until_nothing_in_flight(t).await;
    drop(tx);
}
/// Every watched response carries `traceparent`; an incoming sampled one is continued.
pub async fn trace_context_on_every_response(t: &Target) {
    let res = t.get("/users/1").send().await.expect("request");
    assert_eq!(res.version(), t.version);
    let tp = header(&res, "traceparent").expect("traceparent");
    assert_eq!(tp.len(), 55, "{tp}");
    assert!(
        header_lines(&res, "vary").is_empty(),
        "diag's vary is for debug requests only"
    );
    let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let res = t
        .get("/users/1")
        .header("traceparent", parent)
        .send()
        .await
        .expect("request");
    let tp = header(&res, "traceparent").expect("traceparent");
    assert!(
        tp.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-") && tp.ends_with("-01"),
        "{tp}"
    );
    assert!(!tp.contains("00f067aa0ba902b7"), "a span of its own: {tp}");
}

/// `X-Debug` with the token: `X-Debug-Id`, `Server-Timing`, and a redacted capture.
pub async fn debug_request_is_captured(t: &Target) {
    let res = t
        .get("/users/42?password=hunter2")
        .header("x-debug", TOKEN)
        .header("authorization", "Bearer user-secret")
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 200);
    let id = header(&res, "x-debug-id").expect("x-debug-id");
    let timing = header(&res, "server-timing").expect("server-timing");
    assert!(timing.contains("total;dur="), "{timing}");
    // Not for a shared cache to hand to others: it varies with the debug header, and no
    // cache keeps it (the next debug request gets a capture of its own).
    assert_eq!(header_lines(&res, "vary"), ["x-debug"]);
    assert_eq!(header_lines(&res, "cache-control"), ["no-store"]);
    // The capture stays on the instance that served the request, which says who it is.
    let instance = header(&res, "x-debug-instance").expect("x-debug-instance");
    assert_eq!(t.authed_json("/debug").await["instance"], instance.as_str());
    // Asked for a capture it does not have, an instance says which one it is.
    let missing = t
        .authed("/debug/requests/999999")
        .send()
        .await
        .expect("request");
    assert_json_error(missing, 404, &instance).await;
    let tp = header(&res, "traceparent").expect("traceparent");
    assert!(
        tp.ends_with("-01"),
        "a debug request's trace is sampled: {tp}"
    );
    let capture = wait_for_capture(t, &id).await;
    let text = capture.to_string();
    // The body is small and sized: its end must be seen even if never polled to `None`.
    assert_eq!(capture["complete"], true, "{text}");
    // A GET has no body, and no handler polls one to its end: still not "end not seen".
    assert_eq!(capture["request"]["body"]["ended"], true, "{text}");
    assert_eq!(capture["response"]["status"], 200, "{text}");
    assert_eq!(capture["request"]["route"], "/users/{id}", "{text}");
    for secret in [TOKEN, "user-secret", "hunter2"] {
        assert!(!text.contains(secret), "{secret} in the capture: {text}");
    }
    let list: Value = t.authed_json("/debug/requests").await;
    assert!(
        list["captures"]
            .as_array()
            .expect("captures")
            .iter()
            .any(|c| c["id"].as_u64().is_some_and(|n| n.to_string() == id))
    );
    capture_is_pinned_and_unpinned(t, &id).await;
}

/// `PUT` and `DELETE /debug/requests/{id}/pin`, over the adapter's own routing: the
/// capture is marked pinned, then not; neither without the token.
async fn capture_is_pinned_and_unpinned(t: &Target, id: &str) {
    let url = format!("{}/debug/requests/{id}/pin", t.base);
    let refused = t.client.put(&url).send().await.expect("request");
    assert_eq!(refused.status(), 401, "pinning takes the token");
    let pinned = t
        .client
        .put(&url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("request");
    assert_eq!(pinned.status(), 200, "{url}");
    let body: Value = pinned.json().await.expect("JSON");
    assert_eq!(body["pinned"], true, "{body}");
    let capture = t.authed_json(&format!("/debug/requests/{id}")).await;
    assert_eq!(capture["pinned"], true, "{capture}");
    let unpinned = t
        .client
        .delete(&url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("request");
    assert_eq!(unpinned.status(), 200, "{url}");
    let capture = t.authed_json(&format!("/debug/requests/{id}")).await;
    assert_eq!(capture["pinned"], false, "{capture}");
}

/// A streamed response whose `content-length` the handler set: servers stop polling
/// once that many bytes went out, so the capture must end on the length, not on a
/// final poll that never comes.
pub async fn sized_streamed_response_is_captured_complete(t: &Target) {
    let res = t
        .get("/sized")
        .header("x-debug", TOKEN)
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 200);
    let id = header(&res, "x-debug-id").expect("x-debug-id");
    assert_eq!(res.bytes().await.expect("body").len(), SIZED_BODY);
    let capture = wait_for_capture(t, &id).await;
    assert_eq!(capture["complete"], true, "{capture}");
    assert_eq!(
        capture["response"]["body"]["total_bytes"], SIZED_BODY,
        "{capture}"
    );
}

/// Garbage, wrong or oversized `X-Debug`: served normally, never a 4xx/5xx.
pub async fn bad_debug_credentials_are_served_normally(t: &Target) {
    for bad in ["nope".to_owned(), "v1.1.x".to_owned(), "x".repeat(2048)] {
        let res = t
            .get("/users/7")
            .header("x-debug", bad)
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), 200);
        assert!(header(&res, "x-debug-id").is_none());
        assert!(header(&res, "x-debug-status").is_some_and(|s| s.starts_with("rejected")));
        // Refused, the answer still differs from one to a request without the header,
        // but it may be cached as the handler says.
        assert_eq!(header_lines(&res, "vary"), ["x-debug"]);
        assert!(header_lines(&res, "cache-control").is_empty());
    }
}
