//! What the file system verbs of a [`Session`](crate::Session) return, named as `std::fs`
//! names them: [`Session::read_dir`](crate::Session::read_dir) gives [`DirEntry`]s,
//! [`Session::metadata`](crate::Session::metadata) a [`Metadata`].
//!
//! The verbs run in the session's shell, in the container, with the tools every image has
//! (busybox's are enough): `stat`, `mkdir`, `mv`, `rm`, `cat`. Their failures are
//! [`Error::Fs`](crate::Error::Fs), whose `kind` says why as `std::io::ErrorKind` does.

use std::ffi::OsString;
use std::time::{Duration, SystemTime};

/// What a path is, not following a symbolic link unless the call says it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FileKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// A FIFO, socket or device.
    Other,
}

/// What `stat` says about a path.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metadata {
    /// What it is.
    pub kind: FileKind,
    /// Its size in bytes.
    pub len: u64,
    /// Its permission bits (`0o755`), with set-user-ID, set-group-ID and sticky.
    pub mode: u32,
    /// When its content last changed, to the second.
    pub modified: SystemTime,
}

impl Metadata {
    /// Whether it is a directory.
    pub fn is_dir(&self) -> bool {
        self.kind == FileKind::Dir
    }

    /// Whether it is a regular file.
    pub fn is_file(&self) -> bool {
        self.kind == FileKind::File
    }

    /// Whether it is a symbolic link (only [`symlink_metadata`](crate::Session::symlink_metadata)
    /// and [`read_dir`](crate::Session::read_dir) say so).
    pub fn is_symlink(&self) -> bool {
        self.kind == FileKind::Symlink
    }

    /// Parses `stat -c '%f %s %Y'`: the raw mode in hex, the size, the modification time in
    /// seconds since the epoch.
    pub(crate) fn parse(fields: &[u8]) -> Option<Metadata> {
        let mut words = std::str::from_utf8(fields).ok()?.split(' ');
        let raw = u32::from_str_radix(words.next()?, 16).ok()?;
        let len = words.next()?.parse().ok()?;
        let secs: i64 = words.next()?.parse().ok()?;
        if words.next().is_some() {
            return None;
        }
        let kind = match raw & 0o170_000 {
            0o100_000 => FileKind::File,
            0o040_000 => FileKind::Dir,
            0o120_000 => FileKind::Symlink,
            _ => FileKind::Other,
        };
        let since = Duration::from_secs(secs.unsigned_abs());
        let modified = if secs >= 0 { SystemTime::UNIX_EPOCH + since } else { SystemTime::UNIX_EPOCH - since };
        Some(Metadata { kind, len, mode: raw & 0o7777, modified })
    }
}

/// An entry of a directory, with what `stat` says about it (not following a symbolic link).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DirEntry {
    /// Its name in the directory, byte for byte (`std::os::unix::ffi::OsStrExt` gives the
    /// bytes of a name that is not UTF-8).
    pub name: OsString,
    /// What it is.
    pub kind: FileKind,
    /// Its size in bytes.
    pub len: u64,
    /// Its permission bits.
    pub mode: u32,
    /// When its content last changed, to the second.
    pub modified: SystemTime,
}

impl DirEntry {
    pub(crate) fn new(name: OsString, m: Metadata) -> DirEntry {
        DirEntry { name, kind: m.kind, len: m.len, mode: m.mode, modified: m.modified }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_parse() {
        let m = Metadata::parse(b"41ed 4096 1700000000").unwrap();
        assert_eq!((m.kind, m.len, m.mode), (FileKind::Dir, 4096, 0o755));
        assert_eq!(m.modified, SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000));
        assert_eq!(Metadata::parse(b"81a4 12 0").map(|m| (m.kind, m.mode)), Some((FileKind::File, 0o644)));
        assert_eq!(Metadata::parse(b"a1ff 7 5").map(|m| m.kind), Some(FileKind::Symlink));
        assert_eq!(Metadata::parse(b"21b6 0 5").map(|m| m.kind), Some(FileKind::Other));
        assert_eq!(
            Metadata::parse(b"8fff 0 -5").map(|m| (m.mode, m.modified)),
            Some((0o7777, SystemTime::UNIX_EPOCH - Duration::from_secs(5)))
        );
        for bad in [&b""[..], b"41ed 4096", b"zz 1 1", b"41ed 4096 1 extra", b"41ed -1 1"] {
            assert_eq!(Metadata::parse(bad), None, "{bad:?}");
        }
    }
}
