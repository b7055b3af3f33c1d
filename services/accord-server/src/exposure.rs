//! What the server refuses to expose beyond loopback unless told
//! `--insecure`: an open gRPC port, bearer tokens in clear text, and the
//! metrics port (it has no authentication).

use crate::config::Config;
use crate::server_error::ServerError;

/// Refuses a configuration that exposes more than loopback unsafely.
pub(crate) fn check(config: &Config, has_tokens: bool, has_tls: bool) -> Result<(), ServerError> {
    if config.insecure {
        return Ok(());
    }
    let refuse = |message: String| Err(ServerError::Config(message));
    if !config.listen.ip().is_loopback() {
        if !has_tokens {
            return refuse(format!(
                "refusing to serve {} without tokens: give --token-file, or --insecure to serve it open",
                config.listen
            ));
        }
        if !has_tls {
            return refuse(format!(
                "refusing to take bearer tokens in clear text on {}: give --tls-cert and --tls-key, or --insecure",
                config.listen
            ));
        }
    }
    if let Some(console) = config.console_listen.0
        && !console.ip().is_loopback()
    {
        if !has_tokens {
            return refuse(format!(
                "refusing to serve the console on {console} without tokens: give --token-file, or --insecure to serve it open"
            ));
        }
        if !has_tls {
            return refuse(format!(
                "refusing to take bearer tokens in clear text on the console at {console}: give --tls-cert and --tls-key, or --insecure"
            ));
        }
    }
    if !config.metrics_listen.ip().is_loopback() {
        return refuse(format!(
            "refusing to serve metrics, which need no token, on {}: keep --metrics-listen on loopback (scrape it through a proxy), or --insecure",
            config.metrics_listen
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(listen: &str, metrics_listen: &str, insecure: bool) -> Config {
        let mut config = Config::ephemeral(std::path::Path::new("unused"));
        config.listen = listen.parse().expect("address");
        config.metrics_listen = metrics_listen.parse().expect("address");
        config.insecure = insecure;
        config
    }

    #[test]
    fn beyond_loopback_the_server_needs_tokens_tls_and_a_private_metrics_port() {
        let message = |config: &Config, tokens, tls| {
            check(config, tokens, tls)
                .err()
                .map(|error| error.to_string())
                .unwrap_or_default()
        };
        let loopback = config("127.0.0.1:0", "127.0.0.1:0", false);
        assert!(check(&loopback, false, false).is_ok());
        let public = config("0.0.0.0:0", "127.0.0.1:0", false);
        assert!(message(&public, false, true).contains("without tokens"));
        assert!(message(&public, true, false).contains("in clear text"));
        assert!(check(&public, true, true).is_ok());
        let public_metrics = config("127.0.0.1:0", "[::]:0", false);
        assert!(message(&public_metrics, true, true).contains("metrics"));
        let mut public_console = config("127.0.0.1:0", "127.0.0.1:0", false);
        public_console.console_listen = "0.0.0.0:8080".parse().expect("address");
        assert!(message(&public_console, false, true).contains("console"));
        assert!(message(&public_console, false, true).contains("without tokens"));
        assert!(message(&public_console, true, false).contains("in clear text"));
        assert!(check(&public_console, true, true).is_ok());
        public_console.console_listen = "".parse().expect("none");
        assert!(check(&public_console, false, false).is_ok());
        for insecure in [
            config("0.0.0.0:0", "0.0.0.0:0", true),
            config("[::]:0", "[::]:0", true),
        ] {
            assert!(check(&insecure, false, false).is_ok());
        }
    }
}
