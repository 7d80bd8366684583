//! Secrets out of captures, when they are read: the flight recorder keeps a capture as
//! it was recorded and redacts it for every reader (`FlightRecorder::get`/`recent`, the
//! capture list), so nothing `/debug/requests` serves, as JSON or as text, carries a
//! credential or a configured secret field. Redacting on read keeps the cost off the
//! debug request itself, which the recorder may evict before anyone looks.
//!
//! - Header values of `authorization`, `proxy-authorization`, `cookie`, `set-cookie`,
//!   the debug header, and configured headers become `[redacted]`.
//! - Configured fields (default: [`DEFAULT_FIELDS`]) are redacted, matched without
//!   regard to case, in JSON bodies at any depth, in form bodies and query strings,
//!   and in span and log fields.
//! - Bodies are redacted in place: every `"field": value` of a secret field has its value
//!   replaced, and everything else stays as the client sent it (key order, spacing,
//!   numbers). A JSON body that is complete and parses is reported as redacted as
//!   [`BodyRedaction::Json`] (every string followed by `:` is then a key, so the pass is
//!   exact); one that is truncated or does not parse (and any other text body) as
//!   [`BodyRedaction::Textual`], where a nested value that does not close within the
//!   capture takes the rest of the body with it. Pairs inside JSON string values (a URL's
//!   query, JSON encoded in a string) are redacted too. The walk is in `redact_json.rs`.
//! - XML and HTML bodies are scanned in place by `redact_xml.rs` ([`BodyRedaction::Xml`]).
//! - Text of no known format (plain-text bodies, JSON that does not parse, header values,
//!   span and log field values, log messages, text inside XML) gets the pass of
//!   `redact_text.rs` over `k=v`, `k = v`, `k: v`, `"k": v`, `'k': v` and `"k" => v`
//!   pairs (see `TextPair::value` for where each kind of value ends).

/// What a redacted value reads as.
///
/// ```
/// # use diag_core::debug::DebugLevel;
/// # use diag_core::request::RequestView;
/// # use diag_core::trace::TraceId;
/// use diag_core::debug::REDACTED;
/// # let diag = diag_core::Diag::builder().build().unwrap();
/// let headers = vec![("authorization".to_owned(), "Bearer eyJhbGciOi".to_owned())];
/// # let view = RequestView { method: "GET", route: None, uri: "/", headers: &headers, peer: &|| None };
/// let debug = diag.start_debug(DebugLevel::Debug, &view, TraceId::random());
/// debug.finish_incomplete();
/// let capture = diag.debug_mode().recorder().get(debug.id()).unwrap();
/// assert_eq!(capture.request.headers[0].1, REDACTED);
/// ```
pub const REDACTED: &str = "[redacted]";

/// Headers always redacted. The debug header is added to these, and `x-debug` stays
/// redacted when the debug header has another name (clients that still send it during a
/// rename carry a token too).
///
/// ```
/// # use diag_core::debug::DebugLevel;
/// # use diag_core::request::RequestView;
/// # use diag_core::trace::TraceId;
/// use diag_core::debug::{ALWAYS_REDACTED_HEADERS, REDACTED};
/// # let diag = diag_core::Diag::builder().build().unwrap();
/// let headers: Vec<(String, String)> =
///     ALWAYS_REDACTED_HEADERS.iter().map(|h| (h.to_string(), "secret".to_owned())).collect();
/// # let view = RequestView { method: "GET", route: None, uri: "/", headers: &headers, peer: &|| None };
/// let debug = diag.start_debug(DebugLevel::Debug, &view, TraceId::random());
/// debug.finish_incomplete();
/// let capture = diag.debug_mode().recorder().get(debug.id()).unwrap();
/// assert!(capture.request.headers.iter().all(|(_, value)| value == REDACTED));
/// ```
pub const ALWAYS_REDACTED_HEADERS: [&str; 4] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
];

/// Body, query and log fields redacted unless the builder says otherwise, and matched
/// as whole words of a name (see [`redact_field`](crate::DiagBuilder::redact_field)):
/// `token` hides `access_token`, `X-Auth-Token` and `refreshToken`; `api_key` hides
/// `apiKey` and the header `X-Api-Key`; `password` hides `user_password`, but not
/// `passwords_policy`.
///
/// ```
/// # use diag_core::debug::DebugLevel;
/// # use diag_core::request::RequestView;
/// # use diag_core::trace::TraceId;
/// use diag_core::debug::DEFAULT_FIELDS;
/// assert!(DEFAULT_FIELDS.contains(&"password"));
/// # let diag = diag_core::Diag::builder().build().unwrap();
/// # let view = RequestView { method: "GET", route: None, uri: "/login?user=ada&Password=hunter2", headers: &(), peer: &|| None };
/// let debug = diag.start_debug(DebugLevel::Debug, &view, TraceId::random());
/// debug.finish_incomplete();
/// let capture = diag.debug_mode().recorder().get(debug.id()).unwrap();
/// assert_eq!(capture.request.uri, "/login?user=ada&Password=[redacted]");
/// ```
pub const DEFAULT_FIELDS: [&str; 26] = [
    "password",
    "passwd",
    "pass",
    "passphrase",
    "pwd",
    "secret",
    "token",
    "jwt",
    "private_key",
    "signing_key",
    "subscription_key",
    "signature",
    "sig",
    "access_token",
    "refresh_token",
    "api_key",
    "card_number",
    "cvv",
    "cvc",
    "authorization",
    "authentication",
    "auth",
    "cookie",
    "session_id",
    "credential",
    "credentials",
];

/// How a body was redacted, as reported with the capture.
///
/// ```
/// # use diag_core::debug::DebugLevel;
/// # use diag_core::request::RequestView;
/// # use diag_core::trace::TraceId;
/// use diag_core::debug::BodyRedaction;
/// # let diag = diag_core::Diag::builder().build().unwrap();
/// let form = vec![("content-type".to_owned(), "application/x-www-form-urlencoded".to_owned())];
/// # let view = RequestView { method: "POST", route: None, uri: "/login", headers: &form, peer: &|| None };
/// let debug = diag.start_debug(DebugLevel::Debug, &view, TraceId::random());
/// debug.request_chunk(b"user=ada&password=hunter2");
/// debug.request_end();
/// debug.finish_incomplete();
/// let body = diag.debug_mode().recorder().get(debug.id()).unwrap().request.body.clone();
/// assert_eq!(body.redaction, Some(BodyRedaction::Form));
/// assert_eq!(body.text.as_deref(), Some("user=ada&password=[redacted]"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum BodyRedaction {
    /// Complete, valid JSON; matching fields replaced at any depth, the rest as sent.
    Json,
    /// A textual pass over `"field": value` patterns (truncated or unparsable JSON, or text).
    Textual,
    /// `application/x-www-form-urlencoded` pairs.
    Form,
    /// `multipart/form-data` parts: a secret field's part content replaced, then the
    /// textual pass over the rest.
    Multipart,
    /// XML or HTML (or text that starts as markup): the content of an element, and the
    /// value of an attribute, named by a secret field replaced in place (an element cut
    /// off by the capture's cap to the end), then the textual pass over text and
    /// attribute values.
    Xml,
}

/// The redaction rules of one `Diag`.
#[derive(Clone, Debug)]
pub(crate) struct Redactor {
    headers: Vec<String>,
    /// The fields, each as the words of its name (see [`words`] and
    /// [`words_between_separators`]).
    fields: Vec<Vec<String>>,
    /// Key fragments the operator made secret with `secret_key` (lower case): a header or
    /// field whose name contains one is redacted too. The default fragments are not
    /// here: `key` alone would hide every `cache_key` of a capture.
    fragments: Vec<String>,
}

impl Redactor {
    pub(crate) fn new(debug_header: &str, extra_headers: &[String], fields: &[String]) -> Self {
        let mut headers: Vec<String> = ALWAYS_REDACTED_HEADERS
            .iter()
            .map(|s| (*s).to_owned())
            .chain([debug_header.to_owned(), super::DEFAULT_HEADER.to_owned()])
            .chain(extra_headers.iter().cloned())
            .map(|s| s.trim().to_ascii_lowercase())
            .collect();
        headers.sort();
        headers.dedup();
        // Each field both ways it splits (`apiKey`: `api key`, and `apikey`), and its
        // words joined (`api_key` is also `apikey`, as `X-Apikey` writes it).
        let mut fields: Vec<Vec<String>> = fields
            .iter()
            .flat_map(|s| {
                [
                    words(s),
                    words_between_separators(s),
                    vec![words(s).concat()],
                ]
            })
            .filter(|w| !w.is_empty() && !w[0].is_empty())
            .collect();
        fields.sort();
        fields.dedup();
        Redactor {
            headers,
            fields,
            fragments: Vec::new(),
        }
    }

    /// These rules, also redacting names that contain one of `fragments` (lower case).
    pub(crate) fn with_fragments(mut self, fragments: Vec<String>) -> Self {
        self.fragments = fragments;
        self
    }

    /// A header is secret when it is named, or when its name holds a secret field's
    /// words (`X-Api-Key`, `X-Auth-Token`).
    fn is_secret_header(&self, name: &str) -> bool {
        self.is_secret_field(name)
    }

    /// A field is secret when the words of its name hold the words of a secret field's,
    /// in a row, or its name contains an operator's fragment, or it is a secret header's
    /// name (a handler's `debug!(?headers)` writes `"x-debug": "…"` into a line).
    pub(super) fn is_secret_field(&self, name: &str) -> bool {
        if self.headers.iter().any(|h| h.eq_ignore_ascii_case(name)) {
            return true;
        }
        if !self.fields.is_empty() {
            // Split where camel case starts a word, and not: `passworD` is `password`
            // in odd case, not `passwor` and `d`.
            for name_words in [words(name), words_between_separators(name)] {
                if self
                    .fields
                    .iter()
                    .any(|f| name_words.windows(f.len()).any(|w| w == f.as_slice()))
                {
                    return true;
                }
            }
        }
        self.has_fragment(name)
    }

    fn has_fragment(&self, name: &str) -> bool {
        if self.fragments.is_empty() {
            return false;
        }
        let name = name.to_ascii_lowercase();
        self.fragments.iter().any(|f| name.contains(f.as_str()))
    }

    /// Copies headers, redacting secret ones.
    pub(crate) fn headers(&self, headers: &dyn crate::HeaderView) -> Vec<(String, String)> {
        let mut out = Vec::new();
        headers.for_each(&mut |name, value| {
            let value = if self.is_secret_header(name) {
                REDACTED.to_owned()
            } else {
                // A URL in a value (`Referer`, `X-Original-URL`) keeps its query secrets,
                // and pairs in it (`user=ada; password=…`) theirs.
                let value = String::from_utf8_lossy(value);
                if value.contains('?') {
                    self.text(&self.uri(&value))
                } else {
                    self.text(&value)
                }
            };
            out.push((name.to_owned(), value));
        });
        out
    }

    /// A path and query with secret query parameters redacted.
    pub(crate) fn uri(&self, uri: &str) -> String {
        match uri.split_once('?') {
            Some((path, query)) => format!("{path}?{}", self.form(query)),
            None => uri.to_owned(),
        }
    }

    /// `k=v&...` with secret keys' values redacted. A nested key (`user[password]`, as
    /// Rails and PHP forms write them) is secret when its last part is.
    pub(crate) fn form(&self, text: &str) -> String {
        text.split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if self.is_secret_form_key(&percent_decode(k)) => {
                    format!("{k}={REDACTED}")
                }
                Some((k, v)) => match self.nested(v) {
                    Some(v) => format!("{k}={v}"),
                    None => pair.to_owned(),
                },
                None => pair.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("&")
    }

    /// A form or query value that carries secrets of its own (a `redirect_uri` or
    /// `next` URL with `?token=…`, pairs in a value), redacted; `None` when it has none.
    /// A percent-encoded one cannot be redacted in place and is hidden whole.
    fn nested(&self, value: &str) -> Option<String> {
        let decoded = percent_decode(value);
        if !decoded.contains(['=', ':']) {
            return None;
        }
        let redacted = self.text(&decoded);
        if redacted == decoded {
            None
        } else if decoded == value {
            Some(redacted)
        } else {
            Some(REDACTED.to_owned())
        }
    }

    /// The pass for text of no known format (a plain-text or unlabelled body, a header
    /// value, a span or log field, text inside XML): [`text_pairs`](Self::text_pairs),
    /// then [`json_text`](Self::json_text) for JSON written into the text.
    /// The password of a `scheme://user:password@host` goes too.
    pub(super) fn text(&self, text: &str) -> String {
        let urls = crate::state::redaction::redact_url_passwords(text, REDACTED);
        self.json_text(&self.text_pairs(urls.as_deref().unwrap_or(text)))
    }

    pub(super) fn is_secret_form_key(&self, key: &str) -> bool {
        if self.is_secret_field(key) {
            return true;
        }
        // `user[password]`, `users[0][password]`, `password[]`: the last named part.
        let mut parts = key.split(['[', ']']).filter(|p| !p.is_empty());
        parts
            .next_back()
            .is_some_and(|last| self.is_secret_field(last))
    }

    /// Span or log fields, copied for a reader, with secret ones redacted and the
    /// textual pass over the others.
    pub(crate) fn fields<K: AsRef<str>>(&self, fields: &[(K, String)]) -> Vec<(String, String)> {
        fields
            .iter()
            .map(|(k, v)| {
                let k = k.as_ref();
                // Other values may hold secrets of their own: a `TraceLayer` span's `uri`
                // carries the query.
                let v = if self.is_secret_header(k) {
                    REDACTED.to_owned()
                } else {
                    self.text(v)
                };
                (k.to_owned(), v)
            })
            .collect()
    }

    /// A text body, redacted as its content type and completeness allow.
    pub(crate) fn body_text(
        &self,
        content_type: Option<&str>,
        text: &str,
        complete: bool,
    ) -> (String, Option<BodyRedaction>) {
        // Nothing to redact in: no pass is named (an empty body said "redacted" before).
        if (self.fields.is_empty() && self.fragments.is_empty()) || text.is_empty() {
            return (text.to_owned(), None);
        }
        let ct = content_type.unwrap_or("").to_ascii_lowercase();
        let looks_json = matches!(text.trim_start().as_bytes().first(), Some(b'{' | b'['));
        // The client chose the label: `curl -d '{"password": …}'` sends JSON labelled as a
        // form. Such a body goes through the JSON passes; a real form gets the textual
        // pass too, for JSON inside one of its values.
        let form = ct.starts_with("application/x-www-form-urlencoded");
        if form && !looks_json {
            return (self.json_text(&self.form(text)), Some(BodyRedaction::Form));
        }
        if ct.starts_with("multipart/")
            && let Some(boundary) = content_type.and_then(multipart_boundary)
        {
            let parts = self.multipart(text, boundary);
            return (self.text(&parts), Some(BodyRedaction::Multipart));
        }
        if let Some(html) = markup(&ct, text) {
            return (self.xml(text, html), Some(BodyRedaction::Xml));
        }
        let jsonish = ct.contains("json") || ((ct.is_empty() || form) && looks_json);
        // In valid JSON every string followed by `:` is a key, so the same walk is exact
        // there; it keeps the body as sent (key order, spacing, numbers beyond `f64`),
        // where a parse and re-serialization would show the reader another body.
        let valid =
            jsonish && complete && serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok();
        if valid {
            return (self.json_text(text), Some(BodyRedaction::Json));
        }
        // Plain text, a type nobody named, or JSON that is none (`{password: "…"}`,
        // `{'password': …}`, cut short): pairs of every shape, and `"password":` values.
        (self.text(text), Some(BodyRedaction::Textual))
    }

    /// `multipart/form-data` with the content of every part named by a secret field
    /// (`Content-Disposition: form-data; name="password"`) replaced; a part cut off by
    /// the capture's cap is replaced to the end.
    fn multipart(&self, text: &str, boundary: &str) -> String {
        let delimiter = format!("--{boundary}");
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find(&delimiter) {
            out.push_str(&rest[..at + delimiter.len()]);
            rest = &rest[at + delimiter.len()..];
            let Some(head_end) = rest
                .find("\r\n\r\n")
                .map(|i| i + 4)
                .or_else(|| rest.find("\n\n").map(|i| i + 2))
            else {
                break;
            };
            let head = &rest[..head_end];
            out.push_str(head);
            rest = &rest[head_end..];
            let end = rest.find(&delimiter).unwrap_or(rest.len());
            let content = &rest[..end];
            if part_name(head).is_some_and(|name| self.is_secret_form_key(name)) {
                out.push_str(REDACTED);
                // The line break before the next delimiter belongs to the framing.
                let kept = content.len() - content.trim_end_matches(['\r', '\n']).len();
                out.push_str(&content[content.len() - kept.min(2)..]);
            } else {
                out.push_str(content);
            }
            rest = &rest[end..];
        }
        out.push_str(rest);
        out
    }
}

/// The words of a name, lower case: split at anything not a letter or digit and where
/// camel case starts a word (`refreshToken`, `APIKey`: `api`, `key`).
pub(crate) fn words(name: &str) -> Vec<String> {
    let chars: Vec<char> = name.chars().collect();
    let mut out = Vec::new();
    let mut word = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_alphanumeric() {
            if !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
            continue;
        }
        let prev = i.checked_sub(1).map(|p| chars[p]);
        let next = chars.get(i + 1);
        let starts_word = c.is_uppercase()
            && prev.is_some_and(|p| {
                p.is_lowercase()
                    || p.is_numeric()
                    || (p.is_uppercase() && next.is_some_and(|n| n.is_lowercase()))
            });
        if starts_word && !word.is_empty() {
            out.push(std::mem::take(&mut word));
        }
        word.extend(c.to_lowercase());
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// Whether a body (`ct` lower case) gets the XML pass, and then whether it is HTML
/// (whose `<input>` and `<meta>` never close): an XML or HTML type, or plain or
/// unlabelled text that starts as markup (SOAP sent as `text/plain`).
fn markup(ct: &str, text: &str) -> Option<bool> {
    let essence = ct.split(';').next().unwrap_or("").trim();
    if essence == "text/html" {
        return Some(true);
    }
    if essence.ends_with("/xml") || essence.ends_with("+xml") {
        return Some(false);
    }
    let start = text.trim_start();
    let starts_as_markup = start.starts_with('<')
        && start[1..]
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'?' || b == b'!');
    if !(essence.is_empty() || essence == "text/plain") || !starts_as_markup {
        return None;
    }
    let head = start.get(..14).unwrap_or(start).to_ascii_lowercase();
    Some(head.starts_with("<!doctype html") || head.starts_with("<html"))
}

/// The `boundary` parameter of a `multipart/...` content type, unquoted.
fn multipart_boundary(content_type: &str) -> Option<&str> {
    param(content_type, "boundary").filter(|b| !b.is_empty())
}

/// The `name` of a multipart part, from its `Content-Disposition` header (not its
/// `filename`).
fn part_name(head: &str) -> Option<&str> {
    let value = head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case("content-disposition")
            .then_some(v)
    })?;
    param(value, "name")
}

/// The parameter `name` of a header value (`type; name="value"`), unquoted.
fn param<'v>(value: &'v str, name: &str) -> Option<&'v str> {
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"'))
    })
}

/// The words of a name split only at what is not a letter or digit, lower case.
fn words_between_separators(name: &str) -> Vec<String> {
    name.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// `%XX` and `+` decoding for matching form keys; invalid escapes are kept as they are.
pub(super) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// The default fields, `ssn`, and the header `X-Internal-Key`; the tests of
    /// `redact_text.rs` and `redact_json.rs` run the same rules.
    pub(crate) fn redactor() -> Redactor {
        let fields: Vec<String> = DEFAULT_FIELDS
            .iter()
            .map(|s| (*s).to_owned())
            .chain(["ssn".to_owned()])
            .collect();
        Redactor::new("x-debug", &["X-Internal-Key".to_owned()], &fields)
    }

    #[test]
    fn names_split_into_words() {
        for (name, expected) in [
            ("access_token", &["access", "token"][..]),
            ("X-Auth-Token", &["x", "auth", "token"]),
            ("refreshToken", &["refresh", "token"]),
            ("APIKey", &["api", "key"]),
            ("user[password]", &["user", "password"]),
            ("card.number2", &["card", "number2"]),
            ("v2Secret", &["v2", "secret"]),
            ("", &[]),
        ] {
            assert_eq!(words(name), expected, "{name}");
        }
    }

    /// The default fields hide secret-looking names however they are written, in
    /// headers, fields and query strings, and leave names that merely contain the letters.
    #[test]
    fn default_fields_match_whole_words() {
        let r = redactor();
        for secret in [
            "user_password",
            "userPassword",
            "client_secret",
            "apiKey",
            "api-key",
            "X-Api-Key",
            "X-Auth-Token",
            "refreshToken",
            "card.number",
            "CVV",
            "ssn",
            "customer_ssn",
            "db_pass",
            "smtpPass",
            "DB_PWD",
        ] {
            assert!(r.is_secret_field(secret), "{secret}");
            assert!(r.is_secret_header(secret), "{secret}");
        }
        for plain in [
            "passwords_policy",
            "tokens_used",
            "secretary",
            "className",
            "card",
            "key",
            "cache_key",
            "sec-websocket-key",
            "accept",
            "bypass_cache",
            "passenger_count",
        ] {
            assert!(!r.is_secret_field(plain), "{plain}");
            assert!(!r.is_secret_header(plain), "{plain}");
        }
        let headers = r.headers(&vec![
            ("X-Api-Key".to_owned(), "k123".to_owned()),
            ("X-Auth-Token".to_owned(), "t123".to_owned()),
            ("X-Password".to_owned(), "p".to_owned()),
            ("x-request-id".to_owned(), "r1".to_owned()),
        ]);
        let values: Vec<&str> = headers.iter().map(|(_, v)| v.as_str()).collect();
        assert_eq!(values, [REDACTED, REDACTED, REDACTED, "r1"]);
        assert_eq!(
            r.uri("/a?apiKey=b&api-key=c&page=2"),
            "/a?apiKey=[redacted]&api-key=[redacted]&page=2"
        );
    }

    /// A multipart form's secret parts are replaced, whatever else they carry (a file
    /// named like a secret is kept: `filename` is not `name`); a part the cap cut off is
    /// replaced to the end.
    #[test]
    fn multipart_parts_named_by_secret_fields() {
        let r = redactor();
        let ct = "multipart/form-data; boundary=\"XyZ\"";
        let body = "--XyZ\r\nContent-Disposition: form-data; name=\"user\"\r\n\r\nada\r\n\
                    --XyZ\r\ncontent-disposition: form-data; name=\"password\"\r\n\r\nhunter2\r\n\
                    --XyZ\r\nContent-Disposition: form-data; name=\"doc\"; filename=\"password.txt\"\r\n\
                    Content-Type: text/plain\r\n\r\nnotes\r\n--XyZ--\r\n";
        let (out, how) = r.body_text(Some(ct), body, true);
        assert_eq!(how, Some(BodyRedaction::Multipart));
        assert_eq!(out, body.replace("hunter2", REDACTED), "{out}");
        let cut = "--XyZ\r\nContent-Disposition: form-data; name=\"api_key\"\r\n\r\nAK-1234";
        let (out, _) = r.body_text(Some(ct), cut, false);
        assert!(!out.contains("AK-1234") && out.ends_with(REDACTED), "{out}");
    }

    /// What the last review found in clear: joined spellings, URLs in header values,
    /// `k=v` pairs in a plain-text body.
    #[test]
    fn joined_names_urls_in_headers_and_plain_text_pairs() {
        let r = redactor();
        for secret in [
            "apikey",
            "X-Apikey",
            "accesstoken",
            "cardNumber",
            "x-session-id",
            "X-Auth",
            "Cookie",
        ] {
            assert!(r.is_secret_header(secret), "{secret}");
        }
        let headers = r.headers(&vec![(
            "referer".to_owned(),
            "https://app/reset?token=T1&page=2".to_owned(),
        )]);
        assert_eq!(headers[0].1, "https://app/reset?token=[redacted]&page=2");
        for ct in [Some("text/plain"), None] {
            let (out, _) = r.body_text(ct, "user=ada&password=LEAK", true);
            assert_eq!(out, "user=ada&password=[redacted]", "{ct:?}");
        }
        // Prose with an `&` and an `=` keeps its words: `cvV) & x` is no key, and a
        // key is whole (`xcvv` is none); a real key beside them still counts.
        let prose = "see f(cvV) & then x) xcvv=2 & y=3";
        assert_eq!(r.body_text(Some("text/plain"), prose, true).0, prose);
        assert_eq!(
            r.body_text(
                Some("text/plain"),
                "see f(cvV) & cvv=2 & user_password = 3",
                true
            )
            .0,
            "see f(cvV) & cvv=[redacted] & user_password = [redacted]"
        );
    }

    /// An operator's `secret_key` fragment hides every header and field whose name
    /// contains it, whatever the case; names without it stay.
    #[test]
    fn secret_key_fragments_match_inside_names() {
        let r = redactor().with_fragments(vec!["session".to_owned()]);
        let fields = r.fields(&[
            ("Session_Ref", "s-1".to_owned()),
            ("cache_key", "p:7".to_owned()),
            ("user", "ada".to_owned()),
        ]);
        let values: Vec<&str> = fields.iter().map(|(_, v)| v.as_str()).collect();
        assert_eq!(values, [REDACTED, "p:7", "ada"]);
        let headers = r.headers(&vec![
            ("X-Session-Token".to_owned(), "t".to_owned()),
            ("accept".to_owned(), "*/*".to_owned()),
        ]);
        assert_eq!(headers[0].1, REDACTED);
        assert_eq!(headers[1].1, "*/*");
        assert_eq!(
            r.uri("/a?mySession=1&page=2"),
            "/a?mySession=[redacted]&page=2"
        );
        // Without fragments, the same names pass (only exact configured fields go).
        assert_eq!(
            redactor().fields(&[("session_ref", "s-1".to_owned())])[0].1,
            "s-1"
        );
    }

    #[test]
    fn every_secret_header() {
        let r = redactor();
        let h: Vec<(String, String)> = [
            ("Authorization", "Bearer A1"),
            ("proxy-authorization", "Basic A2"),
            ("cookie", "sid=A3"),
            ("set-cookie", "sid=A4; HttpOnly"),
            ("x-debug", "A5"),
            ("x-internal-key", "A6"),
            ("accept", "text/plain"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        let out = r.headers(&h);
        assert_eq!(out.len(), 7);
        for (name, value) in &out[..6] {
            assert_eq!(value, REDACTED, "{name}");
        }
        assert_eq!(out[6], ("accept".to_owned(), "text/plain".to_owned()));
    }

    #[test]
    fn invalid_json_and_text_bodies_get_the_textual_pass() {
        let r = redactor();
        let (out, how) = r.body_text(Some("application/json"), r#"{"password": "p1",}"#, true);
        assert_eq!(how, Some(BodyRedaction::Textual));
        assert!(!out.contains("p1"));
        let (out, _) = r.body_text(Some("text/plain"), r#"log "secret": "s3" end"#, true);
        assert!(!out.contains("s3"), "{out}");
    }

    #[test]
    fn an_empty_body_is_not_called_redacted() {
        let r = redactor();
        for ct in [
            None,
            Some("application/json"),
            Some("application/x-www-form-urlencoded"),
        ] {
            assert_eq!(r.body_text(ct, "", true), (String::new(), None), "{ct:?}");
        }
        // A body with something in it still names its pass.
        assert_eq!(r.body_text(None, " ", true).1, Some(BodyRedaction::Textual));
    }

    #[test]
    fn form_and_query() {
        let r = redactor();
        let (out, how) = r.body_text(
            Some("application/x-www-form-urlencoded"),
            "user=ann&pass%77ord=hunter2&api_key=k9",
            true,
        );
        assert_eq!(how, Some(BodyRedaction::Form));
        assert_eq!(out, "user=ann&pass%77ord=[redacted]&api_key=[redacted]");
        assert_eq!(
            r.uri("/login?next=%2F&token=abc"),
            "/login?next=%2F&token=[redacted]"
        );
        assert_eq!(r.uri("/plain"), "/plain");
        // A URL in a value (`redirect_uri`, `next`), as sent or percent-encoded.
        assert_eq!(
            r.uri("/slow?ms=5&cb=https://x/?token=abc&n=1"),
            "/slow?ms=5&cb=https://x/?token=[redacted]&n=1"
        );
        assert_eq!(
            r.uri("/slow?ms=5&cb=https%3A%2F%2Fx%2F%3Ftoken%3Dabc"),
            "/slow?ms=5&cb=[redacted]"
        );
        assert_eq!(
            r.uri("/go?next=https%3A%2F%2Fx%2Fa%3Fpage%3D2"),
            "/go?next=https%3A%2F%2Fx%2Fa%3Fpage%3D2",
            "nothing secret in it: kept as sent"
        );
        // Nested keys, as Rails and PHP forms write them.
        assert_eq!(
            r.uri("/login?user%5Bpassword%5D=x&users[0][token]=y&user[name]=ann&password[]=z"),
            "/login?user%5Bpassword%5D=[redacted]&users[0][token]=[redacted]&user[name]=ann&password[]=[redacted]"
        );
        // JSON labelled as a form (`curl -d '{...}'`): redacted as JSON all the same.
        let (out, how) = r.body_text(
            Some("application/x-www-form-urlencoded"),
            r#"{"user":"ann","data":{"password":"hunter2"}}"#,
            true,
        );
        assert_eq!(how, Some(BodyRedaction::Json));
        assert_eq!(out, r#"{"user":"ann","data":{"password":"[redacted]"}}"#);
        // JSON inside a form value.
        let (out, _) = r.body_text(
            Some("application/x-www-form-urlencoded"),
            r#"a=1&payload={"password":"hunter2"}"#,
            true,
        );
        assert!(!out.contains("hunter2"), "{out}");
    }

    #[test]
    fn span_and_log_fields() {
        let r = redactor();
        let f = vec![
            ("password".to_owned(), "p".to_owned()),
            ("cookie".to_owned(), "c".to_owned()),
            ("user".to_owned(), "ann".to_owned()),
        ];
        let out = r.fields(&f);
        assert_eq!(out[0].1, REDACTED);
        assert_eq!(out[1].1, REDACTED);
        assert_eq!(out[2].1, "ann");
    }

    /// What a handler's `debug!(?headers)` or `debug!(dsn = ..)` writes into a debug
    /// request's line: secret headers by name (the debug header, configured ones), URL
    /// passwords, and the names of keys the default list missed.
    #[test]
    fn secrets_written_into_a_line_of_text() {
        let r = redactor();
        let line = r#"headers={"host": "h", "x-debug": "s3cret", "X-Internal-Key": "SIG", "cookie": "sid=C"}"#;
        let out = r.fields(&[("headers".to_owned(), line.to_owned())]);
        for secret in ["s3cret", "SIG", "sid=C"] {
            assert!(!out[0].1.contains(secret), "{secret}: {}", out[0].1);
        }
        assert!(out[0].1.contains(r#""host": "h""#), "{}", out[0].1);
        for (text, secret) in [
            ("connect to postgres://app:DSNPW@db/app failed", "DSNPW"),
            ("upstream https://user:h18@db/x", "h18"),
            ("passphrase=PP1 private_key=PK1", "PP1"),
            ("passphrase=PP1 private_key=PK1", "PK1"),
            (r#"{"signing_key": "SK1", "jwt": "J1"}"#, "SK1"),
            (r#"{"signing_key": "SK1", "jwt": "J1"}"#, "J1"),
        ] {
            let out = r.text(text);
            assert!(!out.contains(secret), "{text} -> {out}");
        }
        assert_eq!(
            r.text("postgres://app:DSNPW@db/app"),
            format!("postgres://app:{REDACTED}@db/app")
        );
        // Presigned URLs and API gateways.
        let uri = r.uri("/f?X-Amz-Signature=ab12&sig=cd34&Ocp-Apim-Subscription-Key=ef56&n=1");
        for secret in ["ab12", "cd34", "ef56"] {
            assert!(!uri.contains(secret), "{uri}");
        }
        assert!(uri.ends_with("&n=1"), "{uri}");
    }

    /// XML bodies: elements and attributes named by secret fields, whatever their
    /// namespace prefix, lose their content; the rest reads as sent.
    #[test]
    fn xml_elements_and_attributes_named_by_secret_fields() {
        let r = redactor();
        for ct in [
            "application/xml",
            "text/xml; charset=utf-8",
            "application/soap+xml",
            "application/atom+xml",
        ] {
            let body = "<?xml version=\"1.0\"?>\n<login><user>ada</user><password>hunter2</password>\
                        <ns:Password>x1</ns:Password><user token=\"abc\" id='7'/></login>";
            let (out, how) = r.body_text(Some(ct), body, true);
            assert_eq!(how, Some(BodyRedaction::Xml), "{ct}");
            assert_eq!(
                out,
                "<?xml version=\"1.0\"?>\n<login><user>ada</user><password>[redacted]</password>\
                 <ns:Password>[redacted]</ns:Password><user token=\"[redacted]\" id='7'/></login>",
                "{ct}"
            );
        }
        // CDATA, nested elements and comments inside a secret element: all of it goes.
        let body = "<a><apiKey><![CDATA[k</apiKey>1]]></apiKey><credentials><u>ada</u>\
                    <!-- </credentials> --><p t=\"a>b\">pw</p></credentials><n>1</n></a>";
        let (out, _) = r.body_text(Some("application/xml"), body, true);
        assert_eq!(
            out,
            "<a><apiKey>[redacted]</apiKey><credentials>[redacted]</credentials><n>1</n></a>"
        );
        // WS-Security: the whole `UsernameToken` is a token.
        let soap = "<s:Envelope><s:Header><wsse:UsernameToken><wsse:Username>bob</wsse:Username>\
                    <wsse:Password Type=\"#PasswordText\">pw9</wsse:Password></wsse:UsernameToken>\
                    </s:Header></s:Envelope>";
        let (out, _) = r.body_text(Some("application/soap+xml"), soap, true);
        assert!(
            !out.contains("pw9") && out.contains("<s:Envelope>"),
            "{out}"
        );
        // Names that merely contain the letters stay; a self-closing secret is empty.
        let plain =
            "<passwords_policy>8</passwords_policy><password/><tokens_used n=\"3\">4</tokens_used>";
        assert_eq!(r.body_text(Some("text/xml"), plain, true).0, plain);
    }

    /// Config files name their secrets in an attribute: `<add key="ApiKey" value=..>`,
    /// `<property name="db.password">`, an HTML form's hidden token.
    #[test]
    fn xml_elements_named_by_a_name_or_key_attribute() {
        let r = redactor();
        let body = "<c><add key=\"ApiKey\" value=\"k1\"/><add key=\"Theme\" value=\"dark\"/>\
                    <property name=\"db.password\">p2</property></c>";
        let (out, _) = r.body_text(Some("application/xml"), body, true);
        assert_eq!(
            out,
            "<c><add key=\"ApiKey\" value=\"[redacted]\"/><add key=\"Theme\" value=\"dark\"/>\
             <property name=\"db.password\">[redacted]</property></c>"
        );
    }

    /// XML-RPC and property lists name a secret in one element and hold it in the next;
    /// HTML holds a form's hidden token in an `<input>` that never closes.
    #[test]
    fn xml_named_values_and_html() {
        let r = redactor();
        let body = "<struct><member><name>password</name><value><string>rpc1</string></value>\
                    </member><member><name>user</name><value>ada</value></member></struct>\
                    <dict><key>api_key</key><string>pl1</string><key>n</key><integer>1</integer></dict>";
        let (out, _) = r.body_text(Some("text/xml"), body, true);
        assert_eq!(
            out,
            "<struct><member><name>password</name><value>[redacted]</value>\
             </member><member><name>user</name><value>ada</value></member></struct>\
             <dict><key>api_key</key><string>[redacted]</string><key>n</key><integer>1</integer></dict>"
        );
        let page = "<!DOCTYPE html><form><input type=hidden name=csrf_token value=c1>\
                    <input name=user value=ada></form><meta name=\"csrf-token\" content=\"c2\">\
                    <script>var token = 'c3'; if (a<b) { x(\"</p>\") }</script><p>shown</p>";
        for ct in [Some("text/html; charset=utf-8"), None] {
            let (out, how) = r.body_text(ct, page, true);
            assert_eq!(how, Some(BodyRedaction::Xml));
            for secret in ["c1", "c2", "c3"] {
                assert!(!out.contains(secret), "{secret} in {out}");
            }
            assert!(
                out.contains("value=ada") && out.ends_with("<p>shown</p>"),
                "{out}"
            );
        }
    }

    /// A capture cut inside a secret element, its start tag or an attribute's value
    /// shows none of the secret's first bytes; malformed XML fails closed.
    #[test]
    fn truncated_and_malformed_xml() {
        let r = redactor();
        for (body, expected) in [
            ("<a><password>hunt", "<a><password>[redacted]"),
            ("<a><password><![CDATA[hun", "<a><password>[redacted]"),
            ("<a><secret><v>s1</v><v>s2", "<a><secret>[redacted]"),
            ("<a><user token=\"ab", "<a><user token=\"[redacted]"),
            (
                "<a><user token='ab' x=\"1",
                "<a><user token='[redacted]' x=\"1",
            ),
            ("<a><passw", "<a><passw"),
            // An unclosed element inside a secret one: the rest of the body goes.
            ("<a><token>x<br></token><b>1</b>", "<a><token>[redacted]"),
            (
                "<<<>>><password>>x</password>",
                "<<<>>><password>[redacted]</password>",
            ),
        ] {
            for ct in ["application/xml", "text/xml"] {
                let (out, _) = r.body_text(Some(ct), body, false);
                assert_eq!(out, expected, "{body}");
            }
        }
    }

    const PLANTED: &str = "QZX9vKw2Lp";

    /// Bodies with [`PLANTED`] in a secret place, and the content types to send them as.
    fn planted_bodies() -> Vec<(String, &'static [Option<&'static str>])> {
        const XML: &[Option<&str>] = &[
            Some("application/xml"),
            Some("text/xml"),
            Some("application/soap+xml"),
        ];
        const TEXT: &[Option<&str>] = &[Some("text/plain"), None, Some("application/xml")];
        [
            (XML, "<password>{S}</password>"),
            (XML, "<a><ns:Token n=\"1\"><![CDATA[{S}]]></ns:Token></a>"),
            (XML, "<user token=\"{S}\"/>"),
            (XML, "<secret><v>{S}</v></secret>"),
            (XML, "<add key=\"api_key\" value='{S}'/>"),
            (TEXT, "password={S}; theme=dark"),
            (TEXT, "password = {S}"),
            (TEXT, "password: {S}"),
            (TEXT, "\"password\" : \"{S}\""),
            (TEXT, "{'token': '{S}'}"),
        ]
        .into_iter()
        .map(|(types, body)| (body.replace("{S}", PLANTED), types))
        .collect()
    }

    proptest::proptest! {
        /// No input makes a pass panic, and a planted secret, in a body cut anywhere
        /// (as the capture's cap cuts it), shows none of its bytes.
        #[test]
        fn no_input_panics_and_no_planted_secret_shows(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            syntax in "[<>/=\"' :;,&?!\\\\\\[\\]{}a-zA-Z\n-]{0,200}",
            noise in ("[a-z0-9 ,.]{0,30}", "[a-z0-9 ,.\n]{0,30}"),
            case in proptest::prelude::any::<proptest::sample::Index>(),
            cut in proptest::prelude::any::<proptest::sample::Index>(),
        ) {
            let r = redactor();
            let types = [
                None,
                Some("text/plain"),
                Some("application/json"),
                Some("application/xml"),
                Some("application/x-www-form-urlencoded"),
                Some("multipart/form-data; boundary=b"),
            ];
            for text in [String::from_utf8_lossy(&bytes).into_owned(), syntax] {
                for ct in types {
                    for complete in [true, false] {
                        let _ = r.body_text(ct, &text, complete);
                    }
                }
                let _ = r.headers(&vec![("x-note".to_owned(), text.clone())]);
                let _ = r.fields(&[("note", text.clone())]);
            }
            let bodies = planted_bodies();
            let (body, types) = &bodies[case.index(bodies.len())];
            let body = format!("{}\n{body}\n{}", noise.0, noise.1);
            let mut at = cut.index(body.len() + 1);
            while !body.is_char_boundary(at) {
                at -= 1;
            }
            for ct in *types {
                for text in [&body[..], &body[..at]] {
                    let (out, _) = r.body_text(*ct, text, text.len() == body.len());
                    proptest::prop_assert!(!out.contains(&PLANTED[..2]), "{ct:?}: {text:?} -> {out:?}");
                }
            }
        }
    }
}
