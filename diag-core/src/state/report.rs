use serde::Serialize;

/// How one provider call ended.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use std::time::Duration;
/// use diag_core::ProviderStatus;
/// let diag = diag_core::Diag::builder()
///     .provider_deadline(Duration::from_millis(50))
///     .provider_max_bytes(1024)
///     .build()
///     .unwrap();
/// diag.state().register("fine", || 1).unwrap();
/// diag.state().register("too_big", || "x".repeat(10_000)).unwrap();
/// diag.state().register_async("hangs", || std::future::pending::<u32>()).unwrap();
/// let all = diag.state().collect_all().await;
/// assert_eq!(all["fine"].status, ProviderStatus::Ok);
/// assert_eq!(all["too_big"].status, ProviderStatus::Error);
/// assert_eq!(all["hangs"].status, ProviderStatus::Timeout);
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ProviderStatus {
    /// The provider answered with a value.
    Ok,
    /// The provider panicked, failed to serialize, or answered too much.
    Error,
    /// The provider did not answer within its deadline.
    Timeout,
}

impl ProviderStatus {
    /// Every status, in a fixed order (for exporting one counter per status).
    ///
    /// ```
    /// use diag_core::ProviderStatus;
    /// let labels: Vec<&str> = ProviderStatus::ALL.iter().map(|s| s.as_str()).collect();
    /// assert_eq!(labels, ["ok", "error", "timeout"]);
    /// ```
    pub const ALL: &[ProviderStatus] = &[
        ProviderStatus::Ok,
        ProviderStatus::Error,
        ProviderStatus::Timeout,
    ];

    /// The status as `/debug/state` and the `status` label spell it.
    ///
    /// ```
    /// use diag_core::ProviderStatus;
    /// assert_eq!(ProviderStatus::Timeout.as_str(), "timeout");
    /// let json = serde_json::to_value(ProviderStatus::Timeout).unwrap();
    /// assert_eq!(json, ProviderStatus::Timeout.as_str()); // the same spelling
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderStatus::Ok => "ok",
            ProviderStatus::Error => "error",
            ProviderStatus::Timeout => "timeout",
        }
    }
}

/// One provider's entry in `/debug/state`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let diag = diag_core::Diag::builder().build().unwrap();
/// diag.state().register("pool", || serde_json::json!({"idle": 3})).unwrap();
/// let report = diag.state().collect("pool").await.unwrap();
/// assert!(report.duration_ms >= 0.0);
/// assert_eq!(report.error, None);
/// let json = serde_json::to_value(&report).unwrap();
/// assert_eq!(json["status"], "ok");
/// assert_eq!(json["value"]["idle"], 3);
/// # }
/// ```
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct ProviderReport {
    /// How the call ended.
    pub status: ProviderStatus,
    /// How long the call took, in milliseconds.
    pub duration_ms: f64,
    /// The value, when `status` is `ok`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<serde_json::Value>,
    /// What went wrong, otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ProviderReport {
    pub(crate) fn ok(value: serde_json::Value, duration_ms: f64) -> Self {
        ProviderReport {
            status: ProviderStatus::Ok,
            duration_ms,
            value: Some(value),
            error: None,
        }
    }

    pub(crate) fn failed(status: ProviderStatus, error: String, duration_ms: f64) -> Self {
        ProviderReport {
            status,
            duration_ms,
            value: None,
            error: Some(error),
        }
    }
}
