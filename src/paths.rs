//! Path spelling.

use std::path::{Component, Path, PathBuf};

/// Lexical clean-up of `a/b/../c` → `a/c` and `./x` → `x`, as Go's
/// `filepath.Join` (which client-go uses for kubeconfig paths) does. No
/// filesystem access: a `..` after a symlink is taken at its word.
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
    out.iter().collect()
}

#[cfg(test)]
mod tests {
    use super::clean;
    use std::path::Path;

    #[test]
    fn cleans_like_go() {
        assert_eq!(
            clean(Path::new("a/.kube/../../pki/./ca.crt")),
            Path::new("pki/ca.crt")
        );
        assert_eq!(clean(Path::new("/etc/../x")), Path::new("/x"));
        assert_eq!(clean(Path::new("../x")), Path::new("../x"));
        assert_eq!(clean(Path::new("etc/../tokens")), Path::new("tokens"));
    }
}
