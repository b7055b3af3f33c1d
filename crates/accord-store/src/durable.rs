//! A sled database whose writes are made durable with a real sync.
//!
//! sled 0.34's `flush` ends in `sync_file_range` on Linux: it starts the
//! write-back of the data file's dirty pages and waits for it, but it
//! syncs neither the file's metadata (the file grows) nor the device's
//! volatile write cache, so a power cut can still lose what it "flushed".
//! sled's only full sync runs in its background flusher every 500 ms.
//! sled also writes files that it never syncs: `conf` when a database is
//! created, and a file in `blobs/` for every item larger than a quarter
//! of a segment (128 KiB by default); and it never syncs a directory.
//!
//! [`SyncedDb::sync`] closes each of those gaps: after sled's flush it
//! `fdatasync`s every blob file it has not synced before, then the
//! directories whose entries changed, then the data file, so that
//! everything sled has written is on stable storage when it returns.

use parking_lot::Mutex;
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use crate::StoreError;

/// The file sled keeps its log and pages in.
const DATA_FILE: &str = "db";
/// The directory sled writes large items to.
const BLOB_DIR: &str = "blobs";

/// A sled database and the file handles that sync it.
pub struct SyncedDb {
    db: ::sled::Db,
    dir: PathBuf,
    data_file: File,
    /// Names seen in the database directory and in `blobs/` at the last sync.
    synced_names: Mutex<SyncedNames>,
}

#[derive(Default)]
struct SyncedNames {
    top: BTreeSet<OsString>,
    blobs: BTreeSet<OsString>,
}

impl SyncedDb {
    /// Opens the database `config` describes (its path is `dir`) and syncs
    /// everything sled wrote while opening it: a database created or
    /// recovered here is on stable storage before anything is read from it.
    pub fn open(config: ::sled::Config, dir: &Path) -> Result<Self, ::sled::Error> {
        let db = config.open()?;
        let data_file = File::open(dir.join(DATA_FILE))?;
        let synced = Self {
            db,
            dir: dir.to_path_buf(),
            data_file,
            synced_names: Mutex::new(SyncedNames::default()),
        };
        // `conf` is written without a sync when the database is created.
        if let Ok(conf) = File::open(dir.join("conf")) {
            conf.sync_all()?;
        }
        synced.sync_io()?;
        // sled creates the directory and its parents itself (a replica's
        // `nats-replica/STREAM`, say): their entries are made durable too.
        for ancestor in dir.ancestors().skip(1).take(2) {
            // A relative path's last ancestor is "": the working directory.
            let ancestor = if ancestor.as_os_str().is_empty() {
                Path::new(".")
            } else {
                ancestor
            };
            sync_dir(ancestor)?;
        }
        Ok(synced)
    }

    /// The sled database.
    pub fn db(&self) -> &::sled::Db {
        &self.db
    }

    /// Writes everything sled holds in memory and syncs it to stable storage.
    pub fn sync(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        self.sync_io().map_err(StoreError::from_io)
    }

    fn sync_io(&self) -> io::Result<()> {
        let mut names = self.synced_names.lock();
        let blob_dir = self.dir.join(BLOB_DIR);
        let blobs = list_names(&blob_dir)?;
        if blobs != names.blobs {
            // A blob must be durable before the log entry that points at it.
            for name in blobs.difference(&names.blobs) {
                match File::open(blob_dir.join(name)) {
                    Ok(blob) => blob.sync_data()?,
                    // sled removed it again in the meantime.
                    Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                    Err(error) => return Err(error),
                }
            }
            sync_dir(&blob_dir)?;
            names.blobs = blobs;
        }
        let top = list_names(&self.dir)?;
        if top != names.top {
            sync_dir(&self.dir)?;
            names.top = top;
        }
        self.data_file.sync_data()
    }
}

/// The names in `dir` (none when it does not exist).
fn list_names(dir: &Path) -> io::Result<BTreeSet<OsString>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(BTreeSet::new()),
        Err(error) => return Err(error),
    };
    entries
        .map(|entry| entry.map(|entry| entry.file_name()))
        .collect()
}

/// Makes the entries of `dir` durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Holds sled handles whose drop may panic: sled 0.34 syncs its file when
/// the last handle of a database is dropped and unwraps the result
/// (`pagecache/logger.rs`, `Drop for Log`), so a device that fails syncs
/// makes the drop panic. The panic is caught and logged here instead of
/// unwinding through whatever task dropped the last handle.
pub struct ContainedDrop<T>(Option<T>);

impl<T> ContainedDrop<T> {
    /// Wraps `value`.
    pub fn new(value: T) -> Self {
        Self(Some(value))
    }
}

impl<T> std::ops::Deref for ContainedDrop<T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.0.as_ref().expect("taken only by drop")
    }
}

impl<T> std::ops::DerefMut for ContainedDrop<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.0.as_mut().expect("taken only by drop")
    }
}

impl<T> Drop for ContainedDrop<T> {
    fn drop(&mut self) {
        let value = self.0.take();
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(value))).is_err() {
            tracing::error!(
                "sled panicked while closing a database (its final sync failed); what was not synced before is not durable"
            );
        }
    }
}
