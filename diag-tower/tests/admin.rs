//! The admin listener serves a bounded number of connections: past
//! `admin::MAX_CONNECTIONS`, a new one waits until one of them closes.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn get_metrics(addr: std::net::SocketAddr) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(addr).await?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await?;
    Ok(answer)
}

#[tokio::test]
async fn connections_past_the_cap_wait_for_one_to_close() {
    let diag = diag_core::Diag::builder().build().unwrap();
    let admin = diag_tower::admin::serve(&diag, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = admin.local_addr();
    assert!(get_metrics(addr).await.unwrap().starts_with("HTTP/1.1 200"));

    // Idle connections that send nothing take every place.
    let mut idle = Vec::new();
    for _ in 0..diag_tower::admin::MAX_CONNECTIONS {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    let waiting = tokio::spawn(get_metrics(addr));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiting.is_finished(), "served past the cap");

    // One closes: the waiting request is served.
    drop(idle.pop());
    let answer = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("served once a place was free")
        .unwrap()
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    admin.abort();
}
