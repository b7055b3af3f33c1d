//! The agreement as its events have shaped it: the state the rules are
//! checked against, and the read model's core.

use crate::{AgreementKind, Announced, Event, Money, Party, RecordedEvent, Stage, Timestamp};

/// An agreement folded from its events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agreement {
    /// The id.
    pub agreement_id: String,
    /// Human title.
    pub title: String,
    /// Procurement, cooperation or investment.
    pub kind: AgreementKind,
    /// Lifecycle stage.
    pub stage: Stage,
    /// Who buys.
    pub buyer: Party,
    /// Who supplies.
    pub supplier: Party,
    /// Lower-case word.
    pub sector: String,
    /// What is bought or agreed.
    pub product: String,
    /// Contracted units (final once signed).
    pub quantity: Option<u64>,
    /// Contracted value (final once signed).
    pub value: Option<Money>,
    /// Units delivered so far; never more than `quantity`.
    pub delivered_units: u64,
    /// True once any localization was recorded.
    pub localized: bool,
    /// Latest recorded localization rate.
    pub localization_rate_bp: u32,
    /// Latest recorded locally produced units.
    pub local_units: u64,
    /// Latest recorded local facility.
    pub facility: String,
    /// Every technology transfer recorded, first mention first.
    pub technology_transfer: Vec<String>,
    /// When it was announced.
    pub announced_at: Timestamp,
    /// When it was signed.
    pub signed_at: Option<Timestamp>,
    /// When the latest delivery happened.
    pub last_delivery_at: Option<Timestamp>,
    /// Where it was announced.
    pub venue: String,
    /// Where the facts come from.
    pub source: String,
    /// Who signed.
    pub signatories: Vec<String>,
    /// Version of the last applied event.
    pub version: u64,
    /// Log position of the last applied event.
    pub position: u64,
}

impl Agreement {
    /// Returns the agreement as its announcement created it.
    pub fn announced(agreement_id: &str, announced: &Announced) -> Self {
        Self {
            agreement_id: agreement_id.to_owned(),
            title: announced.title.clone(),
            kind: announced.kind,
            stage: Stage::Announced,
            buyer: announced.buyer.clone(),
            supplier: announced.supplier.clone(),
            sector: announced.sector.clone(),
            product: announced.product.clone(),
            quantity: announced.quantity,
            value: announced.value.clone(),
            delivered_units: 0,
            localized: false,
            localization_rate_bp: 0,
            local_units: 0,
            facility: String::new(),
            technology_transfer: Vec::new(),
            announced_at: announced.announced_at,
            signed_at: None,
            last_delivery_at: None,
            venue: announced.venue.clone(),
            source: announced.source.clone(),
            signatories: Vec::new(),
            version: 0,
            position: 0,
        }
    }

    /// Folds one recorded event into `state` (None before the announcement).
    ///
    /// Returns None only for a non-announcement event with no prior state,
    /// which a consistent log never contains.
    pub fn fold(state: Option<Self>, recorded: &RecordedEvent) -> Option<Self> {
        let mut agreement = Self::next(state, &recorded.agreement_id, &recorded.event)?;
        agreement.version = recorded.version;
        agreement.position = recorded.position;
        Some(agreement)
    }

    /// The state after `event`, one version on from `state`, for an event
    /// decided but not yet stored (its position is not known yet).
    ///
    /// Returns None for a non-announcement event with no prior state.
    pub fn next(state: Option<Self>, agreement_id: &str, event: &Event) -> Option<Self> {
        let (mut agreement, version) = match (state, event) {
            (None, Event::Announced(announced)) => {
                (Agreement::announced(agreement_id, announced), 1)
            }
            (None, _) => return None,
            (Some(mut agreement), event) => {
                let version = agreement.version + 1;
                agreement.apply(event);
                (agreement, version)
            }
        };
        agreement.version = version;
        Some(agreement)
    }

    /// Applies an event that `decide` produced for this agreement.
    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::Announced(announced) => {
                *self = Agreement {
                    version: self.version,
                    position: self.position,
                    ..Agreement::announced(&self.agreement_id, announced)
                };
            }
            Event::Signed(signed) => {
                self.stage = Stage::Signed;
                self.signed_at = Some(signed.signed_at);
                self.signatories = signed.signatories.clone();
                if let Some(value) = &signed.value {
                    self.value = Some(value.clone());
                }
                if let Some(quantity) = signed.quantity {
                    self.quantity = Some(quantity);
                }
            }
            Event::DeliveryRecorded(delivery) => {
                self.delivered_units = self.delivered_units.saturating_add(delivery.units);
                self.last_delivery_at = Some(delivery.delivered_at);
                let all_delivered = self
                    .quantity
                    .is_some_and(|quantity| self.delivered_units >= quantity);
                self.stage = if all_delivered {
                    Stage::Delivered
                } else {
                    Stage::Delivering
                };
            }
            Event::LocalizationRecorded(localization) => {
                self.localized = true;
                self.localization_rate_bp = localization.localization_rate_bp;
                self.local_units = localization.local_units;
                self.facility = localization.facility.clone();
                for technology in &localization.technology_transfer {
                    if !self.technology_transfer.contains(technology) {
                        self.technology_transfer.push(technology.clone());
                    }
                }
            }
        }
    }

    /// True when the agreement builds local capacity: localization or
    /// technology transfer has been recorded. A signed agreement without
    /// either is a dependency risk for the buyer country.
    pub fn has_local_content(&self) -> bool {
        self.localized || !self.technology_transfer.is_empty()
    }

    /// Units still to deliver, when a quantity is contracted.
    pub fn remaining_units(&self) -> Option<u64> {
        self.quantity
            .map(|quantity| quantity.saturating_sub(self.delivered_units))
    }
}
