//! Who may see what in the console: the same bearer tokens and roles as
//! gRPC, sent by the page as an `Authorization` header (never a cookie, so
//! no other site can make a browser send it). Operator actions also need the
//! console's own header, which no cross-site form can set, and are refused
//! when the browser says the request comes from another site.

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::ConsoleContext;
use crate::auth::{Role, TokenTable, bearer};

/// The header every request of the console's page carries.
pub(crate) const CONSOLE_HEADER: &str = "x-accord-console";

/// What a request may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Caller {
    /// The token's name (`anonymous` on a server without tokens).
    pub(crate) name: String,
    pub(crate) reader: bool,
    pub(crate) operator: bool,
}

/// A refusal, as the page shows it: a status and a line of text.
#[derive(Debug)]
pub(crate) struct Refusal {
    status: StatusCode,
    message: String,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (
            self.status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            self.message,
        )
            .into_response()
    }
}

/// A refusal with `status` and `message`.
pub(crate) fn refused(status: StatusCode, message: impl Into<String>) -> Refusal {
    Refusal {
        status,
        message: message.into(),
    }
}

/// The caller of a request, or the refusal to answer.
pub(crate) fn caller(tokens: Option<&TokenTable>, headers: &HeaderMap) -> Result<Caller, Refusal> {
    let Some(tokens) = tokens else {
        return Ok(Caller {
            name: "anonymous".into(),
            reader: true,
            operator: true,
        });
    };
    let token =
        bearer(headers).ok_or_else(|| refused(StatusCode::UNAUTHORIZED, "a token is required"))?;
    let (name, roles) = tokens
        .holder(token)
        .ok_or_else(|| refused(StatusCode::UNAUTHORIZED, "the token is not valid"))?;
    Ok(Caller {
        name: name.to_owned(),
        reader: Role::Reader.granted_by(roles),
        operator: Role::Operator.granted_by(roles),
    })
}

/// The caller, who must hold the reader role.
pub(crate) fn reader(tokens: Option<&TokenTable>, headers: &HeaderMap) -> Result<Caller, Refusal> {
    let caller = caller(tokens, headers)?;
    if !caller.reader {
        return Err(refused(
            StatusCode::FORBIDDEN,
            format!("token {:?} lacks the reader role", caller.name),
        ));
    }
    Ok(caller)
}

/// The caller of an operator action: the operator role, the console's
/// header, and not from another site.
pub(crate) fn operator(
    tokens: Option<&TokenTable>,
    headers: &HeaderMap,
) -> Result<Caller, Refusal> {
    let cross_site = headers
        .get("sec-fetch-site")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|site| site == "cross-site");
    if cross_site || headers.get(CONSOLE_HEADER).is_none() {
        return Err(refused(
            StatusCode::FORBIDDEN,
            "operator actions come from the console's own page only",
        ));
    }
    let caller = caller(tokens, headers)?;
    if !caller.operator {
        return Err(refused(
            StatusCode::FORBIDDEN,
            format!("token {:?} lacks the operator role", caller.name),
        ));
    }
    Ok(caller)
}

/// A request whose token holds the reader role (an extractor: a handler
/// that takes it answers only such requests).
pub(crate) struct Reader(pub(crate) Caller);

impl FromRequestParts<Arc<ConsoleContext>> for Reader {
    type Rejection = Refusal;

    async fn from_request_parts(
        parts: &mut Parts,
        context: &Arc<ConsoleContext>,
    ) -> Result<Self, Refusal> {
        reader(context.tokens.as_deref(), &parts.headers).map(Reader)
    }
}

/// An operator action from the console's own page (an extractor).
pub(crate) struct Operator(pub(crate) Caller);

impl FromRequestParts<Arc<ConsoleContext>> for Operator {
    type Rejection = Refusal;

    async fn from_request_parts(
        parts: &mut Parts,
        context: &Arc<ConsoleContext>,
    ) -> Result<Self, Refusal> {
        operator(context.tokens.as_deref(), &parts.headers).map(Operator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> TokenTable {
        TokenTable::parse(&format!(
            "{}\n{}\n",
            TokenTable::line_for("analyst", "reader", "r-token"),
            TokenTable::line_for("ops", "reader,operator", "o-token")
        ))
        .expect("table")
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, value.parse().expect("value"));
        }
        headers
    }

    #[test]
    fn roles_and_the_console_header_decide() {
        let table = table();
        let reader_token = [("authorization", "Bearer r-token"), (CONSOLE_HEADER, "1")];
        let operator_token = [("authorization", "Bearer o-token"), (CONSOLE_HEADER, "1")];
        assert!(reader(Some(&table), &headers(&reader_token)).is_ok());
        assert!(reader(Some(&table), &headers(&[])).is_err());
        assert!(reader(Some(&table), &headers(&[("authorization", "Bearer nope")])).is_err());
        assert!(operator(Some(&table), &headers(&reader_token)).is_err());
        assert!(operator(Some(&table), &headers(&operator_token)).is_ok());
        // Without the console's header, or from another site: refused.
        assert!(operator(Some(&table), &headers(&operator_token[..1])).is_err());
        let mut cross = headers(&operator_token);
        cross.insert("sec-fetch-site", "cross-site".parse().expect("value"));
        assert!(operator(Some(&table), &cross).is_err());
        // An open server: everyone may look; actions still need the header.
        assert!(reader(None, &headers(&[])).is_ok());
        assert!(operator(None, &headers(&[])).is_err());
        assert!(operator(None, &headers(&[(CONSOLE_HEADER, "1")])).is_ok());
    }
}
