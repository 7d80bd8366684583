//! Metric and label name rules, and the errors of registering a metric.

use super::histogram::BucketsError;

/// Why a metric could not be registered.
///
/// ```
/// use diag_core::metrics::MetricError;
/// let diag = diag_core::Diag::builder().build().unwrap();
/// assert!(matches!(diag.counter("2xx", ""), Err(MetricError::InvalidName { .. })));
/// assert!(matches!(diag.counter("diag_requests", ""), Err(MetricError::Reserved(_))));
/// diag.gauge("queue_depth", "Items waiting.").unwrap();
/// assert!(matches!(diag.counter("queue_depth", ""), Err(MetricError::Conflict { .. })));
/// ```
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum MetricError {
    /// The metric name breaks Prometheus' rules.
    #[error("metric name `{name}`: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A label name breaks Prometheus' rules.
    #[error("label name `{name}`: {reason}")]
    InvalidLabel {
        /// The label name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The name belongs to diag's own metrics.
    #[error("metric name `{0}` is reserved for diag's own metrics")]
    Reserved(String),
    /// The name is registered with another type or other labels.
    #[error("metric `{name}` is already registered as {existing}")]
    Conflict {
        /// The name given.
        name: String,
        /// What is registered under it.
        existing: String,
    },
    /// The registry holds its maximum number of metrics.
    #[error("at most {0} metrics can be registered")]
    TooManyMetrics(usize),
    /// The registry holds its maximum number of collectors.
    #[error("at most {0} collectors can be registered")]
    TooManyCollectors(usize),
    /// The histogram's bucket bounds are unusable.
    #[error(transparent)]
    Buckets(#[from] BucketsError),
}

/// The longest metric or label name accepted.
///
/// ```
/// use diag_core::metrics::MAX_NAME_LEN;
/// let diag = diag_core::Diag::builder().build().unwrap();
/// assert!(diag.gauge(&"a".repeat(MAX_NAME_LEN), "").is_ok());
/// assert!(diag.gauge(&"b".repeat(MAX_NAME_LEN + 1), "").is_err());
/// ```
pub const MAX_NAME_LEN: usize = 200;

const RESERVED_NAMES: &[&str] = &[
    super::http::DURATION,
    super::http::REQUESTS,
    super::http::ACTIVE,
    super::http::ABANDONED,
];

fn invalid(name: &str, reason: &'static str) -> MetricError {
    MetricError::InvalidName {
        name: name.to_owned(),
        reason,
    }
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`, not reserved.
fn check_metric_name(name: &str) -> Result<(), MetricError> {
    check_metric_syntax(name)?;
    if name.starts_with("diag_") || RESERVED_NAMES.contains(&name) {
        return Err(MetricError::Reserved(name.to_owned()));
    }
    Ok(())
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`, at most [`MAX_NAME_LEN`] long.
fn check_metric_syntax(name: &str) -> Result<(), MetricError> {
    let mut chars = name.chars();
    match chars.next() {
        None => return Err(invalid(name, "empty")),
        Some(c) if !(c.is_ascii_alphabetic() || c == '_' || c == ':') => {
            return Err(invalid(name, "must start with a letter, `_` or `:`"));
        }
        Some(_) => {}
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
        return Err(invalid(
            name,
            "only letters, digits, `_` and `:` are allowed",
        ));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(invalid(name, "longer than 200 characters"));
    }
    Ok(())
}

/// The family name of a collected counter or gauge. diag's own collectors (`own`)
/// may use the `diag_` prefix; the service's may not.
pub(crate) fn collected_name(name: &str, counter: bool, own: bool) -> Result<&str, MetricError> {
    if !own {
        return if counter {
            counter_name(name)
        } else {
            plain_name(name, false)
        };
    }
    let base = if counter {
        name.strip_suffix("_total").unwrap_or(name)
    } else {
        name
    };
    check_metric_syntax(base)?;
    if !counter && (base.ends_with("_total") || base.ends_with("_created")) {
        return Err(invalid(name, "`_total` and `_created` are for counters"));
    }
    Ok(base)
}

/// A counter's family name: `name` without one trailing `_total` (the exposition adds
/// it back, so `jobs_total` and `jobs` both give `jobs_total`, never `jobs_total_total`).
pub(crate) fn counter_name(name: &str) -> Result<&str, MetricError> {
    let base = name.strip_suffix("_total").unwrap_or(name);
    check_metric_name(base)?;
    Ok(base)
}

/// A gauge's or histogram's name. Suffixes the exposition uses for other samples are
/// refused so that no two families can write the same sample name.
pub(crate) fn plain_name(name: &str, histogram: bool) -> Result<&str, MetricError> {
    check_metric_name(name)?;
    if name.ends_with("_total") || name.ends_with("_created") {
        return Err(invalid(name, "`_total` and `_created` are for counters"));
    }
    if histogram
        && ["_bucket", "_count", "_sum"]
            .iter()
            .any(|s| name.ends_with(s))
    {
        return Err(invalid(
            name,
            "`_bucket`, `_count` and `_sum` are added by the exposition",
        ));
    }
    Ok(name)
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`, not `__`-prefixed (reserved), not `le` on histograms,
/// no duplicates.
pub(crate) fn check_label_names(names: &[&str], histogram: bool) -> Result<(), MetricError> {
    let bad = |name: &str, reason| MetricError::InvalidLabel {
        name: name.to_owned(),
        reason,
    };
    for (i, name) in names.iter().enumerate() {
        let mut chars = name.chars();
        match chars.next() {
            None => return Err(bad(name, "empty")),
            Some(c) if !(c.is_ascii_alphabetic() || c == '_') => {
                return Err(bad(name, "must start with a letter or `_`"));
            }
            Some(_) => {}
        }
        if !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(bad(name, "only letters, digits and `_` are allowed"));
        }
        if name.starts_with("__") {
            return Err(bad(name, "`__` prefixes are reserved"));
        }
        if name.len() > MAX_NAME_LEN {
            return Err(bad(name, "longer than 200 characters"));
        }
        if histogram && *name == "le" {
            return Err(bad(name, "`le` is the histogram's bucket label"));
        }
        if names[..i].contains(name) {
            return Err(bad(name, "given twice"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names() {
        assert_eq!(counter_name("jobs_total"), Ok("jobs"));
        assert_eq!(counter_name("jobs"), Ok("jobs"));
        assert!(counter_name("2fast").is_err());
        assert!(counter_name("a-b").is_err());
        assert!(counter_name("").is_err());
        assert!(counter_name("_total").is_err());
        assert!(matches!(
            counter_name("diag_x"),
            Err(MetricError::Reserved(_))
        ));
        assert!(matches!(
            counter_name("http_server_requests_total"),
            Err(MetricError::Reserved(_))
        ));
        assert!(plain_name("queue_depth", false).is_ok());
        assert!(plain_name("ns:queue_depth", false).is_ok());
        assert!(plain_name("queue_total", false).is_err());
        assert!(plain_name("latency_bucket", true).is_err());
        assert!(plain_name("latency_bucket", false).is_ok());
    }

    #[test]
    fn label_names() {
        assert!(check_label_names(&["region", "_tier2"], false).is_ok());
        assert!(check_label_names(&["__name__"], false).is_err());
        assert!(check_label_names(&["le"], true).is_err());
        assert!(check_label_names(&["le"], false).is_ok());
        assert!(check_label_names(&["a", "a"], false).is_err());
        assert!(check_label_names(&["a:b"], false).is_err());
    }
}
