//! Read models are never served ahead of the log or from another log: at
//! open, a checkpoint beyond the log's head, or another event in the log at
//! the checkpoint's position, is detected and the read models are rebuilt
//! from the log (a power cut that kept one database's writes and not the
//! other's, a data directory put together from different backups).

use std::path::Path;

use accord_proto::v1;
use accord_tests::*;
use tonic::Code;

/// Replaces `data_dir/log` with the copy in `from`.
/// Puts the log in `from` in place, with the signing key beside it when
/// there is one (another server's log comes with its key).
fn replace_log(data_dir: &Path, from: &Path) {
    std::fs::remove_dir_all(data_dir.join("log")).expect("removes the log");
    copy_dir(from, &data_dir.join("log"));
    let key = from.parent().expect("parent").join("signing-key");
    if key.exists() {
        std::fs::copy(key, data_dir.join("signing-key")).expect("copies the key");
    }
}

async fn listed_ids(server: &TestServer, min_position: u64) -> Vec<String> {
    server
        .agreements()
        .list_agreements(v1::ListAgreementsRequest {
            page_size: 100,
            min_position,
            ..Default::default()
        })
        .await
        .expect("lists")
        .into_inner()
        .agreements
        .into_iter()
        .map(|agreement| agreement.agreement_id)
        .collect()
}

#[tokio::test]
async fn read_models_ahead_of_the_log_are_rebuilt_from_it() {
    let mut server = TestServer::start().await;
    server
        .agreements()
        .announce(announce_wabtec("kept"))
        .await
        .expect("announced");
    let backup = tempfile::tempdir().expect("backup");
    let backup_log = backup.path().join("log");
    server
        .restart_after(|data_dir| copy_dir(&data_dir.join("log"), &backup_log))
        .await;
    server
        .agreements()
        .announce(announce_boeing("only-in-the-read-models"))
        .await
        .expect("announced");
    server
        .agreements()
        .sign(sign("kept"))
        .await
        .expect("signed");
    assert_eq!(listed_ids(&server, 3).await.len(), 2);

    // The log goes back to position 1; the read models stay at 3.
    server
        .restart_after(|data_dir| replace_log(data_dir, &backup_log))
        .await;
    assert_eq!(server.head().await, 1);
    assert_eq!(listed_ids(&server, 1).await, vec!["kept".to_owned()]);
    let kept = server
        .agreements()
        .get_agreement(v1::GetAgreementRequest {
            agreement_id: "kept".into(),
            min_position: 1,
            ..Default::default()
        })
        .await
        .expect("kept")
        .into_inner();
    assert_eq!(
        kept.stage,
        v1::AgreementStage::Announced as i32,
        "the view is the log's, not the lost signature's"
    );
    let gone = server
        .agreements()
        .get_agreement(v1::GetAgreementRequest {
            agreement_id: "only-in-the-read-models".into(),
            min_position: 1,
            ..Default::default()
        })
        .await
        .expect_err("not in the log");
    assert_eq!(gone.code(), Code::NotFound);

    // The log goes on from its own head, and the read models with it.
    let next = server
        .agreements()
        .announce(announce_boeing("after"))
        .await
        .expect("announced")
        .into_inner();
    assert_eq!(next.position, 2);
    let mut listed = listed_ids(&server, 2).await;
    listed.sort();
    assert_eq!(listed, vec!["after".to_owned(), "kept".to_owned()]);
    server.stop().await;
}

#[tokio::test]
async fn read_models_of_another_log_are_rebuilt_from_this_one() {
    let mut other = TestServer::start().await;
    other
        .agreements()
        .announce(announce_boeing("from-the-other-log"))
        .await
        .expect("announced");
    let other_log = tempfile::tempdir().expect("copy");
    let other_log_copy = other_log.path().join("log");
    other
        .restart_after(|data_dir| {
            copy_dir(&data_dir.join("log"), &other_log_copy);
            std::fs::copy(
                data_dir.join("signing-key"),
                other_log.path().join("signing-key"),
            )
            .expect("copies the key");
        })
        .await;
    other.stop().await;

    let mut server = TestServer::start().await;
    server
        .agreements()
        .announce(announce_wabtec("from-this-log"))
        .await
        .expect("announced");
    assert_eq!(
        listed_ids(&server, 1).await,
        vec!["from-this-log".to_owned()]
    );
    // Same head (1), another event at it.
    server
        .restart_after(|data_dir| replace_log(data_dir, &other_log_copy))
        .await;
    assert_eq!(
        listed_ids(&server, 1).await,
        vec!["from-the-other-log".to_owned()]
    );
    server.stop().await;
}
