//! `GET /debug`: the service explained to someone who has never seen it.

use std::fmt::Write;

use serde::Serialize;

use super::{DiagResponse, ENDPOINTS, EndpointRequest};
use crate::Diag;

#[derive(Serialize)]
struct Index<'a> {
    service: &'a str,
    version: &'a str,
    uptime_seconds: f64,
    diag_version: &'static str,
    disabled: bool,
    endpoints: Vec<EndpointEntry>,
    providers: Vec<String>,
}

#[derive(Serialize)]
struct EndpointEntry {
    path: &'static str,
    methods: &'static str,
    shows: &'static str,
}

pub(super) fn serve(diag: &Diag, req: &EndpointRequest) -> DiagResponse {
    let index = Index {
        service: diag.service(),
        version: diag.version(),
        uptime_seconds: diag.uptime().as_secs_f64(),
        diag_version: env!("CARGO_PKG_VERSION"),
        disabled: diag.is_disabled(),
        endpoints: ENDPOINTS
            .iter()
            .map(|e| EndpointEntry {
                path: e.path,
                methods: e.methods,
                shows: e.shows,
            })
            .collect(),
        providers: diag.state().names(),
    };
    if req.accepts("text/html") {
        DiagResponse::new(200, "text/html; charset=utf-8", html(&index))
    } else {
        DiagResponse::json(200, &index, true)
    }
}

fn html(index: &Index<'_>) -> String {
    let mut out = String::with_capacity(4096);
    let _ = write!(
        out,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{s} diagnostics</title>\
         <style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:60em}}\
         td,th{{text-align:left;padding:.2em .8em .2em 0;vertical-align:top}}code{{background:#f3f3f3}}</style>\
         </head><body><h1>{s} <small>{v}</small></h1>\
         <p>Up for {up:.0} s. diag {dv}.{off}</p><h2>Endpoints</h2><table><tr><th>path</th><th>methods</th><th>shows</th></tr>",
        s = escape(index.service),
        v = escape(index.version),
        up = index.uptime_seconds,
        dv = index.diag_version,
        off = if index.disabled {
            " <b>Kill switch on: diagnostics are paused.</b>"
        } else {
            ""
        },
    );
    for e in &index.endpoints {
        let link = if e.path.contains('{') {
            format!("<code>{}</code>", escape(e.path))
        } else {
            format!("<a href=\"{p}\"><code>{p}</code></a>", p = escape(e.path))
        };
        let _ = write!(
            out,
            "<tr><td>{link}</td><td>{}</td><td>{}</td></tr>",
            e.methods,
            escape(e.shows)
        );
    }
    out.push_str("</table><h2>State providers</h2><ul>");
    for p in &index.providers {
        let _ = write!(
            out,
            "<li><a href=\"/debug/state/{p}?pretty\"><code>{p}</code></a></li>",
            p = escape(p)
        );
    }
    out.push_str("</ul></body></html>\n");
    out
}

/// Escapes text for HTML element content and attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
