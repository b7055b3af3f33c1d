//! The tasks of a running server and the one place that drains them in
//! order: health NOT_SERVING, stop accepting, let calls finish (closing the
//! connections still open after the grace period), stop the projector and
//! the window of recent events, drain and sync the log, stop `/metrics`.

use std::sync::Arc;
use std::time::Duration;

use accord_projections::ProjectorHandle;
use accord_store::EventLog;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_stream::StreamExt;
use tokio_util::sync::CancellationToken;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::connections::Connections;
use crate::metrics::Metrics;
use crate::router::GrpcRouter;
use crate::server_error::ServerError;

/// How long in-flight calls may take to finish once shutdown begins.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The health service name that is NOT_SERVING while the log holds
/// quarantined messages: an alarm for monitoring, not for load balancers
/// (everything else keeps serving).
pub(crate) const QUARANTINE_HEALTH: &str = "accord.quarantine";

/// The health service name that is NOT_SERVING while a consumer group this
/// node runs holds as many parked events as it may (its parks are refused):
/// an alarm for monitoring, like `accord.quarantine`.
pub(crate) const PARKED_FULL_HEALTH: &str = "accord.consumer_groups.parked";

/// Sets the overall health status ("") and every service's, the services
/// taken from the contract's descriptor set (none is left out by hand).
pub(crate) async fn set_health(health: &HealthReporter, status: ServingStatus) {
    health.set_service_status("", status).await;
    for service in crate::methods::contract_services() {
        health.set_service_status(service, status).await;
    }
}

/// How often health asks the store whether it is degraded.
const HEALTH_POLL: Duration = Duration::from_secs(1);

/// Keeps health true to the store: NOT_SERVING for good once it failed (a
/// failed store stays failed until it is reopened, which `run` does by
/// restarting the server), and NOT_SERVING while it is degraded (on NATS:
/// no connection, or a replica behind the stream), SERVING again after.
pub(crate) fn watch_store_health(
    log: Arc<dyn EventLog>,
    mut failing: watch::Receiver<bool>,
    health: HealthReporter,
    metrics: Arc<Metrics>,
    stopping: CancellationToken,
) {
    tokio::spawn(async move {
        let mut degraded: Option<String> = None;
        let mut quarantined = 0;
        let mut parked_full = false;
        health
            .set_service_status(QUARANTINE_HEALTH, ServingStatus::Serving)
            .await;
        health
            .set_service_status(PARKED_FULL_HEALTH, ServingStatus::Serving)
            .await;
        let mut poll = tokio::time::interval(HEALTH_POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                failed = async { failing.wait_for(|failing| *failing).await.is_ok() } => {
                    if failed {
                        tracing::error!("the store failed; health is NOT_SERVING until it is reopened");
                        metrics.store_degraded.set(1);
                        set_health(&health, ServingStatus::NotServing).await;
                    }
                    return;
                }
                _ = poll.tick() => {}
                () = stopping.cancelled() => return,
            }
            let found = log.quarantined();
            if found.count != quarantined {
                tracing::error!(
                    count = found.count,
                    recent = ?found.recent,
                    "the log holds quarantined messages: positions without an event, published on Accord's subjects by something that is not Accord"
                );
                metrics.quarantined_messages.set(found.count as i64);
                let status = if found.count > 0 {
                    ServingStatus::NotServing
                } else {
                    ServingStatus::Serving
                };
                health.set_service_status(QUARANTINE_HEALTH, status).await;
                quarantined = found.count;
            }
            let full = metrics.groups_parked_full.get() > 0;
            if full != parked_full {
                let status = if full {
                    tracing::warn!(
                        "a consumer group's parked events are at --max-parked-per-group; its parks are refused"
                    );
                    ServingStatus::NotServing
                } else {
                    ServingStatus::Serving
                };
                health.set_service_status(PARKED_FULL_HEALTH, status).await;
                parked_full = full;
            }
            let now = log.degraded();
            if now == degraded {
                continue;
            }
            match &now {
                Some(reason) => {
                    tracing::warn!(%reason, "the store is degraded; health is NOT_SERVING");
                    metrics.store_degraded.set(1);
                    set_health(&health, ServingStatus::NotServing).await;
                }
                None => {
                    tracing::info!("the store serves again; health is SERVING");
                    metrics.store_degraded.set(0);
                    set_health(&health, ServingStatus::Serving).await;
                }
            }
            degraded = now;
        }
    });
}

/// The tasks that stop after gRPC, in this order.
pub(crate) struct Followers {
    pub(crate) projector: ProjectorHandle,
    pub(crate) recent: JoinHandle<()>,
    pub(crate) log: Arc<dyn EventLog>,
    pub(crate) metrics: JoinHandle<()>,
    /// The web console, if it is served.
    pub(crate) console: Option<JoinHandle<()>>,
    /// The consumer groups, whose tasks store their progress before the log closes.
    pub(crate) groups: std::sync::Arc<dyn crate::service::GroupService>,
}

/// Serves gRPC on `listener` until `stopping` is cancelled, then drains
/// everything in order.
pub(crate) async fn serve_until_stopped(
    router: GrpcRouter,
    listener: TcpListener,
    connections: Arc<Connections>,
    health: HealthReporter,
    stopping: CancellationToken,
    followers: Followers,
) -> Result<(), ServerError> {
    let signal = {
        let stopping = stopping.clone();
        async move {
            stopping.cancelled().await;
            set_health(&health, ServingStatus::NotServing).await;
            tracing::info!("health is NOT_SERVING; no new connections accepted");
        }
    };
    let tracked = connections.clone();
    // Accepts without spinning when descriptors run out (`accept`).
    let acceptor = crate::accept::Acceptor::new(listener, "grpc");
    let accepted = futures_util::stream::unfold(acceptor, |mut acceptor| async move {
        let (stream, _) = acceptor.next().await;
        Some((stream, acceptor))
    });
    let incoming = accepted.filter_map(move |stream| {
        // Without TCP_NODELAY, a response written in two segments
        // waits for the client's delayed ACK (40 ms on Linux).
        if let Err(error) = stream.set_nodelay(true) {
            tracing::warn!(%error, "cannot set TCP_NODELAY on a connection");
        }
        tracked.track(stream).map(Ok::<_, std::io::Error>)
    });
    let serve = router.serve_with_incoming_shutdown(incoming, signal);
    // Calls that outlive the grace period (a health Watch, a client that
    // stopped reading) are cut off rather than holding the shutdown.
    let grace_over = async move {
        stopping.cancelled().await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::pin!(serve);
    let served = tokio::select! {
        served = &mut serve => served,
        () = grace_over => {
            tracing::warn!(grace_ms = SHUTDOWN_GRACE.as_millis() as u64, "calls still open after the grace period; closing them");
            connections.close_all();
            // The closed connections end; the server then finishes its shutdown.
            match tokio::time::timeout(SHUTDOWN_GRACE, &mut serve).await {
                Ok(served) => served,
                Err(_) => Ok(()),
            }
        }
    };
    tracing::info!("grpc stopped; stopping the projector and draining the log writer");
    followers.projector.stop().await;
    let _ = followers.recent.await;
    followers.groups.stopped().await;
    // The console's pages and feed let go of the log before it closes (a
    // console still busy after the grace period is cut off).
    if let Some(mut console) = followers.console
        && tokio::time::timeout(SHUTDOWN_GRACE, &mut console)
            .await
            .is_err()
    {
        tracing::warn!("the console was still answering after the grace period; cut off");
        console.abort();
        let _ = console.await;
    }
    let closed = followers.log.close().await;
    let _ = followers.metrics.await;
    served?;
    closed?;
    tracing::info!("log flushed; stopped");
    Ok(())
}
