//! Reading the read models: one agreement, filtered pages, portfolios and
//! the localization report.

use accord_domain::{Agreement, PortfolioSums, Stage};

use crate::ProjectionError;
use crate::ReadModels;
use crate::keys::{self, Index};
use crate::postings;
use crate::stored::{decode_agreement, decode_portfolio};

/// Which agreements a list returns; empty or None matches all.
#[derive(Debug, Clone, Default)]
pub struct AgreementFilter {
    /// Buyer country.
    pub buyer_country: Option<String>,
    /// Supplier country.
    pub supplier_country: Option<String>,
    /// Sector.
    pub sector: Option<String>,
    /// Stage.
    pub stage: Option<Stage>,
}

impl AgreementFilter {
    /// The index a list of this filter reads, and the value to read under:
    /// the most selective of the filter's values.
    fn index(&self) -> Option<(Index, Vec<u8>)> {
        if let Some(country) = &self.buyer_country {
            return Some((Index::Buyer, country.as_bytes().to_vec()));
        }
        if let Some(country) = &self.supplier_country {
            return Some((Index::Supplier, country.as_bytes().to_vec()));
        }
        if let Some(sector) = &self.sector {
            return Some((Index::Sector, sector.as_bytes().to_vec()));
        }
        self.stage
            .map(|stage| (Index::Stage, vec![keys::stage_byte(stage)]))
    }

    fn matches(&self, agreement: &Agreement) -> bool {
        self.buyer_country
            .as_ref()
            .is_none_or(|country| agreement.buyer.country == *country)
            && self
                .supplier_country
                .as_ref()
                .is_none_or(|country| agreement.supplier.country == *country)
            && self
                .sector
                .as_ref()
                .is_none_or(|sector| agreement.sector == *sector)
            && self.stage.is_none_or(|stage| agreement.stage == stage)
    }
}

/// A page of a localization report: signed agreements, at the checkpoint
/// they were read at.
#[derive(Debug, Clone)]
pub struct LocalizationReport {
    /// The read models' checkpoint when the report was read.
    pub position: u64,
    /// Signed agreements (of one buyer country, when asked), ordered by id.
    pub signed: Vec<Agreement>,
    /// The id to continue after, when more may follow.
    pub last_id: Option<String>,
}

/// One page of agreements, ordered by id.
#[derive(Debug, Clone)]
pub struct AgreementPage {
    /// The agreements.
    pub agreements: Vec<Agreement>,
    /// The id to continue after, when more may follow.
    pub last_id: Option<String>,
}

impl ReadModels {
    /// Returns the current view of one agreement.
    pub fn agreement(&self, agreement_id: &str) -> Result<Option<Agreement>, ProjectionError> {
        self.tree()
            .get(keys::agreement_key(agreement_id))?
            .map(|bytes| decode_agreement(&bytes))
            .transpose()
    }

    /// Returns up to `page_size` matching agreements with ids after `after_id`.
    pub fn list_agreements(
        &self,
        filter: &AgreementFilter,
        page_size: usize,
        after_id: Option<&str>,
    ) -> Result<AgreementPage, ProjectionError> {
        let tree = self.tree();
        let mut agreements = Vec::new();
        let empty = AgreementPage {
            agreements: Vec::new(),
            last_id: None,
        };
        // A buyer country's portfolio counts its agreements by stage: a
        // filter that matches none is answered without reading any, and
        // the stage's index is read instead of the country's when it holds
        // fewer agreements.
        let mut index = filter.index();
        if let Some(country) = &filter.buyer_country {
            let sums = self.portfolio(country)?;
            let matching = match filter.stage {
                Some(stage) => sums.count_by_stage.get(&stage).copied().unwrap_or(0),
                None => sums.agreement_count,
            };
            if matching == 0 {
                return Ok(empty);
            }
            if let Some(stage) = filter.stage {
                let in_stage: u64 = self
                    .portfolios()?
                    .iter()
                    .map(|sums| sums.count_by_stage.get(&stage).copied().unwrap_or(0))
                    .sum();
                if in_stage < sums.agreement_count {
                    index = Some((Index::Stage, vec![keys::stage_byte(stage)]));
                }
            }
        }
        let mut push = |agreement: Agreement| -> bool {
            if filter.matches(&agreement) {
                agreements.push(agreement);
            }
            agreements.len() < page_size
        };
        match index {
            Some((index, value)) => {
                let prefix = index.prefix(&value);
                // From the page holding `after_id`, skipping ids up to it.
                let start = match after_id {
                    Some(after) => postings::page_of(&tree, &prefix, after)?
                        .map_or_else(|| prefix.clone(), |(key, _)| key.to_vec()),
                    None => prefix.clone(),
                };
                'pages: for entry in tree.range(start..) {
                    let (key, page) = entry?;
                    if !key.starts_with(&prefix) {
                        break;
                    }
                    for id in postings::decode_page(&page) {
                        if after_id.is_some_and(|after| id <= after.as_bytes()) {
                            continue;
                        }
                        let Some(bytes) = tree.get(keys::agreement_key_bytes(id))? else {
                            return Err(ProjectionError::Inconsistent(format!(
                                "the {index:?} index names {}, which has no view",
                                String::from_utf8_lossy(id)
                            )));
                        };
                        if !push(decode_agreement(&bytes)?) {
                            break 'pages;
                        }
                    }
                }
            }
            None => {
                let start = match after_id {
                    Some(after) => successor(keys::agreement_key(after)),
                    None => vec![keys::AGREEMENT],
                };
                for entry in tree.range(start..) {
                    let (key, bytes) = entry?;
                    if key.first() != Some(&keys::AGREEMENT) {
                        break;
                    }
                    if !push(decode_agreement(&bytes)?) {
                        break;
                    }
                }
            }
        }
        let last_id = if agreements.len() == page_size {
            agreements
                .last()
                .map(|agreement| agreement.agreement_id.clone())
        } else {
            None
        };
        Ok(AgreementPage {
            agreements,
            last_id,
        })
    }

    /// Returns the portfolio of one buyer country (empty when it has no agreements).
    pub fn portfolio(&self, country: &str) -> Result<PortfolioSums, ProjectionError> {
        Ok(self
            .tree()
            .get(keys::portfolio_key(country))?
            .map(|bytes| decode_portfolio(&bytes))
            .transpose()?
            .unwrap_or_else(|| PortfolioSums::new(country)))
    }

    /// Returns the portfolio of every buyer country, ordered by country.
    pub fn portfolios(&self) -> Result<Vec<PortfolioSums>, ProjectionError> {
        let mut portfolios = Vec::new();
        for entry in self.tree().scan_prefix([keys::PORTFOLIO]) {
            let (_, bytes) = entry?;
            let sums = decode_portfolio(&bytes)?;
            if !sums.is_empty() {
                portfolios.push(sums);
            }
        }
        Ok(portfolios)
    }

    /// Returns up to `page_size` signed agreements (of one buyer country,
    /// when given) with ids after `after_id`. A call looks at no more than
    /// ten pages' worth of agreements: a page may come back short, with a
    /// `last_id` to continue from.
    pub fn localization_report(
        &self,
        country: Option<&str>,
        page_size: usize,
        after_id: Option<&str>,
    ) -> Result<LocalizationReport, ProjectionError> {
        let position = self.checkpoint();
        let filter = AgreementFilter {
            buyer_country: country.map(str::to_owned),
            ..AgreementFilter::default()
        };
        let page_size = page_size.max(1);
        let mut signed = Vec::new();
        let mut after = after_id.map(str::to_owned);
        let mut looked_at = 0;
        loop {
            let page = self.list_agreements(&filter, page_size, after.as_deref())?;
            looked_at += page.agreements.len();
            for agreement in page.agreements {
                after = Some(agreement.agreement_id.clone());
                if agreement.stage.is_signed() {
                    signed.push(agreement);
                    if signed.len() == page_size {
                        return Ok(LocalizationReport {
                            position,
                            signed,
                            last_id: after,
                        });
                    }
                }
            }
            if page.last_id.is_none() {
                return Ok(LocalizationReport {
                    position,
                    signed,
                    last_id: None,
                });
            }
            if looked_at >= 10 * page_size {
                return Ok(LocalizationReport {
                    position,
                    signed,
                    last_id: after,
                });
            }
        }
    }
}

/// The smallest key after `key`.
fn successor(mut key: Vec<u8>) -> Vec<u8> {
    key.push(0);
    key
}

#[cfg(test)]
mod tests {
    use accord_domain::{
        AgreementKind, Announced, Event, EventMetadata, Party, RecordedEvent, Signed, Stage,
        Timestamp,
    };

    use super::AgreementFilter;
    use crate::ReadModels;

    /// Announcements of `agreements` agreements, a third of them bought by
    /// KZ, then every other one signed.
    fn log(agreements: u64) -> Vec<RecordedEvent> {
        let mut events = Vec::new();
        let mut push = |agreement: u64, version: u64, event: Event| {
            events.push(RecordedEvent {
                position: events.len() as u64 + 1,
                agreement_id: format!("listed-agreement-{agreement:05}"),
                version,
                event_id: [0; 16],
                recorded_at: Timestamp::default(),
                metadata: EventMetadata::default(),
                event,
            });
        };
        for agreement in 0..agreements {
            let buyer = if agreement % 3 == 0 { "KZ" } else { "UZ" };
            push(
                agreement,
                1,
                Event::Announced(Announced {
                    title: "t".into(),
                    kind: AgreementKind::Procurement,
                    buyer: Party::new("buyer", buyer),
                    supplier: Party::new("supplier", "US"),
                    sector: "rail".into(),
                    product: "locomotives".into(),
                    quantity: Some(1),
                    value: None,
                    announced_at: Timestamp::from_seconds(1),
                    venue: String::new(),
                    source: String::new(),
                }),
            );
        }
        for agreement in (0..agreements).filter(|agreement| agreement % 2 == 0) {
            push(
                agreement,
                2,
                Event::Signed(Signed {
                    signed_at: Timestamp::from_seconds(2),
                    signatories: vec!["buyer".into()],
                    value: None,
                    quantity: None,
                }),
            );
        }
        events
    }

    /// Every id a filter lists, page by page from `after_id` to the end.
    fn list_all(models: &ReadModels, filter: &AgreementFilter, page_size: usize) -> Vec<String> {
        let mut ids = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = models
                .list_agreements(filter, page_size, after.as_deref())
                .expect("lists");
            ids.extend(
                page.agreements
                    .into_iter()
                    .map(|agreement| agreement.agreement_id),
            );
            match page.last_id {
                Some(last) => after = Some(last),
                None => return ids,
            }
        }
    }

    /// Lists read from posting pages: thousands of agreements under one
    /// value span many pages, and a list continued from any id, in small
    /// pages, returns each matching agreement once, in order, after a
    /// commit that moved half of them to another stage.
    #[test]
    fn lists_continue_across_posting_pages() {
        let agreements = 3_000;
        let dir = tempfile::tempdir().expect("tempdir");
        let models = ReadModels::open(dir.path()).expect("opens");
        let events = log(agreements);
        let (announced, signed) = events.split_at(agreements as usize);
        // Announcements in small commits, the signatures in one.
        for chunk in announced.chunks(250) {
            models.apply(chunk).expect("applies");
        }
        models.apply(signed).expect("applies");
        let id = |agreement: u64| format!("listed-agreement-{agreement:05}");
        let cases = [
            (
                AgreementFilter {
                    buyer_country: Some("KZ".into()),
                    ..AgreementFilter::default()
                },
                (0..agreements)
                    .filter(|n| n % 3 == 0)
                    .map(id)
                    .collect::<Vec<_>>(),
            ),
            (
                AgreementFilter {
                    stage: Some(Stage::Signed),
                    ..AgreementFilter::default()
                },
                (0..agreements).filter(|n| n % 2 == 0).map(id).collect(),
            ),
            (
                AgreementFilter {
                    stage: Some(Stage::Announced),
                    ..AgreementFilter::default()
                },
                (0..agreements).filter(|n| n % 2 == 1).map(id).collect(),
            ),
            (
                AgreementFilter {
                    sector: Some("rail".into()),
                    ..AgreementFilter::default()
                },
                (0..agreements).map(id).collect(),
            ),
        ];
        for (filter, expected) in cases {
            for page_size in [7, 500] {
                assert_eq!(
                    list_all(&models, &filter, page_size),
                    expected,
                    "{filter:?} in pages of {page_size}"
                );
            }
        }
    }
}
