//! `accordctl groups list | create | info | delete | replay-parked`.

use std::process::ExitCode;

use accord_proto::v1::{
    self, consumer_group_settings::Start, consumer_groups_client::ConsumerGroupsClient,
};
use serde_json::{Value, json};

use super::Outcome;
use crate::connection::Grpc;

/// Where a new group starts.
#[derive(Debug, Clone, Copy)]
pub(crate) enum GroupStart {
    FromStart,
    FromEnd,
    After(u64),
}

/// The settings `accordctl groups create` takes.
#[derive(Debug, Clone)]
pub(crate) struct NewGroup {
    pub(crate) start: GroupStart,
    pub(crate) event_types: Vec<String>,
    pub(crate) agreement_ids: Vec<String>,
    pub(crate) countries: Vec<String>,
    pub(crate) pinned: bool,
    pub(crate) max_in_flight: u32,
    pub(crate) ack_timeout_ms: u32,
    pub(crate) max_deliveries: u32,
}

fn failed(status: tonic::Status) -> String {
    format!("{:?}: {}", status.code(), status.message())
}

fn strategy_name(strategy: i32) -> &'static str {
    match v1::ConsumerStrategy::try_from(strategy) {
        Ok(v1::ConsumerStrategy::PinnedByAgreement) => "pinned-by-agreement",
        _ => "round-robin",
    }
}

fn as_json(info: &v1::ConsumerGroupInfo) -> Result<Value, String> {
    crate::canonical::json(info, "accord.v1.ConsumerGroupInfo")
}

/// The settings in a line for people (`groups info` without `--json`).
fn settings_summary(info: &v1::ConsumerGroupInfo) -> Value {
    let settings = info.settings.clone().unwrap_or_default();
    let filter = settings.filter.unwrap_or_default();
    let start = match settings.start {
        Some(Start::AfterPosition(position)) => position,
        _ => 0,
    };
    json!({
        "start_after": start,
        "strategy": strategy_name(settings.strategy),
        "max_in_flight": settings.max_in_flight,
        "ack_timeout_ms": settings.ack_timeout_ms,
        "max_deliveries": settings.max_deliveries,
        "event_types": filter.event_types,
        "agreement_ids": filter.agreement_ids,
        "countries": filter.countries,
    })
}

const HEADER: &str = "GROUP                        CHECKPOINT        LAG  MEMBERS  IN FLIGHT  PARKED  DELIVERED  REDELIVERED";

fn row(info: &v1::ConsumerGroupInfo) -> String {
    format!(
        "{:<26} {:>12} {:>10} {:>8} {:>10} {:>7} {:>10} {:>12}",
        info.name,
        info.checkpoint,
        info.lag,
        info.members,
        info.in_flight,
        info.parked,
        info.delivered_total,
        info.redelivered_total
    )
}

fn print(infos: &[v1::ConsumerGroupInfo], json: bool) -> Result<(), String> {
    if json {
        for info in infos {
            println!("{}", as_json(info)?);
        }
        return Ok(());
    }
    println!("{HEADER}");
    for info in infos {
        println!("{}", row(info));
    }
    Ok(())
}

pub(crate) async fn list(channel: Grpc, json: bool) -> Outcome {
    let groups = ConsumerGroupsClient::new(channel)
        .list_consumer_groups(v1::ListConsumerGroupsRequest {})
        .await
        .map_err(failed)?
        .into_inner()
        .groups;
    print(&groups, json)?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn create(channel: Grpc, name: String, group: NewGroup, json: bool) -> Outcome {
    let start = match group.start {
        GroupStart::FromStart => Start::FromStart(v1::subscribe_request::FromStart {}),
        GroupStart::FromEnd => Start::FromEnd(v1::subscribe_request::FromEnd {}),
        GroupStart::After(position) => Start::AfterPosition(position),
    };
    let strategy = if group.pinned {
        v1::ConsumerStrategy::PinnedByAgreement
    } else {
        v1::ConsumerStrategy::RoundRobin
    };
    let info = ConsumerGroupsClient::new(channel)
        .create_consumer_group(v1::CreateConsumerGroupRequest {
            name,
            settings: Some(v1::ConsumerGroupSettings {
                filter: Some(v1::SubscriptionFilter {
                    event_types: group.event_types,
                    agreement_ids: group.agreement_ids,
                    countries: group.countries,
                }),
                start: Some(start),
                strategy: strategy as i32,
                max_in_flight: group.max_in_flight,
                ack_timeout_ms: group.ack_timeout_ms,
                max_deliveries: group.max_deliveries,
            }),
        })
        .await
        .map_err(failed)?
        .into_inner();
    print(&[info], json)?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn info(channel: Grpc, name: String, json: bool) -> Outcome {
    let info = ConsumerGroupsClient::new(channel)
        .get_consumer_group(v1::GetConsumerGroupRequest { name })
        .await
        .map_err(failed)?
        .into_inner();
    if json {
        println!("{}", as_json(&info)?);
        return Ok(ExitCode::SUCCESS);
    }
    let settings = settings_summary(&info);
    println!("{:<18} {}", "group", info.name);
    println!("{:<18} {}", "checkpoint", info.checkpoint);
    println!("{:<18} {}", "head position", info.head_position);
    println!("{:<18} {}", "lag", info.lag);
    println!("{:<18} {}", "members", info.members);
    println!("{:<18} {}", "in flight", info.in_flight);
    println!("{:<18} {}", "parked", info.parked);
    println!("{:<18} {}", "delivered", info.delivered_total);
    println!("{:<18} {}", "redelivered", info.redelivered_total);
    println!("{:<18} {}", "settings", settings);
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn delete(channel: Grpc, name: String) -> Outcome {
    ConsumerGroupsClient::new(channel)
        .delete_consumer_group(v1::DeleteConsumerGroupRequest { name: name.clone() })
        .await
        .map_err(failed)?;
    println!("deleted consumer group {name}");
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn replay_parked(channel: Grpc, name: String) -> Outcome {
    let replayed = ConsumerGroupsClient::new(channel)
        .replay_parked(v1::ReplayParkedRequest { name: name.clone() })
        .await
        .map_err(failed)?
        .into_inner()
        .replayed;
    println!("{replayed} parked events of {name} go out again");
    Ok(ExitCode::SUCCESS)
}
