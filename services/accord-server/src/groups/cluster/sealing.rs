//! What nodes say to each other over NATS about consumer groups is sealed
//! with a key every node derives from the token file
//! (`TokenTable::node_key`): a NATS user allowed to publish on Accord's
//! subjects, without the token file, cannot create, delete, join or
//! acknowledge. A sealed message names its purpose (a call, a report, a
//! message for a member), so one cannot be passed off as another, and the
//! time it was sealed, so it is refused a minute later. Without a token
//! file (no authentication anywhere) nothing is sealed or checked.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use accord_proto::cluster::Sealed;
use prost::Message;

/// How long a sealed message stays acceptable (and how far apart the
/// nodes' clocks may be).
const FRESH_FOR: Duration = Duration::from_secs(60);

/// What a sealed message is for.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Purpose {
    Call,
    Report,
    ToMember,
}

impl Purpose {
    fn tag(self) -> u8 {
        match self {
            Purpose::Call => 1,
            Purpose::Report => 2,
            Purpose::ToMember => 3,
        }
    }
}

/// Why a message was not accepted.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Unsealed {
    #[error("a consumer group message that does not decode (nodes of different versions?)")]
    Malformed,
    #[error(
        "a consumer group message not sealed with this cluster's key: every node must read the same token file (--token-file)"
    )]
    WrongKey,
    #[error(
        "a consumer group message sealed more than {} s ago or in the future: are the nodes' clocks apart?",
        FRESH_FOR.as_secs()
    )]
    Stale,
}

/// The key nodes seal with, if the server has a token file.
#[derive(Clone)]
pub(crate) struct NodeKey(Option<[u8; 32]>);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}

fn mac(key: &[u8; 32], purpose: Purpose, sent_at: u64, body: &[u8]) -> blake3::Hash {
    let mut hasher = blake3::Hasher::new_keyed(key);
    hasher.update(&[purpose.tag()]);
    hasher.update(&sent_at.to_be_bytes());
    hasher.update(body);
    hasher.finalize()
}

impl NodeKey {
    pub(crate) fn new(key: Option<[u8; 32]>) -> Self {
        Self(key)
    }

    /// `message` sealed for `purpose`, as it goes over NATS.
    pub(crate) fn seal_message(&self, purpose: Purpose, message: &impl Message) -> bytes::Bytes {
        self.seal(purpose, message.encode_to_vec())
    }

    /// The message `payload` carries if it was sealed for `purpose` with
    /// this key within the last minute and decodes.
    pub(crate) fn open_message<M: Message + Default>(
        &self,
        purpose: Purpose,
        payload: &[u8],
    ) -> Result<M, Unsealed> {
        let body = self.open(purpose, payload)?;
        M::decode(body.as_slice()).map_err(|_| Unsealed::Malformed)
    }

    /// `body` sealed for `purpose`, as it goes over NATS.
    fn seal(&self, purpose: Purpose, body: Vec<u8>) -> bytes::Bytes {
        let sent_at_unix_ms = now_ms();
        let mac = match &self.0 {
            Some(key) => mac(key, purpose, sent_at_unix_ms, &body)
                .as_bytes()
                .to_vec(),
            None => Vec::new(),
        };
        Sealed {
            body,
            sent_at_unix_ms,
            mac,
        }
        .encode_to_vec()
        .into()
    }

    /// The body of `payload` if it was sealed for `purpose` with this key
    /// within the last minute.
    fn open(&self, purpose: Purpose, payload: &[u8]) -> Result<Vec<u8>, Unsealed> {
        let sealed = Sealed::decode(payload).map_err(|_| Unsealed::Malformed)?;
        let Some(key) = &self.0 else {
            return Ok(sealed.body);
        };
        let expected = mac(key, purpose, sealed.sent_at_unix_ms, &sealed.body);
        let given: [u8; 32] = sealed
            .mac
            .as_slice()
            .try_into()
            .map_err(|_| Unsealed::WrongKey)?;
        // `blake3::Hash` compares in constant time.
        if expected != blake3::Hash::from(given) {
            return Err(Unsealed::WrongKey);
        }
        let age = now_ms().abs_diff(sealed.sent_at_unix_ms);
        if u128::from(age) > FRESH_FOR.as_millis() {
            return Err(Unsealed::Stale);
        }
        Ok(sealed.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_key_and_purpose_open_a_fresh_message() {
        let key = NodeKey::new(Some([7; 32]));
        let sealed = key.seal(Purpose::Call, b"delete orders".to_vec());
        assert_eq!(
            key.open(Purpose::Call, &sealed).as_deref(),
            Ok(&b"delete orders"[..])
        );
        assert_eq!(key.open(Purpose::Report, &sealed), Err(Unsealed::WrongKey));
        let other = NodeKey::new(Some([8; 32]));
        assert_eq!(other.open(Purpose::Call, &sealed), Err(Unsealed::WrongKey));
        let unsealed = NodeKey::new(None).seal(Purpose::Call, b"delete orders".to_vec());
        assert_eq!(key.open(Purpose::Call, &unsealed), Err(Unsealed::WrongKey));
        assert_eq!(
            key.open(Purpose::Call, b"\xff\xff"),
            Err(Unsealed::Malformed)
        );
        // A body changed after sealing.
        let mut tampered = Sealed::decode(sealed.as_ref()).expect("decodes");
        tampered.body = b"delete everything".to_vec();
        assert_eq!(
            key.open(Purpose::Call, &tampered.encode_to_vec()),
            Err(Unsealed::WrongKey)
        );
        // Sealed two minutes ago, with the right key.
        let sent_at = now_ms() - 120_000;
        let old = Sealed {
            body: b"delete orders".to_vec(),
            sent_at_unix_ms: sent_at,
            mac: mac(&[7; 32], Purpose::Call, sent_at, b"delete orders")
                .as_bytes()
                .to_vec(),
        };
        assert_eq!(
            key.open(Purpose::Call, &old.encode_to_vec()),
            Err(Unsealed::Stale)
        );
    }

    #[test]
    fn without_a_key_nothing_is_checked() {
        let open = NodeKey::new(None);
        let sealed = NodeKey::new(Some([7; 32])).seal(Purpose::Report, b"ack".to_vec());
        assert_eq!(
            open.open(Purpose::Report, &sealed).as_deref(),
            Ok(&b"ack"[..])
        );
    }
}
