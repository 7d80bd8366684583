//! A listener of its own for the diagnostics endpoints, for operators who keep them off
//! the public port.

use std::io;
use std::net::SocketAddr;

use diag_core::Diag;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::DiagEndpoints;

/// Connections the admin listener serves at once; further ones wait in the kernel's
/// backlog until one closes.
///
/// ```
/// assert_eq!(diag_tower::admin::MAX_CONNECTIONS, 64);
/// ```
pub const MAX_CONNECTIONS: usize = 64;

/// How long a connection to the admin listener may take to send a request head.
const HEAD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// How long one connection to the admin listener lasts at most (every endpoint answers
/// within a second; a client that keeps its connection open reconnects).
const CONNECTION_LIFETIME: std::time::Duration = std::time::Duration::from_secs(60);

/// A running admin listener.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use http_body_util::Empty;
/// use hyper_util::{client::legacy::Client, rt::TokioExecutor};
///
/// let diag = diag_core::Diag::builder().build().unwrap();
/// let admin = diag_tower::admin::serve(&diag, "127.0.0.1:0".parse()?).await?;
/// let client = Client::builder(TokioExecutor::new()).build_http::<Empty<bytes::Bytes>>();
/// let res = client.get(format!("http://{}/metrics", admin.local_addr()).parse()?).await?;
/// assert_eq!(res.status(), 200);
/// admin.abort();
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct AdminServer {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl AdminServer {
    /// The address it listens on (useful with port 0).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let admin = diag_tower::admin::serve(&diag, "127.0.0.1:0".parse().unwrap()).await?;
    /// assert!(admin.local_addr().ip().is_loopback());
    /// assert_ne!(admin.local_addr().port(), 0, "the port the system picked");
    /// # admin.abort();
    /// # Ok(()) }
    /// ```
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting connections.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// let admin = diag_tower::admin::serve(&diag, "127.0.0.1:0".parse().unwrap()).await?;
    /// admin.abort();
    /// // The runtime drops the listener when it next runs the aborted task.
    /// let mut refused = false;
    /// for _ in 0..100 {
    ///     tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    ///     refused = tokio::net::TcpStream::connect(admin.local_addr()).await.is_err();
    ///     if refused { break }
    /// }
    /// assert!(refused);
    /// # Ok(()) }
    /// ```
    pub fn abort(&self) {
        self.task.abort();
    }
}

/// Serves the endpoints on the admin address the builder or `DIAG_ADMIN_ADDR` set, if
/// one is set (setting it starts nothing by itself: this does); `None` otherwise. Call
/// it once, at start, on the Tokio runtime that should serve them.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
/// let none = diag_core::Diag::builder().build().unwrap();
/// assert!(diag_tower::admin::serve_configured(&none).await?.is_none());
/// let diag = diag_core::Diag::builder().admin_addr("127.0.0.1:0").build().unwrap();
/// let admin = diag_tower::admin::serve_configured(&diag).await?.expect("configured");
/// assert!(admin.local_addr().ip().is_loopback());
/// # admin.abort();
/// # Ok(()) }
/// ```
pub async fn serve_configured(diag: &Diag) -> io::Result<Option<AdminServer>> {
    match diag.admin_addr() {
        Some(addr) => serve(diag, addr).await.map(Some),
        None => Ok(None),
    }
}

/// Binds `addr` and serves only the diagnostics endpoints there, on the current Tokio
/// runtime. The peer address is the socket's, so loopback-only access works as documented.
///
/// ```no_run
/// # #[tokio::main] async fn main() -> std::io::Result<()> {
/// let diag = diag_core::Diag::builder().build().unwrap();
/// let admin = diag_tower::admin::serve(&diag, "127.0.0.1:9901".parse().unwrap()).await?;
/// println!("diagnostics on http://{}/debug", admin.local_addr());
/// # Ok(()) }
/// ```
pub async fn serve(diag: &Diag, addr: SocketAddr) -> io::Result<AdminServer> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let endpoints = DiagEndpoints::new(diag);
    let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let task = tokio::spawn(async move {
        loop {
            // Past MAX_CONNECTIONS, further ones wait in the kernel's backlog.
            let Ok(permit) = permits.clone().acquire_owned().await else {
                return;
            };
            let (stream, peer) = match listener.accept().await {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::warn!(error = %e, "diag admin listener: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let endpoints = endpoints.clone();
            tokio::spawn(async move {
                let _permit = permit;
                // hyper's head timeout starts once it knows the protocol, which it
                // learns from the first bytes: a client that sends none is closed here.
                let mut first = [0u8; 1];
                match tokio::time::timeout(HEAD_TIMEOUT, stream.peek(&mut first)).await {
                    Ok(Ok(n)) if n > 0 => {}
                    _ => return,
                }
                let svc = service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(peer);
                    endpoints.clone().oneshot(req)
                });
                let mut builder =
                    hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                builder
                    .http1()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEAD_TIMEOUT);
                let conn = builder.serve_connection(TokioIo::new(stream), svc);
                let _ = tokio::time::timeout(CONNECTION_LIFETIME, conn).await;
            });
        }
    });
    Ok(AdminServer { addr, task })
}
