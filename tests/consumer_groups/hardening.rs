//! Consumer groups against careless and hostile members: acknowledgements
//! over the limit or in a flood, a member that stops reading, a group
//! deleted and created again while a member acknowledges, and the role
//! that consuming needs.

use super::*;

/// The stream's end: the status it ended with.
async fn ended(member: &mut Member) -> tonic::Status {
    loop {
        match tokio::time::timeout(WAIT, member.responses.next())
            .await
            .expect("the stream ends")
        {
            Some(Ok(_)) => {}
            Some(Err(status)) => return status,
            None => panic!("the stream ended without a status"),
        }
    }
}

on_both_backends!(an_acknowledgement_over_the_limit_is_refused);
async fn an_acknowledgement_over_the_limit_is_refused(server: TestServer) {
    append_deliveries(&server, "kz", 3).await;
    create(&server, "bounded", settings(|_| {})).await;
    for (request, field) in [
        (ack((1..=10_001).collect()), "ack.positions"),
        (
            nack((1..=10_001).collect(), v1::NackAction::Skip),
            "nack.positions",
        ),
    ] {
        let mut member = Member::join(server.server().grpc_addr(), "bounded", "greedy").await;
        member.send(request).await;
        let status = ended(&mut member).await;
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(status.message().contains(field), "{status:?}");
        assert!(status.message().contains("at most 10000"), "{status:?}");
    }
    // Nothing was settled by them: a member gets every event.
    let mut member = Member::join(server.server().grpc_addr(), "bounded", "honest").await;
    let (first, ..) = member.delivery().await;
    assert_eq!(first, 1);
    assert_eq!(info(&server, "bounded").await.checkpoint, 0);
}

#[tokio::test]
async fn a_flood_of_acknowledgements_on_one_group_leaves_every_other_group_responsive() {
    let server = TestServer::start().await;
    append_deliveries(&server, "kz", 100).await;
    create(&server, "flooded", settings(|_| {})).await;
    create(&server, "calm", settings(|_| {})).await;
    let flooder = Member::join(server.server().grpc_addr(), "flooded", "flooder").await;
    // The largest acknowledgements allowed, as fast as the server takes them.
    let flood = tokio::spawn(async move {
        let positions: Vec<u64> = (0..10_000).map(|index| u64::MAX - index).collect();
        for _ in 0..2_000 {
            if flooder.requests.send(ack(positions.clone())).await.is_err() {
                break;
            }
        }
        flooder
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Deleting the flooded group waits for its queue, and no one else does.
    let deleting = {
        let mut client = groups(&server);
        tokio::spawn(async move {
            client
                .delete_consumer_group(v1::DeleteConsumerGroupRequest {
                    name: "flooded".into(),
                })
                .await
        })
    };
    for _ in 0..5 {
        let answered = tokio::time::timeout(Duration::from_secs(10), info(&server, "calm")).await;
        assert!(answered.is_ok(), "another group stalled behind the flood");
        let listed = tokio::time::timeout(
            Duration::from_secs(10),
            groups(&server).list_consumer_groups(v1::ListConsumerGroupsRequest {}),
        )
        .await;
        assert!(listed.is_ok(), "listing stalled behind the flood");
    }
    let mut member = Member::join(server.server().grpc_addr(), "calm", "calm").await;
    assert_eq!(member.delivery().await.0, 1);
    tokio::time::timeout(Duration::from_secs(120), deleting)
        .await
        .expect("the delete ends")
        .expect("task")
        .expect("deleted");
    flood.abort();
}

on_both_backends!(a_member_that_stops_reading_is_ended_with_a_status_that_says_why);
/// On NATS whichever lets the member go first, its own node or the node
/// running the group, ends its stream with the same status.
async fn a_member_that_stops_reading_is_ended_with_a_status_that_says_why(server: TestServer) {
    append_deliveries(&server, "kz", 10_000).await;
    // Everything a member holds times out and goes out again, to it: a
    // member that reads nothing has ever more unread.
    create(
        &server,
        "readers",
        settings(|s| {
            s.max_in_flight = 10_000;
            s.ack_timeout_ms = 200;
            s.max_deliveries = 1_000;
        }),
    )
    .await;
    let mut member = Member::join(server.server().grpc_addr(), "readers", "deaf").await;
    wait_for_group(&server, "readers", |info| info.members == 0).await;
    let status = ended(&mut member).await;
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("fell behind"), "{status:?}");
    assert!(status.message().contains("\"deaf\""), "{status:?}");
}

on_both_backends!(a_group_deleted_and_created_again_starts_afresh_after_a_restart);
async fn a_group_deleted_and_created_again_starts_afresh_after_a_restart(mut server: TestServer) {
    append_deliveries(&server, "kz", 2_000).await;
    for round in 0..8 {
        create(&server, "reborn", settings(|_| {})).await;
        let mut member = Member::join(server.server().grpc_addr(), "reborn", "busy").await;
        // The member settles events as fast as it can (parking one in ten)
        // while the group is deleted under it.
        let acking = tokio::spawn(async move {
            loop {
                let message = match tokio::time::timeout(WAIT, member.responses.next()).await {
                    Ok(Some(Ok(message))) => message,
                    _ => return,
                };
                if let Some(consume_response::Kind::Delivery(delivery)) = message.kind {
                    let position = delivery.event.expect("event").position;
                    let request = if position % 10 == 0 {
                        nack(vec![position], v1::NackAction::Park)
                    } else {
                        ack(vec![position])
                    };
                    if member.requests.send(request).await.is_err() {
                        return;
                    }
                }
            }
        });
        wait_for_group(&server, "reborn", |info| {
            info.checkpoint > 100 * (round + 1)
        })
        .await;
        groups(&server)
            .delete_consumer_group(v1::DeleteConsumerGroupRequest {
                name: "reborn".into(),
            })
            .await
            .expect("deleted");
        acking.await.expect("member task");
    }
    create(&server, "reborn", settings(|_| {})).await;
    server.restart().await;
    let info = info(&server, "reborn").await;
    assert_eq!(
        (info.checkpoint, info.parked),
        (0, 0),
        "the group created last starts at its start: {info:?}"
    );
    let mut member = Member::join(server.server().grpc_addr(), "reborn", "fresh").await;
    assert_eq!(member.delivery().await.0, 1);
}

#[tokio::test]
async fn consuming_needs_the_consumer_role() {
    use accord_server::auth::new_token;
    let (reader, consumer, operator) = (new_token(), new_token(), new_token());
    let file = token_file(&[
        ("analyst", "reader", &reader),
        ("worker", "consumer", &consumer),
        ("ops", "operator,writer", &operator),
    ]);
    let path = file.path().to_owned();
    let server = TestServer::start_with(|config| config.token_file = Some(path)).await;
    let authorized = |token: &str| {
        let value: tonic::metadata::MetadataValue<_> =
            format!("Bearer {token}").parse().expect("header");
        ConsumerGroupsClient::with_interceptor(
            server.channel(),
            move |mut request: tonic::Request<()>| {
                request
                    .metadata_mut()
                    .insert("authorization", value.clone());
                Ok(request)
            },
        )
    };
    authorized(&operator)
        .create_consumer_group(v1::CreateConsumerGroupRequest {
            name: "work".into(),
            settings: Some(settings(|_| {})),
        })
        .await
        .expect("created by the operator");
    let join = || {
        let (requests, outgoing) = mpsc::channel(4);
        requests
            .try_send(join_request("work", "someone"))
            .expect("queued");
        (requests, ReceiverStream::new(outgoing))
    };
    // A reader may look at the group, not consume from it.
    authorized(&reader)
        .get_consumer_group(v1::GetConsumerGroupRequest {
            name: "work".into(),
        })
        .await
        .expect("a reader looks");
    let (_requests, outgoing) = join();
    let refused = authorized(&reader)
        .consume(outgoing)
        .await
        .expect_err("a reader does not consume");
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert!(
        refused.message().contains("lacks the consumer role"),
        "{refused:?}"
    );
    // A consumer consumes, and may do what a reader may.
    let (_requests, outgoing) = join();
    let mut stream = authorized(&consumer)
        .consume(outgoing)
        .await
        .expect("a consumer consumes")
        .into_inner();
    let joined = tokio::time::timeout(WAIT, stream.next())
        .await
        .expect("answers")
        .expect("a message")
        .expect("joined");
    assert!(matches!(
        joined.kind,
        Some(consume_response::Kind::Joined(_))
    ));
    authorized(&consumer)
        .list_consumer_groups(v1::ListConsumerGroupsRequest {})
        .await
        .expect("a consumer looks");
    let refused = authorized(&consumer)
        .delete_consumer_group(v1::DeleteConsumerGroupRequest {
            name: "work".into(),
        })
        .await
        .expect_err("a consumer does not manage groups");
    assert_eq!(refused.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn a_full_parked_list_refuses_to_park_and_loses_nothing() {
    let server = TestServer::start_with(|config| config.max_parked_per_group = 2).await;
    let head = append_deliveries(&server, "kz", 3).await;
    create(&server, "picky", settings(|_| {})).await;
    let mut member = Member::join(server.server().grpc_addr(), "picky", "picky").await;
    let mut delivered = Vec::new();
    for _ in 0..3 {
        delivered.push(member.delivery().await.0);
    }
    assert_eq!(delivered, vec![1, 2, 3]);
    member.send(nack(vec![1, 2], v1::NackAction::Park)).await;
    wait_for_group(&server, "picky", |info| info.parked == 2).await;
    member.send(nack(vec![3], v1::NackAction::Park)).await;
    let status = ended(&mut member).await;
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("--max-parked-per-group"),
        "{status:?}"
    );
    // The group's figures are reported on its next tick.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let metrics = scrape_metrics(server.server().metrics_addr()).await;
        if metrics
            .lines()
            .any(|line| line == "accord_consumer_group_parked_full{group=\"picky\"} 1")
        {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Health raises the alarm (monitoring watches the name; load balancers
    // look at the server's own, which still serves).
    wait_for_service_health(&server, "accord.consumer_groups.parked", false).await;
    assert!(serving(&server, "").await);
    let metrics = scrape_metrics(server.server().metrics_addr()).await;
    assert!(
        metrics.contains("accord_consumer_groups_parked_full 1"),
        "{metrics}"
    );
    // Not parked, not lost: it goes out again, and so does everything after.
    let mut member = Member::join(server.server().grpc_addr(), "picky", "again").await;
    let mut rest = Vec::new();
    while rest.last() != Some(&head) {
        let (position, ..) = member.delivery().await;
        member.send(ack(vec![position])).await;
        rest.push(position);
    }
    assert_eq!(rest, (3..=head).collect::<Vec<_>>());
    let info = wait_for_group(&server, "picky", |info| info.checkpoint == head).await;
    assert_eq!(info.parked, 2);
    // Replayed and settled, the parked list has room again: the alarm ends.
    groups(&server)
        .replay_parked(v1::ReplayParkedRequest {
            name: "picky".into(),
        })
        .await
        .expect("replayed");
    for _ in 0..2 {
        let (position, ..) = member.delivery().await;
        member.send(ack(vec![position])).await;
    }
    wait_for_group(&server, "picky", |info| info.parked == 0).await;
    wait_for_service_health(&server, "accord.consumer_groups.parked", true).await;
}

on_both_backends!(a_parked_list_larger_than_a_nats_message_is_stored_whole);
/// Parked events of long agreement ids (110 characters, leaving room for
/// the commands' ids), more than nats-server's 1 MiB message limit holds in
/// one value (on NATS they are stored in pages): every one is there after a
/// restart, and comes back on replay.
async fn a_parked_list_larger_than_a_nats_message_is_stored_whole(mut server: TestServer) {
    const AGREEMENTS: usize = 65;
    const DELIVERIES: usize = 150;
    let mut head = 0;
    for index in 0..AGREEMENTS {
        let id = format!("kz-{index:03}-{}", "x".repeat(103));
        head = append_deliveries(&server, &id, DELIVERIES).await;
    }
    create(
        &server,
        "keeper",
        settings(|s| {
            s.max_in_flight = 10_000;
            s.ack_timeout_ms = 600_000;
        }),
    )
    .await;
    let mut member = Member::join(server.server().grpc_addr(), "keeper", "parker").await;
    let mut batch = Vec::new();
    for _ in 0..head {
        batch.push(member.delivery().await.0);
        if batch.len() == 1_000 {
            member
                .send(nack(std::mem::take(&mut batch), v1::NackAction::Park))
                .await;
        }
    }
    member.send(nack(batch, v1::NackAction::Park)).await;
    wait_for_group(&server, "keeper", |info| {
        info.parked == head && info.checkpoint == head
    })
    .await;
    drop(member);
    server.restart().await;
    let info = wait_for_group(&server, "keeper", |info| info.checkpoint == head).await;
    assert_eq!(info.parked, head, "every parked event was stored: {info:?}");
    let replayed = groups(&server)
        .replay_parked(v1::ReplayParkedRequest {
            name: "keeper".into(),
        })
        .await
        .expect("replayed")
        .into_inner()
        .replayed;
    assert_eq!(replayed, head);
    server.stop().await;
}

/// On NATS the nodes say what they say to each other sealed with a key
/// derived from the token file: the sealed calls, deliveries and
/// acknowledgements of a server with tokens work, and a NATS user who
/// publishes a call of their own (unsealed, or sealed with a made-up key)
/// is refused and changes nothing.
#[tokio::test]
async fn calls_between_nodes_on_nats_are_sealed_and_forged_ones_refused() {
    use accord_proto::cluster;
    use accord_proto::v1::agreement_service_client::AgreementServiceClient;
    use accord_server::auth::new_token;
    use prost::Message;
    let nats = accord_tests::nats::NatsNode::single().await;
    let (operator, consumer) = (new_token(), new_token());
    let file = token_file(&[
        ("ops", "operator,writer,reader", &operator),
        ("worker", "consumer", &consumer),
    ]);
    let (path, url) = (file.path().to_owned(), nats.url().to_owned());
    let server = TestServer::start_with(move |config| {
        config.store = url;
        config.nats_replicas = 1;
        config.token_file = Some(path);
    })
    .await;
    let bearer = |token: &str| {
        let value: tonic::metadata::MetadataValue<_> =
            format!("Bearer {token}").parse().expect("header");
        move |mut request: tonic::Request<()>| {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
            Ok(request)
        }
    };
    let mut managed = ConsumerGroupsClient::with_interceptor(server.channel(), bearer(&operator));
    managed
        .create_consumer_group(v1::CreateConsumerGroupRequest {
            name: "work".into(),
            settings: Some(settings(|_| {})),
        })
        .await
        .expect("created through a sealed call");
    AgreementServiceClient::with_interceptor(server.channel(), bearer(&operator))
        .announce(announce_wabtec("kz"))
        .await
        .expect("appended");
    let (requests, outgoing) = mpsc::channel(4);
    requests
        .send(join_request("work", "worker"))
        .await
        .expect("queued");
    let mut stream = ConsumerGroupsClient::with_interceptor(server.channel(), bearer(&consumer))
        .consume(ReceiverStream::new(outgoing))
        .await
        .expect("joined through a sealed call")
        .into_inner();
    let mut delivered = None;
    while delivered.is_none() {
        let message = tokio::time::timeout(WAIT, stream.next())
            .await
            .expect("answers")
            .expect("a message")
            .expect("no error");
        if let Some(consume_response::Kind::Delivery(delivery)) = message.kind {
            delivered = delivery.event.map(|event| event.position);
        }
    }
    requests
        .send(ack(vec![delivered.expect("a position")]))
        .await
        .expect("acknowledged in a sealed report");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let info = managed
            .get_consumer_group(v1::GetConsumerGroupRequest {
                name: "work".into(),
            })
            .await
            .expect("group")
            .into_inner();
        if info.checkpoint == 1 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{info:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A NATS user of its own asks the node running the groups to delete it.
    let client = async_nats::connect(nats.url()).await.expect("connects");
    let lease = async_nats::jetstream::new(client.clone())
        .get_key_value("ACCORD-groups-lease")
        .await
        .expect("the lease bucket");
    let holder = lease.get("leader").await.expect("read").expect("a holder");
    let subject = format!(
        "_accord.ACCORD.groups.calls.{}",
        String::from_utf8(holder.to_vec()).expect("node id")
    );
    let delete = cluster::GroupCall {
        kind: Some(cluster::group_call::Kind::Delete(
            v1::DeleteConsumerGroupRequest {
                name: "work".into(),
            },
        )),
    }
    .encode_to_vec();
    let sent_at_unix_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64;
    let forged = [
        ("unsealed", delete.clone()),
        (
            "sealed with a made-up MAC",
            cluster::Sealed {
                body: delete.clone(),
                sent_at_unix_ms,
                mac: vec![7; 32],
            }
            .encode_to_vec(),
        ),
        (
            "sealed with nothing",
            cluster::Sealed {
                body: delete.clone(),
                sent_at_unix_ms,
                mac: Vec::new(),
            }
            .encode_to_vec(),
        ),
    ];
    for (what, payload) in forged {
        let answer = client
            .request(subject.clone(), payload.into())
            .await
            .expect("answered");
        let answer = cluster::GroupAnswer::decode(answer.payload.as_ref()).expect("an answer");
        let Some(cluster::group_answer::Kind::Refused(refused)) = answer.kind else {
            panic!("a call {what} was taken: {answer:?}");
        };
        assert_eq!(
            refused.code,
            Code::PermissionDenied as i32,
            "{what}: {refused:?}"
        );
        assert!(
            refused.message.contains("token file"),
            "{what}: {refused:?}"
        );
    }
    let info = managed
        .get_consumer_group(v1::GetConsumerGroupRequest {
            name: "work".into(),
        })
        .await
        .expect("the group is still there")
        .into_inner();
    assert_eq!(info.checkpoint, 1);
    drop((requests, stream));
    server.stop().await;
}
