//! `accord.v1.ConsumerGroups`: the wire side of the server's consumer
//! groups (`crate::groups`).

use std::sync::Arc;

use accord_proto::v1;
use accord_proto::v1::consume_request::Kind;
use accord_proto::v1::consumer_groups_server::ConsumerGroups;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Streaming};

use super::RpcResult;
use crate::error::ApiError;
use crate::groups::{MAX_ACK_POSITIONS, MemberLink, MemberSender, member_queue, nack_action};
use crate::service::{FeedService, GroupService};
use crate::streams::Slot;

/// The service.
pub(crate) struct ConsumerGroupsApi {
    groups: Arc<dyn GroupService>,
    /// A `Consume` stream takes a slot like any other stream.
    feed: Arc<dyn FeedService>,
}

impl ConsumerGroupsApi {
    pub(crate) fn new(groups: Arc<dyn GroupService>, feed: Arc<dyn FeedService>) -> Self {
        Self { groups, feed }
    }
}

fn invalid(message: &str) -> ApiError {
    ApiError::InvalidArgument(message.to_owned())
}

#[tonic::async_trait]
impl ConsumerGroups for ConsumerGroupsApi {
    async fn create_consumer_group(
        &self,
        request: Request<v1::CreateConsumerGroupRequest>,
    ) -> RpcResult<v1::ConsumerGroupInfo> {
        let request = request.into_inner();
        let settings = request.settings.unwrap_or_default();
        Ok(Response::new(
            self.groups.create(&request.name, settings).await?,
        ))
    }

    async fn update_consumer_group(
        &self,
        request: Request<v1::UpdateConsumerGroupRequest>,
    ) -> RpcResult<v1::ConsumerGroupInfo> {
        let request = request.into_inner();
        let settings = request.settings.unwrap_or_default();
        Ok(Response::new(
            self.groups.update(&request.name, settings).await?,
        ))
    }

    async fn delete_consumer_group(
        &self,
        request: Request<v1::DeleteConsumerGroupRequest>,
    ) -> RpcResult<v1::DeleteConsumerGroupResponse> {
        self.groups.delete(&request.into_inner().name).await?;
        Ok(Response::new(v1::DeleteConsumerGroupResponse {}))
    }

    async fn get_consumer_group(
        &self,
        request: Request<v1::GetConsumerGroupRequest>,
    ) -> RpcResult<v1::ConsumerGroupInfo> {
        Ok(Response::new(
            self.groups.info(&request.into_inner().name).await?,
        ))
    }

    async fn list_consumer_groups(
        &self,
        _request: Request<v1::ListConsumerGroupsRequest>,
    ) -> RpcResult<v1::ListConsumerGroupsResponse> {
        Ok(Response::new(v1::ListConsumerGroupsResponse {
            groups: self.groups.list().await?,
        }))
    }

    async fn replay_parked(
        &self,
        request: Request<v1::ReplayParkedRequest>,
    ) -> RpcResult<v1::ReplayParkedResponse> {
        let replayed = self
            .groups
            .replay_parked(&request.into_inner().name)
            .await?;
        Ok(Response::new(v1::ReplayParkedResponse { replayed }))
    }

    type ConsumeStream = super::GrpcStream<v1::ConsumeResponse>;

    async fn consume(
        &self,
        request: Request<Streaming<v1::ConsumeRequest>>,
    ) -> RpcResult<Self::ConsumeStream> {
        let groups = &self.groups;
        let slot = self.feed.take_slot(super::owner_of(&request))?;
        let mut inbound = request.into_inner();
        let first = inbound
            .message()
            .await?
            .ok_or_else(|| invalid("the stream ended before its first message, `join`"))?;
        let Some(Kind::Join(join)) = first.kind else {
            return Err(invalid("the first message must be `join`").into());
        };
        accord_domain::validate_text("join.member_name", &join.member_name)
            .map_err(ApiError::from)?;
        let (sender, receiver) = member_queue();
        let member = groups
            .join(&join.group, join.member_name, sender.clone())
            .await?;
        tokio::spawn(follow_member(
            inbound,
            member,
            sender,
            groups.stopping(),
            slot,
        ));
        Ok(Response::new(super::grpc_stream(Box::pin(
            receiver.into_stream(),
        ))))
    }
}

/// The refusal of an `ack` or `nack` naming more positions than a member
/// can hold.
fn too_many(field: &str, positions: &[u64]) -> Option<ApiError> {
    (positions.len() > MAX_ACK_POSITIONS).then(|| {
        invalid(&format!(
            "{field}: {} positions in one message; at most {MAX_ACK_POSITIONS} (a member holds at most that many events)",
            positions.len()
        ))
    })
}

/// Passes a member's acknowledgements to its group until its stream ends,
/// then takes it out of the group; the member's stream slot is freed then.
async fn follow_member(
    mut inbound: Streaming<v1::ConsumeRequest>,
    member: MemberLink,
    sender: MemberSender,
    stopping: CancellationToken,
    _slot: Slot,
) {
    loop {
        let message = tokio::select! {
            message = inbound.message() => message,
            () = sender.closed() => break,
            // The group's task tells the member and ends its stream.
            () = stopping.cancelled() => return,
        };
        let refusal = match message {
            Ok(Some(v1::ConsumeRequest {
                kind: Some(Kind::Ack(ack)),
            })) => match too_many("ack.positions", &ack.positions) {
                None => {
                    member.ack(ack.positions).await;
                    continue;
                }
                Some(refusal) => refusal,
            },
            Ok(Some(v1::ConsumeRequest {
                kind: Some(Kind::Nack(nack)),
            })) => match (
                too_many("nack.positions", &nack.positions),
                nack_action(nack.action),
            ) {
                (None, Ok(action)) => {
                    member.nack(nack.positions, action).await;
                    continue;
                }
                (Some(refusal), _) => refusal,
                (None, Err(error)) => error,
            },
            Ok(Some(v1::ConsumeRequest {
                kind: Some(Kind::Join(_)),
            })) => invalid("this stream has joined already; `join` comes once, first"),
            Ok(Some(v1::ConsumeRequest { kind: None })) => {
                invalid("a message must be `join`, `ack` or `nack`")
            }
            Ok(None) | Err(_) => break,
        };
        sender.end(refusal);
        break;
    }
    member.leave().await;
}
