//! A small orders service on actix-web with diag mounted: `main.rs` runs it, the tests in
//! `tests/` run the same server on an ephemeral port. What it shows: the middleware and
//! the endpoints in two lines of `App`, a DEBUG line and a `db_query` span that only a
//! debug request's capture (and log output) carries, a card number redacted from the
//! capture, and two state providers.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{App, HttpResponse, HttpServer, web};
use diag_core::{Diag, DiagBuilder};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::{EnvFilter, fmt};

/// The orders the store keeps at most; a demo must not grow without bound either.
pub const MAX_ORDERS: usize = 10_000;

/// What this service adds to a `Diag` builder (from the environment or from code): its
/// name and version, and the `card_number` field redacted from captured bodies.
pub fn settings(builder: DiagBuilder) -> DiagBuilder {
    builder
        .service("orders")
        .version(env!("CARGO_PKG_VERSION"))
        .redact_field("card_number")
}

/// Effective configuration, shown at `/debug/state/config` with `db_password` as `"***"`.
#[derive(Clone, Debug, Serialize)]
pub struct Config {
    /// Where the server listens (`LISTEN`, default `127.0.0.1:8081`).
    pub listen: String,
    /// The (simulated) database.
    pub db_url: String,
    /// A secret: diag shows it redacted.
    pub db_password: String,
    /// How long a simulated query takes (`DB_LATENCY_MS`, default 15).
    pub db_latency_ms: u64,
}

impl Config {
    /// From the environment, with the defaults above.
    pub fn from_env() -> Config {
        let var = |name: &str, default: &str| std::env::var(name).unwrap_or(default.into());
        Config {
            listen: var("LISTEN", "127.0.0.1:8081"),
            db_url: var("DB_URL", "postgres://orders@127.0.0.1/orders"),
            db_password: var("DB_PASSWORD", "demo-password"),
            db_latency_ms: var("DB_LATENCY_MS", "15").parse().unwrap_or(15),
        }
    }
}

/// An order as stored and served.
#[derive(Clone, Debug, Serialize)]
pub struct Order {
    /// Its id.
    pub id: u64,
    /// What was ordered.
    pub item: String,
    /// How many.
    pub quantity: u32,
    /// The card's last four digits; the number itself is never kept.
    pub card_last4: String,
}

/// The body of `POST /orders`.
#[derive(Debug, Deserialize)]
pub struct NewOrder {
    item: String,
    quantity: u32,
    card_number: String,
}

/// The orders, behind a simulated slow database.
pub struct Store {
    orders: Mutex<BTreeMap<u64, Order>>,
    latency: Duration,
}

impl Store {
    fn new(latency: Duration) -> Store {
        let seed = (1..=3).map(|id| {
            let order = Order {
                id,
                item: format!("item-{id}"),
                quantity: 1,
                card_last4: "4242".into(),
            };
            (id, order)
        });
        Store {
            orders: Mutex::new(seed.collect()),
            latency,
        }
    }

    #[tracing::instrument(level = "debug", name = "db_query", skip(self))]
    async fn load(&self, id: u64) -> Option<Order> {
        tracing::debug!(table = "orders", "querying orders table");
        actix_web::rt::time::sleep(self.latency).await;
        self.orders.lock().get(&id).cloned()
    }

    #[tracing::instrument(level = "debug", name = "db_insert", skip_all)]
    async fn insert(&self, new: NewOrder) -> Option<Order> {
        actix_web::rt::time::sleep(self.latency).await;
        let mut orders = self.orders.lock();
        if orders.len() >= MAX_ORDERS {
            return None;
        }
        let id = orders.keys().next_back().map_or(1, |last| last + 1);
        let last4 = new.card_number.len().saturating_sub(4);
        let order = Order {
            id,
            item: new.item,
            quantity: new.quantity,
            card_last4: new.card_number.get(last4..).unwrap_or_default().to_owned(),
        };
        tracing::debug!(id, "order stored");
        orders.insert(id, order.clone());
        Some(order)
    }

    fn summary(&self) -> serde_json::Value {
        let orders = self.orders.lock();
        serde_json::json!({ "orders": orders.len(), "capacity": MAX_ORDERS })
    }
}

async fn get_order(id: web::Path<u64>, store: web::Data<Store>) -> HttpResponse {
    match store.load(id.into_inner()).await {
        Some(order) => HttpResponse::Ok().json(order),
        None => HttpResponse::NotFound().json(serde_json::json!({ "error": "no such order" })),
    }
}

async fn post_order(new: web::Json<NewOrder>, store: web::Data<Store>) -> HttpResponse {
    match store.insert(new.into_inner()).await {
        Some(order) => HttpResponse::Created().json(order),
        None => {
            HttpResponse::ServiceUnavailable().json(serde_json::json!({ "error": "store full" }))
        }
    }
}

/// The server on `listener`, with diag's middleware and endpoints (`/metrics`,
/// `/debug/...`) mounted and the state providers `store` and `config` registered. Run
/// it by awaiting it inside an actix system.
pub fn server(diag: Diag, config: &Config, listener: TcpListener) -> std::io::Result<Server> {
    let store = web::Data::new(Store::new(Duration::from_millis(config.db_latency_ms)));
    let s = store.clone();
    // A name clash here is a programming error in this demo, not a runtime condition.
    let _ = diag.state().register("store", move || s.summary());
    if let Err(e) = diag.config(config) {
        tracing::warn!(error = %e, "could not register the config provider");
    }
    let server = HttpServer::new(move || {
        App::new()
            .wrap(diag_actix::DiagMiddleware::new(&diag))
            .configure(diag_actix::configure(&diag))
            .app_data(store.clone())
            .route("/orders/{id}", web::get().to(get_order))
            .route("/orders", web::post().to(post_order))
            .route("/healthz", web::get().to(|| async { "ok" }))
    })
    .listen(listener)?
    .run();
    Ok(server)
}

/// Installs the global subscriber: log lines to `writer` (with colours when `ansi`) at
/// `RUST_LOG` (default `info`), DEBUG for a debug request only, each request's trace id
/// on its lines, plus diag's error ring and debug recorder.
pub fn init_tracing<W>(diag: &Diag, writer: W, ansi: bool)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let service_filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let output = fmt::layer()
        .with_writer(diag_core::log::TraceIdWriter::new(writer))
        .with_ansi(ansi);
    diag.init_tracing(output, service_filter)
        .expect("no other global tracing subscriber");
}
