//! Prometheus metrics: what is appended, how group commits behave, and how
//! every RPC fares, served as text at `/metrics`.

mod endpoint;
mod rpc_layer;

use std::sync::Arc;
use std::time::Duration;

use accord_store::CommitObserver;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

pub(crate) use endpoint::metrics_router;
pub(crate) use rpc_layer::RpcLayer;

/// Labels of an RPC observation.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RpcLabels {
    /// `/accord.v1.AgreementService/Announce`.
    pub method: String,
    /// The gRPC status code name (`OK`, `ABORTED`).
    pub code: String,
}

/// Labels of a consumer group's figures.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct GroupLabels {
    /// The group's name.
    pub group: String,
}

/// Labels of an HTTP port's figures.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct PortLabels {
    /// `console` or `metrics`.
    pub port: String,
}

/// Every metric the server exports.
pub(crate) struct Metrics {
    registry: Registry,
    /// Events appended.
    pub appended_events: Counter,
    /// Events per group commit.
    pub group_commit_events: Histogram,
    /// Append requests per group commit.
    pub group_commit_requests: Histogram,
    /// Seconds per fsync of a group commit.
    pub fsync_seconds: Histogram,
    /// Seconds per RPC (for streams, until the stream ends), by method and code.
    pub rpc_seconds: Family<RpcLabels, Histogram>,
    /// Group commits that failed to reach the disk.
    pub storage_failures: Counter,
    /// Open `Subscribe` and `WatchAgreements` streams.
    pub subscriptions_active: Gauge,
    /// Events sent to subscribers.
    pub subscription_events_sent: Counter,
    /// How far behind the head each event sent to a subscriber was, in events.
    pub subscription_lag_events: Histogram,
    /// Events filtered reads (`ReadLog`, `Subscribe`, consumer groups) read
    /// at the positions an index listed.
    pub indexed_read_events: Counter,
    /// Positions of the log filtered reads passed over through an index,
    /// without reading their events.
    pub indexed_read_skipped_positions: Counter,
    /// 1 while the store is degraded or failed (health NOT_SERVING), else 0.
    pub store_degraded: Gauge,
    /// Messages on the NATS stream kept aside as not valid records.
    pub quarantined_messages: Gauge,
    /// Open client connections.
    pub connections_open: Gauge,
    /// Connections closed as they were accepted, at `--max-connections`.
    pub connections_refused: Counter,
    /// Per consumer group: events between its checkpoint and the head.
    pub group_lag: Family<GroupLabels, Gauge>,
    /// Per consumer group: events held by members.
    pub group_in_flight: Family<GroupLabels, Gauge>,
    /// Per consumer group: parked events.
    pub group_parked: Family<GroupLabels, Gauge>,
    /// Per consumer group: members connected.
    pub group_members: Family<GroupLabels, Gauge>,
    /// Per consumer group: 1 while its parked events are at
    /// `--max-parked-per-group` (parks are refused), else 0.
    pub group_parked_full: Family<GroupLabels, Gauge>,
    /// Per consumer group: deliveries, first ones and repeats.
    pub group_deliveries: Family<GroupLabels, Counter>,
    /// Per consumer group: deliveries of events that had gone out before.
    pub group_redeliveries: Family<GroupLabels, Counter>,
    /// Live console pages open.
    pub console_live_pages: Gauge,
    /// Connections to the console or `/metrics` closed as they were
    /// accepted, at the port's cap.
    pub http_connections_refused: Family<PortLabels, Counter>,
    /// The process's open-file limit (after raising it to the hard limit).
    pub open_files_limit: Gauge,
    /// 1 while this node runs the consumer groups (always on the embedded
    /// store; on NATS the node holding the groups' lease).
    pub groups_leader: Gauge,
    /// Consumer groups this node runs whose parked events are at
    /// `--max-parked-per-group`; health's `accord.consumer_groups.parked`
    /// is NOT_SERVING while it is above 0.
    pub groups_parked_full: Gauge,
    /// Keys group commits wrote into the embedded log's sled tree.
    pub log_store_writes: Counter,
    /// Witness cosignatures on the checkpoint `GetCheckpoint` serves.
    pub witness_cosignatures: Gauge,
    /// Cosignatures a checkpoint needs (`--witness-quorum`).
    pub witness_quorum: Gauge,
    /// Submissions to witnesses that got no valid cosignature.
    pub witness_failures: Counter,
}

impl Metrics {
    /// Returns the metrics, registered and at zero.
    pub(crate) fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("accord");
        let appended_events = Counter::default();
        registry.register(
            "appended_events",
            "Events appended to the log",
            appended_events.clone(),
        );
        let group_commit_events = Histogram::new(exponential_buckets(1.0, 2.0, 14));
        registry.register(
            "group_commit_events",
            "Events written by one group commit",
            group_commit_events.clone(),
        );
        let group_commit_requests = Histogram::new(exponential_buckets(1.0, 2.0, 14));
        registry.register(
            "group_commit_requests",
            "Append requests answered by one group commit",
            group_commit_requests.clone(),
        );
        let fsync_seconds = Histogram::new(exponential_buckets(0.000_05, 2.0, 16));
        registry.register(
            "fsync_seconds",
            "Duration of the fsync that makes a group commit durable",
            fsync_seconds.clone(),
        );
        let rpc_seconds = Family::<RpcLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_05, 2.0, 18))
        });
        registry.register(
            "rpc_duration_seconds",
            "Duration of gRPC calls by method and status code",
            rpc_seconds.clone(),
        );
        let storage_failures = Counter::default();
        registry.register(
            "storage_failures",
            "Group commits that failed to reach the disk",
            storage_failures.clone(),
        );
        let subscriptions_active = Gauge::default();
        registry.register(
            "subscriptions_active",
            "Open Subscribe and WatchAgreements streams",
            subscriptions_active.clone(),
        );
        let subscription_events_sent = Counter::default();
        registry.register(
            "subscription_events_sent",
            "Events sent to subscribers",
            subscription_events_sent.clone(),
        );
        let indexed_read_events = Counter::default();
        registry.register(
            "indexed_read_events",
            "Events filtered reads (ReadLog, Subscribe, consumer groups) read at the positions an index listed",
            indexed_read_events.clone(),
        );
        let indexed_read_skipped_positions = Counter::default();
        registry.register(
            "indexed_read_skipped_positions",
            "Log positions filtered reads passed over through an index without reading their events",
            indexed_read_skipped_positions.clone(),
        );
        let subscription_lag_events = Histogram::new(exponential_buckets(1.0, 4.0, 12));
        registry.register(
            "subscription_lag_events",
            "Events between the head of the log and each event sent to a subscriber",
            subscription_lag_events.clone(),
        );
        let store_degraded = Gauge::default();
        registry.register(
            "store_degraded",
            "1 while the store cannot serve as it should (health NOT_SERVING)",
            store_degraded.clone(),
        );
        let quarantined_messages = Gauge::default();
        registry.register(
            "quarantined_messages",
            "Messages on Accord's NATS subjects kept aside because they are not valid records (positions without an event)",
            quarantined_messages.clone(),
        );
        let connections_open = Gauge::default();
        registry.register(
            "connections_open",
            "Open client connections on the gRPC port",
            connections_open.clone(),
        );
        let connections_refused = Counter::default();
        registry.register(
            "connections_refused",
            "Connections closed as they were accepted because --max-connections were open",
            connections_refused.clone(),
        );
        let group_lag = Family::<GroupLabels, Gauge>::default();
        registry.register(
            "consumer_group_lag_events",
            "Events between a consumer group's checkpoint and the head of the log",
            group_lag.clone(),
        );
        let group_in_flight = Family::<GroupLabels, Gauge>::default();
        registry.register(
            "consumer_group_in_flight",
            "Events a consumer group's members hold unsettled",
            group_in_flight.clone(),
        );
        let group_parked = Family::<GroupLabels, Gauge>::default();
        registry.register(
            "consumer_group_parked",
            "Events a consumer group has parked",
            group_parked.clone(),
        );
        let group_parked_full = Family::<GroupLabels, Gauge>::default();
        registry.register(
            "consumer_group_parked_full",
            "1 while a consumer group's parked events are at --max-parked-per-group (parks are refused)",
            group_parked_full.clone(),
        );
        let group_members = Family::<GroupLabels, Gauge>::default();
        registry.register(
            "consumer_group_members",
            "Members connected to a consumer group",
            group_members.clone(),
        );
        let group_deliveries = Family::<GroupLabels, Counter>::default();
        registry.register(
            "consumer_group_deliveries",
            "Events delivered to a consumer group's members, repeats included",
            group_deliveries.clone(),
        );
        let group_redeliveries = Family::<GroupLabels, Counter>::default();
        registry.register(
            "consumer_group_redeliveries",
            "Deliveries of events that had gone out before",
            group_redeliveries.clone(),
        );
        let console_live_pages = Gauge::default();
        registry.register(
            "console_live_pages",
            "Web console pages following the log live",
            console_live_pages.clone(),
        );
        let http_connections_refused = Family::<PortLabels, Counter>::default();
        registry.register(
            "http_connections_refused",
            "Connections to the console or /metrics closed as they were accepted, at the port's cap",
            http_connections_refused.clone(),
        );
        let open_files_limit = Gauge::default();
        registry.register(
            "open_files_limit",
            "The process's open-file limit, which every connection cap is derived from",
            open_files_limit.clone(),
        );
        let groups_leader = Gauge::default();
        registry.register(
            "consumer_groups_leader",
            "1 while this node runs the consumer groups (on NATS: holds their lease)",
            groups_leader.clone(),
        );
        let log_store_writes = Counter::default();
        registry.register(
            "log_store_writes",
            "Keys group commits wrote into the embedded log's sled tree (record blocks, stream and command index entries, the counter and the checkpoint); over accord_appended_events_total, the store's writes per event",
            log_store_writes.clone(),
        );
        let groups_parked_full = Gauge::default();
        registry.register(
            "consumer_groups_parked_full",
            "Consumer groups whose parked events are at --max-parked-per-group (parks are refused)",
            groups_parked_full.clone(),
        );
        let witness_cosignatures = Gauge::default();
        registry.register(
            "witness_cosignatures",
            "Witness cosignatures on the checkpoint GetCheckpoint serves",
            witness_cosignatures.clone(),
        );
        let witness_quorum = Gauge::default();
        registry.register(
            "witness_quorum",
            "Witness cosignatures a checkpoint needs (--witness-quorum; 0 without witnesses)",
            witness_quorum.clone(),
        );
        let witness_failures = Counter::default();
        registry.register(
            "witness_failures",
            "Submissions to witnesses that got no valid cosignature",
            witness_failures.clone(),
        );
        Arc::new(Self {
            registry,
            witness_cosignatures,
            witness_quorum,
            witness_failures,
            groups_leader,
            groups_parked_full,
            log_store_writes,
            console_live_pages,
            http_connections_refused,
            open_files_limit,
            group_lag,
            group_in_flight,
            group_parked,
            group_members,
            group_parked_full,
            group_deliveries,
            group_redeliveries,
            store_degraded,
            quarantined_messages,
            connections_open,
            connections_refused,
            storage_failures,
            subscriptions_active,
            subscription_events_sent,
            subscription_lag_events,
            indexed_read_events,
            indexed_read_skipped_positions,
            appended_events,
            group_commit_events,
            group_commit_requests,
            fsync_seconds,
            rpc_seconds,
        })
    }

    /// Returns the metrics in the Prometheus text format.
    pub(crate) fn render(&self) -> String {
        let mut text = String::new();
        if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!(%error, "cannot encode metrics");
        }
        text
    }
}

/// Hears about group commits: counts them, and raises a flag when the
/// store fails so that health can say so.
pub(crate) struct StoreObserver {
    /// Where the figures go.
    pub metrics: Arc<Metrics>,
    /// Turns true at the first storage failure.
    pub failing: tokio::sync::watch::Sender<bool>,
}

impl CommitObserver for StoreObserver {
    fn committed(&self, appends: usize, events: usize, fsync: Duration) {
        self.metrics.committed(appends, events, fsync);
    }

    fn wrote_keys(&self, keys: usize) {
        self.metrics.wrote_keys(keys);
    }

    fn failed(&self, _error: &accord_store::StoreError) {
        self.metrics.storage_failures.inc();
        self.failing.send_replace(true);
    }
}

impl CommitObserver for Metrics {
    fn committed(&self, appends: usize, events: usize, fsync: Duration) {
        self.appended_events.inc_by(events as u64);
        self.group_commit_events.observe(events as f64);
        self.group_commit_requests.observe(appends as f64);
        self.fsync_seconds.observe(fsync.as_secs_f64());
    }

    fn wrote_keys(&self, keys: usize) {
        self.log_store_writes.inc_by(keys as u64);
    }
}
