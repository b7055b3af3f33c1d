//! The read-model queries, with read-your-writes (`min_position`) and time
//! travel (`as_of_position`), whatever the transport: gRPC's
//! `AgreementService` and the console both ask these.

mod page_token;
mod service;
mod timeline;

use std::sync::Arc;
use std::time::Duration;

use accord_domain::{
    Agreement, DomainError, ValidationError, validate_agreement_id, validate_country,
};
use accord_projections::{AgreementFilter, ProjectionError, ReadModels};
use accord_proto::{
    agreement_to_wire, localization_entry_to_wire, portfolio_to_wire, stage_from_wire, v1,
};
use accord_store::EventLog;

use crate::error::ApiError;
pub(crate) use service::QueryService;

use crate::reads::{MIN_POSITION_AHEAD, within_log};

/// How long a query waits for its `min_position` when the caller sets no
/// limit (a gRPC call without a deadline; the console).
pub(crate) const DEFAULT_WAIT: Duration = Duration::from_secs(5);

/// The longest wait, whatever the deadline: a call parked for longer holds
/// a task and a connection for nothing (read models that are minutes behind
/// need an operator, not patience).
pub(crate) const MAX_WAIT: Duration = Duration::from_secs(60);

/// Agreements per page when the client asks for none.
const DEFAULT_PAGE_SIZE: usize = 50;
/// Most agreements per page.
const MAX_PAGE_SIZE: usize = 1_000;
/// Events of an agreement read at a time for `as_of_position`.
const AS_OF_BATCH: usize = 256;

/// Answers queries from the read models (and, for `as_of_position`, the log).
pub(crate) struct Queries {
    log: Arc<dyn EventLog>,
    read_models: Arc<ReadModels>,
}

impl Queries {
    pub(crate) fn new(log: Arc<dyn EventLog>, read_models: Arc<ReadModels>) -> Self {
        Self { log, read_models }
    }

    /// Runs `read` of the read models on the blocking pool: sled reads
    /// block, and the async workers serve every other call meanwhile.
    async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&ReadModels) -> Result<T, ProjectionError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let read_models = self.read_models.clone();
        tokio::task::spawn_blocking(move || read(&read_models))
            .await
            .map_err(ProjectionError::from)?
            .map_err(ApiError::from)
    }

    /// Waits until the read models have applied `min_position`, for at
    /// most `wait`; a position far beyond the log's head is refused.
    async fn caught_up(&self, min_position: u64, wait: Duration) -> Result<(), ApiError> {
        if min_position == 0 {
            return Ok(());
        }
        within_log(
            self.log.as_ref(),
            "min_position",
            min_position,
            MIN_POSITION_AHEAD,
        )
        .await?;
        self.read_models
            .wait_for(min_position, wait)
            .await
            .map_err(|reached| {
                ApiError::Unavailable(format!(
                    "read models are at position {reached}; min_position {min_position} was not reached before the deadline"
                ))
            })
    }

    /// Folds the agreement's stream up to `position`.
    async fn agreement_as_of(
        &self,
        agreement_id: &str,
        position: u64,
    ) -> Result<v1::Agreement, ApiError> {
        within_log(self.log.as_ref(), "as_of_position", position, 0).await?;
        // The stream is read a batch at a time, up to the position only.
        let mut agreement = None;
        let mut next_version = 1;
        'stream: loop {
            let batch = self
                .log
                .read_stream(agreement_id, next_version, AS_OF_BATCH)
                .await?;
            let Some(last) = batch.last() else { break };
            next_version = last.version + 1;
            for event in &batch {
                if event.position > position {
                    break 'stream;
                }
                agreement = Agreement::fold(agreement, event);
            }
        }
        let agreement = agreement.ok_or_else(|| DomainError::NotFound {
            agreement_id: format!("{agreement_id} (at position {position})"),
        })?;
        Ok(agreement_to_wire(&agreement))
    }
}

#[async_trait::async_trait]
impl QueryService for Queries {
    async fn get_agreement(
        &self,
        request: v1::GetAgreementRequest,
        wait: Duration,
    ) -> Result<v1::Agreement, ApiError> {
        validate_agreement_id(&request.agreement_id)?;
        if request.as_of_position > 0 {
            return self
                .agreement_as_of(&request.agreement_id, request.as_of_position)
                .await;
        }
        self.caught_up(request.min_position, wait).await?;
        let agreement_id = request.agreement_id.clone();
        let agreement = self
            .read(move |read_models| read_models.agreement(&agreement_id))
            .await?
            .ok_or_else(|| DomainError::NotFound {
                agreement_id: request.agreement_id.clone(),
            })?;
        Ok(agreement_to_wire(&agreement))
    }

    async fn list_agreements(
        &self,
        request: v1::ListAgreementsRequest,
        wait: Duration,
    ) -> Result<v1::ListAgreementsResponse, ApiError> {
        let filter = AgreementFilter {
            buyer_country: optional_country("buyer_country", request.buyer_country)?,
            supplier_country: optional_country("supplier_country", request.supplier_country)?,
            sector: match request.sector.as_str() {
                "" => None,
                sector if sector.len() <= 64 => Some(request.sector),
                _ => {
                    return Err(
                        ValidationError::new("sector", "must be at most 64 characters").into(),
                    );
                }
            },
            stage: match request.stage {
                0 => None,
                stage => Some(stage_from_wire(stage).ok_or_else(|| {
                    ValidationError::new("stage", format!("unknown value {stage}"))
                })?),
            },
        };
        let page_size = page_size(request.page_size, DEFAULT_PAGE_SIZE);
        let after = page_token::decode(&request.page_token)?;
        self.caught_up(request.min_position, wait).await?;
        let page = self
            .read(move |read_models| {
                read_models.list_agreements(&filter, page_size, after.as_deref())
            })
            .await?;
        Ok(v1::ListAgreementsResponse {
            agreements: page.agreements.iter().map(agreement_to_wire).collect(),
            next_page_token: page
                .last_id
                .map(|last| page_token::encode(&last))
                .unwrap_or_default(),
        })
    }

    async fn country_portfolio(
        &self,
        request: v1::GetCountryPortfolioRequest,
        wait: Duration,
    ) -> Result<v1::CountryPortfolio, ApiError> {
        validate_country("country", &request.country)?;
        self.caught_up(request.min_position, wait).await?;
        let country = request.country;
        let sums = self
            .read(move |read_models| read_models.portfolio(&country))
            .await?;
        Ok(portfolio_to_wire(&sums))
    }

    async fn country_portfolios(
        &self,
        request: v1::ListCountryPortfoliosRequest,
        wait: Duration,
    ) -> Result<v1::ListCountryPortfoliosResponse, ApiError> {
        self.caught_up(request.min_position, wait).await?;
        // One entry per buyer country (ISO 3166-1 alpha-2): a few hundred at
        // most, so not paged.
        let portfolios = self.read(ReadModels::portfolios).await?;
        Ok(v1::ListCountryPortfoliosResponse {
            portfolios: portfolios.iter().map(portfolio_to_wire).collect(),
        })
    }

    async fn timeline(
        &self,
        agreement_id: &str,
        version: u64,
        as_of: u64,
        max_events: usize,
        max_bytes: usize,
    ) -> Result<(Vec<v1::RecordedEvent>, u64), ApiError> {
        Ok(timeline::latest_events(
            self.log.as_ref(),
            agreement_id,
            version,
            as_of,
            max_events,
            max_bytes,
        )
        .await?)
    }

    async fn localization_report(
        &self,
        request: v1::GetLocalizationReportRequest,
        wait: Duration,
    ) -> Result<v1::LocalizationReport, ApiError> {
        let country = optional_country("country", request.country)?;
        let page_size = page_size(request.page_size, MAX_PAGE_SIZE);
        let after = page_token::decode(&request.page_token)?;
        self.caught_up(request.min_position, wait).await?;
        let report = self
            .read(move |read_models| {
                read_models.localization_report(country.as_deref(), page_size, after.as_deref())
            })
            .await?;
        Ok(v1::LocalizationReport {
            next_page_token: report
                .last_id
                .as_deref()
                .map(page_token::encode)
                .unwrap_or_default(),
            position: report.position,
            agreements: report
                .signed
                .iter()
                .map(localization_entry_to_wire)
                .collect(),
            dependency_risk: report
                .signed
                .iter()
                .filter(|agreement| !agreement.has_local_content())
                .map(localization_entry_to_wire)
                .collect(),
        })
    }
}

/// The page size a client asked for, `default` when none, at most [`MAX_PAGE_SIZE`].
fn page_size(asked: u32, default: usize) -> usize {
    match asked as usize {
        0 => default,
        size => size.min(MAX_PAGE_SIZE),
    }
}

fn optional_country(field: &str, country: String) -> Result<Option<String>, ApiError> {
    if country.is_empty() {
        return Ok(None);
    }
    validate_country(field, &country)?;
    Ok(Some(country))
}
