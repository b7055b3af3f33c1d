//! A member whose stream is on this node, in a group run by whichever node
//! holds the lease (this one included): its deliveries come to an inbox of
//! its own, its acknowledgements go out as reports, and its node says every
//! `ALIVE_EVERY` that it is still there. When the node running the groups
//! changes, the member joins again under the same token: what it held goes
//! out again (at-least-once), and its stream stays open.

use std::time::Duration;

use crate::error::{ApiError, Code};
use accord_proto::cluster::{self, group_answer, group_call, member_report, to_member};
use accord_proto::v1;
use accord_proto::v1::consume_response::Kind;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::sealing::Purpose;
use super::{ClusterGroups, status_of};
use crate::groups::member_queue::{MemberSender, Refused};
use crate::groups::runner::{GroupCommand, fell_behind};

/// How often a member's node tells the node running the groups that the
/// member is still there.
pub(crate) const ALIVE_EVERY: Duration = Duration::from_secs(1);

/// A member's relay.
pub(crate) struct Relay {
    pub(crate) groups: std::sync::Arc<ClusterGroups>,
    pub(crate) join: cluster::RemoteJoin,
    /// The node that runs the group the member joined.
    pub(crate) joined_at: String,
    pub(crate) inbox: async_nats::Subscriber,
    pub(crate) commands: mpsc::Receiver<GroupCommand>,
    pub(crate) stream: MemberSender,
    pub(crate) stopping: CancellationToken,
}

impl Relay {
    /// Relays until the member's stream ends, the group is deleted, or the
    /// server stops.
    pub(crate) async fn run(mut self) {
        let mut alive = tokio::time::interval(ALIVE_EVERY);
        alive.reset();
        let mut joined = false;
        loop {
            tokio::select! {
                () = self.stopping.cancelled() => {
                    self.stream.end(ApiError::Unavailable(
                        "the server is shutting down; join again through another node (unsettled events go out again)".into(),
                    ));
                    break;
                }
                message = self.inbox.next() => {
                    let Some(message) = message else { break };
                    if !self.pass(&message.payload, &mut joined) {
                        break;
                    }
                }
                command = self.commands.recv() => match command {
                    Some(GroupCommand::Ack(_, positions, _)) => {
                        self.report(member_report::Kind::Ack(v1::AckEvents { positions })).await;
                    }
                    Some(GroupCommand::Nack(_, positions, action, _)) => {
                        let action = crate::groups::settings::wire_nack_action(action);
                        self.report(member_report::Kind::Nack(v1::NackEvents {
                            positions,
                            action: action as i32,
                            reason: String::new(),
                        }))
                        .await;
                    }
                    Some(_) | None => break,
                },
                () = self.stream.closed() => break,
                _ = alive.tick() => {
                    if !self.still_joined().await {
                        break;
                    }
                }
            }
        }
        self.report(member_report::Kind::Leave(cluster::Done {}))
            .await;
    }

    /// Passes a message from the node running the groups to the member's
    /// stream; false once the stream ends.
    fn pass(&self, payload: &[u8], joined: &mut bool) -> bool {
        let message = self
            .groups
            .key
            .open_message::<cluster::ToMember>(Purpose::ToMember, payload);
        let message = match message {
            Ok(message) => message,
            Err(refusal) => {
                tracing::warn!(%refusal, "a message for a member was refused");
                return true;
            }
        };
        match message.kind {
            Some(to_member::Kind::Response(response)) => {
                if matches!(response.kind, Some(Kind::Joined(_))) {
                    // The member heard it when it first joined.
                    if std::mem::replace(joined, true) {
                        return true;
                    }
                }
                // A member too slow to take what it asked for is let go
                // (as on the embedded store): what it held goes to others,
                // and the last place in its stream says why.
                match self.stream.send(response) {
                    Ok(()) => true,
                    Err(Refused::Gone) => false,
                    Err(Refused::Full) => {
                        self.stream
                            .end(fell_behind(&self.join.member_name, &self.join.group));
                        false
                    }
                }
            }
            Some(to_member::Kind::End(end)) => {
                self.stream.end(status_of(end));
                false
            }
            None => true,
        }
    }

    /// Asks whether the node running the groups still knows the member, and
    /// joins again if not; false once the group is gone.
    async fn still_joined(&mut self) -> bool {
        let alive = group_call::Kind::Alive(cluster::MemberAlive {
            token: self.join.token.clone(),
        });
        if let Ok(group_answer::Kind::Known(true)) = self.groups.call(alive).await {
            return true;
        }
        match self
            .groups
            .call_node(group_call::Kind::Join(self.join.clone()))
            .await
        {
            Ok((_, node)) => {
                self.joined_at = node;
                tracing::info!(group = %self.join.group, "member joined again where the groups run now");
                true
            }
            Err(error) if error.code() == Code::NotFound => {
                self.stream.end(error);
                false
            }
            // No node runs the groups right now: try again.
            Err(_) => true,
        }
    }

    async fn report(&self, kind: member_report::Kind) {
        let report = cluster::MemberReport {
            token: self.join.token.clone(),
            kind: Some(kind),
        };
        if let Err(error) = self
            .groups
            .client
            .publish(
                self.groups.names.reports(&self.joined_at),
                self.groups.key.seal_message(Purpose::Report, &report),
            )
            .await
        {
            tracing::warn!(%error, "cannot report a member's acknowledgement");
        }
    }
}
