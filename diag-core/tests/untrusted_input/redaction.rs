//! Property 4: secrets never reach a reader of `/debug/requests`.

use diag_core::body::Polled;
use diag_core::debug::REDACTED;
use diag_core::request::RequestView;
use diag_core::{Diag, EndpointRequest};
use proptest::prelude::*;
use proptest::sample::Index;

use crate::requests::*;
use crate::support::*;

/// A JSON value whose text the test writes itself (keys in the order generated).
#[derive(Clone, Debug)]
pub(crate) enum J {
    Null,
    Bool(bool),
    Num(i64),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

impl J {
    fn write(&self, out: &mut String, pretty: bool, depth: usize) {
        let newline = |out: &mut String, depth: usize| {
            if pretty {
                out.push('\n');
                out.push_str(&"  ".repeat(depth));
            }
        };
        match self {
            J::Null => out.push_str("null"),
            J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            J::Num(n) => out.push_str(&n.to_string()),
            J::Str(s) => out.push_str(&serde_json::Value::String(s.clone()).to_string()),
            J::Arr(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    newline(out, depth + 1);
                    item.write(out, pretty, depth + 1);
                }
                if !items.is_empty() {
                    newline(out, depth);
                }
                out.push(']');
            }
            J::Obj(pairs) => {
                out.push('{');
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    newline(out, depth + 1);
                    out.push_str(&serde_json::Value::String(k.clone()).to_string());
                    out.push_str(if pretty { ": " } else { ":" });
                    v.write(out, pretty, depth + 1);
                }
                if !pairs.is_empty() {
                    newline(out, depth);
                }
                out.push('}');
            }
        }
    }

    fn text(&self, pretty: bool) -> String {
        let mut out = String::new();
        self.write(&mut out, pretty, 0);
        out
    }
}

pub(crate) fn json_strategy() -> BoxedStrategy<J> {
    let leaf = prop_oneof![
        Just(J::Null),
        any::<bool>().prop_map(J::Bool),
        any::<i64>().prop_map(J::Num),
        ".{0,16}".prop_map(J::Str),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(J::Arr),
            prop::collection::vec((".{0,10}", inner), 0..4).prop_map(J::Obj),
        ]
    })
    .boxed()
}

/// One level between the body's top and the secret field.
#[derive(Clone, Debug)]
pub(crate) enum Layer {
    /// An object member named so, among others.
    Member(String, Vec<(String, J)>, Index),
    /// An array element, among others.
    Element(Vec<J>, Index),
}

#[derive(Clone, Debug)]
pub(crate) struct RedactionCase {
    /// The configured secret field, as configured (`None`: a default field such as
    /// `password`).
    pub(crate) configured: Option<String>,
    /// The secret field as the body spells it (any case).
    pub(crate) field: String,
    pub(crate) secret: String,
    /// How the secret sits under the field: as the string, in an array, in an object.
    pub(crate) wrap: u8,
    pub(crate) siblings: Vec<(String, J)>,
    pub(crate) at: Index,
    pub(crate) layers: Vec<Layer>,
    /// Also at the top level of the body.
    pub(crate) also_top: bool,
    /// Wrapped in this many more arrays (deeper than a JSON parser's recursion limit).
    pub(crate) deep: Option<usize>,
    pub(crate) pretty: bool,
    pub(crate) top_array: bool,
    pub(crate) content_type: Option<&'static str>,
    /// Secret also in the query, under this spelling of the field.
    pub(crate) query_key: Option<String>,
    pub(crate) body_limit: Option<usize>,
    pub(crate) cuts: Vec<Index>,
    pub(crate) authorization: String,
    pub(crate) cookie: String,
    /// The response echoes the body.
    pub(crate) echo: bool,
}

pub(crate) const MARKER: &str = "VisibleMarker-7f3a";

/// A secret value: at least 8 alphanumeric characters with an upper-case letter, a
/// lower-case letter and a digit (so it cannot occur by chance in ids, numbers, times or
/// diag's own words).
pub(crate) fn secret_strategy() -> BoxedStrategy<String> {
    "[A-Za-z0-9]{8,32}"
        .prop_filter("a mixed alphanumeric secret", |s| {
            s.bytes().any(|b| b.is_ascii_uppercase())
                && s.bytes().any(|b| b.is_ascii_lowercase())
                && s.bytes().any(|b| b.is_ascii_digit())
        })
        .boxed()
}

pub(crate) fn random_case(s: &str) -> BoxedStrategy<String> {
    let s = s.to_owned();
    prop::collection::vec(any::<bool>(), s.len())
        .prop_map(move |upper| {
            s.chars()
                .zip(upper)
                .map(|(c, u)| if u { c.to_ascii_uppercase() } else { c })
                .collect()
        })
        .boxed()
}

/// Redaction cases whose request carries one of `content_types` (`None`: no header).
pub(crate) fn redaction_case(
    content_types: Vec<Option<&'static str>>,
) -> impl Strategy<Value = RedactionCase> {
    let field = prop_oneof![
        2 => "[a-z][a-z_]{2,11}".prop_filter("not the marker's keys", |f| f != "visible" && f != "data")
            .prop_map(Some),
        1 => Just(None),
    ]
    .prop_flat_map(|configured| {
        let name = match &configured {
            Some(f) => Just(f.clone()).boxed(),
            None => prop::sample::select(diag_core::debug::DEFAULT_FIELDS.to_vec())
                .prop_map(str::to_owned)
                .boxed(),
        };
        (Just(configured), name.prop_flat_map(|n| random_case(&n)))
    });
    let layer = prop_oneof![
        (
            ".{0,8}",
            prop::collection::vec((".{0,8}", json_strategy()), 0..3),
            any::<Index>()
        )
            .prop_map(|(k, others, at)| Layer::Member(k, others, at)),
        (prop::collection::vec(json_strategy(), 0..3), any::<Index>())
            .prop_map(|(others, at)| Layer::Element(others, at)),
    ];
    let content_type = prop::sample::select(content_types);
    let credentials = (
        secret_strategy().prop_map(|s| format!("Bearer {s}")),
        (secret_strategy(), ".{0,8}")
            .prop_map(|(s, other)| format!("sid={s}; theme={}", other.replace([';', '\u{0}'], ""))),
    );
    (
        (
            field,
            secret_strategy(),
            0u8..3,
            prop::collection::vec((".{0,8}", json_strategy()), 0..3),
            any::<Index>(),
        ),
        (
            prop::collection::vec(layer, 0..4),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            content_type,
        ),
        (
            prop::option::of(any::<bool>()),
            prop::option::of(1usize..400),
            prop::option::weighted(0.1, 100usize..300),
            prop::collection::vec(any::<Index>(), 0..4),
            credentials,
            any::<bool>(),
        ),
    )
        .prop_map(
            |(
                ((configured, field), secret, wrap, siblings, at),
                (layers, also_top, pretty, top_array, content_type),
                (query, body_limit, deep, cuts, (authorization, cookie), echo),
            )| {
                // The query spells the field in its own way: as is, or its first
                // character percent-encoded.
                let query_key = query.map(|encode| {
                    if encode {
                        let first = field.as_bytes()[0];
                        format!("%{first:02X}{}", &field[1..])
                    } else {
                        field.clone()
                    }
                });
                RedactionCase {
                    configured,
                    field,
                    secret,
                    wrap,
                    siblings,
                    at,
                    layers,
                    also_top,
                    deep,
                    pretty,
                    top_array,
                    content_type,
                    query_key,
                    body_limit,
                    cuts,
                    authorization,
                    cookie,
                    echo,
                }
            },
        )
}

impl RedactionCase {
    /// The request body, with the secret (or `hole` in its place).
    fn body(&self, hole: &str) -> String {
        let value = J::Str(hole.to_owned());
        let value = match self.wrap {
            0 => value,
            1 => J::Arr(vec![J::Num(1), value]),
            _ => J::Obj(vec![("v".to_owned(), value)]),
        };
        let mut tree = J::Obj(with_member(
            &self.siblings,
            self.at,
            &self.field,
            value.clone(),
        ));
        for layer in &self.layers {
            tree = match layer {
                Layer::Member(key, others, at) => J::Obj(with_member(others, *at, key, tree)),
                Layer::Element(others, at) => {
                    let mut items = others.clone();
                    items.insert(at.index(items.len() + 1), tree);
                    J::Arr(items)
                }
            };
        }
        for _ in 0..self.deep.unwrap_or(0) {
            tree = J::Arr(vec![tree]);
        }
        let mut top = vec![
            ("visible".to_owned(), J::Str(MARKER.to_owned())),
            ("data".to_owned(), tree),
        ];
        if self.also_top {
            top.push((self.field.clone(), value));
        }
        let top = J::Obj(top);
        let top = if self.top_array {
            J::Arr(vec![top])
        } else {
            top
        };
        top.text(self.pretty)
    }

    fn uri(&self, hole: &str) -> String {
        match &self.query_key {
            Some(key) => format!("/login?user=ada&{key}={hole}&next=%2F"),
            None => "/login?user=ada".to_owned(),
        }
    }

    fn secrets(&self) -> [&str; 3] {
        [
            &self.secret,
            self.authorization.trim_start_matches("Bearer "),
            self.cookie
                .trim_start_matches("sid=")
                .split(';')
                .next()
                .unwrap_or_default(),
        ]
    }
}

/// `others` with `(key, value)` among them at `at`. A key may appear once only: a parser
/// keeps one of two equal keys, which could drop the secret before redaction sees it.
pub(crate) fn with_member(
    others: &[(String, J)],
    at: Index,
    key: &str,
    value: J,
) -> Vec<(String, J)> {
    let mut pairs: Vec<(String, J)> = others.iter().filter(|(k, _)| k != key).cloned().collect();
    pairs.insert(at.index(pairs.len() + 1), (key.to_owned(), value));
    pairs
}

/// Splits `data` at the given points.
pub(crate) fn chunks<'a>(data: &'a [u8], cuts: &[Index]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c.index(data.len() + 1)).collect();
    at.sort_unstable();
    let mut out = Vec::new();
    let mut start = 0;
    for cut in at {
        out.push(&data[start..cut]);
        start = cut;
    }
    out.push(&data[start..]);
    out
}

/// Property 4, for one case: runs the debug request, then reads its capture every way
/// `/debug/requests` serves it.
pub(crate) fn check_redaction(case: &RedactionCase) -> Result<(), TestCaseError> {
    let body = case.body(&case.secret);
    let uri = case.uri(&case.secret);
    let [secret, auth_secret, cookie_secret] = case.secrets();
    // The secrets sit only where the test put them (not, by chance, in a random key
    // or value around them).
    let visible = format!(
        "{} {} {}",
        case.body(""),
        case.uri(""),
        case.cookie.replace(cookie_secret, "")
    );
    prop_assume!(
        ![secret, auth_secret, cookie_secret]
            .iter()
            .any(|s| visible.contains(s))
    );

    let mut builder = Diag::builder().instance(INSTANCE).token(TOKEN);
    if let Some(field) = &case.configured {
        builder = builder.redact_field(field);
    }
    if let Some(limit) = case.body_limit {
        builder = builder.capture_body_limit(limit);
    }
    let diag = builder.build().expect("a diag");

    let mut headers = vec![
        ("x-debug".to_owned(), TOKEN.to_owned()),
        ("authorization".to_owned(), case.authorization.clone()),
        ("cookie".to_owned(), case.cookie.clone()),
        ("proxy-authorization".to_owned(), case.authorization.clone()),
    ];
    if let Some(ct) = case.content_type {
        headers.push(("content-type".to_owned(), ct.to_owned()));
    }
    let guard = diag.begin(&RequestView {
        method: "POST",
        route: Some("/login"),
        uri: &uri,
        headers: &headers,
        peer: &|| None,
    });
    let id = guard.debug_id().expect("a debug request");
    let trace = guard.trace().trace_id.to_string();
    let mut tap = guard.request_tap().expect("a debug request's tap");
    for chunk in chunks(body.as_bytes(), &case.cuts) {
        tap.observe(Polled::Data(chunk));
    }
    tap.observe(Polled::End);
    drop(tap);
    let mut response = vec![
        (
            "content-type".to_owned(),
            case.content_type.unwrap_or("application/json").to_owned(),
        ),
        ("set-cookie".to_owned(), case.cookie.clone()),
    ];
    let mut tap = guard
        .finish(200, &mut response)
        .expect("a debug request's tap");
    if case.echo {
        for chunk in chunks(body.as_bytes(), &case.cuts) {
            tap.observe(Polled::Data(chunk));
        }
    }
    tap.observe(Polled::End);
    drop(tap);

    let get = |path: String, query: Option<&str>, accept: Option<&str>| {
        let mut req = EndpointRequest {
            method: "GET".into(),
            path,
            query: query.map(str::to_owned),
            headers: vec![("authorization".into(), format!("Bearer {TOKEN}"))],
            ..Default::default()
        };
        if let Some(accept) = accept {
            req.headers.push(("accept".into(), accept.to_owned()));
        }
        block_on(diag.serve(req))
    };
    let one = format!("/debug/requests/{id}");
    let by_trace = format!("/debug/requests/{trace}");
    let views = [
        get(one.clone(), None, None),
        get(one.clone(), Some("pretty"), None),
        get(one.clone(), Some("format=text"), None),
        get(one, None, Some("text/plain")),
        get(by_trace, None, None),
        get("/debug/requests".into(), None, None),
        get("/debug/requests".into(), Some("format=text"), None),
    ];
    for view in &views {
        prop_assert_eq!(view.status, 200);
        let text = String::from_utf8_lossy(&view.body);
        for s in [secret, auth_secret, cookie_secret, TOKEN] {
            prop_assert!(!text.contains(s), "{s:?} shown:\n{text}");
        }
    }

    // The capture is really there: the body is shown, redacted, with what is not secret.
    let capture = json_of(&views[0])?;
    let shown = &capture["request"]["body"];
    prop_assert_eq!(shown["total_bytes"].as_u64(), Some(body.len() as u64));
    prop_assert!(shown["redaction"].is_string(), "{shown}");
    if shown["truncated"] == false {
        let text = shown["text"].as_str().expect("a text body");
        prop_assert!(text.contains(MARKER), "{text}");
        prop_assert!(text.contains(REDACTED), "{text}");
    }
    prop_assert!(
        capture["request"]["uri"]
            .as_str()
            .is_some_and(|u| u.starts_with("/login?user=ada"))
    );
    Ok(())
}

/// Content types a JSON body is usually sent with (or none, or plain text).
pub(crate) fn json_content_types() -> Vec<Option<&'static str>> {
    vec![
        Some("application/json"),
        Some("application/json; charset=utf-8"),
        Some("Application/JSON"),
        Some("application/vnd.api+json"),
        Some("text/plain"),
        None,
    ]
}

proptest! {
    #![proptest_config(config(128))]

    /// Property 4.
    #[test]
    fn secrets_never_reach_a_reader_of_the_capture(case in redaction_case(json_content_types())) {
        check_redaction(&case)?;
    }
}

proptest! {
    #![proptest_config(config(64))]

    /// Property 4, for a JSON body that arrives labelled as a form, as `curl -d '{...}'`
    /// sends it unless told otherwise: the client chose the label, and its secrets must
    /// stay hidden all the same.
    #[test]
    fn secrets_in_a_json_body_labelled_as_a_form_never_reach_a_reader(
        case in redaction_case(vec![
            Some("application/x-www-form-urlencoded"),
            Some("application/x-www-form-urlencoded; charset=utf-8"),
        ])
    ) {
        check_redaction(&case)?;
    }
}
