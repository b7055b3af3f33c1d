//! The FUSE side: every request answered from the in-memory [`Disk`].
//! Files are opened in direct-I/O mode, so the kernel's page cache never
//! holds a write the disk has not seen, and attributes and names are never
//! cached (a zero TTL), so a power cut is seen at once.

use std::ffi::OsStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::{Mutex, MutexGuard};

use fuser::{
    AccessFlags, BsdFileFlags, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags,
    Generation, INodeNo, LockOwner, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData,
    ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow,
    WriteFlags,
};

use crate::disk::{self, Disk, Ino, Kind};

/// Names and attributes are never cached by the kernel.
const NO_CACHE: Duration = Duration::ZERO;

/// The file system over a shared disk.
pub(crate) struct PowerCutFs {
    pub(crate) disk: Arc<Mutex<Disk>>,
}

impl PowerCutFs {
    fn disk(&self) -> MutexGuard<'_, Disk> {
        self.disk.lock()
    }
}

fn errno(code: disk::Errno) -> Errno {
    Errno::from_i32(code)
}

fn attr(disk: &Disk, ino: Ino) -> Result<FileAttr, disk::Errno> {
    let node = disk.node(ino)?;
    let (kind, size, nlink) = match &node.kind {
        Kind::Dir(entries) => (FileType::Directory, 4096, 2 + entries.len() as u32),
        Kind::File(data) => (FileType::RegularFile, data.current().len() as u64, 1),
    };
    Ok(FileAttr {
        ino: INodeNo(ino),
        size,
        blocks: size.div_ceil(512),
        atime: node.mtime,
        mtime: node.mtime,
        ctime: node.ctime,
        crtime: node.ctime,
        kind,
        perm: node.perm,
        nlink,
        uid: node.uid,
        gid: node.gid,
        rdev: 0,
        blksize: 4096,
        flags: 0,
    })
}

fn time_of(time: TimeOrNow) -> SystemTime {
    match time {
        TimeOrNow::SpecificTime(time) => time,
        TimeOrNow::Now => SystemTime::now(),
    }
}

impl PowerCutFs {
    /// Creates a file or directory owned by the caller and returns its attributes.
    fn create_node(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        permissions: (u32, u32),
        directory: bool,
    ) -> Result<FileAttr, disk::Errno> {
        let (mode, umask) = permissions;
        let mut disk = self.disk();
        let perm = (mode & !umask & 0o7777) as u16;
        let ino = disk.create(parent.0, name, directory, perm, req.uid(), req.gid())?;
        attr(&disk, ino)
    }
}

impl Filesystem for PowerCutFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let disk = self.disk();
        match disk.lookup(parent.0, name).and_then(|ino| attr(&disk, ino)) {
            Ok(found) => reply.entry(&NO_CACHE, &found, Generation(0)),
            Err(code) => reply.error(errno(code)),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match attr(&self.disk(), ino.0) {
            Ok(found) => reply.attr(&NO_CACHE, &found),
            Err(code) => reply.error(errno(code)),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let mut disk = self.disk();
        let changed = (|| {
            if let Some(size) = size {
                let size = usize::try_from(size).map_err(|_| libc::EFBIG)?;
                disk.file_mut(ino.0)?.set_len(size);
            }
            let node = disk.node_mut(ino.0)?;
            if let Some(mode) = mode {
                node.perm = (mode & 0o7777) as u16;
            }
            if let Some(uid) = uid {
                node.uid = uid;
            }
            if let Some(gid) = gid {
                node.gid = gid;
            }
            if let Some(mtime) = mtime {
                node.mtime = time_of(mtime);
            }
            node.ctime = SystemTime::now();
            attr(&disk, ino.0)
        })();
        match changed {
            Ok(found) => reply.attr(&NO_CACHE, &found),
            Err(code) => reply.error(errno(code)),
        }
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        match self.create_node(req, parent, name, (mode, umask), true) {
            Ok(found) => reply.entry(&NO_CACHE, &found, Generation(0)),
            Err(code) => reply.error(errno(code)),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.disk().remove(parent.0, name, false) {
            Ok(()) => reply.ok(),
            Err(code) => reply.error(errno(code)),
        }
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.disk().remove(parent.0, name, true) {
            Ok(()) => reply.ok(),
            Err(code) => reply.error(errno(code)),
        }
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        if flags.contains(RenameFlags::RENAME_EXCHANGE) {
            reply.error(Errno::EINVAL);
            return;
        }
        let no_replace = flags.contains(RenameFlags::RENAME_NOREPLACE);
        match self
            .disk()
            .rename(parent.0, name, newparent.0, newname, no_replace)
        {
            Ok(()) => reply.ok(),
            Err(code) => reply.error(errno(code)),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.disk().node(ino.0) {
            Ok(_) => reply.opened(FileHandle(0), FopenFlags::FOPEN_DIRECT_IO),
            Err(code) => reply.error(errno(code)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let mut disk = self.disk();
        match disk.file_mut(ino.0) {
            Ok(data) => {
                let bytes = data.current();
                let start = usize::try_from(offset)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                let end = start.saturating_add(size as usize).min(bytes.len());
                reply.data(&bytes[start..end]);
            }
            Err(code) => reply.error(errno(code)),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let mut disk = self.disk();
        let written = (|| {
            let offset = usize::try_from(offset).map_err(|_| libc::EFBIG)?;
            disk.file_mut(ino.0)?.write(offset, data);
            let node = disk.node_mut(ino.0)?;
            node.mtime = SystemTime::now();
            node.ctime = node.mtime;
            Ok(())
        })();
        match written {
            Ok(()) => reply.written(data.len() as u32),
            Err(code) => reply.error(errno(code)),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // close(2) is not a sync.
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        match self.disk().sync(ino.0) {
            Ok(()) => reply.ok(),
            Err(code) => reply.error(errno(code)),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let disk = self.disk();
        let listed = disk.list(ino.0).map(|entries| {
            let mut all = vec![
                (ino.0, FileType::Directory, ".".into()),
                (ino.0, FileType::Directory, "..".into()),
            ];
            for (name, child) in entries {
                let kind = match disk.node(child).map(|node| &node.kind) {
                    Ok(Kind::Dir(_)) => FileType::Directory,
                    _ => FileType::RegularFile,
                };
                all.push((child, kind, name));
            }
            all
        });
        match listed {
            Ok(all) => {
                for (index, (child, kind, name)) in
                    all.into_iter().enumerate().skip(offset as usize)
                {
                    if reply.add(INodeNo(child), index as u64 + 1, kind, name) {
                        break;
                    }
                }
                reply.ok();
            }
            Err(code) => reply.error(errno(code)),
        }
    }

    fn fsyncdir(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.fsync(req, ino, fh, datasync, reply);
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let blocks = 1 << 24;
        reply.statfs(blocks, blocks, blocks, 1 << 20, 1 << 20, 4096, 255, 4096);
    }

    fn access(&self, _req: &Request, ino: INodeNo, _mask: AccessFlags, reply: ReplyEmpty) {
        match self.disk().node(ino.0) {
            Ok(_) => reply.ok(),
            Err(code) => reply.error(errno(code)),
        }
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        match self.create_node(req, parent, name, (mode, umask), false) {
            Ok(found) => reply.created(
                &NO_CACHE,
                &found,
                Generation(0),
                FileHandle(0),
                FopenFlags::FOPEN_DIRECT_IO,
            ),
            Err(code) => reply.error(errno(code)),
        }
    }
}
