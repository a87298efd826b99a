//! Opening and reading one file, safely: only what may be opened is
//! opened, and every read has a deadline.
//!
//! A path is opened with `O_NONBLOCK | O_NOCTTY` (a FIFO cannot block the
//! open, a terminal never becomes ours) and the open handle is `fstat`ed,
//! so a swap between a stat and the open cannot fool the check. Walked
//! files and references must be regular files; a path named on purpose
//! (a root: `lapse check <(kubectl …)`) may be a pipe or a device, and is
//! then reopened to block like any reader.
//!
//! A read stuck in the kernel (a hung network mount, a pipe whose writer
//! never writes, `/proc/kmsg`) cannot be cancelled. So reads run on a
//! small pool of reader threads and the caller waits at most the deadline:
//! past it the read is an error entry and its thread is left to finish.
//! At most [`MAX_STUCK`] threads may be stuck at once; past that, and for
//! a path whose earlier read is still stuck, reads are refused at once.
//! The hand-off to a reader thread costs more than reading a small file,
//! so a walked regular file in a directory on a local disk or memory
//! filesystem ([`local_dir`]) is read on the caller's thread instead
//! ([`read_local`]): such a read waits for the disk, never for a server.
//! This module never parses what it reads.

use crate::credential::{ErrorEntry, ErrorReason};
use crate::units::human_bytes;
use std::collections::VecDeque;
use std::fs::{File, Metadata, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{RecvTimeoutError, SyncSender, sync_channel};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

/// How long one read may take unless configured (`files.read_timeout`).
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Reader threads that may be stuck in the kernel at once.
pub const MAX_STUCK: usize = 16;
/// An idle reader thread ends after this long.
const IDLE: Duration = Duration::from_secs(30);

/// What a path may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accept {
    /// Found by a walk or referenced by another file: a regular file only.
    Regular,
    /// Named on purpose: anything but a directory.
    Named,
}

/// Bytes read, and the signature of what was read.
pub type Bytes = (Vec<u8>, Signature);

/// Reads at most `cap` bytes of `path` within `timeout`; a larger file is
/// an error, never truncated. The signature is taken from the open file.
pub fn read(path: &Path, cap: u64, accept: Accept, timeout: Duration) -> Result<Bytes, ErrorEntry> {
    pool().run(path, cap, accept, timeout)
}

/// Why `meta` may not be read under `accept`, if it may not.
pub fn refusal(meta: &Metadata, accept: Accept) -> Option<&'static str> {
    let t = meta.file_type();
    let kind = if t.is_dir() {
        return Some("is a directory");
    } else if t.is_file() {
        return None;
    } else if t.is_fifo() {
        "fifo"
    } else if t.is_socket() {
        "socket"
    } else if t.is_char_device() {
        "character device"
    } else if t.is_block_device() {
        "block device"
    } else {
        "unknown type"
    };
    match (accept, kind) {
        (Accept::Named, _) => None,
        (Accept::Regular, "fifo") => Some("not a regular file: fifo"),
        (Accept::Regular, "socket") => Some("not a regular file: socket"),
        (Accept::Regular, "character device") => Some("not a regular file: character device"),
        (Accept::Regular, "block device") => Some("not a regular file: block device"),
        (Accept::Regular, _) => Some("not a regular file"),
    }
}

/// procfs and sysfs files look regular (and empty) but are kernel
/// interfaces: `/proc/kmsg` blocks until the kernel logs, and reading it
/// takes those lines from whoever else reads them. Found by a walk or a
/// reference, they are refused; a path named on purpose is read.
#[cfg(target_os = "linux")]
fn kernel_filesystem(file: &File) -> Option<&'static str> {
    use std::os::fd::AsRawFd;
    const PROC_SUPER_MAGIC: u64 = 0x9fa0;
    const SYSFS_MAGIC: u64 = 0x6265_6572;
    const DEBUGFS_MAGIC: u64 = 0x6462_6720;
    const TRACEFS_MAGIC: u64 = 0x7472_6163;
    const SECURITYFS_MAGIC: u64 = 0x7365_6373;
    // SAFETY: fstatfs writes one statfs into the zeroed buffer it is given,
    // for a descriptor that `file` keeps open.
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstatfs(file.as_raw_fd(), &mut fs) } != 0 {
        return None;
    }
    match fs.f_type as u64 {
        PROC_SUPER_MAGIC => Some("procfs"),
        SYSFS_MAGIC => Some("sysfs"),
        DEBUGFS_MAGIC => Some("debugfs"),
        TRACEFS_MAGIC => Some("tracefs"),
        SECURITYFS_MAGIC => Some("securityfs"),
        _ => None,
    }
}

#[cfg(not(target_os = "linux"))]
fn kernel_filesystem(_: &File) -> Option<&'static str> {
    None
}

fn entry(path: &Path, reason: ErrorReason, message: impl Into<String>) -> ErrorEntry {
    ErrorEntry {
        path: path.display().to_string(),
        entry: None,
        reason,
        message: message.into(),
    }
}

/// Opens `path` `O_NONBLOCK | O_NOCTTY` (for regular files O_NONBLOCK
/// changes nothing) and checks the open handle against `accept`.
fn open_checked(path: &Path, accept: Accept) -> Result<(File, Metadata), ErrorEntry> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| io_error(path, &e))?;
    let meta = file.metadata().map_err(|e| io_error(path, &e))?;
    if let Some(why) = refusal(&meta, accept) {
        return Err(entry(path, ErrorReason::Read, why));
    }
    Ok((file, meta))
}

/// The read itself, on a reader thread.
fn read_now(path: &Path, cap: u64, accept: Accept) -> Result<Bytes, ErrorEntry> {
    let (mut file, meta) = open_checked(path, accept)?;
    if accept == Accept::Regular
        && let Some(fs) = kernel_filesystem(&file)
    {
        return Err(entry(
            path,
            ErrorReason::Read,
            format!("a {fs} file, not read"),
        ));
    }
    if !meta.is_file() {
        // Named pipes and devices: read as any reader would, blocking (the
        // deadline bounds it). A FIFO's open waits for a writer.
        file = File::open(path).map_err(|e| io_error(path, &e))?;
    }
    read_open(path, file, &meta, cap)
}

/// Reads an open file to its end under `cap`; `meta`: its `fstat`.
fn read_open(path: &Path, mut file: File, meta: &Metadata, cap: u64) -> Result<Bytes, ErrorEntry> {
    let too_large = || {
        entry(
            path,
            ErrorReason::TooLarge,
            format!("larger than the {} size cap; not read", human_bytes(cap)),
        )
    };
    if meta.len() > cap {
        return Err(too_large());
    }
    let size = meta.len();
    let mut bytes = Vec::new();
    if meta.is_file() && size > 0 {
        // One read of one byte more than the file holds: a regular file
        // reads short only at its end, so getting exactly `size` bytes
        // means the end was reached, with no second read to confirm it.
        bytes.resize(size as usize + 1, 0);
        let n = loop {
            match file.read(&mut bytes) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                other => break other.map_err(|e| io_error(path, &e))?,
            }
        };
        bytes.truncate(n);
        if n as u64 == size {
            return Ok((bytes, Signature::of(meta)));
        }
    }
    // Pipes, devices, files of no stated size (/proc) and files that
    // changed size since the open: read on to the end, under the cap.
    let got = bytes.len() as u64;
    (&mut file)
        .take((cap + 1).saturating_sub(got))
        .read_to_end(&mut bytes)
        .map_err(|e| io_error(path, &e))?;
    if bytes.len() as u64 > cap {
        return Err(too_large());
    }
    Ok((bytes, Signature::of(meta)))
}

/// A walked directory on a local disk or memory filesystem, by its device:
/// reads there do not hang the way a network or FUSE mount's can.
pub type LocalDev = Option<u64>;

/// `dir`'s device if `dir` is on a filesystem whose reads cannot hang
/// (ext2/3/4, XFS, Btrfs, ZFS, F2FS, bcachefs, tmpfs, ramfs, overlayfs,
/// squashfs, EROFS, ISO 9660, FAT); `None` for everything else: NFS, SMB, FUSE,
/// 9p, Ceph, kernel filesystems, anything unknown.
#[cfg(target_os = "linux")]
pub fn local_dir(dir: &Path) -> LocalDev {
    use std::os::unix::ffi::OsStrExt;
    const LOCAL: [u64; 13] = [
        0xef53,      // ext2/3/4
        0x5846_5342, // XFS
        0x9123_683e, // Btrfs
        0x2fc1_2fc1, // ZFS
        0xf2f5_2010, // F2FS
        0xca45_1a4e, // bcachefs
        0x0102_1994, // tmpfs (Secret and projected volumes)
        0x8584_58f6, // ramfs
        0x794c_7630, // overlayfs (container root filesystems)
        0x7371_7368, // squashfs
        0xe0f5_e1e2, // EROFS
        0x9660,      // ISO 9660
        0x4d44,      // FAT
    ];
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statfs writes one statfs into the zeroed buffer it is given,
    // for a NUL-terminated path that `c` keeps alive.
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &mut fs) } != 0 {
        return None;
    }
    if !LOCAL.contains(&(fs.f_type as u64)) {
        return None;
    }
    std::fs::metadata(dir).ok().map(|m| m.dev())
}

#[cfg(not(target_os = "linux"))]
pub fn local_dir(_: &Path) -> LocalDev {
    None
}

/// [`read`] for a walked file in a directory [`local_dir`] vouched for:
/// on the calling thread, without a reader thread's hand-off (which cost
/// more than the read itself). A file that is not on that directory's
/// device (a bind mount over it) is left to [`read`], deadline and all.
pub fn read_local(path: &Path, cap: u64, dev: u64, timeout: Duration) -> Result<Bytes, ErrorEntry> {
    let (file, meta) = open_checked(path, Accept::Regular)?;
    if meta.dev() != dev {
        drop(file);
        return read(path, cap, Accept::Regular, timeout);
    }
    read_open(path, file, &meta, cap)
}

/// What a file looks like from outside: identity, size and change times
/// (symlinks followed). A rotation by rename, an atomic-writer swap or an
/// in-place write each change it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Signature {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    /// Seconds and nanoseconds apart, not one `i128`: 48 bytes, not 64
    /// (kept for every file a serve watches).
    pub mtime: i64,
    pub ctime: i64,
    pub mtime_nsec: u32,
    pub ctime_nsec: u32,
}

impl Signature {
    pub fn of(meta: &std::fs::Metadata) -> Self {
        Signature {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.len(),
            mtime: meta.mtime(),
            ctime: meta.ctime(),
            mtime_nsec: meta.mtime_nsec() as u32,
            ctime_nsec: meta.ctime_nsec() as u32,
        }
    }

    /// The file's identity: (device, inode).
    pub fn id(&self) -> (u64, u64) {
        (self.dev, self.ino)
    }

    /// The current signature of `path`, symlinks followed; `None` if it cannot be stat'ed.
    pub fn stat(path: &Path) -> Option<Signature> {
        std::fs::metadata(path).ok().map(|m| Signature::of(&m))
    }
}

/// Describes an I/O failure; a dangling symlink says where it points.
pub fn io_error(path: &Path, e: &std::io::Error) -> ErrorEntry {
    let (reason, message) = match e.kind() {
        std::io::ErrorKind::NotFound => match std::fs::read_link(path) {
            Ok(target) => (
                ErrorReason::NotFound,
                format!("dangling symlink to {}", target.display()),
            ),
            Err(_) => (
                ErrorReason::NotFound,
                "no such file or directory".to_string(),
            ),
        },
        std::io::ErrorKind::PermissionDenied => {
            (ErrorReason::Read, "permission denied".to_string())
        }
        _ if e.raw_os_error() == Some(40) => (ErrorReason::Loop, "symlink loop".to_string()),
        _ => (ErrorReason::Read, e.to_string()),
    };
    ErrorEntry {
        path: path.display().to_string(),
        entry: None,
        reason,
        message,
    }
}

struct Job {
    id: u64,
    path: PathBuf,
    cap: u64,
    accept: Accept,
    reply: SyncSender<Result<Bytes, ErrorEntry>>,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Job>,
    /// Threads waiting for a job.
    idle: usize,
    /// Jobs a thread is on: id and path.
    running: Vec<(u64, PathBuf)>,
    /// Of those, the ones past their deadline.
    stuck: Vec<u64>,
    next_id: u64,
}

struct Pool {
    state: Mutex<State>,
    work: Condvar,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool {
        state: Mutex::new(State::default()),
        work: Condvar::new(),
    })
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn run(
        &'static self,
        path: &Path,
        cap: u64,
        accept: Accept,
        timeout: Duration,
    ) -> Result<Bytes, ErrorEntry> {
        let (reply, answer) = sync_channel(1);
        let id = {
            let mut s = self.lock();
            let stuck_here = s
                .running
                .iter()
                .any(|(id, p)| p == path && s.stuck.contains(id));
            if stuck_here {
                return Err(entry(
                    path,
                    ErrorReason::Read,
                    "not read: an earlier read of it has not returned",
                ));
            }
            if s.stuck.len() >= MAX_STUCK {
                return Err(entry(
                    path,
                    ErrorReason::Read,
                    format!("not read: {MAX_STUCK} earlier reads have not returned"),
                ));
            }
            s.next_id += 1;
            let id = s.next_id;
            s.queue.push_back(Job {
                id,
                path: path.to_path_buf(),
                cap,
                accept,
                reply,
            });
            if s.idle >= s.queue.len() {
                self.work.notify_one();
            } else {
                let spawned = std::thread::Builder::new()
                    .name("lapse-read".into())
                    .stack_size(256 << 10)
                    .spawn(move || self.serve());
                if let Err(e) = spawned {
                    s.queue.retain(|j| j.id != id);
                    return Err(entry(path, ErrorReason::Read, format!("not read: {e}")));
                }
            }
            id
        };
        match answer.recv_timeout(timeout) {
            Ok(result) => result,
            Err(RecvTimeoutError::Disconnected) => Err(entry(
                path,
                ErrorReason::Read,
                "not read: the reader failed",
            )),
            Err(RecvTimeoutError::Timeout) => {
                let mut s = self.lock();
                if s.running.iter().any(|(r, _)| *r == id) {
                    s.stuck.push(id);
                    tracing::warn!(path = %path.display(), "read timed out; its thread is left to finish");
                } else if s.queue.iter().any(|j| j.id == id) {
                    s.queue.retain(|j| j.id != id);
                } else {
                    // Done just now: the answer is on its way.
                    drop(s);
                    if let Ok(result) = answer.recv() {
                        return result;
                    }
                }
                Err(entry(
                    path,
                    ErrorReason::Read,
                    format!(
                        "read timed out after {}",
                        crate::units::human_span(timeout.as_secs() as i64)
                    ),
                ))
            }
        }
    }

    /// A reader thread: jobs until idle for [`IDLE`].
    fn serve(&self) {
        let mut s = self.lock();
        loop {
            if let Some(job) = s.queue.pop_front() {
                s.running.push((job.id, job.path.clone()));
                drop(s);
                let result = read_now(&job.path, job.cap, job.accept);
                s = self.lock();
                s.running.retain(|(id, _)| *id != job.id);
                s.stuck.retain(|id| *id != job.id);
                // The caller may have gone (timed out): nobody to tell.
                let _ = job.reply.try_send(result);
                continue;
            }
            s.idle += 1;
            let (guard, waited) = self
                .work
                .wait_timeout(s, IDLE)
                .unwrap_or_else(|p| p.into_inner());
            s = guard;
            s.idle -= 1;
            if waited.timed_out() && s.queue.is_empty() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pipe_nobody_writes_times_out_and_is_then_refused() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("p");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let _writer = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&fifo)
            .unwrap();
        let second = Duration::from_secs(1);
        let err = read(&fifo, 100, Accept::Named, second).unwrap_err();
        assert_eq!(err.message, "read timed out after 1s");
        let err = read(&fifo, 100, Accept::Named, second).unwrap_err();
        assert_eq!(
            err.message,
            "not read: an earlier read of it has not returned"
        );
        let err = read(&fifo, 100, Accept::Regular, second).unwrap_err();
        assert_eq!(
            err.message,
            "not read: an earlier read of it has not returned"
        );
        // Other files are read as usual meanwhile.
        let ok = dir.path().join("ok");
        std::fs::write(&ok, b"hello").unwrap();
        assert_eq!(read(&ok, 100, Accept::Regular, second).unwrap().0, b"hello");
    }

    #[test]
    fn only_regular_files_unless_named() {
        let second = Duration::from_secs(1);
        let err = read(Path::new("/dev/zero"), 10, Accept::Regular, second).unwrap_err();
        assert_eq!(err.message, "not a regular file: character device");
        let err = read(Path::new("/dev/zero"), 10, Accept::Named, second).unwrap_err();
        assert_eq!(err.reason, ErrorReason::TooLarge);
        let err = read(Path::new("/"), 10, Accept::Named, second).unwrap_err();
        assert_eq!(err.message, "is a directory");
    }

    #[test]
    fn local_files_are_read_in_place_and_others_through_the_deadline() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let dev = std::fs::metadata(dir.path()).unwrap().dev();
        // The suite's temporary directory is on a local filesystem (ext4 or
        // tmpfs); /proc and /sys are kernel interfaces, not to be vouched for.
        assert_eq!(local_dir(dir.path()), Some(dev));
        assert_eq!(local_dir(Path::new("/proc/self")), None);
        assert_eq!(local_dir(Path::new("/sys")), None);
        assert_eq!(local_dir(&dir.path().join("gone")), None);
        let file = dir.path().join("a.crt");
        std::fs::write(&file, b"hello").unwrap();
        let second = Duration::from_secs(1);
        let (bytes, sig) = read_local(&file, 100, dev, second).unwrap();
        assert_eq!((bytes.as_slice(), sig.size), (&b"hello"[..], 5));
        let err = read_local(&file, 4, dev, second).unwrap_err();
        assert_eq!(err.message, "larger than the 4 B size cap; not read");
        // Not on the directory's device: the checked path, which refuses
        // a kernel filesystem's file.
        let err = read_local(Path::new("/proc/self/status"), 1 << 20, dev, second).unwrap_err();
        assert_eq!(err.message, "a procfs file, not read");
        let err = read_local(&dir.path().join("gone"), 100, dev, second).unwrap_err();
        assert_eq!(err.message, "no such file or directory");
    }
}
