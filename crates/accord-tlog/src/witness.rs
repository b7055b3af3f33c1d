//! The C2SP `tlog-witness` `add-checkpoint` request, both sides: `old
//! <size>`, the consistency proof's hashes one per line in base64, a blank
//! line, then the signed checkpoint. A witness that holds another size
//! answers 409 with that size (`text/x.tlog.size`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::hash::Hash;

/// The body of an `add-checkpoint` request.
pub fn add_checkpoint_body(old: u64, proof: &[Hash], note: &str) -> String {
    let mut body = format!("old {old}\n");
    for hash in proof {
        body.push_str(&STANDARD.encode(hash));
        body.push('\n');
    }
    body.push('\n');
    body.push_str(note);
    body
}

/// Reads an `add-checkpoint` request: the old size, the proof and the note.
pub fn parse_add_checkpoint(body: &str) -> Result<(u64, Vec<Hash>, String), String> {
    let (head, note) = body
        .split_once("\n\n")
        .ok_or("no blank line between the proof and the checkpoint")?;
    let mut lines = head.split('\n');
    let old = lines
        .next()
        .and_then(|line| line.strip_prefix("old "))
        .filter(|size| !size.starts_with('0') || *size == "0")
        .and_then(|size| size.parse().ok())
        .ok_or("the first line is not `old <size>`")?;
    let proof = lines
        .map(|line| {
            STANDARD
                .decode(line)
                .ok()
                .and_then(|hash| hash.try_into().ok())
                .ok_or("a proof line is not 32 bytes of base64")
        })
        .collect::<Result<Vec<Hash>, _>>()?;
    if proof.len() > 63 {
        return Err("a consistency proof has at most 63 hashes".into());
    }
    Ok((old, proof, note.to_owned()))
}

/// The size in a witness's 409 answer.
pub fn parse_size(answer: &str) -> Option<u64> {
    answer.trim_end_matches('\n').parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_reads_back_as_written() {
        let body = add_checkpoint_body(7, &[[1; 32], [2; 32]], "o\n9\nAAAA\n\n\u{2014} o AAAA\n");
        assert_eq!(
            parse_add_checkpoint(&body),
            Ok((
                7,
                vec![[1; 32], [2; 32]],
                "o\n9\nAAAA\n\n\u{2014} o AAAA\n".into()
            ))
        );
        let empty = add_checkpoint_body(0, &[], "note");
        assert_eq!(parse_add_checkpoint(&empty), Ok((0, vec![], "note".into())));
        for bad in [
            "old 1\n",
            "new 1\n\nnote",
            "old 01\n\nnote",
            "old 1\nxyz\n\nnote",
        ] {
            assert!(parse_add_checkpoint(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_size("12\n"), Some(12));
        assert_eq!(parse_size("twelve"), None);
    }
}
