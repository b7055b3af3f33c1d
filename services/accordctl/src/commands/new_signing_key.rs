//! `accordctl new-signing-key FILE`: a new Ed25519 key for the server's
//! signed checkpoints, written readable by its owner only; prints the public
//! key, which other servers pass to `--trusted-key` to import this one's
//! exports.

use std::path::Path;
use std::process::ExitCode;

use accord_server::{hex, signing_key};
use accord_store::CheckpointKeys;

pub(crate) fn run(file: &Path) -> ExitCode {
    match signing_key::create(file) {
        Ok(secret) => {
            let public_key = CheckpointKeys::new(secret, []).public_key();
            println!("signing key written to {}", file.display());
            println!("public key: {}", hex::encode(&public_key));
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("accordctl: {error}");
            ExitCode::from(2)
        }
    }
}
