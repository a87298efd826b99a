//! Path spelling.

use std::cmp::Ordering;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

/// Lexical clean-up of `a/b/../c` → `a/c` and `./x` → `x`, as Go's
/// `filepath.Join` (which client-go uses for kubeconfig paths) does. No
/// filesystem access: a `..` after a symlink is taken at its word. What
/// cleans away to nothing (`.`, `./`, `a/..`; `.` joined to the empty
/// parent of a bare `lapse.yaml`) is `.`, as in Go: the empty path names
/// no file.
pub fn clean(path: &Path) -> PathBuf {
    let mut out: Vec<Component> = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.last(), Some(Component::Normal(_))) => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    if out.is_empty() {
        return PathBuf::from(".");
    }
    out.iter().collect()
}

/// Orders paths as `Path` does (component by component) for the paths a
/// walk produces, with no `.` components and no doubled or trailing
/// separators: byte by byte, with `/` below every other byte, so that
/// everything under a directory sorts right after it. `Path::cmp` parses
/// components on every comparison and was a quarter of a 10,000-file
/// `lapse check`; this is a `memcmp`.
pub fn cmp(a: &Path, b: &Path) -> Ordering {
    let (a, b) = (
        a.as_os_str().as_encoded_bytes(),
        b.as_os_str().as_encoded_bytes(),
    );
    let rank = |x: u8| if x == b'/' { 0 } else { u16::from(x) + 1 };
    match first_difference(a, b) {
        Some(i) => rank(a[i]).cmp(&rank(b[i])),
        None => a.len().cmp(&b.len()),
    }
}

/// The index of the first byte where `a` and `b` differ, eight bytes at a
/// time: walked paths share long prefixes.
fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    let n = a.len().min(b.len());
    let (mut ca, mut cb) = (a[..n].chunks_exact(8), b[..n].chunks_exact(8));
    for (i, (x, y)) in ca.by_ref().zip(cb.by_ref()).enumerate() {
        let word = |c: &[u8]| u64::from_le_bytes(c.try_into().unwrap_or_default());
        let diff = word(x) ^ word(y);
        if diff != 0 {
            return Some(i * 8 + diff.trailing_zeros() as usize / 8);
        }
    }
    let tail = n - ca.remainder().len();
    (tail..n).find(|&i| a[i] != b[i])
}

/// A byte string that sorts as [`cmp`] orders paths (`/` becomes 0, a
/// byte no path holds), for sorting many paths: one pass each, then
/// `memcmp`.
pub fn sort_key(path: &Path) -> Vec<u8> {
    let bytes = path.as_os_str().as_encoded_bytes();
    bytes
        .iter()
        .map(|&b| if b == b'/' { 0 } else { b })
        .collect()
}

/// A file's path, allocated once and shared by the file source's map,
/// the file's part and the credentials read from it. A path that is UTF-8
/// (nearly every one) is kept as the text the credentials carry
/// ([`SharedPath::text`]); any other as a path of its own, the
/// credentials then carrying its lossy spelling.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SharedPath {
    Text(Arc<str>),
    Raw(Arc<Path>),
}

impl SharedPath {
    pub fn new(path: &Path) -> Self {
        match path.to_str() {
            Some(text) => SharedPath::Text(text.into()),
            None => SharedPath::Raw(path.into()),
        }
    }

    /// The path as the credentials read from the file spell it, when that
    /// spelling is the path itself.
    pub fn text(&self) -> Option<&Arc<str>> {
        match self {
            SharedPath::Text(text) => Some(text),
            SharedPath::Raw(_) => None,
        }
    }
}

impl std::ops::Deref for SharedPath {
    type Target = Path;

    fn deref(&self) -> &Path {
        match self {
            SharedPath::Text(text) => Path::new(&**text),
            SharedPath::Raw(path) => path,
        }
    }
}

impl AsRef<Path> for SharedPath {
    fn as_ref(&self) -> &Path {
        self
    }
}

impl From<&Path> for SharedPath {
    fn from(path: &Path) -> Self {
        SharedPath::new(path)
    }
}

impl From<PathBuf> for SharedPath {
    fn from(path: PathBuf) -> Self {
        SharedPath::new(&path)
    }
}

/// A path as an ordered map key, ordered by [`cmp`]: a directory's
/// files form one range that starts at the directory.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PathKey(pub SharedPath);

impl PathKey {
    pub fn of(path: &Path) -> Self {
        PathKey(path.into())
    }
}

impl Ord for PathKey {
    fn cmp(&self, other: &Self) -> Ordering {
        cmp(&self.0, &other.0)
    }
}

impl PartialOrd for PathKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::clean;
    use std::path::Path;

    /// The byte order agrees with `Path`'s component order on walked paths,
    /// including where a plain byte order would not (`-`, `.` and `+` are
    /// below `/` as bytes).
    #[test]
    fn cmp_agrees_with_path_order() {
        let mut paths: Vec<&Path> = [
            "/a/b",
            "/a",
            "/a-b",
            "/a/b/c",
            "/a.b",
            "/a+",
            "/a/b-c/d",
            "/a/b/c-d",
            "/",
            "/a/b/c/d",
            "rel/x",
            "rel",
            "rel-y/z",
            "/ab",
            "/a/\u{1f600}",
            "/a/\u{7f}",
        ]
        .iter()
        .map(Path::new)
        .collect();
        let mut by_path = paths.clone();
        by_path.sort();
        let mut by_key = paths.clone();
        paths.sort_by(|a, b| super::cmp(a, b));
        assert_eq!(paths, by_path);
        by_key.sort_by_cached_key(|p| super::sort_key(p));
        assert_eq!(by_key, by_path);
        assert_eq!(
            paths[..4],
            [
                Path::new("/"),
                Path::new("/a"),
                Path::new("/a/b"),
                Path::new("/a/b/c")
            ]
        );
    }

    #[test]
    fn cleans_like_go() {
        assert_eq!(
            clean(Path::new("a/.kube/../../pki/./ca.crt")),
            Path::new("pki/ca.crt")
        );
        assert_eq!(clean(Path::new("/etc/../x")), Path::new("/x"));
        assert_eq!(clean(Path::new("../x")), Path::new("../x"));
        assert_eq!(clean(Path::new("etc/../tokens")), Path::new("tokens"));
        assert_eq!(clean(&Path::new("").join(".")), Path::new("."));
        assert_eq!(clean(Path::new("a/..")), Path::new("."));
        assert_eq!(clean(Path::new("./")), Path::new("."));
    }
}
