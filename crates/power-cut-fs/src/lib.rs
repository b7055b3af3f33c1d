//! A file system for tests that behaves like a disk losing power: it keeps
//! what was written but not yet synced in a volatile layer, and a power cut
//! throws all of that away (the idea of LazyFS, which Jepsen uses).
//!
//! It is a FUSE file system held in this process's memory. Files are opened
//! in direct-I/O mode, so the kernel's page cache cannot keep a write alive
//! across the cut: only `fsync` and `fdatasync` make a file's data durable;
//! `sync_file_range`, `close` and the passing of time do not. Names
//! (creating, renaming, removing files and directories) are durable at once,
//! or, with [`Names::SyncedByDirectory`], only by an `fsync` of their directory.
//!
//! Mounting needs `/dev/fuse` and root (it mounts with `mount(2)` directly,
//! no `fusermount` helper).

mod disk;
mod fs;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

pub use disk::{Disk, DiskStats, Names};
use fuser::{BackgroundSession, Config, MountOption};

use crate::fs::PowerCutFs;

/// A mounted power-cut file system; unmounted when dropped.
pub struct PowerCutDisk {
    mountpoint: PathBuf,
    disk: Arc<Mutex<Disk>>,
    session: Option<BackgroundSession>,
}

impl PowerCutDisk {
    /// Mounts an empty file system at `mountpoint` (an existing directory)
    /// whose names are durable at once.
    pub fn mount(mountpoint: &Path) -> io::Result<Self> {
        Self::mount_with(mountpoint, Names::DurableAtOnce)
    }

    /// Mounts an empty file system whose names follow `names`.
    pub fn mount_with(mountpoint: &Path, names: Names) -> io::Result<Self> {
        let disk = Arc::new(Mutex::new(Disk::with_names(names)));
        let session = mount_disk(&disk, mountpoint)?;
        Ok(Self {
            mountpoint: mountpoint.to_path_buf(),
            disk,
            session: Some(session),
        })
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        &self.mountpoint
    }

    /// Cuts the power: unmounts (the kernel forgets everything it cached),
    /// drops every write that was not synced, and mounts what is left.
    /// Stop every process that uses the file system first: unmounting is
    /// lazy, so a process still writing would write to the old mount.
    pub fn power_cut(&mut self) -> io::Result<()> {
        if let Some(session) = self.session.take() {
            session.umount_and_join()?;
        }
        self.lock().power_cut();
        self.session = Some(mount_disk(&self.disk, &self.mountpoint)?);
        Ok(())
    }

    /// Makes every `fsync`/`fdatasync` fail with EIO from now on (`true`),
    /// as a failing device does, or work again (`false`).
    pub fn fail_syncs(&self, failing: bool) {
        self.lock().fail_syncs(failing);
    }

    /// What the disk saw so far.
    pub fn stats(&self) -> DiskStats {
        self.lock().stats()
    }

    fn lock(&self) -> parking_lot::MutexGuard<'_, Disk> {
        self.disk.lock()
    }
}

impl Drop for PowerCutDisk {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            let _ = session.umount_and_join();
        }
    }
}

fn mount_disk(disk: &Arc<Mutex<Disk>>, mountpoint: &Path) -> io::Result<BackgroundSession> {
    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::FSName("power-cut-fs".into()),
        MountOption::DefaultPermissions,
        MountOption::NoAtime,
    ];
    // One thread: the disk is one mutex anyway.
    config.n_threads = Some(1);
    fuser::spawn_mount(
        PowerCutFs {
            disk: Arc::clone(disk),
        },
        mountpoint,
        &config,
    )
}
