//! Property 3: the endpoints answer anything with a status from a small set, and refuse
//! whoever the access rules refuse.

use diag_core::body::Polled;
use diag_core::request::RequestView;
use diag_core::{Diag, EndpointRequest};
use proptest::prelude::*;
use std::net::{IpAddr, SocketAddr};
use std::sync::LazyLock;

use crate::requests::*;
use crate::support::*;

pub(crate) struct EndpointSetup {
    pub(crate) diag: Diag,
    pub(crate) token: Option<&'static str>,
    pub(crate) metrics_public: bool,
    /// The id of a capture the recorder holds.
    pub(crate) capture: u64,
}

/// `/debug/*` answers with these and no other status: 200, 400 (a bad query, id or body),
/// 401 (refused), 403 (Basic credentials on a method that writes), 404 (no such endpoint,
/// provider or capture), 405 (wrong method), 409 (`/debug/log-level` changes without the
/// service's log filter installed).
pub(crate) const ENDPOINT_STATUSES: [u16; 7] = [200, 400, 401, 403, 404, 405, 409];

pub(crate) static ENDPOINTS: LazyLock<Vec<EndpointSetup>> = LazyLock::new(|| {
    let with_capture = |diag: Diag, token: Option<&'static str>, metrics_public| {
        let headers: Vec<(String, String)> =
            vec![("x-debug".to_owned(), token.unwrap_or("1").to_owned())];
        let peer = SocketAddr::from(([127, 0, 0, 1], 4000));
        let guard = diag.begin(&RequestView {
            method: "POST",
            route: Some("/cart"),
            uri: "/cart?password=hunter2",
            headers: &headers,
            peer: &move || Some(peer),
        });
        let capture = guard.debug_id().expect("a debug request");
        let mut tap = guard.finish(200, &mut ()).expect("a debug request's tap");
        tap.observe(Polled::Data(b"{\"ok\":true}"));
        tap.observe(Polled::End);
        EndpointSetup {
            diag,
            token,
            metrics_public,
            capture,
        }
    };
    let builder = || Diag::builder().service("checkout").instance(INSTANCE);
    vec![
        with_capture(
            builder().token(TOKEN).build().expect("a diag"),
            Some(TOKEN),
            true,
        ),
        with_capture(
            builder()
                .token(TOKEN)
                .metrics_public(false)
                .build()
                .expect("a diag"),
            Some(TOKEN),
            false,
        ),
        with_capture(
            builder()
                .trusted_proxy("10.0.0.0/8")
                // A local reverse proxy: the client behind it must not pass for loopback.
                .trusted_proxy("127.0.0.1")
                .build()
                .expect("a diag"),
            None,
            true,
        ),
    ]
});

/// What the access rules say about a request to the endpoints.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Access {
    Allowed,
    /// 401: no credentials, or wrong ones.
    Refused,
    /// 403: HTTP Basic credentials with the right token, on a method that writes.
    ReadOnly,
    /// 403 without a challenge: no token is configured and the client is not proven to
    /// be on loopback; no credentials could help.
    Forbidden,
}

/// The documented access rules (`auth.rs`). With a token: the first `Authorization` line
/// is `Bearer <token>`, or `Basic base64(<any user>:<token>)` which only reads (`GET`,
/// `HEAD`); scheme in any case, then a space, white space around the credentials
/// ignored. Without a token: a loopback client, through trusted proxies (10.0.0.0/8 and
/// 127.0.0.1) only.
pub(crate) fn access(setup: &EndpointSetup, req: &EndpointRequest) -> Access {
    if let Some(token) = setup.token {
        let Some(value) = req
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("authorization"))
            .map(|(_, v)| v.as_bytes())
        else {
            return Access::Refused;
        };
        let after = |scheme: &str| {
            let n = scheme.len();
            (value.len() > n
                && value[..n].eq_ignore_ascii_case(scheme.as_bytes())
                && value[n] == b' ')
                .then(|| value[n..].trim_ascii())
        };
        let (candidate, basic) = if let Some(t) = after("bearer") {
            (t.to_vec(), false)
        } else if let Some(encoded) = after("basic") {
            let password = (encoded.len() <= 4096)
                .then(|| base64_decode(encoded))
                .flatten()
                .and_then(|d| {
                    let colon = d.iter().position(|b| *b == b':')?;
                    Some(d[colon + 1..].to_vec())
                });
            match password {
                Some(p) => (p, true),
                None => return Access::Refused,
            }
        } else {
            return Access::Refused;
        };
        if candidate != token.as_bytes() {
            return Access::Refused;
        }
        return if basic && !matches!(req.method.as_str(), "GET" | "HEAD") {
            Access::ReadOnly
        } else if basic && !own_page_or_none(req) {
            // A browser's Basic credentials on another site's script's request.
            Access::Forbidden
        } else {
            Access::Allowed
        };
    }
    let f = Forwarding::from_lines(req.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    let trusted = |ip: IpAddr| in_10_8(ip) || ip == IpAddr::from([127, 0, 0, 1]);
    if !from_network(req.peer, &f, trusted, |ip| ip.is_loopback()) {
        return Access::Forbidden;
    }
    // A browser page on this host is loopback too: no writes with an `Origin`, no reads
    // with another site's, and no `Host` but a loopback name (through a loopback proxy too: it passes the name on).
    let header = |name: &str| {
        req.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    // Writes never with an `Origin`; reads only from the page of the very host asked for.
    if header("origin").is_some() && !matches!(req.method.as_str(), "GET" | "HEAD") {
        return Access::Forbidden;
    }
    if !own_page_or_none(req) {
        return Access::Forbidden;
    }
    if header("host").is_some_and(|h| !loopback_host(h)) {
        return Access::Forbidden;
    }
    Access::Allowed
}

/// No `Origin`, or one naming the very `Host` asked for (its first lines of each).
fn own_page_or_none(req: &EndpointRequest) -> bool {
    let header = |name: &str| {
        req.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let Some(origin) = header("origin") else {
        return true;
    };
    let ascii_trim = |v: &str| v.trim_matches(|c: char| c.is_ascii_whitespace()).to_owned();
    header("host").is_some_and(|host| {
        ["http://", "https://"].iter().any(|scheme| {
            ascii_trim(origin).eq_ignore_ascii_case(&format!("{scheme}{}", ascii_trim(host)))
        })
    })
}

/// `localhost`, a name under it, or a loopback address, with an optional port (written
/// from the rule, not from `auth.rs`).
fn loopback_host(host: &str) -> bool {
    let host = host.trim();
    let name = match host.strip_prefix('[') {
        Some(rest) => match rest.find(']') {
            Some(end) => &rest[..end],
            None => return false,
        },
        None => match host.rfind(':') {
            Some(colon) if host[colon + 1..].chars().all(|c| c.is_ascii_digit()) => &host[..colon],
            _ => host,
        },
    }
    .trim_end_matches('.')
    .to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name
            .parse::<IpAddr>()
            .is_ok_and(|ip| canonical(ip).is_loopback())
}

pub(crate) const BASE64: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with `=` padding.
pub(crate) fn base64_encode(data: &[u8]) -> String {
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(BASE64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Standard base64, `=` padding optional (RFC 4648 as browsers send it): `None` for any
/// other byte, or for a length no encoding has.
pub(crate) fn base64_decode(text: &[u8]) -> Option<Vec<u8>> {
    let text = text
        .strip_suffix(b"==")
        .or_else(|| text.strip_suffix(b"="))
        .unwrap_or(text);
    if text.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in text {
        let v = BASE64.iter().position(|b| b == c)?;
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

#[derive(Debug, Clone)]
pub(crate) struct EndpointCase {
    pub(crate) setup: usize,
    pub(crate) req: EndpointRequest,
}

pub(crate) fn path_strategy() -> BoxedStrategy<String> {
    let segment = prop_oneof![
        6 => prop::sample::select(vec![
            "", "state", "process", "config", "errors", "routes", "requests", "events",
            "log-level", "metrics", "debug", "..", ".", "%2e%2e", "1", "0", "2", "-1",
            "18446744073709551616", "4bf92f3577b34da6a3ce929d0e0e4736",
            "00000000000000000000000000000000", "4BF92F3577B34DA6A3CE929D0E0E4736", "ünï",
            "\u{0}", " ",
        ])
        .prop_map(str::to_owned),
        1 => "[^/]{0,12}",
        1 => (0u64..5).prop_map(|n| n.to_string()),
    ];
    prop_oneof![
        4 => (
            prop::sample::select(vec!["/debug", "/metrics", "/debug/state", "/debug/requests", "/debug/", ""]),
            prop::collection::vec((segment, prop::sample::select(vec!["/", "//", "/"])), 0..4),
            prop::sample::select(vec!["", "/", "//"]),
        )
            .prop_map(|(root, rest, end)| {
                let mut path = root.to_owned();
                for (s, sep) in rest {
                    path.push_str(sep);
                    path.push_str(&s);
                }
                path.push_str(end);
                path
            }),
        6 => prop::sample::select(vec![
            "/debug", "/debug/state", "/debug/state/process", "/debug/state/config",
            "/debug/state/routes", "/debug/state/nope", "/debug/requests", "/debug/requests/1",
            "/debug/requests/2", "/debug/events", "/debug/log-level", "/metrics", "/metrics/",
            "/debug/",
        ])
        .prop_map(str::to_owned),
        1 => "/debug/.{0,24}",
        1 => ".{0,24}",
        1 => (1_000usize..20_000).prop_map(|n| format!("/debug/state/{}", "x".repeat(n))),
    ]
    .boxed()
}

pub(crate) fn query_strategy() -> BoxedStrategy<Option<String>> {
    let key = prop::sample::select(vec![
        "pretty",
        "format",
        "trace_id",
        "since",
        "limit",
        "kind",
        "ttl_seconds",
        "x",
    ]);
    let value = prop_oneof![
        prop::sample::select(vec![
            "",
            "0",
            "1",
            "false",
            "text",
            "json",
            "html",
            "-1",
            "1e3",
            "NaN",
            "inf",
            "18446744073709551616",
            "4bf92f3577b34da6a3ce929d0e0e4736",
            "start",
            "%20",
        ])
        .prop_map(str::to_owned),
        "[ -~]{0,12}",
    ];
    prop_oneof![
        2 => Just(None),
        4 => prop::collection::vec((key, prop::option::of(value)), 1..4).prop_map(|pairs| {
            Some(
                pairs
                    .into_iter()
                    .map(|(k, v)| match v {
                        Some(v) => format!("{k}={v}"),
                        None => k.to_owned(),
                    })
                    .collect::<Vec<_>>()
                    .join("&"),
            )
        }),
        1 => ".{0,40}".prop_map(Some),
    ]
    .boxed()
}

pub(crate) fn endpoint_header() -> BoxedStrategy<(String, String)> {
    let accept = prop_oneof![
        4 => prop::sample::select(vec![
            "text/html", "text/plain", "application/json", "*/*", "text/*",
            "application/openmetrics-text; version=1.0.0",
            "application/openmetrics-text;version=0.0.1;q=0.5",
            "application/openmetrics-text; version=9.9",
            "text/plain;version=0.0.4;q=0.9", "*/*;q=NaN", "text/*;q=-1",
            "text/html, application/json;q=0.9", "text/plain, application/json", ";;,,;=",
        ])
        .prop_map(str::to_owned),
        1 => ".{0,40}",
    ];
    // What a browser sends: `Basic base64(user:password)`, right or nearly.
    let basic = (
        prop::sample::select(vec!["Basic ", "basic ", "BASIC  ", "Basic\t", "Basic"]),
        "[a-z]{0,6}",
        prop_oneof![
            4 => Just(TOKEN.to_owned()),
            1 => Just(format!("{TOKEN}:x")),
            1 => Just(TOKEN[1..].to_owned()),
            1 => Just(String::new()),
            1 => "[ -~]{0,12}",
        ],
        any::<bool>(),
        0u8..4,
    )
        .prop_map(|(scheme, user, password, colon, damage)| {
            let credentials = if colon {
                format!("{user}:{password}")
            } else {
                format!("{user}{password}")
            };
            let mut encoded = base64_encode(credentials.as_bytes());
            match damage {
                // Padding left off, as some clients do.
                1 => encoded = encoded.trim_end_matches('=').to_owned(),
                // One character too many, or a character from another alphabet.
                2 => encoded.push('A'),
                3 => encoded = encoded.replacen(|c: char| c.is_ascii_alphanumeric(), "-", 1),
                _ => {}
            }
            format!("{scheme}{encoded}")
        });
    let authorization = prop_oneof![
        2 => basic,
        3 => prop::sample::select(vec!["Bearer ", "bearer ", "BEARER  ", "Bearer\t", "Basic ", "Bearer", ""])
            .prop_flat_map(|scheme| {
                prop_oneof![
                    Just(TOKEN.to_owned()),
                    Just(format!(" {TOKEN} ")),
                    "[ -~]{1,3}".prop_map(|s| format!("{TOKEN}{s}")),
                    Just(TOKEN[1..].to_owned()),
                    Just(TOKEN.to_ascii_lowercase()),
                    Just(String::new()),
                    Just("  ".to_owned()),
                    "[ -~]{0,20}",
                ]
                .prop_map(move |t| format!("{scheme}{t}"))
            }),
        1 => ".{0,30}",
    ];
    let xff = xff_strategy().prop_map(|v| String::from_utf8_lossy(&v).into_owned());
    prop_oneof![
        3 => accept.prop_map(|v| ("accept".to_owned(), v)),
        3 => (prop::sample::select(vec!["authorization", "Authorization", "AUTHORIZATION"]), authorization)
            .prop_map(|(n, v)| (n.to_owned(), v)),
        2 => (prop::sample::select(vec!["x-forwarded-for", "X-Forwarded-For"]), xff)
            .prop_map(|(n, v)| (n.to_owned(), v)),
        1 => ("forwarded", forwarded_strategy())
            .prop_map(|(n, v)| (n.to_owned(), String::from_utf8_lossy(&v).into_owned())),
        1 => ("x-real-ip", xff_strategy())
            .prop_map(|(n, v)| (n.to_owned(), String::from_utf8_lossy(&v).into_owned())),
        1 => ("content-type", prop::sample::select(vec!["application/json", "text/plain", "x"]))
            .prop_map(|(n, v)| (n.to_owned(), v.to_owned())),
        1 => (
            prop::sample::select(vec!["host", "Host"]),
            prop_oneof![
                3 => prop::sample::select(vec![
                    "localhost:8080", "127.0.0.1:9", "[::1]:80", "LocalHost", "a.localhost",
                    "localhost.", "evil.example", "evil.example:8080", "0.0.0.0:8080",
                    "[::ffff:127.0.0.1]:1", "127.1.2.3", "localhost:http", "[::1", "",
                ])
                .prop_map(str::to_owned),
                1 => ".{0,20}",
            ],
        )
            .prop_map(|(n, v)| (n.to_owned(), v)),
        1 => (
            prop::sample::select(vec!["origin", "Origin"]),
            prop::sample::select(vec!["https://evil.example", "null", "http://localhost:8080"]),
        )
            .prop_map(|(n, v)| (n.to_owned(), v.to_owned())),
        1 => ("[a-z-]{1,12}", ".{0,20}"),
    ]
    .boxed()
}

pub(crate) fn endpoint_body() -> BoxedStrategy<Vec<u8>> {
    let directive = prop_oneof![
        prop::sample::select(vec![
            "info",
            "debug",
            "trace",
            "off",
            "warn,checkout=debug",
            "nope=",
            "=",
            "[",
            "{"
        ])
        .prop_map(str::to_owned),
        "([a-z_:]{1,8}(\\[[a-z]{0,5}(\\{[a-z]{1,5}(=[ -~]{0,8})?\\})?\\])?=)?(trace|debug|info|warn|error|off|[a-z]{1,5})",
        "[ -~]{0,40}",
    ];
    prop_oneof![
        2 => Just(Vec::new()),
        3 => directive.clone().prop_map(String::into_bytes),
        2 => (directive, prop::option::of(prop::sample::select(vec!["300", "0", "-5", "1e9", "\"x\"", "null", "1.5"])))
            .prop_map(|(d, ttl)| match ttl {
                Some(t) => format!("{{\"directive\": {}, \"ttl_seconds\": {t}}}", serde_json::Value::String(d)),
                None => format!("{{\"directive\": {}}}", serde_json::Value::String(d)),
            }.into_bytes()),
        2 => prop::collection::vec(any::<u8>(), 0..64),
    ]
    .boxed()
}

pub(crate) fn endpoint_case() -> impl Strategy<Value = EndpointCase> {
    let method = prop_oneof![
        6 => prop::sample::select(vec![
            "GET", "GET", "GET", "GET", "HEAD", "PUT", "POST", "DELETE", "PATCH", "OPTIONS", "get",
        ])
            .prop_map(str::to_owned),
        1 => "[A-Z]{0,10}",
        1 => ".{0,8}",
    ];
    // Most requests carry the right token (as a bearer token, or as a browser's Basic
    // password), or come from loopback.
    let credential = prop::option::weighted(
        0.75,
        (
            prop::sample::select(vec!["authorization", "Authorization"]),
            prop_oneof![
                3 => prop::sample::select(vec![
                    format!("Bearer {TOKEN}"),
                    format!("Bearer {TOKEN}"),
                    format!("Basic {}", base64_encode(format!("ops:{TOKEN}").as_bytes())),
                    format!("basic {}", base64_encode(format!(":{TOKEN}").as_bytes())),
                ]),
                // Nearly: the token with a suffix, cut short, in another case.
                1 => (
                    prop::sample::select(vec!["Bearer ", "Basic "]),
                    prop_oneof![
                        "[!-~]{1,3}".prop_map(|s| format!("{TOKEN}{s}")),
                        "[!-~]{1,3}".prop_map(|s| format!("{s}{TOKEN}")),
                        Just(TOKEN[..TOKEN.len() - 1].to_owned()),
                        Just(TOKEN.to_ascii_uppercase()),
                    ],
                )
                    .prop_map(|(scheme, token)| if scheme == "Basic " {
                        format!("Basic {}", base64_encode(format!("ops:{token}").as_bytes()))
                    } else {
                        format!("{scheme}{token}")
                    }),
            ],
        )
            .prop_map(|(n, v)| (n.to_owned(), v)),
    );
    let peer = prop_oneof![
        3 => (any::<u16>()).prop_map(|port| Some(SocketAddr::from(([127, 0, 0, 1], port)))),
        1 => (any::<u16>()).prop_map(|port| Some(SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port)))),
        4 => peer_strategy(),
    ];
    (
        0..ENDPOINTS.len(),
        method,
        path_strategy(),
        query_strategy(),
        (credential, prop::collection::vec(endpoint_header(), 0..3)),
        peer,
        endpoint_body(),
    )
        .prop_map(
            |(setup, method, path, query, (credential, mut headers), peer, body)| {
                if let Some(credential) = credential {
                    headers.insert(0, credential);
                }
                EndpointCase {
                    setup,
                    req: EndpointRequest {
                        method,
                        path,
                        query,
                        headers,
                        peer,
                        body,
                    },
                }
            },
        )
}

proptest! {
    #![proptest_config(config(256))]

    /// Property 3.
    #[test]
    fn the_endpoints_answer_anything_within_the_rules(case in endpoint_case()) {
        let setup = &ENDPOINTS[case.setup];
        let req = case.req;
        let access = if matches!(req.path.as_str(), "/metrics" | "/metrics/") && setup.metrics_public {
            Access::Allowed
        } else {
            access(setup, &req)
        };
        let allowed = access == Access::Allowed;
        let resp = block_on(setup.diag.serve(req.clone()));
        // A path that is none of diag's is a 404 for anyone, before any access check.
        let trimmed = req.path.trim_end_matches('/');
        // diag's endpoints and what is below them; any other path under `/debug` is
        // the service's own.
        let diag_path = trimmed == "/metrics"
            || trimmed == "/debug"
            || ["/debug/state", "/debug/requests", "/debug/events", "/debug/log-level"]
                .iter()
                .any(|e| {
                    trimmed.strip_prefix(e).is_some_and(|below| below.is_empty() || below.starts_with('/'))
                });
        if !diag_path {
            prop_assert_eq!(resp.status, 404, "not an endpoint: {}", req.path);
            return Ok(());
        }

        prop_assert!(
            ENDPOINT_STATUSES.contains(&resp.status),
            "status {} ({})", resp.status, String::from_utf8_lossy(&resp.body)
        );
        match access {
            Access::Refused => {
                prop_assert_eq!(resp.status, 401, "let in against the rules");
                prop_assert_eq!(resp.header("www-authenticate"), Some("Bearer realm=\"diag\""));
            }
            Access::ReadOnly => prop_assert_eq!(resp.status, 403, "Basic credentials wrote"),
            Access::Forbidden => {
                prop_assert_eq!(resp.status, 403, "let in without a token from afar");
                prop_assert_eq!(resp.header("www-authenticate"), None, "a challenge nothing can meet");
            }
            Access::Allowed => prop_assert!(
                resp.status != 401 && resp.status != 403,
                "refused against the rules: {}", String::from_utf8_lossy(&resp.body)
            ),
        }
        if resp.status == 405 {
            prop_assert!(resp.header("allow").is_some(), "a 405 names the methods it allows");
        }
        for (name, value) in &resp.headers {
            prop_assert!(valid_header_value(value), "{name}: {value:?}");
        }
        let content_type = resp.header("content-type").expect("every answer has a content-type");
        prop_assert!(std::str::from_utf8(&resp.body).is_ok(), "a body that is not UTF-8");
        if req.method == "HEAD" {
            prop_assert!(resp.body.is_empty(), "a HEAD answer with a body");
        } else if content_type.starts_with("application/json") {
            json_of(&resp)?;
        }
        // The endpoints everyone uses answer a plain GET.
        let known = [
            "/debug".to_owned(),
            "/debug/state".to_owned(),
            "/debug/state/process".to_owned(),
            "/debug/requests".to_owned(),
            format!("/debug/requests/{}", setup.capture),
            "/debug/events".to_owned(),
            "/metrics".to_owned(),
        ];
        if allowed && req.method == "GET" && req.query.is_none() && known.contains(&req.path) {
            prop_assert_eq!(resp.status, 200);
        }
    }
}
