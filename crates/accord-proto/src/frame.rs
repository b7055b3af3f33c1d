//! A `SubscribeResponse` encoded once: the server sends the same bytes to
//! every subscriber of an event instead of converting and encoding the
//! event for each. On the wire it is the message itself.

use prost::bytes::{Buf, BufMut, Bytes};
use prost::encoding::{DecodeContext, WireType};

use crate::v1;

/// The encoded body of a `SubscribeResponse`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubscribeFrame(Bytes);

impl SubscribeFrame {
    /// Encodes `response`.
    pub fn encode(response: &v1::SubscribeResponse) -> Self {
        Self(Bytes::from(prost::Message::encode_to_vec(response)))
    }

    /// The encoded bytes.
    pub fn bytes(&self) -> &Bytes {
        &self.0
    }
}

impl From<v1::SubscribeResponse> for SubscribeFrame {
    fn from(response: v1::SubscribeResponse) -> Self {
        Self::encode(&response)
    }
}

impl prost::Message for SubscribeFrame {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        buf.put_slice(&self.0);
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        // Only ever sent by the server; a decoder reads `SubscribeResponse`.
        prost::encoding::skip_field(wire_type, tag, buf, ctx)
    }

    fn encoded_len(&self) -> usize {
        self.0.len()
    }

    fn clear(&mut self) {
        self.0 = Bytes::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn a_frame_is_the_encoded_response() {
        let response = v1::SubscribeResponse {
            message: Some(v1::subscribe_response::Message::CaughtUp(v1::CaughtUp {
                position: 42,
            })),
        };
        let frame = SubscribeFrame::encode(&response);
        let sent = frame.encode_to_vec();
        assert_eq!(sent, response.encode_to_vec());
        assert_eq!(
            v1::SubscribeResponse::decode(sent.as_slice()).expect("decodes"),
            response
        );
    }
}
