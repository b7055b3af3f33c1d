//! Authentication and roles through the real server: bearer tokens from a
//! token file of hashes, UNAUTHENTICATED and PERMISSION_DENIED, the token's
//! name as the events' actor, health and reflection open, and no open server
//! on a non-loopback address.

use accord_proto::v1::{
    self, admin_client::AdminClient, agreement_service_client::AgreementServiceClient,
    event_log_client::EventLogClient,
};
use accord_server::auth::{TokenTable, new_token};
use accord_tests::*;
use tokio_stream::StreamExt;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

struct Tokens {
    writer: String,
    reader: String,
    operator: String,
    consumer: String,
    _file: tempfile::NamedTempFile,
    path: std::path::PathBuf,
}

fn tokens() -> Tokens {
    let (writer, reader, operator, consumer) = (new_token(), new_token(), new_token(), new_token());
    let file = tempfile::NamedTempFile::new().expect("token file");
    let text = [
        "# name roles hash".to_owned(),
        TokenTable::line_for("importer", "writer", &writer),
        TokenTable::line_for("analyst", "reader", &reader),
        TokenTable::line_for("ops", "operator,reader", &operator),
        TokenTable::line_for("worker", "consumer", &consumer),
    ]
    .join("\n");
    std::fs::write(file.path(), text).expect("written");
    let path = file.path().to_path_buf();
    Tokens {
        writer,
        reader,
        operator,
        consumer,
        _file: file,
        path,
    }
}

type Authenticated = InterceptedService<
    Channel,
    Box<dyn FnMut(Request<()>) -> Result<Request<()>, Status> + Send + Sync>,
>;

fn with_token(channel: Channel, token: &str) -> Authenticated {
    let value: tonic::metadata::MetadataValue<_> =
        format!("Bearer {token}").parse().expect("header");
    InterceptedService::new(
        channel,
        Box::new(move |mut request: Request<()>| {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
            Ok(request)
        }),
    )
}

#[tokio::test]
async fn calls_without_a_valid_token_are_unauthenticated() {
    let tokens = tokens();
    let path = tokens.path.clone();
    let server = TestServer::start_with(|config| config.token_file = Some(path)).await;
    let status = server
        .agreements()
        .announce(announce_boeing("a"))
        .await
        .expect_err("no token");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(
        status.message().contains("bearer token"),
        "{}",
        status.message()
    );
    let status = server
        .agreements()
        .get_agreement(v1::GetAgreementRequest {
            agreement_id: "a".into(),
            ..Default::default()
        })
        .await
        .expect_err("no token");
    assert_eq!(status.code(), Code::Unauthenticated);
    let status = server
        .event_log()
        .subscribe(v1::SubscribeRequest::default())
        .await
        .expect_err("no token");
    assert_eq!(status.code(), Code::Unauthenticated);
    let status = server
        .admin()
        .get_stats(v1::GetStatsRequest {})
        .await
        .expect_err("no token");
    assert_eq!(status.code(), Code::Unauthenticated);
    let mut forged = AgreementServiceClient::new(with_token(server.channel(), "acc_forged"));
    let status = forged
        .announce(announce_boeing("a"))
        .await
        .expect_err("bad token");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(status.message().contains("not valid"));
    let _ = tokens.writer;
    assert_eq!(
        AdminClient::new(with_token(server.channel(), &tokens.operator))
            .get_stats(v1::GetStatsRequest {})
            .await
            .expect("operator")
            .into_inner()
            .head_position,
        0,
        "nothing was appended"
    );
    server.stop().await;
}

#[tokio::test]
async fn roles_decide_what_a_token_may_do_and_the_writer_is_the_actor() {
    let tokens = tokens();
    let path = tokens.path.clone();
    let server = TestServer::start_with(|config| config.token_file = Some(path)).await;
    let mut writer = AgreementServiceClient::new(with_token(server.channel(), &tokens.writer));
    let mut reader = AgreementServiceClient::new(with_token(server.channel(), &tokens.reader));
    let status = reader
        .announce(announce_boeing("a"))
        .await
        .expect_err("a reader cannot write");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(
        status
            .message()
            .contains("\"analyst\" lacks the writer role"),
        "{}",
        status.message()
    );
    let appended = writer
        .announce(announce_boeing("a"))
        .await
        .expect("a writer writes")
        .into_inner();
    let status = writer
        .get_agreement(v1::GetAgreementRequest {
            agreement_id: "a".into(),
            ..Default::default()
        })
        .await
        .expect_err("a writer cannot read");
    assert_eq!(status.code(), Code::PermissionDenied);
    let view = reader
        .get_agreement(v1::GetAgreementRequest {
            agreement_id: "a".into(),
            min_position: appended.position,
            as_of_position: 0,
        })
        .await
        .expect("a reader reads")
        .into_inner();
    assert_eq!(view.agreement_id, "a");

    let mut log = EventLogClient::new(with_token(server.channel(), &tokens.reader));
    let mut events = log
        .read_log(v1::ReadLogRequest::default())
        .await
        .expect("reads")
        .into_inner();
    let event = events.next().await.expect("one event").expect("ok");
    assert_eq!(event.metadata.expect("metadata").actor, "importer");

    let status = AdminClient::new(with_token(server.channel(), &tokens.reader))
        .get_stats(v1::GetStatsRequest {})
        .await
        .expect_err("a reader is no operator");
    assert_eq!(status.code(), Code::PermissionDenied);
    server.stop().await;
}

#[tokio::test]
async fn the_health_check_stays_open_and_watch_and_reflection_need_a_token() {
    let tokens = tokens();
    let path = tokens.path.clone();
    let server = TestServer::start_with(|config| config.token_file = Some(path)).await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(server.channel());
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("the health check needs no token")
        .into_inner()
        .status;
    assert_eq!(
        status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    let watch = health
        .watch(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect_err("a stream held open needs a token");
    assert_eq!(watch.code(), Code::Unauthenticated);
    let mut health = tonic_health::pb::health_client::HealthClient::new(with_token(
        server.channel(),
        &tokens.reader,
    ));
    health
        .watch(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("any valid token may watch");

    use tonic_reflection::pb::v1 as reflection;
    let request = || reflection::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            reflection::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
    };
    let status =
        reflection::server_reflection_client::ServerReflectionClient::new(server.channel())
            .server_reflection_info(tokio_stream::iter(vec![request()]))
            .await
            .expect_err("reflection needs a token");
    assert_eq!(status.code(), Code::Unauthenticated);
    let mut responses = reflection::server_reflection_client::ServerReflectionClient::new(
        with_token(server.channel(), &tokens.writer),
    )
    .server_reflection_info(tokio_stream::iter(vec![request()]))
    .await
    .expect("any valid token may use reflection")
    .into_inner();
    assert!(responses.next().await.expect("a response").is_ok());
    server.stop().await;
}

async fn start_error(adjust: impl FnOnce(&mut accord_server::Config)) -> String {
    let data_dir = tempfile::tempdir().expect("data dir");
    let mut config = accord_server::Config::ephemeral(data_dir.path());
    adjust(&mut config);
    match accord_server::start(config).await {
        Ok(_) => panic!("the server must not start"),
        Err(error) => error.to_string(),
    }
}

#[tokio::test]
async fn beyond_loopback_the_server_refuses_to_start_open_or_in_clear_text() {
    let every_interface = "0.0.0.0:0".parse().expect("address");
    let error = start_error(|config| config.listen = every_interface).await;
    assert!(error.contains("without tokens"), "{error}");
    assert!(error.contains("--token-file"), "{error}");
    assert!(error.contains("--insecure"), "{error}");

    let tokens = tokens();
    let path = tokens.path.clone();
    let error = start_error(|config| {
        config.listen = every_interface;
        config.token_file = Some(path);
    })
    .await;
    assert!(error.contains("bearer tokens in clear text"), "{error}");
    assert!(error.contains("--tls-cert"), "{error}");

    let error = start_error(|config| config.metrics_listen = every_interface).await;
    assert!(error.contains("metrics"), "{error}");

    // Told --insecure, it serves (here on every interface, open).
    let server = TestServer::start_with(|config| {
        config.listen = every_interface;
        config.metrics_listen = every_interface;
        config.insecure = true;
    })
    .await;
    assert_eq!(server.head().await, 0);
    server.stop().await;
}

#[tokio::test]
async fn accordctl_refuses_to_send_a_token_in_clear_text_beyond_loopback() {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_accordctl-under-test"))
        .args([
            "--server",
            "http://192.0.2.1:50051",
            "--token",
            "acc_secret",
            "stats",
        ])
        .output()
        .await
        .expect("accordctl runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("in clear text"), "{stderr}");
    assert!(stderr.contains("--insecure"), "{stderr}");
}

#[tokio::test]
async fn a_bad_token_file_stops_the_start() {
    let file = tempfile::NamedTempFile::new().expect("file");
    std::fs::write(file.path(), "ops superuser blake3:00").expect("written");
    let data_dir = tempfile::tempdir().expect("data dir");
    let mut config = accord_server::Config::ephemeral(data_dir.path());
    config.token_file = Some(file.path().to_path_buf());
    let error = match accord_server::start(config).await {
        Ok(_) => panic!("a bad token file must stop the start"),
        Err(error) => error.to_string(),
    };
    assert!(error.contains("unknown role"), "{error}");
}

/// Who may call each RPC, as the role table of docs/security.md says.
fn expected_role(path: &str) -> &'static str {
    let (service, method) = path
        .trim_start_matches('/')
        .split_once('/')
        .expect("a method path");
    match (service, method) {
        (
            "accord.v1.AgreementService",
            "Announce" | "Sign" | "RecordDelivery" | "RecordLocalization" | "Execute"
            | "ExecuteStream",
        ) => "writer",
        ("accord.v1.AgreementService" | "accord.v1.EventLog" | "accord.v1.Transparency", _) => {
            "reader"
        }
        ("accord.v1.ConsumerGroups", "GetConsumerGroup" | "ListConsumerGroups") => "reader",
        ("accord.v1.ConsumerGroups", "Consume") => "consumer",
        ("accord.v1.Admin" | "accord.v1.ConsumerGroups", _) => "operator",
        _ => panic!("{path} is in no role of the README"),
    }
}

/// Every RPC path of the public contract, from the descriptor set the
/// server serves.
fn contract_paths() -> Vec<String> {
    use prost::Message;
    let set = prost_types::FileDescriptorSet::decode(accord_proto::FILE_DESCRIPTOR_SET)
        .expect("descriptor set");
    let mut paths = Vec::new();
    for file in set
        .file
        .iter()
        .filter(|file| file.package().starts_with("accord."))
    {
        for service in &file.service {
            for method in &service.method {
                paths.push(format!(
                    "/{}.{}/{}",
                    file.package(),
                    service.name(),
                    method.name()
                ));
            }
        }
    }
    paths
}

#[tokio::test]
async fn every_rpc_takes_exactly_its_role() {
    let tokens = tokens();
    let path = tokens.path.clone();
    let server = TestServer::start_with(|config| config.token_file = Some(path)).await;
    let paths = contract_paths();
    assert_eq!(paths.len(), 30, "{paths:?}");
    let callers = [
        ("writer", tokens.writer.as_str()),
        ("reader", tokens.reader.as_str()),
        ("operator", tokens.operator.as_str()),
        ("consumer", tokens.consumer.as_str()),
    ];
    let mut checked = 0;
    for path in &paths {
        let role = expected_role(path);
        let status = raw_call(server.channel(), path, None)
            .await
            .expect_err("no token");
        assert_eq!(
            status.code(),
            Code::Unauthenticated,
            "{path} without a token"
        );
        let status = raw_call(server.channel(), path, Some("acc_forged"))
            .await
            .expect_err("forged token");
        assert_eq!(
            status.code(),
            Code::Unauthenticated,
            "{path} with a forged token"
        );
        for (name, token) in callers {
            // The operator's token also holds the reader role; a consumer
            // may do what a reader may.
            let allowed = name == role
                || (name == "operator" && role == "reader")
                || (name == "consumer" && role == "reader");
            match raw_call(server.channel(), path, Some(token)).await {
                Ok(()) => assert!(allowed, "{path} took a {name} token"),
                Err(status) if allowed => assert!(
                    !matches!(
                        status.code(),
                        Code::Unauthenticated | Code::PermissionDenied
                    ),
                    "{path} refused a {name} token: {status:?}"
                ),
                Err(status) => {
                    assert_eq!(
                        status.code(),
                        Code::PermissionDenied,
                        "{path} with a {name} token"
                    );
                    assert!(
                        status.message().contains(&format!("lacks the {role} role")),
                        "{path}: {}",
                        status.message()
                    );
                }
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 30 * 4);
    // A path the server does not have: a token is still needed, and a valid
    // one learns only that it is unimplemented.
    let status = raw_call(server.channel(), "/accord.v1.Admin/DropEverything", None)
        .await
        .expect_err("no token");
    assert_eq!(status.code(), Code::Unauthenticated);
    let status = raw_call(
        server.channel(),
        "/accord.v1.Admin/DropEverything",
        Some(&tokens.operator),
    )
    .await
    .expect_err("no such method");
    assert_eq!(status.code(), Code::Unimplemented);
    // Nothing the calls carried was appended (the empty commands are invalid).
    assert_eq!(
        AdminClient::new(with_token(server.channel(), &tokens.operator))
            .get_stats(v1::GetStatsRequest {})
            .await
            .expect("stats")
            .into_inner()
            .head_position,
        0
    );
    server.stop().await;
}
