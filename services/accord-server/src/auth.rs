//! Bearer-token authentication and roles.
//!
//! Tokens come from a token file that holds only their BLAKE3 hashes, one
//! line per token: `NAME ROLE[,ROLE...] blake3:HEX` (`#` starts a comment).
//! Roles: `writer` (commands), `reader` (queries and streams, looking at
//! consumer groups), `consumer` (a reader that may also consume from
//! consumer groups), `operator` (Admin, managing groups). The health check stays open; the health watch and reflection
//! need any valid token (see `methods.rs`). A missing or unknown token is
//! UNAUTHENTICATED; a known token without the role is PERMISSION_DENIED. The
//! token's name is recorded as `actor` in the metadata of the events it writes.

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tonic::Status;

use crate::methods::{self, Access};
pub use crate::role::Role;

/// The name of the token a call was made with; handlers record it as `actor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor(pub String);

#[derive(Debug, Clone)]
struct Grant {
    name: String,
    roles: Vec<Role>,
}

/// Why the token file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    /// The file could not be read.
    #[error("cannot read the token file {}: {source}", path.display())]
    Read {
        /// The token file.
        path: std::path::PathBuf,
        /// Why it could not be read.
        #[source]
        source: std::io::Error,
    },
    /// A line of the file is not `NAME ROLES blake3:HEX`.
    #[error("token file {}: {reason}", path.display())]
    Invalid {
        /// The token file.
        path: std::path::PathBuf,
        /// Which line and what is wrong with it.
        reason: String,
    },
}

/// The tokens the server accepts, by hash.
#[derive(Debug, Clone, Default)]
pub struct TokenTable {
    by_hash: HashMap<[u8; 32], Grant>,
}

impl TokenTable {
    /// Reads a token file.
    pub fn load(path: &Path) -> Result<Self, TokenFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokenFileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text).map_err(|reason| TokenFileError::Invalid {
            path: path.to_path_buf(),
            reason,
        })
    }

    /// Parses the token file format.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut by_hash = HashMap::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or_default().trim();
            if line.is_empty() {
                continue;
            }
            let number = index + 1;
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [name, roles, hash] = fields[..] else {
                return Err(format!("line {number}: expected `NAME ROLES blake3:HEX`"));
            };
            let roles = roles
                .split(',')
                .map(|role| {
                    Role::parse(role).ok_or_else(|| {
                        format!("line {number}: unknown role {role:?} (writer, reader, consumer, operator)")
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let hash = hash
                .strip_prefix("blake3:")
                .ok_or_else(|| format!("line {number}: the hash must start with blake3:"))?;
            let hash = decode_hash(hash)
                .ok_or_else(|| format!("line {number}: the hash must be 64 hex digits"))?;
            if by_hash
                .insert(
                    hash,
                    Grant {
                        name: name.to_owned(),
                        roles,
                    },
                )
                .is_some()
            {
                return Err(format!("line {number}: the same token appears twice"));
            }
        }
        if by_hash.is_empty() {
            return Err("no tokens".into());
        }
        Ok(Self { by_hash })
    }

    /// Returns the token file line for `token`.
    pub fn line_for(name: &str, roles: &str, token: &str) -> String {
        format!(
            "{name} {roles} blake3:{}",
            blake3::hash(token.as_bytes()).to_hex()
        )
    }

    /// A key derived from every token of the table (hash, name and roles),
    /// the same on every node that reads the same token file and unknown to
    /// anyone without it: nodes seal what they say to each other over NATS
    /// with it.
    pub(crate) fn node_key(&self) -> [u8; 32] {
        let mut grants: Vec<(&[u8; 32], &Grant)> = self.by_hash.iter().collect();
        grants.sort_by_key(|(hash, _)| **hash);
        let mut material = Vec::new();
        for (hash, grant) in grants {
            material.extend_from_slice(hash);
            material.extend_from_slice(grant.name.as_bytes());
            material.push(0);
            for role in &grant.roles {
                material.extend_from_slice(role.name().as_bytes());
                material.push(b',');
            }
            material.push(0);
        }
        blake3::derive_key("accord 2026 consumer groups between nodes", &material)
    }

    fn grant(&self, token: &str) -> Option<&Grant> {
        self.by_hash.get(blake3::hash(token.as_bytes()).as_bytes())
    }

    /// The name and roles of `token`, if it is one of the table's.
    pub(crate) fn holder(&self, token: &str) -> Option<(&str, &[Role])> {
        self.grant(token)
            .map(|grant| (grant.name.as_str(), grant.roles.as_slice()))
    }
}

/// The bearer token of a request's headers (`authorization: Bearer TOKEN`).
pub(crate) fn bearer(headers: &http::HeaderMap) -> Option<&str> {
    headers
        .get(http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
}

/// Returns a new random token (244 random bits).
pub fn new_token() -> String {
    format!(
        "acc_{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

fn decode_hash(text: &str) -> Option<[u8; 32]> {
    crate::hex::decode(text).ok()?.try_into().ok()
}

/// Checks tokens in front of every service.
#[derive(Clone)]
pub struct AuthLayer {
    tokens: Option<Arc<TokenTable>>,
}

impl AuthLayer {
    /// Checks calls against `tokens`; with None, every call is let through.
    pub fn new(tokens: Option<Arc<TokenTable>>) -> Self {
        Self { tokens }
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            tokens: self.tokens.clone(),
        }
    }
}

/// See [`AuthLayer`].
#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    tokens: Option<Arc<TokenTable>>,
}

impl<S, RequestBody> tower::Service<Request<RequestBody>> for AuthService<S>
where
    S: tower::Service<Request<RequestBody>, Response = Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    RequestBody: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, mut request: Request<RequestBody>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let Some(tokens) = &self.tokens else {
            return Box::pin(inner.call(request));
        };
        // Unknown methods need a valid token too (any role): they are
        // answered UNIMPLEMENTED only to those who may call the server.
        let role = match methods::lookup(request.uri().path()).map(|method| method.access) {
            Some(Access::Open) => return Box::pin(inner.call(request)),
            Some(Access::Needs(role)) => Some(role),
            Some(Access::Authenticated) | None => None,
        };
        let token = bearer(request.headers());
        let refusal = match token.map(|token| tokens.grant(token)) {
            None => Some(Status::unauthenticated(
                "a bearer token is required (authorization: Bearer TOKEN)",
            )),
            Some(None) => Some(Status::unauthenticated("the bearer token is not valid")),
            Some(Some(grant)) if role.is_some_and(|role| !role.granted_by(&grant.roles)) => {
                Some(Status::permission_denied(format!(
                    "token {:?} lacks the {} role this call needs",
                    grant.name,
                    role.map_or("", Role::name)
                )))
            }
            Some(Some(grant)) => {
                request.extensions_mut().insert(Actor(grant.name.clone()));
                None
            }
        };
        match refusal {
            Some(status) => Box::pin(async move { Ok(status.into_http()) }),
            None => Box::pin(inner.call(request)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_node_key_follows_the_tokens_not_the_file_layout() {
        let (first, second) = (new_token(), new_token());
        let key = |text: String| TokenTable::parse(&text).expect("parses").node_key();
        let one = TokenTable::line_for("a", "writer", &first);
        let two = TokenTable::line_for("b", "operator,reader", &second);
        let same = key(format!("{one}\n{two}\n"));
        assert_eq!(same, key(format!("# reordered\n{two}\n\n{one}\n")));
        assert_ne!(same, key(format!("{one}\n")));
        let renamed = TokenTable::line_for("c", "operator,reader", &second);
        assert_ne!(same, key(format!("{one}\n{renamed}\n")));
        let other_roles = TokenTable::line_for("b", "reader", &second);
        assert_ne!(same, key(format!("{one}\n{other_roles}\n")));
    }

    #[test]
    fn token_files_hold_hashes_and_roles() {
        let token = new_token();
        let table = TokenTable::parse(&format!(
            "# comment\n{}\n",
            TokenTable::line_for("importer", "writer,reader", &token)
        ))
        .expect("parses");
        let grant = table.grant(&token).expect("known");
        assert_eq!(grant.name, "importer");
        assert_eq!(grant.roles, vec![Role::Writer, Role::Reader]);
        assert!(table.grant("acc_wrong").is_none());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(crate::fuzz_cases()))]

        /// A token file of arbitrary text, or of lines near the format, is
        /// parsed or refused naming its line, never a panic.
        #[test]
        fn arbitrary_token_files_never_panic(
            text in "\\PC{0,400}",
            lines in proptest::collection::vec(
                ("[a-z ]{0,12}", "(reader|writer|operator|consumer|,| |x){0,6}", "(blake3:)?[0-9a-fz]{0,70}"),
                0..8,
            ),
        ) {
            if let Err(error) = TokenTable::parse(&text) {
                proptest::prop_assert!(!error.is_empty());
            }
            let near: String = lines
                .iter()
                .map(|(name, roles, hash)| format!("{name} {roles} {hash}\n"))
                .collect();
            if let Err(error) = TokenTable::parse(&near) {
                proptest::prop_assert!(error.contains("line") || error.contains("no tokens"), "{}", error);
            }
        }
    }

    #[test]
    fn bad_token_files_say_which_line() {
        for (text, needle) in [
            ("a writer", "line 1"),
            ("a boss blake3:00", "unknown role"),
            ("a writer sha1:00", "blake3:"),
            ("a writer blake3:zz", "64 hex"),
            ("", "no tokens"),
        ] {
            let error = TokenTable::parse(text).expect_err("refused");
            assert!(error.contains(needle), "{text:?}: {error}");
        }
    }
}
