//! `STORE/catalogue.json`: the committed state of a history store. Written atomically (a
//! temporary file, synced, renamed over the old one) as the last step of a night: what it
//! does not reference does not exist, so a night killed before it commits leaves the store
//! as it was, and its leftovers are removed by the next run ([`super::store::recover`]).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The catalogue's file name inside the store.
pub const CATALOGUE_FILE: &str = "catalogue.json";
/// The format version written.
pub const FORMAT: u32 = 1;

/// The committed state of a store.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct Catalogue {
    pub format: u32,
    /// The last committed night (0: none yet).
    pub night: u64,
    /// Every input file ingested, by sha256.
    pub files: BTreeMap<String, FileEntry>,
    /// Every committed night, in order.
    pub nights: Vec<NightEntry>,
    /// The current version of every table: the parts whose rows are the latest version of
    /// their key (`history/` parts, or `current/` copies of them without superseded rows).
    pub parts: BTreeMap<String, Vec<Part>>,
    /// Settlements quarantined on any night: their person-years are incomplete.
    pub quarantined_settlements: Vec<QuarantinedSetl>,
    /// The current results (paths relative to the store).
    pub state: StateFiles,
}

/// One ingested input file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FileEntry {
    /// Where it was found (relative to the inbox).
    pub path: String,
    pub table: String,
    pub bytes: u64,
    /// Modification time when ingested (nanoseconds since 1970), so that the file is not read
    /// again on later nights while it stays in the inbox unchanged.
    pub mtime: i64,
    pub night: u64,
    pub read: u64,
    pub accepted: u64,
    pub quarantined: u64,
}

/// A Parquet file of the current version of a table.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Part {
    /// Relative to the store.
    pub path: String,
    /// The night whose history part this is (or was copied from).
    pub night: u64,
    pub year: Option<i32>,
    pub month: Option<u32>,
    pub rows: u64,
}

/// A quarantined settlement, for incomplete person-years and for fee lines that refer to it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct QuarantinedSetl {
    pub setl_id: Option<String>,
    pub psn_no: Option<String>,
    pub year: Option<i32>,
    pub night: u64,
}

/// The current results of the store.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct StateFiles {
    pub findings: Option<String>,
    pub benefit_check: Option<String>,
    pub outreach: Option<String>,
    /// Fee lines waiting for their settlement.
    pub pending_fee: Option<String>,
    pub pending_fee_rows: u64,
}

/// What a committed night did.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct NightEntry {
    pub night: u64,
    pub run_id: String,
    pub as_of: Option<String>,
    /// The output folder it published.
    pub out: String,
    /// sha256 of the files it ingested.
    pub files: Vec<String>,
    /// Rows per table that became a new current version.
    pub new_rows: BTreeMap<String, u64>,
    /// Rows per table identical to their current version (not stored again).
    pub unchanged_rows: BTreeMap<String, u64>,
    /// Current rows per table replaced by a newer version (kept in history).
    pub superseded_rows: BTreeMap<String, u64>,
    pub pending: PendingCounts,
    pub touched_persons: u64,
    pub audited_settlements: u64,
    pub committed_at: String,
}

/// The fee lines that wait for their settlement, through one night. Balance:
/// `before + arrived = resolved + replaced + quarantined + expired + after`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct PendingCounts {
    pub before: u64,
    /// Accepted lines of the night's files whose settlement is not in the store yet.
    pub arrived: u64,
    /// Lines whose settlement arrived: into history.
    pub resolved: u64,
    /// Waiting lines replaced by a newer version of the same `feedetl_sn`.
    pub replaced: u64,
    /// Lines whose settlement was quarantined.
    pub quarantined: u64,
    /// Lines that waited `max_pending_nights` in vain: quarantined.
    pub expired: u64,
    pub after: u64,
}

impl Catalogue {
    /// Reads the catalogue of `store`, or an empty one for a new store.
    pub fn load(store: &Path) -> Result<Self> {
        let path = store.join(CATALOGUE_FILE);
        if !path.exists() {
            return Ok(Catalogue { format: FORMAT, ..Default::default() });
        }
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io("reading", &path, e))?;
        let c: Catalogue = serde_json::from_str(&text)
            .map_err(|e| Error::config(&path, format!("not a readable catalogue: {e}")))?;
        if c.format != FORMAT {
            return Err(Error::config(&path, format!("catalogue format {} is not {FORMAT}", c.format)));
        }
        Ok(c)
    }

    /// Writes the catalogue atomically: temporary file, sync, rename, sync the folder.
    pub fn commit(&self, store: &Path) -> Result<()> {
        let path = store.join(CATALOGUE_FILE);
        let tmp = store.join(format!(".{CATALOGUE_FILE}.tmp"));
        let text = serde_json::to_string_pretty(self).map_err(|e| crate::other_err!("catalogue: {e}"))?;
        {
            let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io("creating", &tmp, e))?;
            f.write_all(text.as_bytes()).map_err(|e| Error::io("writing", &tmp, e))?;
            f.sync_all().map_err(|e| Error::io("writing", &tmp, e))?;
        }
        std::fs::rename(&tmp, &path).map_err(|e| Error::io("committing", &path, e))?;
        sync_dir(store);
        Ok(())
    }

    /// Every file of the store the catalogue references (relative paths).
    pub fn referenced(&self) -> std::collections::BTreeSet<String> {
        let mut s: std::collections::BTreeSet<String> =
            self.parts.values().flatten().map(|p| p.path.clone()).collect();
        let st = &self.state;
        for p in [&st.findings, &st.benefit_check, &st.outreach, &st.pending_fee].into_iter().flatten() {
            s.insert(p.clone());
        }
        s
    }
}

/// Syncs a folder so that a rename in it survives a power cut (best effort: not every
/// platform can open a folder).
pub fn sync_dir(dir: &Path) {
    if let Ok(f) = std::fs::File::open(dir) {
        let _ = f.sync_all();
    }
}
