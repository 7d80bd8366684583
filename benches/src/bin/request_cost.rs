//! Fixed-count driver for the middleware's in-process cost: the app and variants of
//! `benches/middleware.rs`, called `COUNT` times, so that `perf stat` can count
//! instructions per request. Instruction counts do not move when another process
//! shares the core; times do.
//!
//! ```text
//! perf stat -e instructions:u target/release/request_cost diag 200000
//! ```
//!
//! Run it with two counts and divide the difference by the difference of counts to take
//! start-up out. Variants: `bare`, `noop` (an empty `Router::layer`), `diag`,
//! `diag_errors` (`diag` with `traceparent` on error and debug responses only), `debug` (every request in
//! diagnostic mode), `mixed` (every tenth), `trace` (tower-http's `TraceLayer`), `export`
//! (`diag` sending every request's server span to an OTLP collector, see `otlp_sink`).

use std::time::Instant;

use diag_axum::DiagRouterExt;
use diag_benches::{app, bench_diag, install_subscriber, request};
use http_body_util::BodyExt;
use tower::ServiceExt;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let variant = args.next().unwrap_or_else(|| "diag".into());
    let count: u64 = args.next().map_or(Ok(100_000), |n| n.parse())?;

    // `export`: diag sending every request's server span to the OTLP collector at
    // DIAG_OTLP_ENDPOINT (default 127.0.0.1:4318; `otlp_sink` stands in for one).
    let diag = if variant == "export" {
        let url =
            std::env::var("DIAG_OTLP_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:4318".into());
        diag_core::Diag::builder()
            .service("bench")
            .token(diag_benches::TOKEN)
            .otlp_endpoint(url)
            .build()?
    } else if variant == "diag_errors" {
        diag_benches::bench_builder()
            .traceparent_on_every_response(false)
            .build()?
    } else {
        bench_diag()?
    };
    install_subscriber(&diag);
    let router = match variant.as_str() {
        "bare" => app().with_state(()),
        "diag" | "diag_errors" | "debug" | "mixed" | "export" => {
            app().with_diag(&diag).with_state(())
        }
        // The floor of any axum middleware: `Router::layer` with a layer that does nothing.
        "noop" => app()
            .layer(tower::layer::util::Identity::new())
            .with_state(()),
        "trace" => app()
            .layer(tower_http::trace::TraceLayer::new_for_http())
            .with_state(()),
        other => return Err(format!("unknown variant `{other}`").into()),
    };
    // `mixed`: every tenth request in diagnostic mode.
    let debug_every = match variant.as_str() {
        "debug" => 1,
        "mixed" => 10,
        _ => 0,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let started = Instant::now();
    rt.block_on(async {
        for i in 0..count {
            let debug = debug_every > 0 && i % debug_every == 0;
            let res = router.clone().oneshot(request(debug)?).await?;
            std::hint::black_box(res.into_body().collect().await?);
        }
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    let ns = started.elapsed().as_nanos() as f64 / count as f64;
    println!("{variant}: {count} requests, {ns:.0} ns/request");
    Ok(())
}
