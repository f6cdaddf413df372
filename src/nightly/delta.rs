//! A night's new rows against the current version of the store: new keys, unchanged
//! re-deliveries, superseded versions, fee lines waiting for their settlement, and the parts
//! they are written to.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;

use arrow::array::RecordBatch;
use arrow::row::{RowConverter, SortField};

use super::catalogue::Part;
use super::store::{self, NIGHT_COL};
use crate::error::{Error, Result};
use crate::schema::TableSpec;

/// Rows of one table set against the store's current version.
#[derive(Default)]
pub struct Reconciled {
    /// Rows that become the current version (new keys, or changed): history schema.
    pub fresh: Vec<RecordBatch>,
    /// Rows identical to their current version: not stored again.
    pub unchanged: u64,
    /// The current rows the fresh ones replace (history schema).
    pub superseded: Vec<RecordBatch>,
}

impl Reconciled {
    pub fn fresh_rows(&self) -> u64 {
        self.fresh.iter().map(|b| b.num_rows() as u64).sum()
    }
    pub fn superseded_rows(&self) -> u64 {
        self.superseded.iter().map(|b| b.num_rows() as u64).sum()
    }
}

fn key_of(spec: &TableSpec) -> Result<&'static str> {
    spec.key.ok_or_else(|| crate::other_err!("table {} has no key", spec.name))
}

/// The contract columns of every row, as comparable bytes, with the row's key.
fn encoded(spec: &TableSpec, batches: &[RecordBatch]) -> Result<Vec<(String, Vec<u8>)>> {
    let schema = spec.arrow_schema();
    let fields = schema.fields().iter().map(|f| SortField::new(f.data_type().clone())).collect();
    let conv = RowConverter::new(fields).map_err(|e| Error::arrow("comparing rows", e))?;
    let key = key_of(spec)?;
    let mut out = Vec::new();
    for b in batches {
        let c = store::contract_columns(spec, b)?;
        let rows = conv.convert_columns(c.columns()).map_err(|e| Error::arrow("comparing rows", e))?;
        for (k, i) in store::texts(b, key)?.into_iter().zip(0..) {
            out.push((k, rows.row(i).as_ref().to_vec()));
        }
    }
    Ok(out)
}

/// Sets `fresh` (history-schema batches with unique keys) against the current rows of the
/// same keys in `old` (the committed store).
pub async fn reconcile(old: &store::View, spec: &TableSpec, fresh: Vec<RecordBatch>) -> Result<Reconciled> {
    let key = key_of(spec)?;
    let keys = store::distinct(&fresh, key)?;
    let existing = store::fetch(old, spec.name, key, &keys).await?;
    if existing.iter().all(|b| b.num_rows() == 0) {
        return Ok(Reconciled { fresh, ..Default::default() });
    }
    let current: HashMap<String, Vec<u8>> = encoded(spec, &existing)?.into_iter().collect();
    let mut same: HashSet<String> = HashSet::new();
    for (k, bytes) in encoded(spec, &fresh)? {
        if current.get(&k).is_some_and(|c| *c == bytes) {
            same.insert(k);
        }
    }
    let unchanged = same.len() as u64;
    let fresh = store::filter_in(&fresh, key, &same, true)?;
    let replaced: HashSet<String> = store::distinct(&fresh, key)?.into_iter().collect();
    let superseded = store::filter_in(&existing, key, &replaced, false)?;
    Ok(Reconciled { fresh, unchanged, superseded })
}

/// Keeps one row per key: the one with the highest `_night` (the latest arrival), the first
/// of equal ones. Returns the kept rows and how many were dropped.
pub fn latest_per_key(spec: &TableSpec, batches: &[RecordBatch]) -> Result<(Vec<RecordBatch>, u64)> {
    let key = key_of(spec)?;
    let mut best: HashMap<String, (u64, usize, usize)> = HashMap::new();
    for (bi, b) in batches.iter().enumerate() {
        for (ri, (k, n)) in store::texts(b, key)?.into_iter().zip(store::nights_of(b)?).enumerate() {
            match best.get(&k) {
                Some((bn, _, _)) if *bn >= n => {}
                _ => {
                    best.insert(k, (n, bi, ri));
                }
            }
        }
    }
    let mut keep: Vec<Vec<bool>> = batches.iter().map(|b| vec![false; b.num_rows()]).collect();
    for (_, bi, ri) in best.values() {
        keep[*bi][*ri] = true;
    }
    let mut out = Vec::new();
    let mut dropped = 0u64;
    for (b, k) in batches.iter().zip(&keep) {
        dropped += k.iter().filter(|x| !**x).count() as u64;
        let f = store::filter_rows(b, k)?;
        if f.num_rows() > 0 {
            out.push(f);
        }
    }
    Ok((out, dropped))
}

/// Sets the `_night` of every row.
pub fn restamp(spec: &TableSpec, batches: &[RecordBatch], night: u64) -> Result<Vec<RecordBatch>> {
    batches.iter().map(|b| store::with_night(spec, &store::contract_columns(spec, b)?, night)).collect()
}

/// Writes a night's fresh rows as history parts, by month where the table is partitioned
/// (`month_of` gives each row's), and returns the parts.
pub fn write_parts(
    store_dir: &Path,
    spec: &TableSpec,
    fresh: &[RecordBatch],
    night: u64,
    month_of: impl Fn(&RecordBatch) -> Result<Vec<Option<(i32, u32)>>>,
) -> Result<Vec<Part>> {
    if fresh.iter().all(|b| b.num_rows() == 0) {
        return Ok(Vec::new());
    }
    let schema = store::history_schema(spec);
    let mut groups: BTreeMap<Option<(i32, u32)>, Vec<RecordBatch>> = BTreeMap::new();
    for b in fresh {
        if store::partitioned(spec.name) {
            let months = month_of(b)?;
            let distinct: BTreeSet<Option<(i32, u32)>> = months.iter().copied().collect();
            for m in distinct {
                let keep: Vec<bool> = months.iter().map(|x| *x == m).collect();
                groups.entry(m).or_default().push(store::filter_rows(b, &keep)?);
            }
        } else {
            groups.entry(None).or_default().push(b.clone());
        }
    }
    let mut parts = Vec::new();
    for (ym, batches) in groups {
        // A partitioned row without a month (cannot happen for accepted rows) goes to 0000-00.
        let ym = if store::partitioned(spec.name) { Some(ym.unwrap_or((0, 0))) } else { None };
        let rel = store::history_path(spec.name, ym, night);
        store::write_file(&store_dir.join(&rel), schema.clone(), &batches)?;
        parts.push(Part {
            path: rel,
            night,
            year: ym.map(|x| x.0),
            month: ym.map(|x| x.1),
            rows: batches.iter().map(|b| b.num_rows() as u64).sum(),
        });
    }
    Ok(parts)
}

/// Removes superseded rows from the current parts that hold them: each such part is replaced
/// by a copy without them (`current/`), or dropped when nothing is left. The history parts are
/// never touched.
pub fn drop_superseded(
    store_dir: &Path,
    spec: &TableSpec,
    parts: &mut Vec<Part>,
    superseded: &[RecordBatch],
    night: u64,
) -> Result<u64> {
    if superseded.iter().all(|b| b.num_rows() == 0) {
        return Ok(0);
    }
    let key = key_of(spec)?;
    let mut by_night: BTreeMap<u64, HashSet<String>> = BTreeMap::new();
    for b in superseded {
        for (k, n) in store::texts(b, key)?.into_iter().zip(store::nights_of(b)?) {
            by_night.entry(n).or_default().insert(k);
        }
    }
    let schema = store::history_schema(spec);
    let mut removed = 0u64;
    let mut next = Vec::with_capacity(parts.len());
    for p in parts.drain(..) {
        let Some(keys) = by_night.get(&p.night) else {
            next.push(p);
            continue;
        };
        let rows = store::read_file(store_dir, &p.path)?;
        let kept = store::filter_in(&rows, key, keys, true)?;
        let n: u64 = kept.iter().map(|b| b.num_rows() as u64).sum();
        if n == p.rows {
            next.push(p);
            continue;
        }
        removed += p.rows - n;
        if n > 0 {
            let rel = store::rewrite_path(spec.name, &p, night);
            let kept: Vec<RecordBatch> = kept
                .iter()
                .map(|b| RecordBatch::try_new(schema.clone(), b.columns().to_vec()))
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| Error::arrow("rewriting a part", e))?;
            store::write_file(&store_dir.join(&rel), schema.clone(), &kept)?;
            next.push(Part { path: rel, rows: n, ..p });
        }
    }
    next.sort();
    *parts = next;
    Ok(removed)
}

/// Checks that a night column exists (history batches).
pub fn has_night(b: &RecordBatch) -> bool {
    b.column_by_name(NIGHT_COL).is_some()
}
