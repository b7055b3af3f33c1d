//! The console answers only requests that name a host it knows: a loopback
//! name, an address, or a name given with `--console-host`. Otherwise a page
//! on another site could rebind its own name to this machine's address
//! (DNS rebinding), become same-origin with the console, and read every
//! view or act on a server without tokens.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ConsoleContext;
use super::access::refused;

/// The host names a request may name (lower case, without a port).
#[derive(Debug, Clone)]
pub(crate) struct KnownHosts(Arc<Vec<String>>);

impl KnownHosts {
    /// `localhost` and the names of `--console-host`; any address literal
    /// is known too (a name is needed to rebind).
    pub(crate) fn new(configured: &[String]) -> Self {
        let mut names = vec!["localhost".to_owned()];
        names.extend(
            configured
                .iter()
                .map(|name| name.trim().trim_end_matches('.').to_ascii_lowercase())
                .filter(|name| !name.is_empty()),
        );
        Self(Arc::new(names))
    }

    /// Whether `authority` (a Host header: a name or address, and maybe a
    /// port) is one the console answers to.
    pub(crate) fn knows(&self, authority: &str) -> bool {
        let host = match authority.strip_prefix('[') {
            // `[::1]:8080`
            Some(bracketed) => match bracketed.split_once(']') {
                Some((address, _)) => return address.parse::<IpAddr>().is_ok(),
                None => return false,
            },
            None => authority
                .rsplit_once(':')
                .map_or(authority, |(host, _port)| host),
        };
        if host.parse::<IpAddr>().is_ok() {
            return true;
        }
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.0.contains(&host)
    }
}

/// Middleware: refuses a request whose host is not known.
pub(crate) async fn only_known_hosts(
    State(context): State<Arc<ConsoleContext>>,
    request: Request,
    next: Next,
) -> Response {
    let authority = request
        .uri()
        .authority()
        .map(|authority| authority.as_str().to_owned())
        .or_else(|| {
            request
                .headers()
                .get(header::HOST)
                .and_then(|host| host.to_str().ok())
                .map(str::to_owned)
        });
    match authority {
        Some(authority) if context.hosts.knows(&authority) => next.run(request).await,
        Some(_) => refused(
            StatusCode::FORBIDDEN,
            "this console answers to loopback names, addresses and the names given with --console-host only",
        )
        .into_response(),
        None => refused(StatusCode::BAD_REQUEST, "a Host header is required").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(crate::fuzz_cases()))]

        /// Any Host header is answered yes or no, never a panic; a name that
        /// is not configured and not an address is never known.
        #[test]
        fn arbitrary_hosts_never_panic(host in "\\PC{0,80}", name in "[a-z]{1,12}\\.example") {
            let hosts = KnownHosts::new(&["console.example.org".into()]);
            let _ = hosts.knows(&host);
            proptest::prop_assert!(!hosts.knows(&name));
            let with_port = format!("{name}:8080");
            proptest::prop_assert!(!hosts.knows(&with_port));
        }
    }

    #[test]
    fn loopback_addresses_and_configured_names_are_known() {
        let hosts = KnownHosts::new(&["Console.Example.ORG".into()]);
        for known in [
            "localhost",
            "localhost:8080",
            "LOCALHOST.:8080",
            "127.0.0.1",
            "127.0.0.1:8080",
            "10.1.2.3:80",
            "[::1]:8080",
            "[::1]",
            "console.example.org",
            "console.example.org:443",
        ] {
            assert!(hosts.knows(known), "{known}");
        }
        for unknown in [
            "rebind.example",
            "rebind.example:8080",
            "localhost.rebind.example",
            "127.0.0.1.nip.io",
            "[evil",
            "",
            "example.org",
        ] {
            assert!(!hosts.knows(unknown), "{unknown}");
        }
    }
}
