//! Atomic publication of an output folder: everything is written into a hidden temporary
//! sibling folder and renamed into place only when complete, so a crash never leaves a
//! half-written folder that looks complete. A previous output at the same place is moved
//! aside first and removed after the rename.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// An output folder being written.
pub struct Staging {
    pub dir: PathBuf,
    target: PathBuf,
    published: bool,
}

fn sibling(target: &Path, tag: &str, id: &str) -> Result<PathBuf> {
    let name = target
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| crate::input_err!("output folder {} has no usable name", target.display()))?;
    Ok(target.with_file_name(format!(".{name}.{tag}-{id}")))
}

impl Staging {
    /// Starts writing the output for `target`. Leftovers of crashed runs (hidden siblings
    /// `.<name>.tmp-*`) are removed first.
    pub fn begin(target: &Path, run_id: &str) -> Result<Self> {
        let parent = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent).map_err(|e| Error::io("creating", &parent, e))?;
        let name = target.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        if let Ok(rd) = std::fs::read_dir(&parent) {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if n.starts_with(&format!(".{name}.tmp-")) || n.starts_with(&format!(".{name}.old-")) {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let dir = sibling(target, "tmp", run_id)?;
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("creating", &dir, e))?;
        Ok(Staging { dir, target: target.to_path_buf(), published: false })
    }

    /// Renames the finished folder into place.
    pub fn publish(mut self) -> Result<PathBuf> {
        if crate::fault::at("before_publish") {
            return Err(crate::other_err!(
                "fault injected before publishing (MEDAUDIT_FAIL_AT=before_publish)"
            ));
        }
        let old = if self.target.exists() {
            let old = sibling(&self.target, "old", &std::process::id().to_string())?;
            std::fs::rename(&self.target, &old).map_err(|e| Error::io("moving aside", &self.target, e))?;
            Some(old)
        } else {
            None
        };
        std::fs::rename(&self.dir, &self.target).map_err(|e| Error::io("publishing", &self.target, e))?;
        self.published = true;
        if let Some(old) = old {
            let _ = std::fs::remove_dir_all(old);
        }
        Ok(self.target.clone())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.published {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
