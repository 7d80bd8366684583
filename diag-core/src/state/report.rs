use serde::Serialize;

/// How one provider call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderStatus {
    /// The provider answered with a value.
    Ok,
    /// The provider panicked, failed to serialize, or answered too much.
    Error,
    /// The provider did not answer within its deadline.
    Timeout,
}

/// One provider's entry in `/debug/state`.
#[derive(Clone, Debug, Serialize)]
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
