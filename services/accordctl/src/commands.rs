//! One module per command.

pub(crate) mod consume;
pub(crate) mod cosign;
pub(crate) mod demo;
pub(crate) mod export;
pub(crate) mod groups;
pub(crate) mod import;
pub(crate) mod new_signing_key;
pub(crate) mod new_token;
pub(crate) mod proofs;
pub(crate) mod rebuild;
pub(crate) mod stats;
pub(crate) mod tail;
pub(crate) mod verify;
pub(crate) mod witness;

/// What a command returns: its exit code, or why it could not run.
pub(crate) type Outcome = Result<std::process::ExitCode, String>;

/// A progress bar on standard error (hidden when that is not a terminal).
pub(crate) fn progress_bar(length: u64, message: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(length);
    let style =
        indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} {per_sec} ETA {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(message.to_owned());
    bar
}
