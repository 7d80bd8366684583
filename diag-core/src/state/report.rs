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

impl ProviderStatus {
    /// Every status, in a fixed order (for exporting one counter per status).
    pub const ALL: [ProviderStatus; 3] = [
        ProviderStatus::Ok,
        ProviderStatus::Error,
        ProviderStatus::Timeout,
    ];

    /// The status as `/debug/state` and the `status` label spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderStatus::Ok => "ok",
            ProviderStatus::Error => "error",
            ProviderStatus::Timeout => "timeout",
        }
    }
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
