//! The disk behind the file system, in memory: a tree of directories and
//! files where each file has the bytes a reader sees now and the bytes that
//! would survive a power cut. A write changes only the first; a sync of the
//! file copies what changed to the second; a power cut throws the first
//! away.
//!
//! Names (create, rename, unlink, mkdir) follow one of two models. By
//! default they are durable at once, as on a journaling file system whose
//! metadata journal commits in order. With [`Names::SyncedByDirectory`]
//! (POSIX's letter) a directory's entries survive a power cut only as they
//! stood at its last `fsync`: a file created, renamed or removed since is
//! back as it was.

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::time::SystemTime;

/// An inode number; 1 is the root directory.
pub(crate) type Ino = u64;

/// The root directory's inode.
pub(crate) const ROOT: Ino = 1;

/// Why an operation failed, as an errno.
pub(crate) type Errno = i32;

/// A file or a directory.
#[derive(Debug)]
pub struct Node {
    /// File or directory contents.
    pub kind: Kind,
    /// Permission bits.
    pub perm: u16,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Last change of contents.
    pub mtime: SystemTime,
    /// Last change of contents or attributes.
    pub ctime: SystemTime,
}

/// What a node holds.
#[derive(Debug)]
pub enum Kind {
    /// A directory's entries by name.
    Dir(BTreeMap<OsString, Ino>),
    /// A regular file.
    File(FileData),
}

/// A file's bytes, as read now and as they would survive a power cut.
#[derive(Debug, Default)]
pub struct FileData {
    current: Vec<u8>,
    durable: Vec<u8>,
    /// Byte ranges of `current` written since the last sync.
    dirty: Vec<(usize, usize)>,
    /// The length changed since the last sync.
    resized: bool,
}

impl FileData {
    /// The bytes a reader sees.
    pub fn current(&self) -> &[u8] {
        &self.current
    }

    /// Writes `data` at `offset`, growing the file with zeros if needed.
    pub fn write(&mut self, offset: usize, data: &[u8]) {
        let end = offset + data.len();
        if end > self.current.len() {
            self.current.resize(end, 0);
            self.resized = true;
        }
        self.current[offset..end].copy_from_slice(data);
        match self.dirty.last_mut() {
            // Appends and rewrites of the same region merge into one range.
            Some((start, stop)) if offset <= *stop && end >= *start => {
                *start = (*start).min(offset);
                *stop = (*stop).max(end);
            }
            _ => self.dirty.push((offset, end)),
        }
    }

    /// Cuts or extends the file to `length` bytes.
    pub fn set_len(&mut self, length: usize) {
        self.current.resize(length, 0);
        self.resized = true;
    }

    /// Makes everything written so far durable; returns the bytes it copied.
    pub fn sync(&mut self) -> usize {
        if self.resized {
            self.durable.resize(self.current.len(), 0);
            self.resized = false;
        }
        let mut copied = 0;
        for (start, stop) in self.dirty.drain(..) {
            let stop = stop.min(self.current.len());
            if start < stop {
                self.durable[start..stop].copy_from_slice(&self.current[start..stop]);
                copied += stop - start;
            }
        }
        copied
    }

    /// Loses everything not synced; returns the bytes that differed.
    fn power_cut(&mut self) -> usize {
        let lost = self
            .dirty
            .iter()
            .map(|(start, stop)| stop - start)
            .sum::<usize>();
        self.current.clone_from(&self.durable);
        self.dirty.clear();
        self.resized = false;
        lost
    }
}

/// Counts of what the disk saw, for the tests' reports.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DiskStats {
    /// `fsync` and `fdatasync` calls on files.
    pub file_syncs: u64,
    /// Bytes made durable by them.
    pub synced_bytes: u64,
    /// Power cuts so far.
    pub power_cuts: u64,
    /// Bytes written but never synced, lost by the power cuts.
    pub lost_bytes: u64,
    /// `fsync` calls on directories.
    pub directory_syncs: u64,
    /// Directories whose entries a power cut set back (with
    /// `Names::SyncedByDirectory`).
    pub lost_names: u64,
}

/// When a directory's entries become durable.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Names {
    /// At once (a journaling file system with ordered metadata).
    #[default]
    DurableAtOnce,
    /// Only by an `fsync` of the directory.
    SyncedByDirectory,
}

/// Every node of the file system.
#[derive(Debug)]
pub struct Disk {
    nodes: HashMap<Ino, Node>,
    next_ino: Ino,
    stats: DiskStats,
    /// Syncs fail with EIO (a failing device) while set.
    failing_syncs: bool,
    names: Names,
    /// With `Names::SyncedByDirectory`: each directory's entries at its last sync.
    durable_entries: HashMap<Ino, BTreeMap<OsString, Ino>>,
}

impl Default for Disk {
    fn default() -> Self {
        Self::new()
    }
}

impl Disk {
    /// An empty disk: a root directory owned by the current user.
    pub fn new() -> Self {
        let mut nodes = HashMap::new();
        // SAFETY: getuid and getgid cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        nodes.insert(ROOT, new_node(Kind::Dir(BTreeMap::new()), 0o755, uid, gid));
        Self {
            nodes,
            next_ino: ROOT + 1,
            stats: DiskStats::default(),
            failing_syncs: false,
            names: Names::default(),
            durable_entries: HashMap::from([(ROOT, BTreeMap::new())]),
        }
    }

    /// An empty disk whose names follow `names`.
    pub fn with_names(names: Names) -> Self {
        Self {
            names,
            ..Self::new()
        }
    }

    /// What the disk saw so far.
    pub fn stats(&self) -> DiskStats {
        self.stats
    }

    /// The node `ino`.
    pub fn node(&self, ino: Ino) -> Result<&Node, Errno> {
        self.nodes.get(&ino).ok_or(libc::ENOENT)
    }

    /// The node `ino`, to change.
    pub fn node_mut(&mut self, ino: Ino) -> Result<&mut Node, Errno> {
        self.nodes.get_mut(&ino).ok_or(libc::ENOENT)
    }

    /// The file `ino`, to change.
    pub fn file_mut(&mut self, ino: Ino) -> Result<&mut FileData, Errno> {
        match &mut self.node_mut(ino)?.kind {
            Kind::File(data) => Ok(data),
            Kind::Dir(_) => Err(libc::EISDIR),
        }
    }

    fn entries(&self, dir: Ino) -> Result<&BTreeMap<OsString, Ino>, Errno> {
        match &self.node(dir)?.kind {
            Kind::Dir(entries) => Ok(entries),
            Kind::File(_) => Err(libc::ENOTDIR),
        }
    }

    fn entries_mut(&mut self, dir: Ino) -> Result<&mut BTreeMap<OsString, Ino>, Errno> {
        match &mut self.node_mut(dir)?.kind {
            Kind::Dir(entries) => Ok(entries),
            Kind::File(_) => Err(libc::ENOTDIR),
        }
    }

    /// The entries of `dir`, in name order.
    pub fn list(&self, dir: Ino) -> Result<Vec<(OsString, Ino)>, Errno> {
        Ok(self
            .entries(dir)?
            .iter()
            .map(|(name, ino)| (name.clone(), *ino))
            .collect())
    }

    /// The inode named `name` in `dir`.
    pub fn lookup(&self, dir: Ino, name: &OsStr) -> Result<Ino, Errno> {
        self.entries(dir)?.get(name).copied().ok_or(libc::ENOENT)
    }

    /// Creates an empty file or directory `name` in `dir`.
    pub fn create(
        &mut self,
        dir: Ino,
        name: &OsStr,
        directory: bool,
        perm: u16,
        uid: u32,
        gid: u32,
    ) -> Result<Ino, Errno> {
        if self.entries(dir)?.contains_key(name) {
            return Err(libc::EEXIST);
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        let kind = if directory {
            Kind::Dir(BTreeMap::new())
        } else {
            Kind::File(FileData::default())
        };
        self.nodes.insert(ino, new_node(kind, perm, uid, gid));
        if directory {
            self.durable_entries.insert(ino, BTreeMap::new());
        }
        self.entries_mut(dir)?.insert(name.to_owned(), ino);
        Ok(ino)
    }

    /// Removes the name `name` from `dir`; a directory must be empty.
    /// The inode stays, for descriptors still open on it.
    pub fn remove(&mut self, dir: Ino, name: &OsStr, directory: bool) -> Result<(), Errno> {
        let ino = self.lookup(dir, name)?;
        match (&self.node(ino)?.kind, directory) {
            (Kind::Dir(entries), true) if !entries.is_empty() => return Err(libc::ENOTEMPTY),
            (Kind::Dir(_), false) => return Err(libc::EISDIR),
            (Kind::File(_), true) => return Err(libc::ENOTDIR),
            _ => {}
        }
        self.entries_mut(dir)?.remove(name);
        Ok(())
    }

    /// Moves `name` in `dir` to `new_name` in `new_dir`, replacing what is there.
    pub fn rename(
        &mut self,
        dir: Ino,
        name: &OsStr,
        new_dir: Ino,
        new_name: &OsStr,
        no_replace: bool,
    ) -> Result<(), Errno> {
        let ino = self.lookup(dir, name)?;
        if let Ok(existing) = self.lookup(new_dir, new_name) {
            if no_replace {
                return Err(libc::EEXIST);
            }
            if let Kind::Dir(entries) = &self.node(existing)?.kind
                && !entries.is_empty()
            {
                return Err(libc::ENOTEMPTY);
            }
        }
        self.entries(new_dir)?;
        self.entries_mut(dir)?.remove(name);
        self.entries_mut(new_dir)?.insert(new_name.to_owned(), ino);
        Ok(())
    }

    /// Makes every later sync fail with EIO (`true`), or work again.
    pub fn fail_syncs(&mut self, failing: bool) {
        self.failing_syncs = failing;
    }

    /// Syncs the file or directory `ino`.
    pub fn sync(&mut self, ino: Ino) -> Result<(), Errno> {
        if self.failing_syncs {
            return Err(libc::EIO);
        }
        let copied = match &mut self.node_mut(ino)?.kind {
            Kind::File(data) => data.sync(),
            Kind::Dir(entries) => {
                let entries = entries.clone();
                self.durable_entries.insert(ino, entries);
                self.stats.directory_syncs += 1;
                return Ok(());
            }
        };
        self.stats.file_syncs += 1;
        self.stats.synced_bytes += copied as u64;
        Ok(())
    }

    /// Loses every write that was not synced.
    pub fn power_cut(&mut self) {
        let mut lost = 0;
        for (ino, node) in &mut self.nodes {
            match &mut node.kind {
                Kind::File(data) => lost += data.power_cut(),
                Kind::Dir(entries) if self.names == Names::SyncedByDirectory => {
                    let durable = self.durable_entries.get(ino).cloned().unwrap_or_default();
                    if *entries != durable {
                        self.stats.lost_names += 1;
                    }
                    *entries = durable;
                }
                Kind::Dir(_) => {}
            }
        }
        self.stats.power_cuts += 1;
        self.stats.lost_bytes += lost as u64;
    }
}

fn new_node(kind: Kind, perm: u16, uid: u32, gid: u32) -> Node {
    let now = SystemTime::now();
    Node {
        kind,
        perm,
        uid,
        gid,
        mtime: now,
        ctime: now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(disk: &mut Disk, name: &str) -> Ino {
        disk.create(ROOT, OsStr::new(name), false, 0o644, 0, 0)
            .expect("created")
    }

    #[test]
    fn a_power_cut_keeps_synced_bytes_and_loses_the_rest() {
        let mut disk = Disk::new();
        let ino = file(&mut disk, "db");
        disk.file_mut(ino).expect("file").write(0, b"durable");
        disk.sync(ino).expect("synced");
        disk.file_mut(ino).expect("file").write(7, b"+lost");
        disk.file_mut(ino).expect("file").write(0, b"D");
        assert_eq!(disk.file_mut(ino).expect("file").current(), b"Durable+lost");
        disk.power_cut();
        assert_eq!(disk.file_mut(ino).expect("file").current(), b"durable");
        assert_eq!(disk.stats().lost_bytes, 6);
    }

    #[test]
    fn a_sync_covers_every_write_and_truncation_before_it() {
        let mut disk = Disk::new();
        let ino = file(&mut disk, "db");
        let data = disk.file_mut(ino).expect("file");
        data.write(0, &[1; 100]);
        data.write(500, &[2; 10]);
        data.set_len(505);
        disk.sync(ino).expect("synced");
        disk.power_cut();
        let data = disk.file_mut(ino).expect("file");
        assert_eq!(data.current().len(), 505);
        assert_eq!(&data.current()[..100], &[1; 100]);
        assert_eq!(&data.current()[100..500], &[0; 400]);
        assert_eq!(&data.current()[500..], &[2; 5]);
    }

    #[test]
    fn syncing_one_file_leaves_another_volatile() {
        let mut disk = Disk::new();
        let a = file(&mut disk, "a");
        let b = file(&mut disk, "b");
        disk.file_mut(a).expect("a").write(0, b"a");
        disk.file_mut(b).expect("b").write(0, b"b");
        disk.sync(a).expect("synced");
        disk.power_cut();
        assert_eq!(disk.file_mut(a).expect("a").current(), b"a");
        assert_eq!(disk.file_mut(b).expect("b").current(), b"");
    }

    #[test]
    fn a_failing_device_refuses_syncs_and_keeps_the_data_volatile() {
        let mut disk = Disk::new();
        let ino = file(&mut disk, "db");
        disk.file_mut(ino).expect("file").write(0, b"x");
        disk.fail_syncs(true);
        assert_eq!(disk.sync(ino), Err(libc::EIO));
        disk.power_cut();
        assert_eq!(disk.file_mut(ino).expect("file").current(), b"");
        disk.fail_syncs(false);
        disk.file_mut(ino).expect("file").write(0, b"y");
        disk.sync(ino).expect("synced again");
    }

    #[test]
    fn names_synced_by_directory_survive_only_as_last_synced() {
        let mut disk = Disk::with_names(Names::SyncedByDirectory);
        let dir = disk
            .create(ROOT, OsStr::new("d"), true, 0o755, 0, 0)
            .expect("dir");
        disk.sync(ROOT).expect("root synced");
        let kept = disk
            .create(dir, OsStr::new("kept"), false, 0o644, 0, 0)
            .expect("file");
        disk.sync(dir).expect("dir synced");
        disk.create(dir, OsStr::new("lost"), false, 0o644, 0, 0)
            .expect("file");
        disk.rename(dir, OsStr::new("kept"), dir, OsStr::new("renamed"), false)
            .expect("renamed");
        disk.power_cut();
        assert_eq!(disk.lookup(dir, OsStr::new("kept")), Ok(kept));
        assert_eq!(disk.lookup(dir, OsStr::new("lost")), Err(libc::ENOENT));
        assert_eq!(disk.lookup(dir, OsStr::new("renamed")), Err(libc::ENOENT));
        assert_eq!(disk.stats().lost_names, 1);

        let mut default = Disk::new();
        default
            .create(ROOT, OsStr::new("f"), false, 0o644, 0, 0)
            .expect("file");
        default.power_cut();
        assert!(
            default.lookup(ROOT, OsStr::new("f")).is_ok(),
            "durable at once"
        );
    }

    #[test]
    fn names_follow_posix_rules() {
        let mut disk = Disk::new();
        let dir = disk
            .create(ROOT, OsStr::new("d"), true, 0o755, 0, 0)
            .expect("dir");
        let inner = disk
            .create(dir, OsStr::new("x"), false, 0o644, 0, 0)
            .expect("file");
        assert_eq!(
            disk.remove(ROOT, OsStr::new("d"), true),
            Err(libc::ENOTEMPTY)
        );
        disk.rename(dir, OsStr::new("x"), ROOT, OsStr::new("y"), false)
            .expect("renamed");
        assert_eq!(disk.lookup(ROOT, OsStr::new("y")), Ok(inner));
        assert_eq!(disk.lookup(dir, OsStr::new("x")), Err(libc::ENOENT));
        disk.remove(ROOT, OsStr::new("d"), true).expect("removed");
        assert_eq!(
            disk.create(ROOT, OsStr::new("y"), false, 0o644, 0, 0),
            Err(libc::EEXIST)
        );
    }
}
