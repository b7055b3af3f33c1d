//! The log served read-only as a C2SP `tlog-tiles` log on the console's
//! port, so that tools written for transparency logs can fetch and audit
//! it: `/checkpoint` (the signed note), `/tile/<L>/<N>[.p/<W>]` (hashes) and
//! `/tile/entries/<N>[.p/<W>]` (the records, each after its u16 length).
//! The same access rules as the console's other pages.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tokio_stream::StreamExt;

use super::ConsoleContext;
use super::access::{Reader, refused};
use super::answer::failed;
use crate::http_serve::PeerAddr;
use crate::streams::Owner;

/// What a tile path names.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct TilePath {
    /// The tile level; `None` for an entry bundle.
    pub(crate) level: Option<u8>,
    pub(crate) index: u64,
    /// The width of a partial tile (`.p/<W>`), 1 to 255.
    pub(crate) width: Option<usize>,
}

/// Reads `<L>/<N>[.p/<W>]` or `entries/<N>[.p/<W>]`: `N` in groups of three
/// digits, every group but the last prefixed with `x`.
pub(crate) fn parse(path: &str) -> Option<TilePath> {
    let mut parts: Vec<&str> = path.split('/').collect();
    let level = match parts.first()? {
        &"entries" => None,
        level
            if !level.is_empty()
                && level.len() <= 2
                && level.bytes().all(|b| b.is_ascii_digit()) =>
        {
            Some(level.parse::<u8>().ok().filter(|level| *level <= 63)?)
        }
        _ => return None,
    };
    parts.remove(0);
    let mut width = None;
    if parts.len() >= 2 && parts[parts.len() - 2].ends_with(".p") {
        let text = parts.pop()?;
        let parsed: usize = text.parse().ok()?;
        if text.starts_with('0') || !(1..=255).contains(&parsed) {
            return None;
        }
        width = Some(parsed);
        let last = parts.last_mut()?;
        *last = last.strip_suffix(".p")?;
    }
    if parts.is_empty() || parts.len() > 7 {
        return None;
    }
    let mut index: u64 = 0;
    let count = parts.len();
    for (at, part) in parts.iter().enumerate() {
        let digits = if at + 1 < count {
            part.strip_prefix('x')?
        } else {
            part
        };
        if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        index = index
            .checked_mul(1_000)?
            .checked_add(digits.parse::<u64>().ok()?)?;
    }
    Some(TilePath {
        level,
        index,
        width,
    })
}

fn binary(body: Body, full: bool) -> Response {
    let mut response = ([(header::CONTENT_TYPE, "application/octet-stream")], body).into_response();
    if full {
        // A full tile never changes.
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=31536000, immutable"),
        );
    }
    response
}

/// `GET /checkpoint`: the latest signed checkpoint.
pub(crate) async fn checkpoint(State(context): State<Arc<ConsoleContext>>, _: Reader) -> Response {
    match context.services.transparency.checkpoint().await {
        Ok(checkpoint) => (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            checkpoint.note,
        )
            .into_response(),
        Err(error) => failed(error),
    }
}

/// `GET /agreements/{id}/proof.json`: the agreement's proof bundle, for
/// `accordctl check-proof`.
pub(crate) async fn proof_bundle(
    State(context): State<Arc<ConsoleContext>>,
    _: Reader,
    Path(id): Path<String>,
) -> Response {
    match context.services.transparency.bundle(&id).await {
        Ok(bundle) => (
            [
                (header::CONTENT_TYPE, "application/json".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!(
                        "attachment; filename=\"{}-proof.json\"",
                        id.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_")
                    ),
                ),
            ],
            bundle,
        )
            .into_response(),
        Err(error) => failed(error),
    }
}

/// `GET /tile/...`: a tile of hashes, or an entry bundle.
pub(crate) async fn tile(
    State(context): State<Arc<ConsoleContext>>,
    Reader(caller): Reader,
    Extension(PeerAddr(peer)): Extension<PeerAddr>,
    Path(path): Path<String>,
) -> Response {
    let Some(tile) = parse(&path) else {
        return refused(
            StatusCode::NOT_FOUND,
            "not a tile: /tile/<L>/<N>[.p/<W>] or /tile/entries/<N>[.p/<W>], N in groups of three digits (x001/234)",
        )
        .into_response();
    };
    let transparency = &context.services.transparency;
    match tile.level {
        Some(level) => match transparency.tile(level, tile.index, tile.width).await {
            Ok(hashes) => binary(Body::from(hashes), tile.width.is_none()),
            Err(error) => failed(error),
        },
        None => {
            let token = context.tokens.as_ref().map(|_| caller.name.as_str());
            let slot = match context.services.feed.take_slot(Owner::new(peer, token)) {
                Ok(slot) => slot,
                Err(error) => return failed(error),
            };
            match transparency.entries(tile.index, tile.width, slot) {
                Ok(chunks) => {
                    // A chunk that fails ends the body early: the client
                    // sees a short bundle, never a wrong one.
                    let body = chunks
                        .take_while(Result::is_ok)
                        .map(|chunk| Ok::<_, Infallible>(Bytes::from(chunk.unwrap_or_default())));
                    binary(Body::from_stream(body), tile.width.is_none())
                }
                Err(error) => failed(error),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_paths_read_as_c2sp_writes_them() {
        assert_eq!(
            parse("0/x001/x234/067"),
            Some(TilePath {
                level: Some(0),
                index: 1_234_067,
                width: None
            })
        );
        assert_eq!(
            parse("1/000.p/5"),
            Some(TilePath {
                level: Some(1),
                index: 0,
                width: Some(5)
            })
        );
        assert_eq!(
            parse("entries/x001/002.p/255"),
            Some(TilePath {
                level: None,
                index: 1_002,
                width: Some(255)
            })
        );
        for bad in [
            "",
            "0",
            "0/1",
            "0/0001",
            "0/001/002",
            "0/x001",
            "64/000",
            "0/000.p/0",
            "0/000.p/256",
            "0/000.p/05",
            "entries",
            "x/000",
            "0/000.p",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
