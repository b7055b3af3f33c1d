//! Read models through the real server: read-your-writes, time travel,
//! paging, the UNGA 80 portfolios and the localization report.

use std::time::Duration;

use accord_proto::v1;
use accord_tests::*;
use tonic::{Code, Request};

#[tokio::test]
async fn a_writer_reads_its_own_write_with_min_position() {
    let server = TestServer::start().await;
    let mut client = server.agreements();
    let announced = client
        .announce(announce_wabtec("kz"))
        .await
        .expect("announced")
        .into_inner();
    client.sign(sign("kz")).await.expect("signed");
    for delivery in 1..=30u64 {
        let result = client
            .record_delivery(deliver("kz", &format!("d{delivery}"), 1))
            .await
            .expect("delivered")
            .into_inner();
        let view = client
            .get_agreement(v1::GetAgreementRequest {
                agreement_id: "kz".into(),
                min_position: result.position,
                as_of_position: 0,
            })
            .await
            .expect("read")
            .into_inner();
        assert_eq!(
            view.delivered_units, delivery,
            "the view includes the write just made"
        );
        assert_eq!(view.position, result.position);
        assert_eq!(view.version, result.version);
    }
    assert_eq!(announced.position, 1);
    server.stop().await;
}

#[tokio::test]
async fn a_min_position_never_reached_is_unavailable_naming_both_positions() {
    let server = TestServer::start().await;
    let mut client = server.agreements();
    client
        .announce(announce_wabtec("kz"))
        .await
        .expect("announced");
    let mut request = Request::new(v1::GetAgreementRequest {
        agreement_id: "kz".into(),
        min_position: 99,
        as_of_position: 0,
    });
    request.set_timeout(Duration::from_millis(300));
    let status = client
        .get_agreement(request)
        .await
        .expect_err("not reached");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains("position 1"),
        "{}",
        status.message()
    );
    assert!(
        status.message().contains("min_position 99"),
        "{}",
        status.message()
    );
    server.stop().await;
}

#[tokio::test]
async fn get_agreement_shows_the_whole_view() {
    let server = TestServer::start().await;
    let head = load_unga80(&server).await;
    let view = server
        .agreements()
        .get_agreement(v1::GetAgreementRequest {
            agreement_id: "kz-wabtec-locomotives".into(),
            min_position: head,
            as_of_position: 0,
        })
        .await
        .expect("read")
        .into_inner();
    assert_eq!(view.stage, v1::AgreementStage::Signed as i32);
    assert_eq!(view.kind, v1::AgreementKind::Procurement as i32);
    assert_eq!(view.quantity, Some(300));
    assert!(view.localized);
    assert_eq!(view.localization_rate_bp, 4_500);
    assert_eq!(view.facility, "Wabtec plant, Astana");
    assert_eq!(view.technology_transfer.len(), 2);
    assert_eq!(
        view.buyer.as_ref().map(|buyer| buyer.country.as_str()),
        Some("KZ")
    );
    assert_eq!(view.version, 3);
    assert!(view.signed_at.is_some());
    let status = server
        .agreements()
        .get_agreement(v1::GetAgreementRequest {
            agreement_id: "nowhere".into(),
            ..Default::default()
        })
        .await
        .expect_err("unknown");
    assert_eq!(status.code(), Code::NotFound);
    assert!(status.message().contains("nowhere"));
    let status = server
        .agreements()
        .get_agreement(v1::GetAgreementRequest::default())
        .await
        .expect_err("no id");
    assert_eq!(status.code(), Code::InvalidArgument);
    server.stop().await;
}

#[tokio::test]
async fn as_of_position_shows_the_agreement_as_it_stood() {
    let server = TestServer::start().await;
    let mut client = server.agreements();
    client.announce(announce_wabtec("kz")).await.expect("1");
    client.announce(announce_boeing("uz")).await.expect("2");
    client.sign(sign("kz")).await.expect("3");
    client
        .record_delivery(deliver("kz", "d", 10))
        .await
        .expect("4");
    let at = |position| v1::GetAgreementRequest {
        agreement_id: "kz".into(),
        min_position: 0,
        as_of_position: position,
    };
    let then = client
        .get_agreement(at(2))
        .await
        .expect("as of 2")
        .into_inner();
    assert_eq!(then.stage, v1::AgreementStage::Announced as i32);
    assert_eq!(then.position, 1);
    let then = client
        .get_agreement(at(3))
        .await
        .expect("as of 3")
        .into_inner();
    assert_eq!(then.stage, v1::AgreementStage::Signed as i32);
    let now = client
        .get_agreement(at(4))
        .await
        .expect("as of 4")
        .into_inner();
    assert_eq!(now.stage, v1::AgreementStage::Delivering as i32);
    assert_eq!(now.delivered_units, 10);
    let status = client
        .get_agreement(v1::GetAgreementRequest {
            agreement_id: "uz".into(),
            min_position: 0,
            as_of_position: 1,
        })
        .await
        .expect_err("not yet announced at 1");
    assert_eq!(status.code(), Code::NotFound);
    let status = client
        .get_agreement(at(5))
        .await
        .expect_err("beyond the head");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("as_of_position"));
    server.stop().await;
}

#[tokio::test]
async fn a_filtered_list_pages_through_every_match_in_id_order() {
    let server = TestServer::start().await;
    let mut commands = Vec::new();
    for index in 0..26 {
        let mut uz = announce_boeing(&format!("uz-{index:02}"));
        uz.sector = if index % 2 == 0 {
            "aviation".into()
        } else {
            "rail".into()
        };
        commands.push(command(v1::command::Command::Announce(uz)));
        commands.push(command(v1::command::Command::Announce(announce_wabtec(
            &format!("kz-{index:02}"),
        ))));
    }
    commands.push(command(v1::command::Command::Sign(sign("uz-04"))));
    let head = server
        .agreements()
        .execute(v1::ExecuteRequest { commands })
        .await
        .expect("executed")
        .into_inner()
        .results
        .last()
        .expect("results")
        .position;

    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = server
            .agreements()
            .list_agreements(v1::ListAgreementsRequest {
                buyer_country: "UZ".into(),
                sector: "aviation".into(),
                page_size: 5,
                page_token: token.clone(),
                min_position: head,
                ..Default::default()
            })
            .await
            .expect("page")
            .into_inner();
        assert!(page.agreements.len() <= 5);
        seen.extend(
            page.agreements
                .into_iter()
                .map(|agreement| agreement.agreement_id),
        );
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let expected: Vec<String> = (0..26)
        .filter(|index| index % 2 == 0)
        .map(|index| format!("uz-{index:02}"))
        .collect();
    assert_eq!(seen, expected);

    let signed = server
        .agreements()
        .list_agreements(v1::ListAgreementsRequest {
            stage: v1::AgreementStage::Signed as i32,
            ..Default::default()
        })
        .await
        .expect("signed")
        .into_inner();
    assert_eq!(
        signed
            .agreements
            .iter()
            .map(|agreement| agreement.agreement_id.as_str())
            .collect::<Vec<_>>(),
        ["uz-04"]
    );

    let all = server
        .agreements()
        .list_agreements(v1::ListAgreementsRequest {
            supplier_country: "US".into(),
            page_size: 5_000,
            ..Default::default()
        })
        .await
        .expect("all")
        .into_inner();
    assert_eq!(all.agreements.len(), 52);
    assert!(
        all.agreements
            .windows(2)
            .all(|pair| pair[0].agreement_id < pair[1].agreement_id)
    );
    let default_page = server
        .agreements()
        .list_agreements(v1::ListAgreementsRequest::default())
        .await
        .expect("default page size")
        .into_inner();
    assert_eq!(default_page.agreements.len(), 50);
    assert!(!default_page.next_page_token.is_empty());

    for bad in [
        v1::ListAgreementsRequest {
            page_token: "not-a-token".into(),
            ..Default::default()
        },
        v1::ListAgreementsRequest {
            buyer_country: "Uzbekistan".into(),
            ..Default::default()
        },
        v1::ListAgreementsRequest {
            stage: 99,
            ..Default::default()
        },
    ] {
        let status = server
            .agreements()
            .list_agreements(bad)
            .await
            .expect_err("refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    }
    server.stop().await;
}

#[tokio::test]
async fn the_unga80_portfolios_tell_hub_from_market() {
    let server = TestServer::start().await;
    let head = load_unga80(&server).await;
    let mut client = server.agreements();

    let kazakhstan = client
        .get_country_portfolio(v1::GetCountryPortfolioRequest {
            country: "KZ".into(),
            min_position: head,
        })
        .await
        .expect("KZ")
        .into_inner();
    assert_eq!(kazakhstan.agreement_count, 1);
    assert_eq!(
        kazakhstan.contracted_value,
        vec![v1::Money {
            currency: "USD".into(),
            minor_units: 420_000_000_000
        }]
    );
    assert_eq!(kazakhstan.weighted_localization_bp, 4_500);
    assert_eq!(kazakhstan.contracted_units, 300);
    assert!(kazakhstan.value_without_technology_transfer.is_empty());

    let uzbekistan = client
        .get_country_portfolio(v1::GetCountryPortfolioRequest {
            country: "UZ".into(),
            min_position: head,
        })
        .await
        .expect("UZ")
        .into_inner();
    assert_eq!(uzbekistan.agreement_count, 5);
    assert_eq!(
        uzbekistan.count_by_stage.get("AGREEMENT_STAGE_ANNOUNCED"),
        Some(&4)
    );
    assert_eq!(
        uzbekistan.count_by_stage.get("AGREEMENT_STAGE_SIGNED"),
        Some(&1)
    );
    assert_eq!(
        uzbekistan.contracted_value,
        vec![v1::Money {
            currency: "USD".into(),
            minor_units: 850_000_000_000
        }]
    );
    assert_eq!(
        uzbekistan.value_without_technology_transfer,
        vec![v1::Money {
            currency: "USD".into(),
            minor_units: 850_000_000_000
        }]
    );
    assert_eq!(uzbekistan.weighted_localization_bp, 0);
    assert_eq!(uzbekistan.contracted_units, 22);

    let all = client
        .list_country_portfolios(v1::ListCountryPortfoliosRequest { min_position: head })
        .await
        .expect("all")
        .into_inner();
    assert_eq!(
        all.portfolios
            .iter()
            .map(|portfolio| portfolio.country.as_str())
            .collect::<Vec<_>>(),
        ["KZ", "UZ"]
    );

    let nobody = client
        .get_country_portfolio(v1::GetCountryPortfolioRequest {
            country: "FR".into(),
            min_position: 0,
        })
        .await
        .expect("empty portfolio")
        .into_inner();
    assert_eq!(nobody.agreement_count, 0);
    let status = client
        .get_country_portfolio(v1::GetCountryPortfolioRequest {
            country: "france".into(),
            min_position: 0,
        })
        .await
        .expect_err("bad country");
    assert_eq!(status.code(), Code::InvalidArgument);
    server.stop().await;
}

#[tokio::test]
async fn the_localization_report_names_the_dependency_risk() {
    let server = TestServer::start().await;
    let head = load_unga80(&server).await;
    let report = server
        .agreements()
        .get_localization_report(v1::GetLocalizationReportRequest {
            country: String::new(),
            min_position: head,
            ..Default::default()
        })
        .await
        .expect("report")
        .into_inner();
    assert_eq!(report.position, head);
    let signed: Vec<&str> = report
        .agreements
        .iter()
        .map(|entry| entry.agreement_id.as_str())
        .collect();
    assert_eq!(signed, ["kz-wabtec-locomotives", "uz-boeing-787"]);
    let wabtec = &report.agreements[0];
    assert_eq!(wabtec.localization_rate_bp, 4_500);
    assert_eq!(wabtec.facility, "Wabtec plant, Astana");
    let risk: Vec<&str> = report
        .dependency_risk
        .iter()
        .map(|entry| entry.agreement_id.as_str())
        .collect();
    assert_eq!(risk, ["uz-boeing-787"]);

    let kazakhstan = server
        .agreements()
        .get_localization_report(v1::GetLocalizationReportRequest {
            country: "KZ".into(),
            min_position: head,
            ..Default::default()
        })
        .await
        .expect("KZ report")
        .into_inner();
    assert_eq!(kazakhstan.agreements.len(), 1);
    assert!(kazakhstan.dependency_risk.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn get_stats_reports_the_projection_checkpoint_and_lag() {
    let server = TestServer::start().await;
    let head = load_unga80(&server).await;
    server
        .agreements()
        .get_agreement(v1::GetAgreementRequest {
            agreement_id: "uz-boeing-787".into(),
            min_position: head,
            as_of_position: 0,
        })
        .await
        .expect("caught up");
    let stats = server
        .admin()
        .get_stats(v1::GetStatsRequest {})
        .await
        .expect("stats")
        .into_inner();
    assert_eq!(stats.agreement_count, 6);
    assert_eq!(stats.projections.len(), 1);
    assert_eq!(stats.projections[0].name, "agreements");
    assert_eq!(stats.projections[0].checkpoint, head);
    assert_eq!(stats.projections[0].lag, 0);
    server.stop().await;
}

#[tokio::test]
async fn read_models_survive_a_restart_without_double_counting() {
    let mut server = TestServer::start().await;
    let head = load_unga80(&server).await;
    server.restart().await;
    let again = load_unga80(&server).await;
    assert_eq!(
        again, head,
        "the dataset's commands are all duplicates the second time"
    );
    let uzbekistan = server
        .agreements()
        .get_country_portfolio(v1::GetCountryPortfolioRequest {
            country: "UZ".into(),
            min_position: head,
        })
        .await
        .expect("UZ")
        .into_inner();
    assert_eq!(uzbekistan.agreement_count, 5);
    assert_eq!(uzbekistan.contracted_value[0].minor_units, 850_000_000_000);
    server.stop().await;
}

#[tokio::test]
async fn deleted_read_models_are_rebuilt_from_the_log() {
    let mut server = TestServer::start().await;
    let head = load_unga80(&server).await;
    let before = server
        .agreements()
        .list_country_portfolios(v1::ListCountryPortfoliosRequest { min_position: head })
        .await
        .expect("portfolios")
        .into_inner();
    server.restart_with_fresh_read_models().await;
    let after = server
        .agreements()
        .list_country_portfolios(v1::ListCountryPortfoliosRequest { min_position: head })
        .await
        .expect("portfolios after the rebuild")
        .into_inner();
    assert_eq!(after, before);
    server.stop().await;
}

/// Empty read models are built the way a rebuild builds them: batches of
/// 2,000 agreements written on a thread of their own while the next are
/// folded, then swapped in. With 5,000 agreements signed after all were
/// announced, each view is read back batches after it was written; appends
/// made while the build runs are in the result.
#[tokio::test]
async fn empty_read_models_are_built_from_a_long_log_with_appends_made_meanwhile() {
    use v1::command::Command;
    let mut server = TestServer::start().await;
    const AGREEMENTS: usize = 5_000;
    let id = |index: usize| format!("build-{index:05}");
    let mut commands: Vec<v1::Command> = (0..AGREEMENTS)
        .map(|index| {
            command(if index % 2 == 0 {
                Command::Announce(announce_wabtec(&id(index)))
            } else {
                Command::Announce(announce_boeing(&id(index)))
            })
        })
        .collect();
    commands.extend((0..AGREEMENTS).map(|index| command(Command::Sign(sign(&id(index))))));
    let mut client = server.agreements();
    for chunk in commands.chunks(1_000) {
        client
            .execute(v1::ExecuteRequest {
                commands: chunk.to_vec(),
            })
            .await
            .expect("executed");
    }
    let before = client
        .list_country_portfolios(v1::ListCountryPortfoliosRequest {
            min_position: 2 * AGREEMENTS as u64,
        })
        .await
        .expect("portfolios")
        .into_inner();
    server.restart_with_fresh_read_models().await;
    // Appended as soon as the server listens, while it builds.
    let mut client = server.agreements();
    let mut head = 0;
    for index in 0..20 {
        head = client
            .record_delivery(deliver(&id(index * 2), &format!("meanwhile-{index}"), 1))
            .await
            .expect("delivered")
            .into_inner()
            .position;
    }
    let after = client
        .list_country_portfolios(v1::ListCountryPortfoliosRequest { min_position: head })
        .await
        .expect("portfolios after the build")
        .into_inner();
    let kz = |portfolios: &v1::ListCountryPortfoliosResponse| {
        portfolios
            .portfolios
            .iter()
            .find(|portfolio| portfolio.country == "KZ")
            .cloned()
            .expect("KZ")
    };
    assert_eq!(after.portfolios.len(), before.portfolios.len());
    assert_eq!(kz(&after).agreement_count, (AGREEMENTS / 2) as u64);
    assert_eq!(kz(&after).delivered_units, kz(&before).delivered_units + 20);
    for portfolio in &after.portfolios {
        if portfolio.country != "KZ" {
            assert!(before.portfolios.contains(portfolio), "{portfolio:?}");
        }
    }
    for index in [0, 1, 2_000, 2_001, AGREEMENTS - 1] {
        let agreement = client
            .get_agreement(v1::GetAgreementRequest {
                agreement_id: id(index),
                min_position: head,
                as_of_position: 0,
            })
            .await
            .expect("agreement")
            .into_inner();
        let delivered = u64::from(index % 2 == 0 && index < 40);
        assert_eq!(
            (agreement.version, agreement.delivered_units),
            (2 + delivered, delivered),
            "{index}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn the_localization_report_pages_through_every_signed_agreement() {
    use v1::command::Command;
    let server = TestServer::start().await;
    // 30 unsigned agreements first in id order, then 5 signed ones.
    let mut commands = Vec::new();
    for index in 0..30 {
        commands.push(command(Command::Announce(announce_boeing(&format!(
            "a-unsigned-{index:02}"
        )))));
    }
    for index in 0..5 {
        let id = format!("b-signed-{index}");
        commands.push(command(Command::Announce(announce_wabtec(&id))));
        commands.push(command(Command::Sign(sign(&id))));
    }
    let head = server
        .agreements()
        .execute(v1::ExecuteRequest { commands })
        .await
        .expect("executed")
        .into_inner()
        .results
        .last()
        .expect("results")
        .position;
    let mut signed = Vec::new();
    let mut pages = 0;
    let mut short_pages = 0;
    let mut page_token = String::new();
    loop {
        let page = server
            .agreements()
            .get_localization_report(v1::GetLocalizationReportRequest {
                country: String::new(),
                min_position: head,
                page_size: 2,
                page_token: page_token.clone(),
            })
            .await
            .expect("page")
            .into_inner();
        pages += 1;
        assert!(page.agreements.len() <= 2);
        if page.agreements.len() < 2 && !page.next_page_token.is_empty() {
            short_pages += 1;
        }
        signed.extend(page.agreements.into_iter().map(|entry| entry.agreement_id));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
        assert!(pages < 50, "the pages never end");
    }
    assert_eq!(
        signed,
        (0..5)
            .map(|index| format!("b-signed-{index}"))
            .collect::<Vec<_>>()
    );
    // A call looks at ten pages' worth (20 agreements) at most: the 30
    // unsigned ones before the first signed one take a short page.
    assert!(short_pages >= 1, "{pages} pages");
    server.stop().await;
}
