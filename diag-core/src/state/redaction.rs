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
    "secret",
    "token",
    "key",
    "credential",
    "authorization",
    "cookie",
    "private",
    "x-debug",
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
}

impl Default for SecretKeys {
    fn default() -> Self {
        SecretKeys::new(DEFAULT_SECRET_KEYS.iter().copied())
    }
}

impl SecretKeys {
    /// A set from the given fragments (lower-cased; empty ones ignored).
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
        let key = key.to_ascii_lowercase();
        self.fragments.iter().any(|f| key.contains(f.as_str()))
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
        // An explicit stack: a deeply nested value must not overflow ours.
        let mut stack = vec![value];
        while let Some(v) = stack.pop() {
            match v {
                Value::Object(map) => {
                    for (k, child) in map.iter_mut() {
                        if self.is_secret(k) {
                            *child = Value::String(REDACTED.to_owned());
                        } else {
                            stack.push(child);
                        }
                    }
                }
                Value::Array(items) => stack.extend(items.iter_mut()),
                Value::String(s) => {
                    if let Some(clean) = redact_url_password(s) {
                        *s = clean;
                    }
                }
                _ => {}
            }
        }
    }
}

/// `scheme://user:password@rest` → `scheme://user:***@rest`; `None` when there is no
/// password to hide.
fn redact_url_password(s: &str) -> Option<String> {
    let scheme_end = s.find("://")? + 3;
    let rest = &s[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let at = authority.rfind('@')?;
    let userinfo = &authority[..at];
    let colon = userinfo.find(':')?;
    if &userinfo[colon + 1..] == REDACTED {
        return None;
    }
    Some(format!(
        "{}{}:{}{}",
        &s[..scheme_end],
        &userinfo[..colon],
        REDACTED,
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

    #[test]
    fn custom_fragments_and_urls() {
        let mut keys = SecretKeys::new(["pin"]);
        keys.add("SSN");
        assert!(keys.is_secret("user_ssn"));
        assert!(keys.is_secret("PinCode"));
        assert!(!keys.is_secret("password"));
        assert_eq!(
            redact_url_password("redis://:pw@cache:6379/0").as_deref(),
            Some("redis://:***@cache:6379/0")
        );
        assert_eq!(redact_url_password("https://example.com/a@b"), None);
        assert_eq!(redact_url_password("https://user@example.com/"), None);
        assert_eq!(redact_url_password("not a url"), None);
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
}
