//! Message body length and the reuse verdict of a response (RFC 9112 §6.3,
//! §9.3, §9.6) as one pure function of the head: h11's `_body_framing`, with
//! the keep-alive decision beside it.

use crate::config::Leniency;
use crate::conn::CloseReason;
use crate::error::Error;
use crate::head::{MessageBodyLength, Version};

/// What the request said about its response (RFC 9112 §6.3 rules 1 and 2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RequestKind {
    /// The request was HEAD: no response has a body.
    pub head: bool,
    /// The request was CONNECT: a 2xx makes a tunnel.
    pub connect: bool,
}

/// The framing fields of a response head, as the head parser picked them
/// out (each already valid on its own; offsets count from the connection's
/// first input byte).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FramingFields {
    /// The Content-Length (every value agreed; RFC 9110 §8.6).
    pub content_length: Option<u64>,
    /// Transfer-Encoding present: whether chunked is the final coding, and
    /// the offset of its (last) field line.
    pub transfer_encoding: Option<(bool, u64)>,
    /// The offset of a malformed Transfer-Encoding field line, or of one
    /// that applies chunked a second time (RFC 9112 §6.1).
    pub invalid_transfer_encoding: Option<u64>,
    /// The `close` connection option (RFC 9112 §9.6).
    pub close: bool,
    /// The `keep-alive` connection option (RFC 9112 §9.3 for HTTP/1.0).
    pub keep_alive: bool,
}

/// The verdict on one response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Framing {
    /// How the body is delimited.
    pub body: MessageBodyLength,
    /// Why the connection cannot carry another request after this response
    /// (the first reason that applies, in the RFC's order), or `None`. Always
    /// `None` for an interim 1xx: only the final response decides.
    pub close: Option<CloseReason>,
}

/// RFC 9112 §6.3, in the RFC's order, then the reuse verdict (§9.3, §9.6).
///
/// `head_offset` is where the head starts (errors about the head as a whole
/// are reported there).
///
/// # Errors
/// [`Error::InvalidTransferEncoding`], [`Error::TransferEncodingInHttp10`],
/// [`Error::ContentLengthWithTransferEncoding`] (unless
/// [`Leniency::content_length_with_transfer_encoding`]).
pub(crate) fn message_body_length(
    status: u16,
    version: Version,
    req: RequestKind,
    fields: &FramingFields,
    lenient: &Leniency,
    head_offset: u64,
) -> Result<Framing, Error> {
    let interim = (100..200).contains(&status) && status != 101;
    let mut close = None;
    let mut because = |reason: CloseReason| {
        close.get_or_insert(reason);
    };
    // Rule 1: HEAD, 1xx, 204, 304; rule 2: a 2xx to CONNECT.
    let body = if interim {
        MessageBodyLength::None
    } else if status == 101 {
        because(CloseReason::SwitchingProtocols);
        MessageBodyLength::None
    } else if req.head || status == 204 || status == 304 {
        MessageBodyLength::None
    } else if req.connect && (200..300).contains(&status) {
        because(CloseReason::Tunnel);
        MessageBodyLength::None
    } else if let Some(at) = fields.invalid_transfer_encoding {
        return Err(Error::InvalidTransferEncoding { offset: at });
    } else if let Some((chunked, at)) = fields.transfer_encoding {
        // Rules 3 and 4.
        if version == Version::Http10 {
            return Err(Error::TransferEncodingInHttp10 { offset: at });
        }
        if fields.content_length.is_some() {
            if !lenient.content_length_with_transfer_encoding {
                return Err(Error::ContentLengthWithTransferEncoding {
                    offset: head_offset,
                });
            }
            because(CloseReason::ContentLengthWithTransferEncoding);
        }
        if chunked {
            MessageBodyLength::Chunked
        } else {
            MessageBodyLength::CloseDelimited
        }
    } else if let Some(n) = fields.content_length {
        // Rules 5 and 6.
        MessageBodyLength::ContentLength(n)
    } else {
        // Rule 8 (rule 7 is for requests).
        MessageBodyLength::CloseDelimited
    };
    if interim {
        return Ok(Framing { body, close: None });
    }
    if version == Version::Http10 && !fields.keep_alive {
        because(CloseReason::Http10);
    }
    if fields.close {
        because(CloseReason::ConnectionClose);
    }
    if body == MessageBodyLength::CloseDelimited {
        because(CloseReason::CloseDelimited);
    }
    Ok(Framing { body, close })
}

#[cfg(test)]
mod tests {
    use super::*;
    use MessageBodyLength::{Chunked, CloseDelimited, ContentLength};

    const NO_BODY: MessageBodyLength = MessageBodyLength::None;

    fn verdict(
        status: u16,
        version: Version,
        req: RequestKind,
        fields: FramingFields,
    ) -> Result<(MessageBodyLength, Option<CloseReason>), Error> {
        message_body_length(status, version, req, &fields, &Leniency::default(), 0)
            .map(|f| (f.body, f.close))
    }

    const GET: RequestKind = RequestKind {
        head: false,
        connect: false,
    };
    const V11: Version = Version::Http11;

    fn cl(n: u64) -> FramingFields {
        FramingFields {
            content_length: Some(n),
            ..FramingFields::default()
        }
    }
    fn te(chunked: bool) -> FramingFields {
        FramingFields {
            transfer_encoding: Some((chunked, 17)),
            ..FramingFields::default()
        }
    }

    #[test]
    fn the_rules_in_order() {
        let none = FramingFields::default();
        assert_eq!(verdict(200, V11, GET, cl(5)), Ok((ContentLength(5), None)));
        assert_eq!(verdict(200, V11, GET, te(true)), Ok((Chunked, None)));
        assert_eq!(
            verdict(200, V11, GET, te(false)),
            Ok((CloseDelimited, Some(CloseReason::CloseDelimited)))
        );
        assert_eq!(
            verdict(200, V11, GET, none.clone()),
            Ok((CloseDelimited, Some(CloseReason::CloseDelimited)))
        );
        for status in [100, 103, 199] {
            // Interim: no verdict, even with Connection: close.
            let f = FramingFields {
                close: true,
                ..cl(3)
            };
            assert_eq!(verdict(status, V11, GET, f), Ok((NO_BODY, None)));
        }
        assert_eq!(
            verdict(101, V11, GET, cl(3)),
            Ok((NO_BODY, Some(CloseReason::SwitchingProtocols)))
        );
        for status in [204, 304] {
            assert_eq!(verdict(status, V11, GET, cl(3)), Ok((NO_BODY, None)));
        }
        let head = RequestKind {
            head: true,
            connect: false,
        };
        assert_eq!(verdict(200, V11, head, te(true)), Ok((NO_BODY, None)));
        let connect = RequestKind {
            head: false,
            connect: true,
        };
        assert_eq!(
            verdict(200, V11, connect, cl(9)),
            Ok((NO_BODY, Some(CloseReason::Tunnel)))
        );
        assert_eq!(
            verdict(407, V11, connect, cl(9)),
            Ok((ContentLength(9), None))
        );
    }

    #[test]
    fn smuggling_guards_and_reuse() {
        let both = FramingFields {
            content_length: Some(3),
            ..te(true)
        };
        assert_eq!(
            verdict(200, V11, GET, both.clone()),
            Err(Error::ContentLengthWithTransferEncoding { offset: 0 })
        );
        let lenient = Leniency {
            content_length_with_transfer_encoding: true,
            ..Leniency::default()
        };
        assert_eq!(
            message_body_length(200, V11, GET, &both, &lenient, 0).map(|f| (f.body, f.close)),
            Ok((
                Chunked,
                Some(CloseReason::ContentLengthWithTransferEncoding)
            ))
        );
        assert_eq!(
            verdict(200, Version::Http10, GET, te(true)),
            Err(Error::TransferEncodingInHttp10 { offset: 17 })
        );
        let bad = FramingFields {
            invalid_transfer_encoding: Some(40),
            ..cl(1)
        };
        assert_eq!(
            verdict(200, V11, GET, bad.clone()),
            Err(Error::InvalidTransferEncoding { offset: 40 })
        );
        // No body, no framing check (RFC 9112 §6.3 rule 1 comes first).
        assert_eq!(verdict(304, V11, GET, bad), Ok((NO_BODY, None)));
        assert_eq!(
            verdict(200, Version::Http10, GET, cl(1)),
            Ok((ContentLength(1), Some(CloseReason::Http10)))
        );
        let keep = FramingFields {
            keep_alive: true,
            ..cl(1)
        };
        assert_eq!(
            verdict(200, Version::Http10, GET, keep),
            Ok((ContentLength(1), None))
        );
        let close = FramingFields {
            close: true,
            keep_alive: true,
            ..cl(1)
        };
        assert_eq!(
            verdict(200, V11, GET, close),
            Ok((ContentLength(1), Some(CloseReason::ConnectionClose)))
        );
    }
}
