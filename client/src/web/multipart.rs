//! multipart/form-data bodies. STUB: helper-A implements.

use crate::RequestBody;

/// A multipart/form-data body being built.
#[derive(Debug)]
pub struct Multipart {}

/// A part that cannot be sent.
#[derive(Debug)]
#[non_exhaustive]
pub enum MultipartError {
    /// A control character.
    ControlCharacter,
}

impl std::fmt::Display for MultipartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

impl std::error::Error for MultipartError {}

impl Multipart {
    /// The `Content-Type` field value.
    pub fn content_type(&self) -> String {
        todo!()
    }

    /// The body.
    pub fn into_body(self) -> RequestBody {
        todo!()
    }
}
