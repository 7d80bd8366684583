//! The built-in `config` provider: the service's effective configuration, secrets
//! hidden, and a way to replace it when the service reloads.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::RwLock;
use serde::Serialize;
use serde_json::Value;

use crate::Diag;

/// The most changed paths a `config_reload` event names; the rest are counted.
const MAX_CHANGES_LISTED: usize = 10;

/// Why a configuration could not be shown.
///
/// ```
/// use std::collections::HashMap;
/// use diag_core::state::ConfigValueError;
/// let diag = diag_core::Diag::builder().build().unwrap();
/// // JSON object keys must be strings.
/// let weights: HashMap<(u8, u8), f64> = HashMap::from([((1, 2), 0.5)]);
/// let err = diag.config(&weights).unwrap_err();
/// assert!(matches!(err, ConfigValueError::Serialize(_)));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigValueError {
    /// The value does not serialize to JSON (e.g. a map with non-string keys).
    #[error("configuration does not serialize to JSON: {0}")]
    Serialize(#[from] serde_json::Error),
}

/// The active configuration, as `/debug/state/config` shows it (already redacted).
#[derive(Debug, Default)]
pub(crate) struct ConfigState {
    current: RwLock<Option<Arc<Value>>>,
    /// The active configuration with each secret replaced by a keyed fingerprint
    /// instead of `***`, so that a reload can tell a rotated secret by its path.
    prints: RwLock<Option<Value>>,
    /// The fingerprints' keys, random per process.
    print_keys: std::hash::RandomState,
    reloads: AtomicU64,
    last_change_unix: RwLock<Option<f64>>,
}

#[derive(Serialize)]
struct ConfigReport {
    /// `null` until the service calls `Diag::config`.
    active: Option<Value>,
    reloads: u64,
    last_change_unix: Option<f64>,
    redacted_key_fragments: Vec<String>,
}

impl ConfigState {
    /// Makes `shown` (redacted) active, with `prints` (fingerprinted); returns the
    /// previous fingerprinted value.
    fn set(&self, shown: Value, prints: Value) -> Option<Value> {
        *self.last_change_unix.write() = Some(crate::clock::unix_now());
        *self.current.write() = Some(Arc::new(shown));
        self.prints.write().replace(prints)
    }

    pub(crate) fn active(&self) -> Option<Arc<Value>> {
        self.current.read().clone()
    }
}

impl Diag {
    /// Registers the service's effective configuration, shown by the `config` provider
    /// and on `/debug`. Values of secret-looking keys (see
    /// [`DiagBuilder::secret_key`](crate::DiagBuilder::secret_key)) become `"***"` at any
    /// depth, and so do passwords inside URLs, before anything is stored.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// #[derive(serde::Serialize)]
    /// struct Settings { port: u16, db_password: String }
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// diag.config(&Settings { port: 8080, db_password: "hunter2".into() }).unwrap();
    /// let v = diag.state().collect("config").await.unwrap().value.unwrap();
    /// assert_eq!(v["active"]["port"], 8080);
    /// assert_eq!(v["active"]["db_password"], "***");
    /// # }
    /// ```
    pub fn config(&self, config: &impl Serialize) -> Result<(), ConfigValueError> {
        let (shown, prints) = self.redacted(config)?;
        self.inner.config.set(shown, prints);
        Ok(())
    }

    /// Replaces the configuration after the service reloaded it, and records a
    /// `config_reload` event naming the paths that changed (values are not shown). A
    /// rotated secret is named too (`***` before and after on the `config` view): diag
    /// compares keyed fingerprints of the secrets, never keeping the secrets themselves,
    /// so "we rotated the database password" shows on the timeline.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// diag.config(&serde_json::json!({"pool": 8, "token": "a", "db": "postgres://app:pw1@db/app"}))
    ///     .unwrap();
    /// diag.reload_config(&serde_json::json!({"pool": 16, "token": "b", "db": "postgres://app:pw2@db/app"}))
    ///     .unwrap();
    /// let last = diag.events().recent().pop().unwrap();
    /// assert_eq!(last.kind, "config_reload");
    /// assert!(last.message.contains("pool") && last.message.contains("token"), "{}", last.message);
    /// assert!(last.message.contains("db") && !last.message.contains("pw"), "{}", last.message);
    /// ```
    pub fn reload_config(&self, config: &impl Serialize) -> Result<(), ConfigValueError> {
        let (shown, prints) = self.redacted(config)?;
        let previous = self.inner.config.set(shown, prints.clone());
        self.inner.config.reloads.fetch_add(1, Ordering::Relaxed);
        let mut changed = Vec::new();
        let mut count = 0;
        diff_paths(
            previous.as_ref().unwrap_or(&Value::Null),
            &prints,
            "",
            &mut changed,
            &mut count,
        );
        let message = if count == 0 {
            "configuration reloaded; nothing visible changed".to_owned()
        } else {
            let more = count.saturating_sub(changed.len());
            let tail = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            format!(
                "configuration reloaded; changed: {}{tail}",
                changed.join(", ")
            )
        };
        self.events()
            .record(crate::events::kinds::CONFIG_RELOAD, message);
        Ok(())
    }

    /// The active configuration, redacted, if the service registered one.
    ///
    /// ```
    /// let diag = diag_core::Diag::builder().build().unwrap();
    /// assert!(diag.active_config().is_none());
    /// diag.config(&serde_json::json!({"port": 8080, "api_key": "k-123"})).unwrap();
    /// let active = diag.active_config().unwrap();
    /// assert_eq!(active["port"], 8080);
    /// assert_eq!(active["api_key"], "***");
    /// ```
    pub fn active_config(&self) -> Option<Arc<Value>> {
        self.inner.config.active()
    }

    /// `config` as the `config` view shows it, and with fingerprints for its secrets.
    fn redacted(&self, config: &impl Serialize) -> Result<(Value, Value), ConfigValueError> {
        let mut shown = serde_json::to_value(config)?;
        let mut prints = shown.clone();
        let keys = &self.inner.secret_keys;
        keys.redact(&mut shown);
        keys.fingerprint(&mut prints, &self.inner.config.print_keys);
        Ok((shown, prints))
    }
}

/// Registers `config`; called once by the builder.
pub(crate) fn register(diag: &Diag) {
    let weak = Arc::downgrade(&diag.inner);
    let _ = diag.state().register("config", move || {
        weak.upgrade().map(|inner| ConfigReport {
            active: inner.config.active().map(|a| (*a).clone()),
            reloads: inner.config.reloads.load(Ordering::Relaxed),
            last_change_unix: *inner.config.last_change_unix.read(),
            redacted_key_fragments: inner.secret_keys.fragments().to_vec(),
        })
    });
}

/// Collects the dotted paths where `old` and `new` differ (up to
/// [`MAX_CHANGES_LISTED`]); `count` gets them all.
fn diff_paths(old: &Value, new: &Value, path: &str, out: &mut Vec<String>, count: &mut usize) {
    // Objects nested deeper than this are compared whole: the recursion stays bounded.
    const MAX_DEPTH: usize = 32;
    match (old, new) {
        (Value::Object(a), Value::Object(b)) if path.matches('.').count() < MAX_DEPTH => {
            for (k, va) in a {
                let p = join(path, k);
                match b.get(k) {
                    Some(vb) => diff_paths(va, vb, &p, out, count),
                    None => push(out, count, p),
                }
            }
            for k in b.keys().filter(|k| !a.contains_key(*k)) {
                push(out, count, join(path, k));
            }
        }
        (a, b) if a != b => push(
            out,
            count,
            if path.is_empty() {
                "(root)".into()
            } else {
                path.to_owned()
            },
        ),
        _ => {}
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn push(out: &mut Vec<String>, count: &mut usize, p: String) {
    *count += 1;
    if out.len() < MAX_CHANGES_LISTED {
        out.push(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EndpointRequest;
    use serde_json::json;

    #[tokio::test]
    async fn nested_secrets_are_redacted_over_the_endpoint() {
        let diag = Diag::builder().secret_key("pin").build().unwrap();
        diag.config(&json!({
            "listen": "0.0.0.0:8080",
            "upstreams": [{"name": "pay", "auth": [{"client_secret": "s1", "id": "c"}], "pin": 1234}],
            "database_url": "postgres://app:hunter2@db:5432/app"
        }))
        .unwrap();
        let resp = diag
            .serve(EndpointRequest {
                method: "GET".into(),
                path: "/debug/state/config".into(),
                peer: Some("127.0.0.1:9".parse().unwrap()),
                ..Default::default()
            })
            .await;
        assert_eq!(resp.status, 200);
        let body = String::from_utf8(resp.body).unwrap();
        assert!(
            !body.contains("hunter2") && !body.contains("s1") && !body.contains("1234"),
            "{body}"
        );
        let v: Value = serde_json::from_str(&body).unwrap();
        let active = &v["value"]["active"];
        assert_eq!(active["upstreams"][0]["auth"][0]["client_secret"], "***");
        assert_eq!(active["upstreams"][0]["auth"][0]["id"], "c");
        assert_eq!(active["upstreams"][0]["pin"], "***");
        assert_eq!(active["database_url"], "postgres://app:***@db:5432/app");
        assert_eq!(active["listen"], "0.0.0.0:8080");
    }

    #[tokio::test]
    async fn reload_replaces_and_records_changed_paths_without_values() {
        let diag = Diag::builder().build().unwrap();
        let v = diag.state().collect("config").await.unwrap().value.unwrap();
        assert!(v["active"].is_null());
        diag.config(&json!({"pool": {"size": 8}, "api_key": "old", "mode": "a"}))
            .unwrap();
        diag.reload_config(
            &json!({"pool": {"size": 16}, "api_key": "new", "extra": true, "mode": "a"}),
        )
        .unwrap();
        let v = diag.state().collect("config").await.unwrap().value.unwrap();
        assert_eq!(v["active"]["pool"]["size"], 16);
        assert_eq!(v["reloads"], 1);
        let event = diag.events().recent().pop().unwrap();
        assert_eq!(event.kind, "config_reload");
        assert!(event.message.contains("pool.size"), "{}", event.message);
        assert!(event.message.contains("extra"), "{}", event.message);
        // The rotated secret is named by its path (both read `***`), its values never.
        assert!(event.message.contains("api_key"), "{}", event.message);
        assert!(!event.message.contains("new") && !event.message.contains("old"));
        assert!(!event.message.contains("mode"));
        // The same secret again: nothing changed.
        diag.reload_config(
            &json!({"pool": {"size": 16}, "api_key": "new", "extra": true, "mode": "a"}),
        )
        .unwrap();
        let event = diag.events().recent().pop().unwrap();
        assert!(
            event.message.contains("nothing visible changed"),
            "{}",
            event.message
        );
    }

    #[test]
    fn many_changes_are_counted_not_listed() {
        let old = json!({});
        let new: Value = (0..25)
            .map(|i| (format!("k{i}"), json!(i)))
            .collect::<serde_json::Map<_, _>>()
            .into();
        let (mut out, mut count) = (Vec::new(), 0);
        diff_paths(&old, &new, "", &mut out, &mut count);
        assert_eq!(out.len(), MAX_CHANGES_LISTED);
        assert_eq!(count, 25);
    }

    #[test]
    fn unserializable_config_is_an_error() {
        let diag = Diag::builder().build().unwrap();
        let mut bad = std::collections::HashMap::new();
        bad.insert((1, 2), "tuple keys do not make JSON");
        assert!(matches!(
            diag.config(&bad),
            Err(ConfigValueError::Serialize(_))
        ));
        assert!(diag.active_config().is_none());
    }
}
