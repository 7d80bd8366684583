use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, guard, web};
use diag_core::{Diag, DiagResponse, EndpointRequest};

use crate::ActixHeaders;
use futures_util::StreamExt;

/// Returns a function for [`App::configure`](actix_web::App::configure) that mounts the
/// diagnostics endpoints. The peer address is the socket's (`HttpRequest::peer_addr`).
///
/// ```
/// # #[actix_web::main] async fn main() {
/// use actix_web::{App, test};
/// let diag = diag_core::Diag::builder().token("t").build().unwrap();
/// let app = test::init_service(App::new().configure(diag_actix::configure(&diag))).await;
/// let req = test::TestRequest::get().uri("/debug/state").insert_header(("authorization", "Bearer t")).to_request();
/// let res = test::call_service(&app, req).await;
/// assert_eq!(res.status(), 200);
/// # }
/// ```
pub fn configure(diag: &Diag) -> impl FnOnce(&mut web::ServiceConfig) + use<> {
    let diag = diag.clone();
    move |cfg| {
        // Each of diag's paths on its own, guarded by diag's own list: a catch-all
        // `/debug/{tail}` would take the service's `/debug/pprof` and its 404s, and
        // would be the route label (actix's `match_pattern` ignores guards) of every
        // stray `/debug/...` request.
        for (root, below_is_ours) in diag_core::endpoint::roots() {
            // Nothing below `/metrics`: its pattern would otherwise name a service's
            // `/metrics/...` requests (actix's `match_pattern` ignores guards).
            let below = if below_is_ours {
                format!("{root}/{{tail:.*}}")
            } else {
                format!("{root}/")
            };
            let ours = diag.clone();
            cfg.service(
                web::resource([root.to_owned(), below])
                    .guard(guard::fn_guard(move |ctx| {
                        ours.is_endpoint(ctx.head().uri.path())
                    }))
                    .route(web::route().to(serve)),
            );
        }
        cfg.app_data(web::Data::new(diag));
    }
}

async fn serve(req: HttpRequest, mut payload: web::Payload, diag: web::Data<Diag>) -> HttpResponse {
    let mut request = EndpointRequest::from_parts(
        req.method().as_str(),
        req.path(),
        Some(req.query_string()),
        &ActixHeaders(req.headers()),
        // HTTP/2 (over TLS) names the host only as `:authority`.
        req.uri().authority().map(|a| a.as_str()),
        req.peer_addr(),
    );
    // Read only for a client let in: no one else makes diag hold a body.
    if !diag.refuses(&request) {
        while let Some(chunk) = payload.next().await {
            let Ok(chunk) = chunk else {
                return respond(DiagResponse::error(400, "could not read the request body"));
            };
            if request.push_body(&chunk).is_err() {
                return respond(diag.body_too_large());
            }
        }
    }
    respond(diag.serve(request).await)
}

fn respond(r: DiagResponse) -> HttpResponse {
    let mut builder = HttpResponse::build(
        StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
    );
    for (name, value) in r.headers {
        builder.append_header((name, value));
    }
    builder.body(r.body)
}
