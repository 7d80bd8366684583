//! Hiding secrets in values diag shows: the values of secret-looking keys, and the
//! password part of URLs.

use serde_json::Value;

/// What a redacted value is replaced by.
///
/// ```
/// use diag_core::state::{REDACTED, SecretKeys};
/// let mut v = serde_json::json!({"user": "ada", "session_token": "s-1"});
/// SecretKeys::default().redact(&mut v);
/// assert_eq!(v["session_token"], REDACTED);
/// assert_eq!(v["user"], "ada");
/// ```
pub const REDACTED: &str = "***";

/// The key fragments treated as secret by default (matched as case-insensitive
/// substrings, so `db_password`, `apiKey` and `X-Auth-Token` all match).
///
/// ```
/// use diag_core::state::{DEFAULT_SECRET_KEYS, SecretKeys};
/// let keys = SecretKeys::default();
/// assert_eq!(keys.fragments(), DEFAULT_SECRET_KEYS);
/// assert!(keys.is_secret("X-Auth-Token"));
/// assert!(keys.is_secret("apiKey"));
/// ```
pub const DEFAULT_SECRET_KEYS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "key",
    "credential",
    "authorization",
    "cookie",
    "private",
    "x-debug",
    "passphrase",
    "authentication",
    "session_id",
    "card_number",
    "cvv",
    "cvc",
];

/// A set of key fragments whose values are hidden.
///
/// ```
/// use diag_core::state::SecretKeys;
/// let keys = SecretKeys::default();
/// let mut v = serde_json::json!({"db": {"url": "postgres://app:hunter2@db/app", "Password": "x"}});
/// keys.redact(&mut v);
/// assert_eq!(v["db"]["Password"], "***");
/// assert_eq!(v["db"]["url"], "postgres://app:***@db/app");
/// ```
#[derive(Clone, Debug)]
pub struct SecretKeys {
    fragments: Vec<String>,
    /// Whole words of a key that make it secret (see [`DEFAULT_SECRET_WORDS`]).
    words: Vec<&'static str>,
}

/// Words that make a key secret by default when they are a whole word of it, however it
/// is written (`db_pass`, `smtpPass`, `PASS`), where a fragment would hide too much
/// (`bypass_cache`, `passenger_count`). It still hides some that are no secret
/// (`pass_through`, `first_pass`), as the fragment `pwd` hides an environment's `PWD`:
/// redaction errs on the side of hiding.
///
/// ```
/// use diag_core::state::SecretKeys;
/// let keys = SecretKeys::default();
/// assert!(keys.is_secret("SMTP_PASS") && keys.is_secret("redisPass"));
/// assert!(!keys.is_secret("bypass_cache") && !keys.is_secret("passenger_count"));
/// ```
pub const DEFAULT_SECRET_WORDS: &[&str] = &["pass", "jwt", "sig", "signature"];

impl Default for SecretKeys {
    fn default() -> Self {
        SecretKeys {
            words: DEFAULT_SECRET_WORDS.to_vec(),
            ..SecretKeys::new(DEFAULT_SECRET_KEYS.iter().copied())
        }
    }
}

impl SecretKeys {
    /// A set from the given fragments (lower-cased; empty ones ignored), without the
    /// defaults (fragments or [`DEFAULT_SECRET_WORDS`]).
    ///
    /// ```
    /// use diag_core::state::SecretKeys;
    /// let keys = SecretKeys::new(["PIN", ""]); // replaces the defaults
    /// assert_eq!(keys.fragments(), ["pin"]);
    /// assert!(keys.is_secret("card_pin"));
    /// assert!(!keys.is_secret("password"));
    /// ```
    pub fn new<I, S>(fragments: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        SecretKeys {
            fragments: fragments
                .into_iter()
                .map(|s| s.as_ref().to_ascii_lowercase())
                .filter(|s| !s.is_empty())
                .collect(),
            words: Vec::new(),
        }
    }

    /// Adds a fragment.
    ///
    /// ```
    /// use diag_core::state::SecretKeys;
    /// let mut keys = SecretKeys::default();
    /// assert!(!keys.is_secret("customer_ssn"));
    /// keys.add("SSN");
    /// assert!(keys.is_secret("customer_ssn"));
    /// ```
    pub fn add(&mut self, fragment: &str) {
        let f = fragment.to_ascii_lowercase();
        if !f.is_empty() && !self.fragments.contains(&f) {
            self.fragments.push(f);
        }
    }

    /// The fragments, lower-case.
    ///
    /// ```
    /// use diag_core::state::SecretKeys;
    /// let keys = SecretKeys::new(["Session", "IBAN"]);
    /// assert_eq!(keys.fragments(), ["session", "iban"]);
    /// ```
    pub fn fragments(&self) -> &[String] {
        &self.fragments
    }

    /// Whether a key's value must be hidden.
    ///
    /// ```
    /// use diag_core::state::SecretKeys;
    /// let keys = SecretKeys::default();
    /// assert!(keys.is_secret("DB_PASSWORD"));
    /// assert!(keys.is_secret("stripeSecret"));
    /// assert!(!keys.is_secret("port"));
    /// ```
    pub fn is_secret(&self, key: &str) -> bool {
        let lower = key.to_ascii_lowercase();
        self.fragments.iter().any(|f| lower.contains(f.as_str()))
            || (!self.words.is_empty()
                && crate::debug::redact::words(key)
                    .iter()
                    .any(|w| self.words.contains(&w.as_str())))
    }

    /// Replaces, at any depth, the value of every secret-looking key by `"***"`, and
    /// the password of every `scheme://user:password@host` string by `***`.
    ///
    /// ```
    /// use diag_core::state::SecretKeys;
    /// let mut v = serde_json::json!({
    ///     "upstreams": [{"host": "pricing", "auth": {"api_key": "k1"}}],
    ///     "cache": "redis://:hunter2@cache:6379/0",
    /// });
    /// SecretKeys::default().redact(&mut v);
    /// assert_eq!(v["upstreams"][0]["auth"]["api_key"], "***");
    /// assert_eq!(v["cache"], "redis://:***@cache:6379/0");
    /// ```
    pub fn redact(&self, value: &mut Value) {
        self.walk(
            value,
            &mut |secret| *secret = Value::String(REDACTED.to_owned()),
            &mut |text, clean| *text = clean,
        );
    }

    /// [`redact`](Self::redact), but each hidden value replaced by a fingerprint of it
    /// under `keys` (`***` and 16 hex digits; a URL keeps its redacted text, followed by
    /// `#` and the fingerprint): two such values differ exactly when the secrets do, and
    /// nothing of the secret is kept. For noticing that a secret changed.
    pub(crate) fn fingerprint(&self, value: &mut Value, keys: &std::hash::RandomState) {
        use std::hash::BuildHasher;
        self.walk(
            value,
            &mut |secret| {
                let print = keys.hash_one(secret.to_string());
                *secret = Value::String(format!("{REDACTED}{print:016x}"));
            },
            &mut |text, clean| {
                let print = keys.hash_one(text.as_str());
                *text = format!("{clean}#{print:016x}");
            },
        );
    }

    /// Calls `secret` on the value of every secret-looking key, at any depth, and `text`
    /// with the redacted text of every other string that carries a secret.
    fn walk(
        &self,
        value: &mut Value,
        secret: &mut dyn FnMut(&mut Value),
        text: &mut dyn FnMut(&mut String, String),
    ) {
        // An explicit stack: a deeply nested value must not overflow ours.
        let mut stack = vec![value];
        while let Some(v) = stack.pop() {
            match v {
                Value::Object(map) => {
                    for (k, child) in map.iter_mut() {
                        if self.is_secret(k) {
                            secret(child);
                        } else {
                            stack.push(child);
                        }
                    }
                }
                Value::Array(items) => stack.extend(items.iter_mut()),
                Value::String(s) => {
                    if let Some(clean) = self.redact_text(s) {
                        text(s, clean);
                    }
                }
                _ => {}
            }
        }
    }
}

impl SecretKeys {
    /// Free text (a config string, an error message or field, an event) with what it
    /// carries of secrets hidden: the password of every `scheme://user:password@host` in
    /// it, and the value of every `key=value` or `key: value` pair whose key looks secret
    /// (a DSN's `password=…`, a URL's `?api_key=…`, `token: …` in a message). `None` when
    /// there is nothing to hide.
    ///
    /// ```
    /// use diag_core::state::SecretKeys;
    /// let keys = SecretKeys::default();
    /// assert_eq!(
    ///     keys.redact_text("connect to postgres://app:hunter2@db/app failed: password=x y").unwrap(),
    ///     "connect to postgres://app:***@db/app failed: password=*** y"
    /// );
    /// assert_eq!(keys.redact_text("https://hooks/x?api_key=q1&n=2").unwrap(), "https://hooks/x?api_key=***&n=2");
    /// assert_eq!(keys.redact_text("pool of 8, port 5432"), None);
    /// ```
    pub fn redact_text(&self, text: &str) -> Option<String> {
        let urls = redact_url_passwords(text, REDACTED);
        let pairs = self.redact_pairs(urls.as_deref().unwrap_or(text));
        pairs.or(urls)
    }

    /// The values of `key=value` and `key: value` pairs whose key looks secret.
    fn redact_pairs(&self, text: &str) -> Option<String> {
        let b = text.as_bytes();
        let mut out = String::new();
        let mut copied = 0;
        let mut i = 0;
        while i < b.len() {
            if !matches!(b[i], b'=' | b':') {
                i += 1;
                continue;
            }
            // The key before the separator: `key=`, `key =`, or quoted, `"key": ` (JSON, a
            // `Debug` map) or `'key' =`.
            let mut key_end = i;
            while key_end > 0 && matches!(b[key_end - 1], b' ' | b'\t') {
                key_end -= 1;
            }
            let key_start = match key_end.checked_sub(1).map(|q| (q, b[q])) {
                Some((close, q @ (b'"' | b'\''))) => {
                    key_end = close;
                    b[..close]
                        .iter()
                        .rposition(|&c| c == q)
                        .map_or(close, |p| p + 1)
                }
                _ => b[..key_end]
                    .iter()
                    .rposition(|c| !(c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.')))
                    .map_or(0, |p| p + 1),
            };
            let mut value_start = i + 1;
            // `key: value`, `key = value`: the value after the spaces; `://` is no pair.
            if b[i] == b':' && b[value_start..].starts_with(b"//") {
                i += 1;
                continue;
            }
            while value_start < b.len() && b[value_start] == b' ' {
                value_start += 1;
            }
            // A quoted value (`api_key: "K1"`, as `Debug` prints it) runs to its quote.
            let quote = b
                .get(value_start)
                .copied()
                .filter(|c| matches!(c, b'"' | b'\''));
            if quote.is_some() {
                value_start += 1;
            }
            let value_end = b[value_start..]
                .iter()
                .enumerate()
                .position(|(k, &c)| match quote {
                    // Not a quote escaped inside the value (`"p\"x"`): one after an odd
                    // run of backslashes (`"a\\"` ends at its quote).
                    Some(q) => {
                        c == q
                            && b[value_start..value_start + k]
                                .iter()
                                .rev()
                                .take_while(|&&c| c == b'\\')
                                .count()
                                % 2
                                == 0
                    }
                    None => {
                        c.is_ascii_whitespace()
                            || matches!(c, b'&' | b';' | b',' | b'"' | b'\'' | b')')
                    }
                })
                .map_or(b.len(), |p| value_start + p);
            // `Bearer <token>`, `Basic <credentials>`, any HTTP auth scheme: the credentials
            // are the next word, after any spaces or tabs.
            let scheme = &b[value_start..value_end];
            let after = value_end
                + b[value_end..]
                    .iter()
                    .take_while(|&&c| c == b' ' || c == b'\t')
                    .count();
            let value_end = if quote.is_none()
                && after > value_end
                && after < b.len()
                && crate::debug::redact_text::AUTH_SCHEMES
                    .iter()
                    .any(|s| scheme.eq_ignore_ascii_case(s.as_bytes()))
            {
                b[after..]
                    .iter()
                    .position(|&c| {
                        c.is_ascii_whitespace()
                            || matches!(c, b'&' | b';' | b',' | b'"' | b'\'' | b')')
                    })
                    .map_or(b.len(), |p| after + p)
            } else {
                value_end
            };
            let key = &text[key_start..key_end];
            if !key.is_empty()
                && value_end > value_start
                && self.is_secret(key)
                && &text[value_start..value_end] != REDACTED
            {
                out.push_str(&text[copied..value_start]);
                out.push_str(REDACTED);
                copied = value_end;
                i = value_end;
            } else {
                // The value of a pair that is no secret may hold one (`error: password=x`).
                i += 1;
            }
        }
        (copied > 0).then(|| {
            out.push_str(&text[copied..]);
            out
        })
    }
}

/// [`redact_url_password`] for every URL in `text`, the password replaced by `mark`.
pub(crate) fn redact_url_passwords(text: &str, mark: &str) -> Option<String> {
    if !text.contains("://") {
        return None;
    }
    let mut changed = false;
    let mut out = String::with_capacity(text.len());
    // Each piece up to a separator is one URL at most; the separator stays with it.
    let is_separator = |c: char| c.is_whitespace() || matches!(c, ',' | '"' | '\'' | ';');
    for piece in text.split_inclusive(is_separator) {
        let url = piece.trim_end_matches(is_separator);
        match redact_url_password(url, mark) {
            Some(clean) => {
                out.push_str(&clean);
                out.push_str(&piece[url.len()..]);
                changed = true;
            }
            None => out.push_str(piece),
        }
    }
    changed.then_some(out)
}

/// `scheme://user:password@rest` → `scheme://user:***@rest`; `None` when there is no
/// password to hide. The password runs to the last `@` (it may hold `/`, `?`, `#`).
fn redact_url_password(s: &str, mark: &str) -> Option<String> {
    let scheme_end = s.find("://")? + 3;
    let rest = &s[scheme_end..];
    let at = rest.rfind('@')?;
    let userinfo = &rest[..at];
    let colon = userinfo.find(':')?;
    let (user, password) = (&userinfo[..colon], &userinfo[colon + 1..]);
    // `host:8080/p?to=a@b` is a port and a path, not a password; a user has no `/`.
    let port = password.split('/').next().unwrap_or("");
    let is_port =
        password.contains('/') && !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit());
    if password == mark || user.contains('/') || is_port {
        return None;
    }
    Some(format!(
        "{}{}:{}{}",
        &s[..scheme_end],
        user,
        mark,
        &s[scheme_end + at..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn redacts_nested_secret_keys_at_any_depth() {
        let mut v = json!({
            "name": "checkout",
            "upstreams": [
                {"host": "a", "auth": {"API_KEY": "k1", "user": "svc"}},
                {"host": "b", "headers": [{"Authorization": "Bearer x"}, {"accept": "json"}]}
            ],
            "db": {"credentials": {"user": "u", "pass": "p"}, "pool": 8},
            "sessionToken": 42
        });
        SecretKeys::default().redact(&mut v);
        assert_eq!(v["upstreams"][0]["auth"]["API_KEY"], "***");
        assert_eq!(v["upstreams"][0]["auth"]["user"], "svc");
        assert_eq!(v["upstreams"][1]["headers"][0]["Authorization"], "***");
        assert_eq!(v["upstreams"][1]["headers"][1]["accept"], "json");
        assert_eq!(v["db"]["credentials"], "***");
        assert_eq!(v["db"]["pool"], 8);
        assert_eq!(v["sessionToken"], "***");
        assert_eq!(v["name"], "checkout");
    }

    /// A key in quotes (JSON, a `Debug` map) or with spaces before its separator is a key
    /// as well: an error line's `{"password": "x"}` or a config's `password = x`.
    #[test]
    fn quoted_and_spaced_keys_in_text() {
        let keys = SecretKeys::default();
        for (text, secret) in [
            (
                r#"login failed for {"user": "ann", "password": "ERRJSONPW"}"#,
                "ERRJSONPW",
            ),
            (
                r#"{"authorization": "Bearer CUSTOMERJWT", "n": 1}"#,
                "CUSTOMERJWT",
            ),
            (r#"{"x-debug": "s3cret"}"#, "s3cret"),
            (r#"{"cookie": "sid=COOKIEVAL"}"#, "COOKIEVAL"),
            ("cfg password = SPACEPW; next", "SPACEPW"),
            ("'token'\t= TABTOK", "TABTOK"),
            (r#"body {"token":"NOSPACETOK"}"#, "NOSPACETOK"),
            // What the capture's default fields hide, these views hide too.
            (r#"{"jwt": "J1"}"#, "J1"),
            ("passphrase=PP1", "PP1"),
            ("GET https://b.s3/x?X-Amz-Signature=AB12&n=1 failed", "AB12"),
            ("sig=CD34", "CD34"),
            ("session_id=S1", "S1"),
            ("cvv=123", "123"),
            ("card_number=4111111111111111", "4111"),
            ("authorization: Bearer zzz", "zzz"),
            ("authorization=Basic YWxhZGRpbjpvcGVu", "YWxh"),
            ("authentication: Bearer AUTHN", "AUTHN"),
            ("Authorization: Negotiate NEGO", "NEGO"),
            ("proxy-authorization: NTLM NT1", "NT1"),
            ("authorization: Bearer  TWOSPACES", "TWOSPACES"),
            ("authorization: Bearer\tTABTOK", "TABTOK"),
            // An escaped quote does not end a quoted value.
            (r#"{"password": "p\"LEAK"}"#, "LEAK"),
        ] {
            let out = keys.redact_text(text).unwrap_or_else(|| text.to_owned());
            assert!(!out.contains(secret), "{text} -> {out}");
        }
        assert_eq!(
            keys.redact_text(r#"{"user": "ann", "password": "x"}"#)
                .unwrap(),
            r#"{"user": "ann", "password": "***"}"#
        );
        assert_eq!(keys.redact_text(r#"{"user": "ann", "n": "7"}"#), None);
        // An escaped backslash before the closing quote ends the value there.
        assert_eq!(
            keys.redact_text(r#"{"password": "a\\", "user": "ann"}"#)
                .unwrap(),
            r#"{"password": "***", "user": "ann"}"#
        );
    }

    #[test]
    fn custom_fragments_and_urls() {
        let mut keys = SecretKeys::new(["pin"]);
        keys.add("SSN");
        assert!(keys.is_secret("user_ssn"));
        assert!(keys.is_secret("PinCode"));
        assert!(!keys.is_secret("password"));
        assert_eq!(
            redact_url_password("redis://:pw@cache:6379/0", REDACTED).as_deref(),
            Some("redis://:***@cache:6379/0")
        );
        assert_eq!(
            redact_url_password("https://example.com/a@b", REDACTED),
            None
        );
        assert_eq!(
            redact_url_password("https://user@example.com/", REDACTED),
            None
        );
        assert_eq!(redact_url_password("not a url", REDACTED), None);
    }

    #[test]
    fn deep_values_do_not_overflow_the_stack() {
        let mut v = json!("leaf");
        for _ in 0..100_000 {
            v = Value::Array(vec![v]);
        }
        SecretKeys::default().redact(&mut v);
        // Drop iteratively too: serde_json's Drop recursion is not ours to fix, so
        // unwrap the layers by hand.
        let mut cur = v;
        while let Value::Array(mut items) = cur {
            cur = items.pop().unwrap_or(Value::Null);
        }
        assert_eq!(cur, "leaf");
    }

    /// What a config value, an error message or an event may carry in free text.
    #[test]
    fn secrets_in_free_text() {
        let keys = SecretKeys::default();
        let cases = [
            (
                "host=db user=app password=KVSECRET dbname=app",
                "host=db user=app password=*** dbname=app",
            ),
            (
                "postgres://app:p#ss/w0rd@replica:5432/db",
                "postgres://app:***@replica:5432/db",
            ),
            (
                "primary=postgres://u:pw1@a/db,replica=postgres://u:SECONDPW@b/db",
                "primary=postgres://u:***@a/db,replica=postgres://u:***@b/db",
            ),
            (
                "https://hooks.example/x?api_key=QUERYSECRET&n=2",
                "https://hooks.example/x?api_key=***&n=2",
            ),
            (
                "retrying with token: abc123 (attempt 2)",
                "retrying with token: *** (attempt 2)",
            ),
            (
                "Config { api_key: \"K1\", port: 8 }",
                "Config { api_key: \"***\", port: 8 }",
            ),
            ("error: password=x; next", "error: password=***; next"),
        ];
        for (text, want) in cases {
            assert_eq!(keys.redact_text(text).as_deref(), Some(want), "{text}");
        }
        for clean in [
            "pool of 8, port 5432",
            "https://host:8080/path?to=a@b",
            "https://x/users/@me",
            "at 12:30 the queue was full",
            "postgres://app:***@db/app",
        ] {
            assert_eq!(keys.redact_text(clean), None, "{clean}");
        }
    }
}
