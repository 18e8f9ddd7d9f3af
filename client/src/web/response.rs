//! Response bodies as text and JSON. STUB: helper-B implements.

/// r.http's `result_format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResultFormat {
    /// Text.
    Text,
    /// JSON.
    Json,
    /// JSONP.
    Jsonp,
    /// By Content-Type.
    #[default]
    Auto,
}

/// A parsed body.
#[cfg(feature = "json")]
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// Text.
    Text(String),
    /// JSON.
    Json(serde_json::Value),
}

/// Why a body could not be read as text or parsed.
#[derive(Debug)]
#[non_exhaustive]
pub enum BodyError {
    /// Malformed text.
    InvalidText,
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

impl std::error::Error for BodyError {}
