//! `manifest.json`: the proof of what a run read, accepted, quarantined, examined and found.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::ingest::TableReport;

/// The whole manifest.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Manifest {
    pub run_id: String,
    pub engine: EngineInfo,
    pub started_at: String,
    pub as_of: Option<String>,
    pub input: InputSection,
    pub unknown_codes: BTreeMap<String, BTreeMap<String, u64>>,
    pub coverage: Coverage,
    pub rules: Vec<RuleEntry>,
    pub findings: FindingCounts,
    pub benefit: serde_json::Value,
    pub deadlines: serde_json::Value,
    pub statistics: serde_json::Value,
    pub review_sample: serde_json::Value,
    pub undecided: Vec<serde_json::Value>,
    pub versions: BTreeMap<String, Version>,
    pub timings_seconds: BTreeMap<String, f64>,
    /// The query engine's settings: memory limit and pool, spill folder, parallelism.
    pub runtime: serde_json::Value,
    pub outputs: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct EngineInfo {
    pub name: String,
    pub version: String,
    pub datafusion: String,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct InputSection {
    pub folder: String,
    pub mapping: Option<String>,
    pub tables: Vec<TableReport>,
    /// Optional tables not supplied, with the checks that need them.
    pub missing_tables: Vec<MissingTable>,
    /// For every table: accepted + quarantined = read.
    pub balanced: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct MissingTable {
    pub table: String,
    pub checks_needing_it: Vec<String>,
}

/// The first-pass review (初审) must examine 100 % of accepted settlements and fee lines.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Coverage {
    pub settlements: CoverageLine,
    pub fee_lines: CoverageLine,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct CoverageLine {
    pub accepted: u64,
    /// Rows of the table the rules ran over.
    pub examined: u64,
    pub percent: f64,
    /// Rules that ran over this table.
    pub rules: Vec<String>,
}

impl CoverageLine {
    pub fn new(accepted: u64, examined: u64, rules: Vec<String>) -> Self {
        let percent = if accepted == 0 { 100.0 } else { examined as f64 * 100.0 / accepted as f64 };
        CoverageLine { accepted, examined, percent, rules }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RuleEntry {
    pub id: String,
    pub category: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub findings: usize,
    pub millis: u128,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct FindingCounts {
    pub total: usize,
    pub by_rule: BTreeMap<String, usize>,
    pub by_category: BTreeMap<String, usize>,
    pub amount_at_risk_by_category: BTreeMap<String, String>,
}

/// A versioned input of the engine: the files it was read from and their joint hash.
#[derive(Debug, Clone, Serialize)]
pub struct Version {
    pub sha256: String,
    pub files: Vec<String>,
}

/// The joint sha256 of files (names and contents), in the order given.
pub fn fingerprint(files: &[PathBuf]) -> Result<Version> {
    let mut h = Sha256::new();
    for f in files {
        let bytes = std::fs::read(f).map_err(|e| Error::io("reading", f, e))?;
        h.update(f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default().as_bytes());
        h.update([0u8]);
        h.update(&bytes);
    }
    let sha: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok(Version { sha256: sha, files: files.iter().map(|p| p.display().to_string()).collect() })
}

/// Every regular file below `dir` with one of the extensions, sorted.
pub fn files_below(dir: &Path, exts: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if let Ok(rd) = std::fs::read_dir(&d) {
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().and_then(|x| x.to_str()).is_some_and(|x| exts.contains(&x)) {
                    out.push(p);
                }
            }
        }
    }
    out.sort();
    out
}

impl Manifest {
    /// Writes the manifest as pretty JSON.
    pub fn write(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(|e| crate::other_err!("manifest: {e}"))?;
        std::fs::write(path, text).map_err(|e| Error::io("writing", path, e))
    }
}
