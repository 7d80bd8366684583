//! Property 1: any request headers are served normally, with well-formed headers, and
//! diagnostic mode exactly when the credential allows it.

use diag_core::body::Polled;
use diag_core::debug::{DebugLevel, MAX_CREDENTIAL_BYTES, MAX_TTL, REDACTED, sign_credential};
use diag_core::request::RequestView;
use diag_core::trace::outgoing_traceparent;
use diag_core::{Diag, DiagResponse, EndpointRequest, HeaderView};
use proptest::prelude::*;
use proptest::sample::Index;
use std::net::{IpAddr, SocketAddr};
use std::sync::LazyLock;

use crate::support::*;
use crate::trace_context::*;

/// How a `Diag` under test is configured, for the oracle.
pub(crate) struct Setup {
    pub(crate) diag: Diag,
    /// The debug token and signing key.
    pub(crate) key: Option<&'static str>,
    /// `false`: loopback allowed for `X-Debug: 1`, no trusted proxy. `true`: proxies in
    /// 10.0.0.0/8 trusted, `X-Debug: 1` allowed from 192.0.2.0/24 only.
    pub(crate) office: bool,
    pub(crate) disabled: bool,
    /// The budget is a single request: a request the oracle lets in may be refused as
    /// `budget-exhausted`.
    pub(crate) tiny_budget: bool,
    /// `false`: built with `traceparent_on_every_response(false)`.
    pub(crate) every_response: bool,
}

impl Setup {
    pub(crate) fn endpoint_request(&self, path: String, query: Option<&str>) -> EndpointRequest {
        let mut req = EndpointRequest {
            method: "GET".into(),
            path,
            query: query.map(str::to_owned),
            peer: Some("127.0.0.1:1".parse().expect("an address")),
            ..Default::default()
        };
        if self.key.is_some() {
            req.headers
                .push(("authorization".into(), format!("Bearer {TOKEN}")));
        }
        req
    }
}

pub(crate) static SETUPS: LazyLock<Vec<Setup>> = LazyLock::new(|| {
    let base = || {
        Diag::builder()
            .service("checkout")
            .instance(INSTANCE)
            .debug_budget(1e9, 1_000_000)
    };
    let token = Setup {
        diag: base().token(TOKEN).build().expect("a diag"),
        key: Some(TOKEN),
        office: false,
        disabled: false,
        tiny_budget: false,
        every_response: true,
    };
    let office = Setup {
        diag: base()
            .traceparent_on_every_response(false)
            .trusted_proxy("10.0.0.0/8")
            .debug_networks(["192.0.2.0/24"])
            .build()
            .expect("a diag"),
        key: None,
        office: true,
        disabled: false,
        tiny_budget: false,
        every_response: false,
    };
    let disabled = Setup {
        diag: base().token(TOKEN).disabled(true).build().expect("a diag"),
        key: Some(TOKEN),
        office: false,
        disabled: true,
        tiny_budget: false,
        every_response: true,
    };
    let tiny = Setup {
        diag: Diag::builder()
            .instance(INSTANCE)
            .token(TOKEN)
            .debug_budget(0.001, 1)
            .build()
            .expect("a diag"),
        key: Some(TOKEN),
        office: false,
        disabled: false,
        tiny_budget: true,
        every_response: true,
    };
    vec![token, office, disabled, tiny]
});

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Expect {
    NotRequested,
    Debug,
    Refused(&'static str),
}

/// The documented decision for a request's `X-Debug` (see `debug/credential.rs` and
/// `debug/signed.rs`), budget aside.
pub(crate) fn expected_decision(
    setup: &Setup,
    headers: &RawHeaders,
    peer: Option<SocketAddr>,
) -> Expect {
    let Some(value) = headers.get("x-debug") else {
        return Expect::NotRequested;
    };
    if setup.disabled {
        return Expect::Refused("disabled");
    }
    if value.len() > MAX_CREDENTIAL_BYTES {
        return Expect::Refused("rejected; reason=oversized");
    }
    const MALFORMED: Expect = Expect::Refused("rejected; reason=malformed");
    const INVALID: Expect = Expect::Refused("rejected; reason=invalid");
    let t = value.trim_ascii();
    if t.is_empty() || !t.iter().all(u8::is_ascii_graphic) {
        return MALFORMED;
    }
    if t == b"1" {
        let f = Forwarding {
            xff: headers.joined("x-forwarded-for"),
            forwarded: headers.joined("forwarded"),
            real_ip: headers.joined("x-real-ip"),
        };
        let allowed = if setup.office {
            from_network(peer, &f, in_10_8, in_192_0_2)
        } else {
            from_network(peer, &f, |_| false, |ip| ip.is_loopback())
        };
        return if allowed {
            Expect::Debug
        } else {
            Expect::Refused("rejected; reason=untrusted_network")
        };
    }
    if let Some(rest) = t.strip_prefix(b"v1.") {
        // `v1.<expiry>.<43 base64url characters>`
        let Some(dot) = rest.iter().position(|b| *b == b'.') else {
            return MALFORMED;
        };
        let (expiry, mac) = (&rest[..dot], &rest[dot + 1..]);
        if expiry.is_empty() || expiry.len() > 20 || !expiry.iter().all(u8::is_ascii_digit) {
            return MALFORMED;
        }
        if mac.len() != 43
            || !mac
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
        {
            return MALFORMED;
        }
        let Some(expiry) = std::str::from_utf8(expiry)
            .ok()
            .and_then(|e| e.parse::<u64>().ok())
        else {
            return MALFORMED;
        };
        let Some(key) = setup.key else {
            return INVALID;
        };
        if sign_credential(key.as_bytes(), expiry).as_bytes() != t {
            return INVALID;
        }
        let now = now_unix();
        if expiry < now {
            return Expect::Refused("rejected; reason=expired");
        }
        if expiry > now + MAX_TTL.as_secs() + 60 {
            return INVALID;
        }
        return Expect::Debug;
    }
    match setup.key {
        Some(key) if t == key.as_bytes() => Expect::Debug,
        _ => INVALID,
    }
}

pub(crate) fn x_debug_strategy() -> BoxedStrategy<Vec<u8>> {
    let token = || Just(TOKEN.as_bytes().to_vec());
    let fresh =
        || (30u64..3_600).prop_map(|ttl| sign_credential(TOKEN.as_bytes(), now_unix() + ttl));
    prop_oneof![
        3 => token(),
        2 => ("[ \t]{0,2}", "[ \t]{0,2}").prop_map(|(a, b)| format!("{a}{TOKEN}{b}").into_bytes()),
        2 => "[ -~]{1,4}".prop_map(|s| format!("{TOKEN}{s}").into_bytes()),
        1 => "[ -~]{1,4}".prop_map(|s| format!("{s}{TOKEN}").into_bytes()),
        1 => Just(TOKEN.to_ascii_uppercase().into_bytes()),
        1 => Just(TOKEN.as_bytes()[..TOKEN.len() - 1].to_vec()),
        3 => token().prop_flat_map(mutate),
        4 => Just(b"1".to_vec()),
        2 => prop::sample::select(vec![" 1 ", "1\t", "01", "1.0", "１", "true", "", " "])
            .prop_map(|s| s.as_bytes().to_vec()),
        3 => fresh().prop_map(String::into_bytes),
        2 => (30u64..100_000).prop_map(|ago| sign_credential(TOKEN.as_bytes(), now_unix() - ago).into_bytes()),
        1 => (30u64..3_600).prop_map(|ttl| sign_credential(b"some-other-key", now_unix() + ttl).into_bytes()),
        1 => (2u64..30).prop_map(|days| {
            sign_credential(TOKEN.as_bytes(), now_unix() + days * 86_400).into_bytes()
        }),
        4 => fresh().prop_flat_map(|c| mutate(c.into_bytes())),
        1 => (fresh(), "[ -~]{1,3}").prop_map(|(c, s)| format!("{c}{s}").into_bytes()),
        1 => ("[0-9]{0,24}", "[A-Za-z0-9_=+/.-]{0,50}").prop_map(|(e, m)| format!("v1.{e}.{m}").into_bytes()),
        1 => (MAX_CREDENTIAL_BYTES - 2..MAX_CREDENTIAL_BYTES + 3).prop_map(|n| {
            TOKEN.bytes().cycle().take(n).collect()
        }),
        4 => generic_value(),
    ]
    .boxed()
}

pub(crate) fn header_pair() -> BoxedStrategy<(String, Bytes)> {
    let names = prop_oneof![
        8 => prop::sample::select(vec![
            "x-debug",
            "X-Debug",
            "x-debug-level",
            "traceparent",
            "tracestate",
            "x-forwarded-for",
            "X-Forwarded-For",
            "forwarded",
            "x-real-ip",
            "authorization",
            "cookie",
            "content-type",
            "content-length",
            "user-agent",
        ])
        .prop_map(str::to_owned),
        1 => "[a-zA-Z0-9-]{1,16}",
    ];
    names
        .prop_flat_map(|name| {
            let value = match name.to_ascii_lowercase().as_str() {
                "x-debug" => x_debug_strategy(),
                "x-debug-level" => prop_oneof![
                    prop::sample::select(vec!["trace", "TRACE", " trace ", "debug", "tracee", "t"])
                        .prop_map(|s| s.as_bytes().to_vec()),
                    generic_value(),
                ]
                .boxed(),
                "traceparent" => traceparent_strategy(),
                "tracestate" => tracestate_strategy()
                    .prop_map(|ts| ts.lines.into_iter().next().map(|b| b.0).unwrap_or_default())
                    .boxed(),
                "x-forwarded-for" => xff_strategy(),
                "forwarded" => forwarded_strategy(),
                "x-real-ip" => xff_strategy(),
                "content-length" => prop_oneof![
                    (0u64..100_000).prop_map(|n| n.to_string().into_bytes()),
                    generic_value(),
                ]
                .boxed(),
                _ => generic_value(),
            };
            (Just(name), value.prop_map(Bytes))
        })
        .boxed()
}

#[derive(Debug, Clone)]
pub(crate) struct RequestCase {
    pub(crate) setup: usize,
    pub(crate) method: String,
    pub(crate) route: Option<&'static str>,
    pub(crate) uri: Text,
    pub(crate) headers: RawHeaders,
    pub(crate) peer: Option<SocketAddr>,
    /// Request body chunks the handler reads (a debug request's capture copies them).
    pub(crate) body: Vec<Bytes>,
    /// The handler's own response headers.
    pub(crate) response: Vec<(String, String)>,
    pub(crate) status: u16,
    pub(crate) response_body: Vec<Bytes>,
    /// Ask for the capture in these ways afterwards (query strings).
    pub(crate) views: Vec<Option<&'static str>>,
}

pub(crate) fn request_case() -> impl Strategy<Value = RequestCase> {
    let method = prop_oneof![
        4 => prop::sample::select(vec!["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "QUERY"])
            .prop_map(str::to_owned),
        1 => "[A-Za-z]{1,10}",
        1 => ".{0,12}",
    ];
    let route = prop::sample::select(vec![None, Some("/"), Some("/products/{id}"), Some("/cart")]);
    let uri = prop_oneof![
        3 => "/[a-z0-9/]{0,20}(\\?[a-z]{1,8}=[a-z0-9%&=]{0,20})?",
        1 => ".{0,64}",
        1 => (1_000usize..20_000).prop_map(|n| format!("/{}", "a".repeat(n))),
    ];
    let response_header = (
        prop::sample::select(vec![
            "content-type",
            "x-handler",
            "cache-control",
            "server-timing",
            "traceparent",
            "Traceparent",
            "x-debug-id",
            "X-Debug-Id",
            "x-trace-id",
            "X-Trace-Id",
            "Server-Timing",
            "set-cookie",
        ]),
        "[ -~]{0,30}",
    )
        .prop_map(|(n, v)| (n.to_owned(), v));
    let chunks = || {
        prop::collection::vec(
            prop::collection::vec(any::<u8>(), 0..64).prop_map(Bytes),
            0..4,
        )
    };
    // Most requests ask for diagnostic mode, one way or another.
    let x_debug = prop::option::weighted(
        0.8,
        (
            prop::sample::select(vec!["x-debug", "X-Debug", "X-DEBUG"]),
            x_debug_strategy(),
            any::<Index>(),
        ),
    );
    // Many ask for a level.
    let level = prop::option::weighted(
        0.4,
        (
            prop::sample::select(vec!["x-debug-level", "X-Debug-Level"]),
            prop_oneof![
                4 => prop::sample::select(vec!["trace", "TRACE", "Trace", " trace\t", "debug", "tracee", ""])
                    .prop_map(|s| s.as_bytes().to_vec()),
                1 => generic_value(),
            ],
        ),
    );
    let headers = (prop::collection::vec(header_pair(), 0..6), x_debug, level).prop_map(
        |(mut h, x, level)| {
            if let Some((name, value, at)) = x {
                h.insert(at.index(h.len() + 1), (name.to_owned(), Bytes(value)));
            }
            if let Some((name, value)) = level {
                h.push((name.to_owned(), Bytes(value)));
            }
            h
        },
    );
    // Some ask with `X-Debug: 1` from near the allowed networks, directly or through
    // proxies (trusted or not).
    let network_ask = prop::option::weighted(
        0.25,
        (
            prop::sample::select(vec![
                "127.0.0.1",
                "::1",
                "::ffff:127.0.0.1",
                "192.0.2.7",
                "::ffff:192.0.2.8",
                "10.0.0.2",
                "10.0.0.2",
                "10.1.1.1",
                "203.0.113.9",
            ]),
            prop::option::of(prop_oneof![
                3 => prop::collection::vec(
                    prop::sample::select(vec![
                        "192.0.2.9", "192.0.2.9", "10.0.0.5", "10.9.9.9", "127.0.0.1", "::1",
                        "203.0.113.7", "junk", "",
                    ]),
                    1..4,
                )
                .prop_map(|hops| hops.join(", ").into_bytes()),
                1 => xff_strategy(),
            ]),
        ),
    );
    let headers = (headers, peer_strategy(), network_ask).prop_map(|(mut h, peer, ask)| {
        let Some((ip, xff)) = ask else {
            return (h, peer);
        };
        h.retain(|(n, _)| !n.eq_ignore_ascii_case("x-debug"));
        h.insert(0, ("x-debug".to_owned(), Bytes(b"1".to_vec())));
        if let Some(xff) = xff {
            h.push(("x-forwarded-for".to_owned(), Bytes(xff)));
        }
        let ip: IpAddr = ip.parse().expect("a literal address");
        (h, Some(SocketAddr::new(ip, 40_000)))
    });
    // The budget of one is soon spent: that setup is picked less often.
    let setup = prop::sample::select(vec![0usize, 0, 0, 0, 1, 1, 1, 2, 3]);
    (
        setup,
        method,
        route,
        uri,
        headers,
        chunks(),
        prop::collection::vec(response_header, 0..4),
        prop::sample::select(vec![200u16, 201, 204, 304, 404, 500]),
        chunks(),
        prop::collection::vec(
            prop::sample::select(vec![
                None,
                Some("pretty"),
                Some("format=text"),
                Some("format=json"),
            ]),
            1..3,
        ),
    )
        .prop_map(
            |(
                setup,
                method,
                route,
                uri,
                (headers, peer),
                body,
                response,
                status,
                response_body,
                views,
            )| {
                RequestCase {
                    setup,
                    method,
                    route,
                    uri: Text(uri),
                    headers: RawHeaders(headers),
                    peer,
                    body,
                    response,
                    status,
                    response_body,
                    views,
                }
            },
        )
}

/// Headers diag writes into a response (replacing any the handler set).
pub(crate) const DIAG_HEADERS: [&str; 6] = [
    "traceparent",
    "x-debug-status",
    "server-timing",
    "x-debug-id",
    "x-trace-id",
    "x-debug-instance",
];

pub(crate) const DOCUMENTED_STATUSES: [&str; 7] = [
    "budget-exhausted",
    "disabled",
    "rejected; reason=oversized",
    "rejected; reason=malformed",
    "rejected; reason=invalid",
    "rejected; reason=expired",
    "rejected; reason=untrusted_network",
];

pub(crate) fn values<'a>(headers: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

pub(crate) fn one<'a>(
    headers: &'a [(String, String)],
    name: &str,
) -> Result<Option<&'a str>, TestCaseError> {
    let found = values(headers, name);
    prop_assert!(
        found.len() <= 1,
        "{name} written {} times: {headers:?}",
        found.len()
    );
    Ok(found.first().copied())
}

pub(crate) fn json_of(resp: &DiagResponse) -> Result<serde_json::Value, TestCaseError> {
    serde_json::from_slice(&resp.body).map_err(|e| {
        TestCaseError::fail(format!(
            "a JSON response that does not parse ({e}): {}",
            String::from_utf8_lossy(&resp.body)
        ))
    })
}

proptest! {
    #![proptest_config(config(512))]

    /// Property 1.
    #[test]
    fn any_request_headers_are_served_normally(case in request_case()) {
        let setup = &SETUPS[case.setup];
        let diag = &setup.diag;
        let expected = expected_decision(setup, &case.headers, case.peer);
        let peer = case.peer;
        let guard = diag.begin(&RequestView {
            method: &case.method,
            route: case.route,
            uri: &case.uri.0,
            headers: &case.headers,
            peer: &move || peer,
        });
        let trace = *guard.trace();
        let debug_id = guard.debug_id();
        // Debug mode exactly when the credential or the network allows it, and never
        // otherwise (a tiny budget may still say no).
        match expected {
            Expect::Debug if setup.tiny_budget => {}
            Expect::Debug => prop_assert!(debug_id.is_some(), "refused though allowed"),
            _ => prop_assert!(debug_id.is_none(), "debug mode for {expected:?}"),
        }
        // `X-Debug-Level: trace` (its first line, any case, white space around it
        // ignored) asks for TRACE.
        let trace_level = case
            .headers
            .get("x-debug-level")
            .is_some_and(|v| v.trim_ascii().eq_ignore_ascii_case(b"trace"));
        if let Some(session) = &guard.scope().debug {
            let want = if trace_level { DebugLevel::Trace } else { DebugLevel::Debug };
            prop_assert_eq!(session.level, want);
        }
        if let Some(mut tap) = guard.request_tap() {
            for chunk in &case.body {
                tap.observe(Polled::Data(&chunk.0));
            }
            tap.observe(Polled::End);
        } else {
            prop_assert!(debug_id.is_none());
        }
        {
            let _entered = guard.enter();
            let tp = outgoing_traceparent().expect("inside the request");
            check_written_traceparent(tp.as_str()).map_err(TestCaseError::fail)?;
        }

        let mut response = case.response.clone();
        let tap = guard.finish(case.status, &mut response);
        prop_assert_eq!(tap.is_some(), debug_id.is_some());

        // Every header diag wrote is a valid field value, and the handler's own headers
        // are all still there, in order. A request that asked for diagnostic mode (its
        // header present at all, granted or not) gets `vary: x-debug` after them, so no
        // shared cache hands its answer to anyone else; any other gets no `vary` of diag's.
        for (name, value) in &response {
            prop_assert!(valid_header_value(value), "{name}: {value:?}");
        }
        let own = |h: &[(String, String)]| -> Vec<(String, String)> {
            h.iter()
                .filter(|(n, _)| !DIAG_HEADERS.contains(&n.to_ascii_lowercase().as_str()))
                .cloned()
                .collect()
        };
        let mut expected_own = own(&case.response);
        if !matches!(expected, Expect::NotRequested) {
            expected_own.push(("vary".to_owned(), "x-debug".to_owned()));
        }
        if debug_id.is_some() {
            // One request's diagnostics are for no cache to keep.
            expected_own.push(("cache-control".to_owned(), "no-store".to_owned()));
        }
        prop_assert_eq!(own(&response), expected_own);

        // Every response carries a traceparent (with `traceparent_on_every_response(false)`,
        // a debug request's and an error's): the handler's own, kept as it set it
        // (whatever it holds), or else diag's. Any other response has only the handler's.
        let handlers = values(&case.response, "traceparent");
        let named = setup.every_response || case.status >= 400 || debug_id.is_some();
        if handlers.is_empty() && named {
            let tp = one(&response, "traceparent")?.expect("a traceparent");
            check_written_traceparent(tp).map_err(TestCaseError::fail)?;
            prop_assert_eq!(tp, trace.to_traceparent());
        } else {
            prop_assert_eq!(values(&response, "traceparent"), handlers);
        }

        let status = one(&response, "x-debug-status")?;
        let active = if trace_level { "active; level=trace" } else { "active; level=debug" };
        // No subscriber here: no DEBUG event reaches diag's filter, and the status says so.
        let active = format!("{active}; logs=blocked");
        let active = active.as_str();
        if let Some(s) = status {
            prop_assert!(
                DOCUMENTED_STATUSES.contains(&s) || s == active,
                "undocumented x-debug-status {s:?}"
            );
        }
        match (&expected, debug_id) {
            (Expect::NotRequested, _) => prop_assert_eq!(status, None),
            (Expect::Refused(why), _) => prop_assert_eq!(status, Some(*why)),
            // Which level applied: `X-Debug-Level` other than `trace` means DEBUG.
            (Expect::Debug, Some(_)) => prop_assert_eq!(status, Some(active)),
            (Expect::Debug, None) => prop_assert_eq!(status, Some("budget-exhausted")),
        }

        let Some(id) = debug_id else {
            // Not a debug request: only traceparent (and x-debug-status) were added; the
            // handler's own debug-looking headers, if any, are untouched.
            for name in ["server-timing", "x-debug-id", "x-trace-id", "x-debug-instance"] {
                prop_assert_eq!(values(&response, name), values(&case.response, name), "{}", name);
            }
            return Ok(());
        };
        prop_assert!(trace.sampled, "a debug request's trace is always sampled");
        let id_text = id.to_string();
        prop_assert_eq!(one(&response, "x-debug-id")?, Some(id_text.as_str()));
        // The handler's own `x-trace-id` is kept; else diag's.
        let trace_hex = trace.trace_id.to_string();
        match values(&case.response, "x-trace-id") {
            handlers if handlers.is_empty() => {
                prop_assert_eq!(one(&response, "x-trace-id")?, Some(trace_hex.as_str()))
            }
            handlers => prop_assert_eq!(values(&response, "x-trace-id"), handlers),
        }
        prop_assert_eq!(one(&response, "x-debug-instance")?, Some(INSTANCE));
        // The handler's own `Server-Timing` lines as they were, then diag's line.
        let timings = values(&response, "server-timing");
        let handlers = values(&case.response, "server-timing");
        prop_assert_eq!(timings.len(), handlers.len() + 1, "{:?}", timings);
        prop_assert_eq!(&timings[..handlers.len()], &handlers[..]);
        let timing = timings[handlers.len()];
        prop_assert!(timing.contains("total;dur="), "{timing:?}");

        // The capture is stored once the response body ends, and every view of it serves.
        let mut tap = tap.expect("a debug request's tap");
        for chunk in &case.response_body {
            tap.observe(Polled::Data(&chunk.0));
        }
        tap.observe(Polled::End);
        drop(tap);
        let capture = diag.debug_mode().recorder().get(id);
        prop_assert!(capture.is_some(), "capture {id} not stored");
        for view in &case.views {
            let resp = block_on(diag.serve(setup.endpoint_request(format!("/debug/requests/{id}"), *view)));
            prop_assert_eq!(resp.status, 200);
            prop_assert!(std::str::from_utf8(&resp.body).is_ok());
            if resp.header("content-type") == Some("application/json") {
                let capture = json_of(&resp)?;
                let level = if trace_level { "trace" } else { "debug" };
                prop_assert_eq!(capture["level"].as_str(), Some(level));
                let headers = capture["request"]["headers"].as_array().expect("header lines");
                for line in headers {
                    let name = line[0].as_str().unwrap_or_default();
                    if ["x-debug", "authorization", "cookie", "proxy-authorization"].contains(&name) {
                        prop_assert_eq!(line[1].as_str(), Some(REDACTED), "{} shown", name);
                    }
                }
            }
        }
        let list = block_on(diag.serve(setup.endpoint_request("/debug/requests".into(), None)));
        prop_assert_eq!(list.status, 200);
        json_of(&list)?;
    }
}
