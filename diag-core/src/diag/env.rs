//! [`DiagBuilder::from_env`]: the environment variables an operator sets, on top of
//! what the code configured.

use super::builder::DiagBuilder;
use crate::ConfigError;

impl DiagBuilder {
    /// Reads these environment variables: each replaces what code set before this call
    /// (a setter called after it wins: call `from_env` after the settings an operator
    /// should be able to override), except the three lists marked "added", which extend
    /// the code's:
    ///
    /// | variable | meaning |
    /// |---|---|
    /// | `DIAG_TOKEN` | bearer token for `/debug/*` (empty: none; surrounding whitespace dropped) |
    /// | `DIAG_DISABLED` | `1`/`true`: start with the kill switch on |
    /// | `DIAG_TRUSTED_PROXIES` | comma-separated addresses/CIDRs whose `X-Forwarded-For`, `Forwarded` and `X-Real-IP` are believed (added) |
    /// | `DIAG_ADMIN_ADDR` | serve the endpoints on this separate address |
    /// | `DIAG_INSTANCE` | this process's name among the service's instances (default `<hostname>:<pid>`) |
    /// | `DIAG_METRICS_PUBLIC` | `0`/`false`: `/metrics` needs the token too |
    /// | `DIAG_PROCESS_METRICS` | `0`/`false`: no `process_*`, `service_build_info` and `tokio_*` families |
    /// | `DIAG_TRACEPARENT_EVERY_RESPONSE` | `0`/`false`: only debug and error responses carry `traceparent`, not every one ([`traceparent_on_every_response`](Self::traceparent_on_every_response)) |
    /// | `DIAG_DEBUG_TOKEN` | a separate token for `X-Debug` and key for signed debug credentials (default: `DIAG_TOKEN`) |
    /// | `DIAG_DEBUG_HEADER` | the debug request header (default `x-debug`) |
    /// | `DIAG_DEBUG_NETWORKS` | comma-separated addresses/CIDRs where `X-Debug: 1` is honoured, replacing the default loopback (empty: nowhere) |
    /// | `DIAG_DEBUG_BUDGET` | debug requests admitted per second (default 5) |
    /// | `DIAG_DEBUG_BURST` | debug requests admitted in one burst (default 20) |
    /// | `DIAG_DEBUG_MAX_IN_FLIGHT` | debug requests running at once (default 32) |
    /// | `DIAG_CAPTURE_BODY_BYTES` | bytes of each body a debug request captures (default 65536) |
    /// | `DIAG_RECORDER_CAPTURES` | finished debug requests kept (default 100) |
    /// | `DIAG_RECORDER_BYTES` | bytes of captures kept (default 8388608) |
    /// | `DIAG_REDACT_HEADERS` | comma-separated extra headers redacted in captures (added) |
    /// | `DIAG_REDACT_FIELDS` | comma-separated extra body/query/log fields redacted in captures (added) |
    /// | `DIAG_SAMPLING_RATIO` | the share of new traces sampled, 0 to 1 ([`sampling_ratio`](Self::sampling_ratio)); unset: OpenTelemetry's `OTEL_TRACES_SAMPLER` (`always_on`, `always_off`, `traceidratio` or their `parentbased_` forms, with `OTEL_TRACES_SAMPLER_ARG`) when set, so diag samples as the service's SDK does; else 1 |
    /// | `DIAG_OTLP_ENDPOINT` | send traces there (debug requests' whole traces, sampled requests' server spans) ([`otlp_endpoint`](Self::otlp_endpoint)); else `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, else `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`, unless `OTEL_EXPORTER_OTLP[_TRACES]_PROTOCOL` names another protocol than `http/protobuf`, `OTEL_TRACES_EXPORTER` does not name `otlp`, or `OTEL_SDK_DISABLED` is `true` (an endpoint taken from `OTEL_` variables is named in the log and the `start` event) |
    /// | `DIAG_OTLP_DEBUG_SPANS` | `0`/`false`: a debug request's exported trace is its server span alone, for a service whose own OpenTelemetry SDK exports its spans ([`otlp_debug_spans`](Self::otlp_debug_spans)) |
    ///
    /// ```
    /// // SAFETY: doc test, single-threaded.
    /// unsafe { std::env::set_var("DIAG_TOKEN", "from-env") };
    /// let diag = diag_core::Diag::from_env().unwrap().service("demo").build().unwrap();
    /// # let _ = diag;
    /// ```
    pub fn from_env(mut self) -> Result<Self, ConfigError> {
        if let Ok(token) = std::env::var("DIAG_TOKEN") {
            self = self.token(token);
        }
        if let Ok(name) = std::env::var("DIAG_INSTANCE")
            && !name.trim().is_empty()
        {
            self.instance = Some(name.trim().to_owned());
        }
        if let Some(b) = env_bool("DIAG_DISABLED")? {
            self.disabled = b;
        }
        if let Ok(list) = std::env::var("DIAG_TRUSTED_PROXIES") {
            self.trusted_proxies.extend(
                list.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from),
            );
        }
        if let Ok(addr) = std::env::var("DIAG_ADMIN_ADDR")
            && !addr.trim().is_empty()
        {
            self.admin_addr = Some(addr);
        }
        if let Some(b) = env_bool("DIAG_METRICS_PUBLIC")? {
            self.metrics_public = b;
        }
        if let Some(b) = env_bool("DIAG_PROCESS_METRICS")? {
            self.process_metrics = b;
        }
        if let Some(b) = env_bool("DIAG_TRACEPARENT_EVERY_RESPONSE")? {
            self.traceparent_every_response = b;
        }
        if let Some(b) = env_bool("DIAG_OTLP_DEBUG_SPANS")? {
            self.otlp_debug_spans = b;
        }
        self = self.debug_from_env()?;
        let var = |name: &str| std::env::var(name).ok();
        if let Some(ratio) = sampling_ratio_from_env(var)? {
            self.sampling_ratio = ratio;
        } else if let Some(ratio) = otel_sampler_ratio(var) {
            self.sampling_ratio = ratio;
        }
        let otlp = crate::otlp::endpoint_from_env(var);
        match otlp {
            // OpenTelemetry's variables are set for the service's own SDK: follow what
            // they say of it (off, another exporter), never send where diag cannot
            // (https), and say where the spans go.
            Some((name, url)) if name.starts_with("OTEL_") => {
                if let Some(off) = otel_traces_off(var) {
                    self.otlp_note = Some(format!(
                        "{name} is set, but {off}: diag exports no traces either (set \
                         DIAG_OTLP_ENDPOINT to send them)"
                    ));
                } else {
                    match crate::otlp::Endpoint::parse(&url) {
                        Ok(endpoint) => {
                            self.otlp_note = Some(format!(
                                "diag sends its spans to {}, from {name} (set for an \
                                 OpenTelemetry SDK too? see README, \"Beside an \
                                 OpenTelemetry SDK\"; DIAG_OTLP_ENDPOINT overrides it)",
                                endpoint.shown()
                            ));
                            self.otlp_endpoint = Some(url);
                        }
                        Err(reason) => {
                            self.otlp_note = Some(format!(
                                "{name} names a collector diag cannot use ({reason}); \
                                 diag exports no traces (set DIAG_OTLP_ENDPOINT to a plain \
                                 http:// collector)"
                            ));
                        }
                    }
                }
            }
            Some((_, url)) => self.otlp_endpoint = Some(url),
            None => self.otlp_note = otel_protocol_refused(var),
        }
        Ok(self)
    }
}

/// `DIAG_SAMPLING_RATIO`, read through `var`: a number from 0 to 1, or nothing.
fn sampling_ratio_from_env(
    var: impl Fn(&str) -> Option<String>,
) -> Result<Option<f64>, ConfigError> {
    const NAME: &str = "DIAG_SAMPLING_RATIO";
    let Some(v) = var(NAME).filter(|v| !v.trim().is_empty()) else {
        return Ok(None);
    };
    match v.trim().parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(Some(r)),
        _ => Err(ConfigError::Env {
            name: NAME,
            reason: format!("`{v}` is not a ratio from 0 to 1"),
        }),
    }
}

/// The ratio OpenTelemetry's `OTEL_TRACES_SAMPLER` (and `OTEL_TRACES_SAMPLER_ARG`) give
/// the service's SDK, read through `var`; `None` for no sampler, one diag cannot follow
/// (`jaeger_remote`, say), or a ratio that is not one.
fn otel_sampler_ratio(var: impl Fn(&str) -> Option<String>) -> Option<f64> {
    let sampler = var("OTEL_TRACES_SAMPLER")?.trim().to_ascii_lowercase();
    match sampler.strip_prefix("parentbased_").unwrap_or(&sampler) {
        "always_on" => Some(1.0),
        "always_off" => Some(0.0),
        // The specification's default when the argument is missing.
        "traceidratio" => match var("OTEL_TRACES_SAMPLER_ARG") {
            None => Some(1.0),
            Some(arg) => arg
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|r| (0.0..=1.0).contains(r)),
        },
        _ => None,
    }
}

/// Why an OpenTelemetry endpoint that is set was not taken: its protocol is not the one
/// diag speaks (OTLP over HTTP with protobuf); `None` when no endpoint is set.
fn otel_protocol_refused(var: impl Fn(&str) -> Option<String>) -> Option<String> {
    let set = |name| var(name).is_some_and(|v| !v.trim().is_empty());
    if !set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") && !set("OTEL_EXPORTER_OTLP_ENDPOINT") {
        return None;
    }
    let (name, protocol) =
        crate::otlp::otel_protocol(&var).filter(|(_, p)| p != "http/protobuf")?;
    Some(format!(
        "{name}={protocol}: diag speaks only http/protobuf and exports no traces (set \
         DIAG_OTLP_ENDPOINT to an OTLP/HTTP collector)"
    ))
}

/// What says the service's OpenTelemetry SDK exports no traces over OTLP, read through
/// `var`: `OTEL_SDK_DISABLED=true`, or an `OTEL_TRACES_EXPORTER` that does not name `otlp`.
fn otel_traces_off(var: impl Fn(&str) -> Option<String>) -> Option<String> {
    if var("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
        return Some("OTEL_SDK_DISABLED=true".to_owned());
    }
    let exporter = var("OTEL_TRACES_EXPORTER")?;
    let otlp = exporter.split(',').any(|e| e.trim() == "otlp");
    (!otlp && !exporter.trim().is_empty())
        .then(|| format!("OTEL_TRACES_EXPORTER={}", exporter.trim()))
}

fn env_bool(name: &'static str) -> Result<Option<bool>, ConfigError> {
    match std::env::var(name) {
        Err(_) => Ok(None),
        Ok(v) => match v.trim().to_ascii_lowercase().as_str() {
            "" => Ok(None),
            "1" | "true" | "yes" | "on" => Ok(Some(true)),
            "0" | "false" | "no" | "off" => Ok(Some(false)),
            other => Err(ConfigError::Env {
                name,
                reason: format!("`{other}` is not a boolean (use 1 or 0)"),
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars<'a>(set: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            set.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn opentelemetry_samplers_give_the_ratio() {
        for (set, want) in [
            (&[][..], None),
            (&[("OTEL_TRACES_SAMPLER", "always_on")][..], Some(1.0)),
            (
                &[("OTEL_TRACES_SAMPLER", "parentbased_always_off")][..],
                Some(0.0),
            ),
            (
                &[
                    ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
                    ("OTEL_TRACES_SAMPLER_ARG", "0.1"),
                ][..],
                Some(0.1),
            ),
            (&[("OTEL_TRACES_SAMPLER", "traceidratio")][..], Some(1.0)),
            (
                &[
                    ("OTEL_TRACES_SAMPLER", "traceidratio"),
                    ("OTEL_TRACES_SAMPLER_ARG", "lots"),
                ][..],
                None,
            ),
            (&[("OTEL_TRACES_SAMPLER", "jaeger_remote")][..], None),
        ] {
            assert_eq!(otel_sampler_ratio(vars(set)), want, "{set:?}");
        }
    }

    #[test]
    fn an_opentelemetry_protocol_diag_does_not_speak_is_named() {
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel:4317");
        let grpc = ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc");
        let note = otel_protocol_refused(vars(&[endpoint, grpc])).unwrap();
        assert!(note.contains("OTEL_EXPORTER_OTLP_PROTOCOL=grpc"), "{note}");
        assert_eq!(
            otel_protocol_refused(vars(&[grpc])),
            None,
            "no endpoint set"
        );
        assert_eq!(otel_protocol_refused(vars(&[endpoint])), None);
    }

    #[test]
    fn opentelemetry_can_say_its_traces_are_off() {
        for (set, off) in [
            (&[][..], false),
            (&[("OTEL_SDK_DISABLED", "TRUE")][..], true),
            (&[("OTEL_SDK_DISABLED", "false")][..], false),
            (&[("OTEL_TRACES_EXPORTER", "none")][..], true),
            (&[("OTEL_TRACES_EXPORTER", "console")][..], true),
            (&[("OTEL_TRACES_EXPORTER", "otlp")][..], false),
            (&[("OTEL_TRACES_EXPORTER", "console, otlp")][..], false),
        ] {
            assert_eq!(otel_traces_off(vars(set)).is_some(), off, "{set:?}");
        }
    }

    #[test]
    fn the_sampling_ratio_comes_from_the_environment() {
        let ratio = |v: Option<&str>| {
            sampling_ratio_from_env(|name| {
                assert_eq!(name, "DIAG_SAMPLING_RATIO");
                v.map(str::to_owned)
            })
        };
        assert_eq!(ratio(None).unwrap(), None);
        assert_eq!(ratio(Some(" ")).unwrap(), None);
        assert_eq!(ratio(Some("0.01")).unwrap(), Some(0.01));
        assert_eq!(ratio(Some("0")).unwrap(), Some(0.0));
        assert_eq!(ratio(Some("1")).unwrap(), Some(1.0));
        for bad in ["1.5", "-0.1", "half", "NaN"] {
            let err = ratio(Some(bad)).unwrap_err().to_string();
            assert!(err.contains("DIAG_SAMPLING_RATIO"), "{bad}: {err}");
        }
    }
}
