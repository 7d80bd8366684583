//! A demo instance on an ephemeral port, for the tests.
#![allow(dead_code)] // each test binary uses its own part

use std::net::SocketAddr;

use checkout_axum::{Config, app};
use diag_core::Diag;

pub const TOKEN: &str = "test-token";
pub const API_KEY: &str = "pk_live_must_not_leak";

/// The configuration the tests run the demo with.
pub fn test_config() -> Config {
    Config {
        listen: "127.0.0.1:0".into(),
        pricing_latency_ms: (20, 50),
        order_queue_capacity: 16,
        pricing_api_key: API_KEY.into(),
    }
}

/// A `Diag` for the demo with the test token and these builder tweaks.
pub fn diag_with_token(
    tweak: impl FnOnce(diag_core::DiagBuilder) -> diag_core::DiagBuilder,
) -> Diag {
    tweak(
        Diag::builder()
            .service("checkout")
            .version("1.2.3")
            .token(TOKEN),
    )
    .build()
    .unwrap()
}

pub struct Running {
    pub base: String,
    pub client: reqwest::Client,
    pub diag: Diag,
}

impl Running {
    pub async fn start(diag: Diag) -> Running {
        Running::start_with(diag, test_config()).await
    }

    /// Starts the demo with this configuration (its `listen` is ignored: the port is
    /// ephemeral).
    pub async fn start_with(diag: Diag, config: Config) -> Running {
        let router = app(&diag, &config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .unwrap();
        });
        Running {
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
            diag,
        }
    }

    pub async fn with_token() -> Running {
        Running::start(diag_with_token(|b| b)).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(self.url(path))
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.post(self.url(path))
    }

    pub fn admin(&self, path: &str) -> reqwest::RequestBuilder {
        self.get(path).bearer_auth(TOKEN)
    }

    /// `GET path`, as JSON.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        self.get(path).send().await.unwrap().json().await.unwrap()
    }

    /// `GET path` with the token, as JSON.
    pub async fn admin_json(&self, path: &str) -> serde_json::Value {
        self.admin(path).send().await.unwrap().json().await.unwrap()
    }

    /// `GET /metrics` as Prometheus asks for it: OpenMetrics, with exemplars.
    pub async fn openmetrics(&self) -> String {
        text(self.get("/metrics").header("accept", OPENMETRICS)).await
    }
}

/// The `Accept` of a Prometheus scrape that wants exemplars.
pub const OPENMETRICS: &str = "application/openmetrics-text;version=1.0.0";

/// A loopback port nobody listens on right now (the kernel picks it, so never a fixed
/// port such as 9090, where the Debian package's own Prometheus may be).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Sends `request`, expects a 2xx, and returns the body as text.
pub async fn text(request: reqwest::RequestBuilder) -> String {
    let res = request.send().await.unwrap();
    assert!(res.status().is_success(), "{}: {}", res.url(), res.status());
    res.text().await.unwrap()
}
