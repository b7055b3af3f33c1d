use super::*;
use crate::{AgreementKind, Timestamp};

fn announce() -> Announce {
    Announce {
        agreement_id: "uz-boeing-787".into(),
        title: "Uzbekistan Airways order for 22 Boeing 787 Dreamliners".into(),
        kind: AgreementKind::Procurement,
        buyer: Party::new("Uzbekistan Airways", "UZ"),
        supplier: Party::new("Boeing", "US"),
        sector: "aviation".into(),
        product: "Boeing 787 Dreamliner".into(),
        quantity: Some(22),
        value: Some(Money::new("USD", 850_000_000_000)),
        announced_at: Timestamp::from_seconds(1_758_585_600),
        venue: "80th UN General Assembly, New York".into(),
        source: "news report".into(),
    }
}

fn field_of(command: Announce) -> String {
    Command::Announce(command)
        .validate()
        .expect_err("must be refused")
        .field
}

#[test]
fn a_complete_announcement_is_valid() {
    assert_eq!(Command::Announce(announce()).validate(), Ok(()));
}

#[test]
fn agreement_id_must_match_the_pattern() {
    for bad in [
        "",
        "Upper",
        "-leading",
        "has space",
        "ümlaut",
        &"a".repeat(129),
    ] {
        let command = Announce {
            agreement_id: bad.to_string(),
            ..announce()
        };
        assert_eq!(field_of(command), "agreement_id", "{bad:?}");
    }
    for good in ["a", "0", "kz-wabtec.locomotives_2", &"a".repeat(128)] {
        let command = Announce {
            agreement_id: good.to_string(),
            ..announce()
        };
        assert_eq!(Command::Announce(command).validate(), Ok(()), "{good:?}");
    }
}

#[test]
fn required_names_must_not_be_empty() {
    assert_eq!(
        field_of(Announce {
            title: " ".into(),
            ..announce()
        }),
        "title"
    );
    assert_eq!(
        field_of(Announce {
            product: String::new(),
            ..announce()
        }),
        "product"
    );
    let buyer = Party::new("", "UZ");
    assert_eq!(
        field_of(Announce {
            buyer,
            ..announce()
        }),
        "buyer.name"
    );
}

#[test]
fn names_are_limited_to_200_characters() {
    let title = "é".repeat(200);
    assert_eq!(
        Command::Announce(Announce {
            title,
            ..announce()
        })
        .validate(),
        Ok(())
    );
    let title = "é".repeat(201);
    assert_eq!(
        field_of(Announce {
            title,
            ..announce()
        }),
        "title"
    );
}

#[test]
fn other_text_is_limited_to_2000_characters() {
    let source = "x".repeat(2_001);
    assert_eq!(
        field_of(Announce {
            source,
            ..announce()
        }),
        "source"
    );
}

#[test]
fn countries_are_alpha_2_upper_case() {
    for bad in ["uz", "UZB", "", "U1"] {
        let supplier = Party::new("Boeing", bad);
        assert_eq!(
            field_of(Announce {
                supplier,
                ..announce()
            }),
            "supplier.country"
        );
    }
}

#[test]
fn sector_is_a_lower_case_word() {
    for bad in ["", "Aviation", "two words", "1st"] {
        let sector = bad.to_string();
        assert_eq!(
            field_of(Announce {
                sector,
                ..announce()
            }),
            "sector",
            "{bad:?}"
        );
    }
}

#[test]
fn money_is_non_negative_with_an_iso_currency() {
    let value = Some(Money::new("USD", -1));
    assert_eq!(
        field_of(Announce {
            value,
            ..announce()
        }),
        "value.minor_units"
    );
    let value = Some(Money::new("usd", 1));
    assert_eq!(
        field_of(Announce {
            value,
            ..announce()
        }),
        "value.currency"
    );
}

#[test]
fn quantity_when_given_is_positive() {
    assert_eq!(
        field_of(Announce {
            quantity: Some(0),
            ..announce()
        }),
        "quantity"
    );
}

#[test]
fn instants_lie_between_1900_and_2200() {
    let announced_at = Timestamp::from_seconds(limits::LATEST_INSTANT_SECONDS);
    assert_eq!(
        field_of(Announce {
            announced_at,
            ..announce()
        }),
        "announced_at"
    );
    let announced_at = Timestamp::from_seconds(limits::EARLIEST_INSTANT_SECONDS - 1);
    assert_eq!(
        field_of(Announce {
            announced_at,
            ..announce()
        }),
        "announced_at"
    );
    let announced_at = Timestamp::from_seconds(limits::EARLIEST_INSTANT_SECONDS);
    assert_eq!(
        Command::Announce(Announce {
            announced_at,
            ..announce()
        })
        .validate(),
        Ok(())
    );
}

#[test]
fn lists_hold_at_most_100_entries() {
    let sign = Sign {
        agreement_id: "a".into(),
        signed_at: Timestamp::from_seconds(0),
        signatories: vec!["x".into(); 101],
        value: None,
        quantity: None,
    };
    let error = Command::Sign(sign).validate().expect_err("too many");
    assert_eq!(error.field, "signatories");
}

#[test]
fn list_entries_must_not_be_empty() {
    let sign = Sign {
        agreement_id: "a".into(),
        signed_at: Timestamp::from_seconds(0),
        signatories: vec!["Boeing".into(), String::new()],
        value: None,
        quantity: None,
    };
    let error = Command::Sign(sign).validate().expect_err("empty entry");
    assert_eq!(error.field, "signatories[1]");
}

#[test]
fn delivery_units_must_be_positive() {
    let delivery = RecordDelivery {
        agreement_id: "a".into(),
        units: 0,
        delivered_at: Timestamp::from_seconds(0),
        reference: String::new(),
    };
    let error = Command::RecordDelivery(delivery)
        .validate()
        .expect_err("zero units");
    assert_eq!(error.field, "units");
}

#[test]
fn localization_rate_is_at_most_10000_bp_and_facility_is_required() {
    let localization = RecordLocalization {
        agreement_id: "a".into(),
        localization_rate_bp: 10_001,
        facility: "Astana".into(),
        local_units: 0,
        technology_transfer: Vec::new(),
        recorded_at: Timestamp::from_seconds(0),
    };
    let error = Command::RecordLocalization(localization.clone())
        .validate()
        .expect_err("rate");
    assert_eq!(error.field, "localization_rate_bp");
    let missing_facility = RecordLocalization {
        localization_rate_bp: 10_000,
        facility: String::new(),
        ..localization
    };
    let error = Command::RecordLocalization(missing_facility)
        .validate()
        .expect_err("facility");
    assert_eq!(error.field, "facility");
}

#[test]
fn command_ids_are_1_to_128_printable_ascii() {
    assert!(validate_command_id("cmd-1 with spaces!").is_ok());
    assert!(validate_command_id(&"x".repeat(128)).is_ok());
    for bad in [
        String::new(),
        "x".repeat(129),
        "tab\there".into(),
        "naïve".into(),
    ] {
        let error = validate_command_id(&bad).expect_err("refused");
        assert_eq!(error.field, "meta.command_id");
    }
}

#[test]
fn quoted_values_are_cut_short() {
    assert_eq!(quoted("UZ"), "\"UZ\"");
    let long = quoted(&"x".repeat(1_048_576));
    assert!(long.len() < 80, "{long}");
    assert!(long.ends_with("(1048576 characters)"), "{long}");
}

#[test]
fn a_huge_value_makes_a_short_message() {
    let error = validate_country("country", &"x".repeat(1_048_576)).expect_err("refused");
    assert!(error.reason.len() < 200);
}
