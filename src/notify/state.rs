//! What the notifier remembers across restarts: the [`State`] of what was
//! mailed, in a small JSON file written atomically.
//!
//! A state file that cannot be read starts the notifier afresh rather than
//! stopping it: at worst a crossing is mailed once more. This module never
//! holds anything secret — the state names credential locations and
//! fingerprints only.

use super::plan::State;
use std::path::Path;

pub fn load_state(path: &Path) -> State {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            tracing::warn!(path = %path.display(), error = %e, "notify state unreadable; starting afresh");
            State::default()
        }),
        Err(_) => State::default(),
    }
}

/// Writes the state to a temporary file beside it and renames it over.
pub fn save_state(path: &Path, state: &State) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let bytes = serde_json::to_vec_pretty(state).map_err(std::io::Error::other)?;
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
