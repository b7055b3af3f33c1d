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
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use rustix::fs::{Dir, Mode, OFlags};

use crate::StoreError;

/// The file sled keeps its log and pages in.
const DATA_FILE: &str = "db";
/// The directory sled writes large items to.
const BLOB_DIR: &str = "blobs";

/// A sled database and the file handles that sync it.
///
/// The directories are held open from the start: a sync reads their
/// entries through those handles and syncs them through the same handles,
/// so a group commit opens no file descriptor (unless sled wrote a new blob,
/// which is opened once to be synced). A process out of descriptors (a
/// flood of connections) still commits.
pub struct SyncedDb {
    db: ::sled::Db,
    dir: PathBuf,
    data_file: File,
    /// The directories and the names they held at the last sync.
    watched: Mutex<Watched>,
}

/// A directory held open, and the names in it at the last sync.
struct WatchedDir {
    handle: Dir,
    names: BTreeSet<Vec<u8>>,
}

struct Watched {
    top: WatchedDir,
    /// `blobs/`, once it exists.
    blobs: Option<WatchedDir>,
}

impl WatchedDir {
    fn open(path: &Path) -> io::Result<Self> {
        let fd = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Self {
            handle: Dir::new(fd)?,
            names: BTreeSet::new(),
        })
    }

    /// The names in the directory now, read through the open handle.
    fn read_names(&mut self) -> io::Result<BTreeSet<Vec<u8>>> {
        self.handle.rewind();
        let mut names = BTreeSet::new();
        for entry in &mut self.handle {
            let entry = entry?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                names.insert(name.to_vec());
            }
        }
        Ok(names)
    }

    /// Makes the directory's entries durable.
    fn sync(&self) -> io::Result<()> {
        Ok(rustix::fs::fsync(self.handle.fd()?)?)
    }
}

impl SyncedDb {
    /// Opens the database `config` describes (its path is `dir`) and syncs
    /// everything sled wrote while opening it: a database created or
    /// recovered here is on stable storage before anything is read from it.
    pub fn open(config: ::sled::Config, dir: &Path) -> Result<Self, ::sled::Error> {
        let db = config.open()?;
        let data_file = File::open(dir.join(DATA_FILE))?;
        let blobs = match WatchedDir::open(&dir.join(BLOB_DIR)) {
            Ok(blobs) => Some(blobs),
            Err(error) if error.kind() == io::ErrorKind::NotFound => None,
            Err(error) => return Err(error.into()),
        };
        let synced = Self {
            db,
            dir: dir.to_path_buf(),
            data_file,
            watched: Mutex::new(Watched {
                top: WatchedDir::open(dir)?,
                blobs,
            }),
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
        let mut watched = self.watched.lock();
        let top = watched.top.read_names()?;
        if watched.blobs.is_none() && top.contains(BLOB_DIR.as_bytes()) {
            watched.blobs = Some(WatchedDir::open(&self.dir.join(BLOB_DIR))?);
        }
        if let Some(blobs) = &mut watched.blobs {
            let now = blobs.read_names()?;
            if now != blobs.names {
                // A blob must be durable before the log entry that points at it.
                for name in now.difference(&blobs.names) {
                    let name = <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(name);
                    match File::open(self.dir.join(BLOB_DIR).join(name)) {
                        Ok(blob) => blob.sync_data()?,
                        // sled removed it again in the meantime.
                        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                        Err(error) => return Err(error),
                    }
                }
                blobs.sync()?;
                blobs.names = now;
            }
        }
        if top != watched.top.names {
            watched.top.sync()?;
            watched.top.names = top;
        }
        self.data_file.sync_data()
    }
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
