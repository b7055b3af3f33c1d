//! The queries' side of the application layer, as its adapters call it.

use std::time::Duration;

use accord_proto::v1;

use crate::error::ApiError;

/// Queries of the read models, each waiting at most `wait` for its
/// `min_position`.
#[async_trait::async_trait]
pub(crate) trait QueryService: Send + Sync {
    async fn get_agreement(
        &self,
        request: v1::GetAgreementRequest,
        wait: Duration,
    ) -> Result<v1::Agreement, ApiError>;

    async fn list_agreements(
        &self,
        request: v1::ListAgreementsRequest,
        wait: Duration,
    ) -> Result<v1::ListAgreementsResponse, ApiError>;

    async fn country_portfolio(
        &self,
        request: v1::GetCountryPortfolioRequest,
        wait: Duration,
    ) -> Result<v1::CountryPortfolio, ApiError>;

    async fn country_portfolios(
        &self,
        request: v1::ListCountryPortfoliosRequest,
        wait: Duration,
    ) -> Result<v1::ListCountryPortfoliosResponse, ApiError>;

    async fn localization_report(
        &self,
        request: v1::GetLocalizationReportRequest,
        wait: Duration,
    ) -> Result<v1::LocalizationReport, ApiError>;

    /// The latest events of agreement `agreement_id` up to `version` (at or
    /// below `as_of`, when not 0), oldest first: at most `max_events` and
    /// about `max_bytes` of them; and how many earlier events are left out.
    async fn timeline(
        &self,
        agreement_id: &str,
        version: u64,
        as_of: u64,
        max_events: usize,
        max_bytes: usize,
    ) -> Result<(Vec<v1::RecordedEvent>, u64), ApiError>;
}
