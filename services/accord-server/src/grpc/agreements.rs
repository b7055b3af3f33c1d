//! `accord.v1.AgreementService`: the commands, and (with the read models) the queries.

use std::sync::Arc;

use accord_proto::v1::{self, agreement_service_server::AgreementService};
use tonic::{Request, Response, Streaming};

use super::RpcResult;
use super::deadline::allowed_wait;
use super::execute_stream;
use crate::service::{CommandService, FeedService, QueryService, Services};

/// Serves `AgreementService`.
pub(crate) struct AgreementApi {
    /// Runs the commands (of `Execute`, its stream, and one at a time).
    commands: Arc<dyn CommandService>,
    queries: Arc<dyn QueryService>,
    /// `WatchAgreements`, and the slots and stop of `ExecuteStream`.
    feed: Arc<dyn FeedService>,
}

impl AgreementApi {
    /// Returns the service over the application layer's commands,
    /// queries and live feed (the console's too).
    pub(crate) fn new(services: &Services) -> Self {
        Self {
            commands: services.commands.clone(),
            queries: services.queries.clone(),
            feed: services.feed.clone(),
        }
    }

    async fn one(
        &self,
        actor: String,
        command: v1::command::Command,
    ) -> RpcResult<v1::AppendResult> {
        Ok(Response::new(
            self.commands.execute_one(&actor, command).await?,
        ))
    }
}

/// The name of the token the call was made with (empty when tokens are off).
fn actor_of<T>(request: &Request<T>) -> String {
    super::token_of(request).unwrap_or_default().to_owned()
}

#[tonic::async_trait]
impl AgreementService for AgreementApi {
    async fn announce(&self, request: Request<v1::AnnounceRequest>) -> RpcResult<v1::AppendResult> {
        self.one(
            actor_of(&request),
            v1::command::Command::Announce(request.into_inner()),
        )
        .await
    }

    async fn sign(&self, request: Request<v1::SignRequest>) -> RpcResult<v1::AppendResult> {
        self.one(
            actor_of(&request),
            v1::command::Command::Sign(request.into_inner()),
        )
        .await
    }

    async fn record_delivery(
        &self,
        request: Request<v1::RecordDeliveryRequest>,
    ) -> RpcResult<v1::AppendResult> {
        self.one(
            actor_of(&request),
            v1::command::Command::RecordDelivery(request.into_inner()),
        )
        .await
    }

    async fn record_localization(
        &self,
        request: Request<v1::RecordLocalizationRequest>,
    ) -> RpcResult<v1::AppendResult> {
        self.one(
            actor_of(&request),
            v1::command::Command::RecordLocalization(request.into_inner()),
        )
        .await
    }

    async fn execute(
        &self,
        request: Request<v1::ExecuteRequest>,
    ) -> RpcResult<v1::ExecuteResponse> {
        let actor = actor_of(&request);
        let commands = request.into_inner().commands;
        Ok(Response::new(
            self.commands.execute(&actor, commands).await?,
        ))
    }

    type ExecuteStreamStream = super::GrpcStream<v1::ExecuteStreamResponse>;

    async fn execute_stream(
        &self,
        request: Request<Streaming<v1::ExecuteRequest>>,
    ) -> RpcResult<Self::ExecuteStreamStream> {
        let slot = self.feed.take_slot(super::owner_of(&request))?;
        let actor = actor_of(&request);
        Ok(Response::new(super::grpc_stream(execute_stream::start(
            self.commands.clone(),
            actor,
            request.into_inner(),
            slot,
            self.feed.stopping(),
        ))))
    }

    async fn get_agreement(
        &self,
        request: Request<v1::GetAgreementRequest>,
    ) -> RpcResult<v1::Agreement> {
        let (metadata, _, request) = request.into_parts();
        Ok(Response::new(
            self.queries
                .get_agreement(request, allowed_wait(&metadata))
                .await?,
        ))
    }

    async fn list_agreements(
        &self,
        request: Request<v1::ListAgreementsRequest>,
    ) -> RpcResult<v1::ListAgreementsResponse> {
        let (metadata, _, request) = request.into_parts();
        Ok(Response::new(
            self.queries
                .list_agreements(request, allowed_wait(&metadata))
                .await?,
        ))
    }

    async fn get_country_portfolio(
        &self,
        request: Request<v1::GetCountryPortfolioRequest>,
    ) -> RpcResult<v1::CountryPortfolio> {
        let (metadata, _, request) = request.into_parts();
        Ok(Response::new(
            self.queries
                .country_portfolio(request, allowed_wait(&metadata))
                .await?,
        ))
    }

    async fn list_country_portfolios(
        &self,
        request: Request<v1::ListCountryPortfoliosRequest>,
    ) -> RpcResult<v1::ListCountryPortfoliosResponse> {
        let (metadata, _, request) = request.into_parts();
        Ok(Response::new(
            self.queries
                .country_portfolios(request, allowed_wait(&metadata))
                .await?,
        ))
    }

    async fn get_localization_report(
        &self,
        request: Request<v1::GetLocalizationReportRequest>,
    ) -> RpcResult<v1::LocalizationReport> {
        let (metadata, _, request) = request.into_parts();
        Ok(Response::new(
            self.queries
                .localization_report(request, allowed_wait(&metadata))
                .await?,
        ))
    }

    type WatchAgreementsStream = super::GrpcStream<v1::AgreementUpdate>;

    async fn watch_agreements(
        &self,
        request: Request<v1::WatchAgreementsRequest>,
    ) -> RpcResult<Self::WatchAgreementsStream> {
        let owner = super::owner_of(&request);
        let stream = self.feed.watch(owner, request.into_inner())?;
        Ok(Response::new(super::grpc_stream(stream)))
    }
}
