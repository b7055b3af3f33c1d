//! A group's settings: checked from the wire, stored, and shown again.

use accord_domain::{ConsumerStrategy, DispatchSettings, NackAction};
use accord_proto::v1;
use accord_proto::v1::consumer_group_settings::Start;
use accord_storage::storage::StoredConsumerGroup;

use crate::error::ApiError;

/// Unsettled events per member when the settings say 0.
pub(crate) const DEFAULT_MAX_IN_FLIGHT: u32 = 100;
/// Most unsettled events per member.
pub(crate) const MAX_IN_FLIGHT: u32 = 10_000;
/// Most positions in one `ack` or `nack` message: a member never holds
/// more than `MAX_IN_FLIGHT` events.
pub(crate) const MAX_ACK_POSITIONS: usize = MAX_IN_FLIGHT as usize;
/// Milliseconds to settle an event when the settings say 0.
pub(crate) const DEFAULT_ACK_TIMEOUT_MS: u32 = 30_000;
/// Longest ack timeout: one hour.
pub(crate) const MAX_ACK_TIMEOUT_MS: u32 = 3_600_000;
/// Deliveries before an event is parked when the settings say 0.
pub(crate) const DEFAULT_MAX_DELIVERIES: u32 = 10;
/// Most deliveries before an event is parked.
pub(crate) const MAX_DELIVERIES: u32 = 1_000;

/// Checks a group name against `^[a-z0-9][a-z0-9._-]{0,127}$`.
pub(crate) fn check_name(field: &str, name: &str) -> Result<(), ApiError> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|first| first.is_ascii_lowercase() || first.is_ascii_digit());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
    if first_ok && rest_ok && name.len() <= 128 {
        return Ok(());
    }
    Err(ApiError::InvalidArgument(format!(
        "{field}: {} does not match ^[a-z0-9][a-z0-9._-]{{0,127}}$",
        accord_domain::quoted(name)
    )))
}

fn bounded(field: &str, value: u32, default: u32, max: u32) -> Result<u32, ApiError> {
    match value {
        0 => Ok(default),
        value if value > max => Err(ApiError::InvalidArgument(format!(
            "settings.{field}: {value} is more than {max}"
        ))),
        value => Ok(value),
    }
}

/// Checks the settings and returns them as stored; `head` resolves the
/// start (`from_end`, and `after_position` must not be beyond it).
/// The filter is checked by the caller (`EventFilter::new`).
pub(crate) fn stored(
    settings: &v1::ConsumerGroupSettings,
    head: u64,
) -> Result<StoredConsumerGroup, ApiError> {
    let start = match settings.start {
        None | Some(Start::FromStart(_)) => 0,
        Some(Start::FromEnd(_)) => head,
        Some(Start::AfterPosition(position)) if position > head => {
            return Err(ApiError::InvalidArgument(format!(
                "settings.after_position: {position} is beyond the head of the log ({head})"
            )));
        }
        Some(Start::AfterPosition(position)) => position,
    };
    let strategy = v1::ConsumerStrategy::try_from(settings.strategy).map_err(|_| {
        ApiError::InvalidArgument(format!(
            "settings.strategy: unknown value {}",
            settings.strategy
        ))
    })?;
    let filter = settings.filter.clone().unwrap_or_default();
    Ok(StoredConsumerGroup {
        event_types: filter.event_types,
        agreement_ids: filter.agreement_ids,
        countries: filter.countries,
        start,
        // Set by the store that writes it (NATS fences by it).
        epoch: 0,
        strategy: strategy as u32,
        max_in_flight: bounded(
            "max_in_flight",
            settings.max_in_flight,
            DEFAULT_MAX_IN_FLIGHT,
            MAX_IN_FLIGHT,
        )?,
        ack_timeout_ms: bounded(
            "ack_timeout_ms",
            settings.ack_timeout_ms,
            DEFAULT_ACK_TIMEOUT_MS,
            MAX_ACK_TIMEOUT_MS,
        )?,
        max_deliveries: bounded(
            "max_deliveries",
            settings.max_deliveries,
            DEFAULT_MAX_DELIVERIES,
            MAX_DELIVERIES,
        )?,
    })
}

/// The filter of a stored group, as the wire has it.
pub(crate) fn filter_of(stored: &StoredConsumerGroup) -> v1::SubscriptionFilter {
    v1::SubscriptionFilter {
        event_types: stored.event_types.clone(),
        agreement_ids: stored.agreement_ids.clone(),
        countries: stored.countries.clone(),
    }
}

/// The settings of a stored group, as the wire has them.
pub(crate) fn wire(stored: &StoredConsumerGroup) -> v1::ConsumerGroupSettings {
    v1::ConsumerGroupSettings {
        filter: Some(filter_of(stored)),
        start: Some(Start::AfterPosition(stored.start)),
        strategy: i32::try_from(stored.strategy).unwrap_or_default(),
        max_in_flight: stored.max_in_flight,
        ack_timeout_ms: stored.ack_timeout_ms,
        max_deliveries: stored.max_deliveries,
    }
}

/// What dispatch needs of a stored group.
pub(crate) fn dispatch(stored: &StoredConsumerGroup) -> DispatchSettings {
    DispatchSettings {
        strategy: if stored.strategy == v1::ConsumerStrategy::PinnedByAgreement as u32 {
            ConsumerStrategy::PinnedByAgreement
        } else {
            ConsumerStrategy::RoundRobin
        },
        max_in_flight: stored.max_in_flight,
        ack_timeout_ms: u64::from(stored.ack_timeout_ms),
        max_deliveries: stored.max_deliveries,
        // The server's limit (`--max-parked-per-group`) is set by the registry.
        max_parked: usize::MAX,
    }
}

/// A nack's action from the wire.
pub(crate) fn nack_action(action: i32) -> Result<NackAction, ApiError> {
    match v1::NackAction::try_from(action) {
        Ok(v1::NackAction::Retry) => Ok(NackAction::Retry),
        Ok(v1::NackAction::Park) => Ok(NackAction::Park),
        Ok(v1::NackAction::Skip) => Ok(NackAction::Skip),
        Err(_) => Err(ApiError::InvalidArgument(format!(
            "nack.action: unknown value {action}"
        ))),
    }
}

/// A nack action as the wire names it.
pub(crate) fn wire_nack_action(action: NackAction) -> v1::NackAction {
    match action {
        NackAction::Retry => v1::NackAction::Retry,
        NackAction::Park => v1::NackAction::Park,
        NackAction::Skip => v1::NackAction::Skip,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nack_actions_go_to_the_wire_and_back() {
        for action in [NackAction::Retry, NackAction::Park, NackAction::Skip] {
            assert_eq!(
                nack_action(wire_nack_action(action) as i32).ok(),
                Some(action)
            );
        }
    }

    #[test]
    fn names_follow_the_pattern() {
        for good in ["a", "billing-2", "x.y_z", &"a".repeat(128)] {
            assert!(check_name("name", good).is_ok(), "{good}");
        }
        for bad in ["", "-a", "A", "a b", "é", &"a".repeat(129)] {
            assert!(check_name("name", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn zero_means_the_default_and_huge_is_refused() {
        let defaults = stored(&v1::ConsumerGroupSettings::default(), 7).expect("defaults");
        assert_eq!(
            (
                defaults.start,
                defaults.max_in_flight,
                defaults.ack_timeout_ms,
                defaults.max_deliveries
            ),
            (0, 100, 30_000, 10)
        );
        let huge = v1::ConsumerGroupSettings {
            max_in_flight: 10_001,
            ..Default::default()
        };
        assert!(stored(&huge, 7).is_err());
        let beyond = v1::ConsumerGroupSettings {
            start: Some(Start::AfterPosition(8)),
            ..Default::default()
        };
        assert!(stored(&beyond, 7).is_err());
    }
}
