//! Where the engine finds its shipped data (`queries/`, `datasets/`).

use std::path::PathBuf;

/// The folder that holds `queries/` and `datasets/`: `$MEDAUDIT_HOME`, else the first
/// ancestor of the executable that has both, else the source tree the binary was built from.
pub fn home() -> PathBuf {
    if let Some(h) = std::env::var_os("MEDAUDIT_HOME") {
        return PathBuf::from(h);
    }
    if let Ok(exe) = std::env::current_exe() {
        for dir in exe.ancestors().skip(1) {
            if dir.join("queries").is_dir() && dir.join("datasets").is_dir() {
                return dir.to_path_buf();
            }
        }
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The shipped rules.
pub fn queries_dir() -> PathBuf {
    home().join("queries")
}

/// The shipped data sets (knowledge base, policies, calendar, code tables, sample).
pub fn datasets_dir() -> PathBuf {
    home().join("datasets")
}
