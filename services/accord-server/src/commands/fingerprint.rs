//! The digest that tells a retried command from a reused command id.

use accord_proto::v1;
use accord_store::Fingerprint;
use prost::Message;

/// Returns a digest of the command's content, without its meta: a retry may
/// carry a different expected version or correlation id and is still the
/// same command.
pub(crate) fn fingerprint(command: &v1::Command) -> Fingerprint {
    use v1::command::Command as Wire;
    let mut content = command.clone();
    match &mut content.command {
        Some(Wire::Announce(request)) => request.meta = None,
        Some(Wire::Sign(request)) => request.meta = None,
        Some(Wire::RecordDelivery(request)) => request.meta = None,
        Some(Wire::RecordLocalization(request)) => request.meta = None,
        None => {}
    }
    let digest = blake3::hash(&content.encode_to_vec());
    let mut fingerprint = [0; 16];
    fingerprint.copy_from_slice(&digest.as_bytes()[..16]);
    fingerprint
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(units_of_meta: &str, agreement_id: &str) -> v1::Command {
        v1::Command {
            command: Some(v1::command::Command::Sign(v1::SignRequest {
                meta: Some(v1::CommandMeta {
                    command_id: "c".into(),
                    correlation_id: units_of_meta.into(),
                    ..Default::default()
                }),
                agreement_id: agreement_id.into(),
                ..Default::default()
            })),
        }
    }

    #[test]
    fn meta_does_not_change_the_fingerprint() {
        assert_eq!(
            fingerprint(&sign("one", "a")),
            fingerprint(&sign("two", "a"))
        );
    }

    #[test]
    fn content_does() {
        assert_ne!(
            fingerprint(&sign("one", "a")),
            fingerprint(&sign("one", "b"))
        );
    }
}
