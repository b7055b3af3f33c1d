//! The file system mounted for real, used through the ordinary file API.

use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::io::AsRawFd;

use power_cut_fs::PowerCutDisk;

fn read(path: &std::path::Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .expect("opens")
        .read_to_end(&mut bytes)
        .expect("reads");
    bytes
}

#[test]
fn only_synced_data_survives_a_power_cut() {
    let mountpoint = tempfile::tempdir().expect("mount point");
    let mut disk =
        PowerCutDisk::mount(mountpoint.path()).expect("mounts (needs root and /dev/fuse)");
    let dir = disk.path().join("data");
    std::fs::create_dir(&dir).expect("mkdir");
    let synced = dir.join("synced");
    let unsynced = dir.join("unsynced");
    let ranged = dir.join("sync_file_range");

    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .read(true)
        .open(&synced)
        .expect("creates");
    file.write_all(b"kept").expect("writes");
    file.sync_data().expect("fdatasync");
    file.write_all(b" and lost").expect("writes");
    file.seek(SeekFrom::Start(0)).expect("seeks");
    let mut before = String::new();
    file.read_to_string(&mut before).expect("reads");
    assert_eq!(before, "kept and lost", "a reader sees unsynced writes");
    drop(file);

    std::fs::write(&unsynced, b"never synced").expect("writes");

    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&ranged)
        .expect("creates");
    (&file)
        .write_all(b"written back, not synced")
        .expect("writes");
    // SAFETY: a valid descriptor and range; the flags sled uses.
    let result = unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            0,
            0,
            libc::SYNC_FILE_RANGE_WAIT_BEFORE
                | libc::SYNC_FILE_RANGE_WRITE
                | libc::SYNC_FILE_RANGE_WAIT_AFTER,
        )
    };
    assert_eq!(result, 0, "sync_file_range runs");
    drop(file);

    disk.power_cut().expect("power cut");

    assert_eq!(read(&synced), b"kept");
    assert_eq!(read(&unsynced), b"", "the name survives, its data does not");
    assert_eq!(read(&ranged), b"", "sync_file_range is not a sync");
    let stats = disk.stats();
    assert_eq!(stats.power_cuts, 1);
    assert!(stats.file_syncs >= 1);
    assert!(stats.lost_bytes > 0);
}

#[test]
fn with_names_synced_by_directory_a_new_file_needs_its_directory_synced() {
    let mountpoint = tempfile::tempdir().expect("mount point");
    let mut disk =
        PowerCutDisk::mount_with(mountpoint.path(), power_cut_fs::Names::SyncedByDirectory)
            .expect("mounts (needs root and /dev/fuse)");
    let root = disk.path().to_path_buf();
    for name in ["named", "unnamed"] {
        let file = std::fs::File::create(root.join(name)).expect("creates");
        (&file).write_all(b"synced data").expect("writes");
        file.sync_all().expect("fsync of the file");
        if name == "named" {
            std::fs::File::open(&root)
                .expect("opens the directory")
                .sync_all()
                .expect("fsync of the directory");
        }
    }
    disk.power_cut().expect("power cut");
    assert_eq!(read(&root.join("named")), b"synced data");
    assert!(
        !root.join("unnamed").exists(),
        "a file whose directory was not synced is gone, synced data and all"
    );
    assert!(disk.stats().directory_syncs >= 1);
    assert_eq!(disk.stats().lost_names, 1);
}
