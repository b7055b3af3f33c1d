//! The server's checkpoint signing key on disk: one line `ed25519:HEX` (the
//! 32-byte secret), readable by its owner only. `accordctl new-signing-key`
//! writes one; the server writes one in its data directory at first start
//! when `--signing-key` names none.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use accord_store::CheckpointKeys;

use crate::config::Config;
use crate::hex;
use crate::server_error::ServerError;

const PREFIX: &str = "ed25519:";

/// The file the server signs with: `--signing-key`, or `DATA_DIR/signing-key`.
pub fn path(config: &Config) -> PathBuf {
    config
        .signing_key
        .clone()
        .unwrap_or_else(|| config.data_dir.join("signing-key"))
}

/// Loads the signing key of `config` and the public keys it trusts. The
/// default file in the data directory is created when missing; a file named
/// with `--signing-key` must exist.
pub fn load(config: &Config) -> Result<CheckpointKeys, ServerError> {
    let file = path(config);
    let secret = if config.signing_key.is_none() && !file.exists() {
        let secret = create(&file)?;
        tracing::info!(path = %file.display(), "created the checkpoint signing key");
        secret
    } else {
        read(&file)?
    };
    let trusted = config
        .trusted_keys
        .iter()
        .map(|text| {
            parse_public_key(text)
                .map_err(|error| ServerError::Config(format!("--trusted-key {text:?}: {error}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let keys = CheckpointKeys::new(secret, trusted);
    tracing::info!(
        public_key = %hex::encode(&keys.public_key()),
        "checkpoints are signed with this key"
    );
    Ok(keys)
}

/// Reads a key file, refusing one that others can read.
pub fn read(file: &Path) -> Result<[u8; 32], ServerError> {
    let refuse =
        |why: String| ServerError::Config(format!("signing key {}: {why}", file.display()));
    let metadata = std::fs::metadata(file).map_err(|error| refuse(error.to_string()))?;
    if metadata.permissions().mode() & 0o077 != 0 {
        return Err(refuse(format!(
            "readable by others (mode {:o}); run `chmod 600` on it",
            metadata.permissions().mode() & 0o777
        )));
    }
    let text = std::fs::read_to_string(file).map_err(|error| refuse(error.to_string()))?;
    let secret = text
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty() && !line.starts_with('#'))
        .and_then(|line| line.strip_prefix(PREFIX))
        .ok_or_else(|| refuse(format!("expected a line `{PREFIX}HEX`")))?;
    hex::decode(secret)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| refuse("the key is not 64 hex digits".into()))
}

/// Writes a new random key to `file` (which must not exist), readable by
/// its owner only, durably; returns it.
pub fn create(file: &Path) -> Result<[u8; 32], ServerError> {
    let secret = CheckpointKeys::generate_secret()?;
    let public_key = CheckpointKeys::new(secret, []).public_key();
    let refuse = |error: std::io::Error| {
        ServerError::Config(format!(
            "cannot write signing key {}: {error}",
            file.display()
        ))
    };
    let directory = match file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(directory).map_err(refuse)?;
    // Written whole beside it, then renamed into place: the name appears
    // only with the whole key behind it. An existing key is never replaced
    // (checked just before; a file system without hard links, such as the
    // tests' FUSE one, cannot do it atomically).
    let partial = file.with_extension("partial");
    let _ = std::fs::remove_file(&partial);
    let mut out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&partial)
        .map_err(refuse)?;
    writeln!(
        out,
        "# Accord checkpoint signing key: keep it secret. Public key: {}",
        hex::encode(&public_key)
    )
    .and_then(|()| writeln!(out, "{PREFIX}{}", hex::encode(&secret)))
    .and_then(|()| out.sync_all())
    .map_err(refuse)?;
    if file.exists() {
        let _ = std::fs::remove_file(&partial);
        return Err(refuse(std::io::Error::from(
            std::io::ErrorKind::AlreadyExists,
        )));
    }
    std::fs::rename(&partial, file).map_err(refuse)?;
    File::open(directory)
        .and_then(|directory| directory.sync_all())
        .map_err(refuse)?;
    Ok(secret)
}

/// Reads a public key given as 64 hex digits.
pub fn parse_public_key(text: &str) -> Result<[u8; 32], String> {
    hex::decode(text.trim())
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .ok_or_else(|| "expected an Ed25519 public key as 64 hex digits".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_key_reads_back_and_is_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("key");
        let secret = create(&file).expect("created");
        assert_eq!(read(&file).expect("reads"), secret);
        let mode = std::fs::metadata(&file)
            .expect("exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(create(&file).is_err(), "an existing key is never replaced");
        assert_eq!(read(&file).expect("unchanged"), secret);
    }

    #[test]
    fn a_key_others_can_read_or_a_malformed_one_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("key");
        create(&file).expect("created");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let error = read(&file).expect_err("too open").to_string();
        assert!(error.contains("chmod 600"), "{error}");
        std::fs::write(&file, "ed25519:abcd\n").expect("write");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        assert!(read(&file).is_err());
        assert!(parse_public_key("xyz").is_err());
        assert!(parse_public_key(&"ab".repeat(32)).is_ok());
    }
}
