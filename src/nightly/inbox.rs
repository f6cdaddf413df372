//! The inbox: where the platform's nightly exports arrive.
//!
//! The inbox is a folder of deliveries. A delivery is an input folder as `SCHEMA.md` defines
//! it (`setl.csv`, `fee.parquet`, a folder `fee/` of parts, names translated by the mapping
//! file), either a subfolder of the inbox or the inbox itself. Deliveries are taken in the
//! order of their names, so name them by date (`2024-03-05/`, `20240305-2/`). A delivery may
//! bring any subset of the tables. Hidden files and names ending in `.tmp`, `.part` or
//! `.partial` are being transferred and are left for the next night.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::ingest::Mapping;
use crate::ingest::source::{Format, discover, sha256_file};

/// One file of the inbox.
#[derive(Debug, Clone)]
pub struct InboxFile {
    pub path: PathBuf,
    /// Relative to the inbox, with `/`.
    pub rel: String,
    pub table: &'static str,
    pub format: Format,
    pub sha256: String,
    pub bytes: u64,
    /// Modification time, nanoseconds since 1970 (0 when unknown).
    pub mtime: i64,
}

fn mtime_of(p: &Path) -> i64 {
    std::fs::metadata(p)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i64)
}

fn in_transfer(p: &Path) -> bool {
    let name = p.file_name().map(|n| n.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    name.starts_with('.') || [".tmp", ".part", ".partial"].iter().any(|s| name.ends_with(s))
}

/// Every table file of the inbox, delivery by delivery (by name), table by table in the
/// contract's order, with its checksum. `known(rel, bytes, mtime)` gives the checksum of a
/// file ingested before at the same place, size and modification time, which is then not
/// read again (old deliveries left in the inbox cost nothing).
pub fn list(
    inbox: &Path,
    mapping: &Mapping,
    known: impl Fn(&str, u64, i64) -> Option<String>,
) -> Result<Vec<InboxFile>> {
    if !inbox.is_dir() {
        return Err(crate::input_err!("inbox {} does not exist or is not a folder", inbox.display()));
    }
    let stems: Vec<String> = crate::schema::TABLES
        .iter()
        .flat_map(|t| mapping.stems(t.name))
        .map(|s| s.to_ascii_lowercase())
        .collect();
    let mut deliveries = vec![inbox.to_path_buf()];
    let mut subs: Vec<PathBuf> = std::fs::read_dir(inbox)
        .map_err(|e| Error::io("reading the inbox", inbox, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir() && !in_transfer(p))
        .filter(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
            !stems.contains(&name)
        })
        .collect();
    subs.sort();
    deliveries.extend(subs);
    let mut out = Vec::new();
    for d in deliveries {
        for spec in crate::schema::TABLES {
            for f in discover(&d, spec.name, &mapping.stems(spec.name))? {
                if in_transfer(&f.path) {
                    continue;
                }
                let rel = crate::nightly::store::relative(inbox, &f.path);
                let mtime = mtime_of(&f.path);
                let size = std::fs::metadata(&f.path).map_err(|e| Error::io("reading", &f.path, e))?.len();
                let (sha256, bytes) = match known(&rel, size, mtime) {
                    Some(sha) => (sha, size),
                    None => sha256_file(&f.path)?,
                };
                out.push(InboxFile {
                    rel,
                    path: f.path,
                    table: spec.name,
                    format: f.format,
                    sha256,
                    bytes,
                    mtime,
                });
            }
        }
    }
    Ok(out)
}

/// Places the files in a fresh input folder `<dir>/<table>/<nnnn>-<name>` (hard links, or
/// copies across file systems), numbered in delivery order, for one ingest.
pub fn stage(files: &[InboxFile], dir: &Path) -> Result<()> {
    for (i, f) in files.iter().enumerate() {
        let tdir = dir.join(f.table);
        std::fs::create_dir_all(&tdir).map_err(|e| Error::io("creating", &tdir, e))?;
        let flat: String = f.rel.chars().map(|c| if c == '/' || c == '\\' { '~' } else { c }).collect();
        let dst = tdir.join(format!("{i:04}-{flat}"));
        if std::fs::hard_link(&f.path, &dst).is_err() {
            std::fs::copy(&f.path, &dst).map_err(|e| Error::io("copying", &f.path, e))?;
        }
    }
    Ok(())
}
