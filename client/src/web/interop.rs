//! Interop with the `http` crate (feature `http`): an `http::Request` in,
//! an `http::Response<Bytes>` out.

use bytes::Bytes;

use super::Request;
use crate::{Completed, RequestBody};

impl Request {
    /// A builder from an `http::Request`: its method, URI (absolute, with
    /// a scheme), header fields (in order; values that are not UTF-8 are
    /// taken lossily) and body. The version is ignored (HTTP/1.1 is sent).
    pub fn from_http<B: Into<RequestBody>>(request: http::Request<B>) -> Request {
        let (parts, body) = request.into_parts();
        let mut builder = Request::new(parts.method.as_str(), &parts.uri.to_string());
        for (name, value) in &parts.headers {
            builder = builder.header(name.as_str(), &String::from_utf8_lossy(value.as_bytes()));
        }
        builder.body(body)
    }
}

impl Completed {
    /// The response as an `http::Response<Bytes>`: status, header fields in
    /// wire order, the body (decoded when gzip was on; empty when it went
    /// to a file), the response's version (HTTP/1.0 or HTTP/1.1).
    ///
    /// # Errors
    /// When there is no response (`response_code` 0: the request failed
    /// before one arrived), or a field is not valid for the `http` crate.
    pub fn into_http(self) -> Result<http::Response<Bytes>, http::Error> {
        let version = match self
            .head
            .as_ref()
            .map(pollhttp_proto::ResponseHead::version)
        {
            Some(pollhttp_proto::Version::Http10) => http::Version::HTTP_10,
            _ => http::Version::HTTP_11,
        };
        let mut builder = http::Response::builder()
            .status(self.response_code())
            .version(version);
        for field in self.headers().iter() {
            builder = builder.header(field.name(), field.value());
        }
        builder.body(self.body)
    }
}

impl From<http::Request<Bytes>> for Request {
    fn from(request: http::Request<Bytes>) -> Request {
        Request::from_http(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_http_request_becomes_a_builder() {
        let req = http::Request::post("http://example.com/p?q=1")
            .header("X-A", "1")
            .header("x-a", "2")
            .body(Bytes::from_static(b"body"))
            .unwrap();
        let b = Request::from_http(req);
        assert_eq!(b.method(), "POST");
        let dbg = format!("{b:?}");
        assert!(dbg.contains("http://example.com/p?q=1"), "{dbg}");
    }

    #[test]
    fn no_response_is_an_error() {
        let done = Completed::failed(
            crate::RequestResult::CantConnect,
            crate::RequestFailure::WorkerGone,
        );
        assert!(done.into_http().is_err());
    }
}
