//! Every method the server answers, with who may call it: one table for
//! authorization and for the metrics' `method` label, checked against the
//! public contract's descriptor set (an `accord.*` RPC missing from the
//! table stops the server from starting, and the unit test below).

use std::collections::BTreeSet;

use prost::Message;

use crate::role::Role;

/// Who may call a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Anyone, with or without a token: the health check of load balancers
    /// and orchestrators.
    Open,
    /// Any valid token, whatever its roles: the health watch and reflection
    /// (they hold a stream, or describe the API).
    Authenticated,
    /// A token with this role.
    Needs(Role),
}

/// A method the server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Method {
    /// Its gRPC path (`/accord.v1.Admin/VerifyLog`).
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
}

const fn needs(path: &'static str, role: Role) -> Method {
    Method {
        path,
        access: Access::Needs(role),
    }
}

const fn with(path: &'static str, access: Access) -> Method {
    Method { path, access }
}

/// The table, as `README.md` ("Security") lists the roles.
pub(crate) const METHODS: &[Method] = &[
    needs("/accord.v1.AgreementService/Announce", Role::Writer),
    needs("/accord.v1.AgreementService/Sign", Role::Writer),
    needs("/accord.v1.AgreementService/RecordDelivery", Role::Writer),
    needs(
        "/accord.v1.AgreementService/RecordLocalization",
        Role::Writer,
    ),
    needs("/accord.v1.AgreementService/Execute", Role::Writer),
    needs("/accord.v1.AgreementService/ExecuteStream", Role::Writer),
    needs("/accord.v1.AgreementService/GetAgreement", Role::Reader),
    needs("/accord.v1.AgreementService/ListAgreements", Role::Reader),
    needs(
        "/accord.v1.AgreementService/GetCountryPortfolio",
        Role::Reader,
    ),
    needs(
        "/accord.v1.AgreementService/ListCountryPortfolios",
        Role::Reader,
    ),
    needs(
        "/accord.v1.AgreementService/GetLocalizationReport",
        Role::Reader,
    ),
    needs("/accord.v1.AgreementService/WatchAgreements", Role::Reader),
    needs("/accord.v1.EventLog/Subscribe", Role::Reader),
    needs("/accord.v1.EventLog/ReadLog", Role::Reader),
    needs("/accord.v1.EventLog/ReadAgreementHistory", Role::Reader),
    needs("/accord.v1.Admin/GetStats", Role::Operator),
    needs("/accord.v1.Admin/RebuildProjections", Role::Operator),
    needs("/accord.v1.Admin/VerifyLog", Role::Operator),
    needs("/accord.v1.Admin/ExportLog", Role::Operator),
    needs("/accord.v1.Admin/ImportLog", Role::Operator),
    needs(
        "/accord.v1.ConsumerGroups/CreateConsumerGroup",
        Role::Operator,
    ),
    needs(
        "/accord.v1.ConsumerGroups/UpdateConsumerGroup",
        Role::Operator,
    ),
    needs(
        "/accord.v1.ConsumerGroups/DeleteConsumerGroup",
        Role::Operator,
    ),
    needs("/accord.v1.ConsumerGroups/GetConsumerGroup", Role::Reader),
    needs("/accord.v1.ConsumerGroups/ListConsumerGroups", Role::Reader),
    needs("/accord.v1.ConsumerGroups/Consume", Role::Consumer),
    needs("/accord.v1.ConsumerGroups/ReplayParked", Role::Operator),
    needs("/accord.v1.Transparency/GetCheckpoint", Role::Reader),
    needs("/accord.v1.Transparency/GetInclusionProof", Role::Reader),
    needs("/accord.v1.Transparency/GetConsistencyProof", Role::Reader),
    with("/grpc.health.v1.Health/Check", Access::Open),
    with("/grpc.health.v1.Health/Watch", Access::Authenticated),
    with(
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        Access::Authenticated,
    ),
    with(
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        Access::Authenticated,
    ),
];

/// The method at `path`, if the server answers it.
pub(crate) fn lookup(path: &str) -> Option<&'static Method> {
    METHODS.iter().find(|method| method.path == path)
}

/// The RPCs of the public contract that the table lacks, and the table's
/// `accord.*` entries the contract does not have; both empty when the table
/// is complete.
pub(crate) fn mismatches() -> (Vec<String>, Vec<&'static str>) {
    let contract = contract_paths();
    let missing = contract
        .iter()
        .filter(|path| lookup(path).is_none())
        .cloned()
        .collect();
    let extra = METHODS
        .iter()
        .map(|method| method.path)
        .filter(|path| path.starts_with("/accord.") && !contract.contains(*path))
        .collect();
    (missing, extra)
}

/// The `accord.*` files of the descriptor set (none if it does not decode).
fn contract_files() -> Vec<prost_types::FileDescriptorProto> {
    let Ok(set) = prost_types::FileDescriptorSet::decode(accord_proto::FILE_DESCRIPTOR_SET) else {
        return Vec::new();
    };
    set.file
        .into_iter()
        .filter(|file| file.package().starts_with("accord."))
        .collect()
}

/// The full name of every `accord.*` service in the descriptor set
/// (`accord.v1.ConsumerGroups`): what health reports a status for.
pub(crate) fn contract_services() -> Vec<String> {
    contract_files()
        .iter()
        .flat_map(|file| {
            file.service
                .iter()
                .map(move |service| format!("{}.{}", file.package(), service.name()))
        })
        .collect()
}

/// Every RPC path of the `accord.*` services in the descriptor set.
fn contract_paths() -> BTreeSet<String> {
    contract_files()
        .iter()
        .flat_map(|file| {
            file.service.iter().flat_map(move |service| {
                service.method.iter().map(move |method| {
                    format!("/{}.{}/{}", file.package(), service.name(), method.name())
                })
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_covers_every_rpc_of_the_contract_and_nothing_else() {
        assert_eq!(contract_paths().len(), 30, "the descriptor set decodes");
        let (missing, extra) = mismatches();
        assert!(missing.is_empty(), "RPCs without a role: {missing:?}");
        assert!(
            extra.is_empty(),
            "roles for RPCs that do not exist: {extra:?}"
        );
    }

    #[test]
    fn health_covers_every_service_of_the_contract() {
        let services = contract_services();
        for service in [
            "accord.v1.AgreementService",
            "accord.v1.EventLog",
            "accord.v1.Admin",
            "accord.v1.ConsumerGroups",
            "accord.v1.Transparency",
        ] {
            assert!(services.iter().any(|name| name == service), "{services:?}");
        }
    }

    #[test]
    fn unknown_paths_are_not_in_the_table() {
        assert_eq!(lookup("/accord.v1.AgreementService/Delete"), None);
        assert_eq!(lookup("/x"), None);
        assert_eq!(
            lookup("/accord.v1.Admin/VerifyLog").map(|method| method.access),
            Some(Access::Needs(Role::Operator))
        );
    }
}
