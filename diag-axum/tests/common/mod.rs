//! What the axum integration tests share.

use std::net::SocketAddr;

use axum::Router;

/// Serves `app` on a fresh loopback port (with `ConnectInfo`, as a real service would)
/// for the rest of the test; its address.
pub async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    addr
}
