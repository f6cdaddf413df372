//! The history store's files: Parquet parts, the query view over the current parts, leftovers
//! of uncommitted nights.
//!
//! ```text
//! STORE/
//!   catalogue.json                          the committed state (see catalogue.rs)
//!   nightly.lock                            one run at a time (see lock.rs)
//!   history/<table>/year=YYYY/month=MM/part-<night>.parquet   setl, fee: every version, append-only
//!   history/<table>/part-<night>.parquet    psn, medins, pay
//!   current/<table>/.../part-<night>-r<later night>.parquet   a part without its superseded rows
//!   state/{findings,benefit_check,outreach,pending_fee}-<night>.parquet   current results
//!   quarantine/<night>/<table>.csv          rows rejected that night
//!   runs/night-<night>/                     each night's output folder
//!   work/                                   scratch of the running night
//! ```
//!
//! Parts carry the contract's columns and `_night`, the night the row entered the history.
//! Settlements are partitioned by the month of `enddate`, fee lines by their settlement's.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, AsArray, BooleanArray, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Date32Type, Field, Schema, SchemaRef};
use chrono::Datelike;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::prelude::{SessionConfig, SessionContext, col, lit};

use super::catalogue::{Catalogue, Part};
use crate::error::{Error, Result};
use crate::schema::TableSpec;

/// The column that records the night a row entered the history.
pub const NIGHT_COL: &str = "_night";

/// Tables partitioned by month (the others are small registries or payments).
pub fn partitioned(table: &str) -> bool {
    matches!(table, "setl" | "fee")
}

/// The schema of a history part: the contract's columns, then `_night`.
pub fn history_schema(spec: &TableSpec) -> SchemaRef {
    let mut fields: Vec<Field> = spec.arrow_schema().fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new(NIGHT_COL, DataType::Int64, false));
    Arc::new(Schema::new(fields))
}

/// Adds `_night` to a batch of the contract's schema.
pub fn with_night(spec: &TableSpec, b: &RecordBatch, night: u64) -> Result<RecordBatch> {
    let mut cols = b.columns().to_vec();
    cols.push(Arc::new(Int64Array::from(vec![night as i64; b.num_rows()])));
    RecordBatch::try_new(history_schema(spec), cols).map_err(|e| Error::arrow("adding the night column", e))
}

/// The contract's columns of a history batch (in the contract's schema, nullability
/// included).
pub fn contract_columns(spec: &TableSpec, b: &RecordBatch) -> Result<RecordBatch> {
    let schema = spec.arrow_schema();
    let mut cols = Vec::with_capacity(schema.fields().len());
    for f in schema.fields() {
        let c = b
            .column_by_name(f.name())
            .ok_or_else(|| crate::other_err!("history of {}: no column {}", spec.name, f.name()))?;
        let c = if c.data_type() == f.data_type() {
            c.clone()
        } else {
            arrow::compute::cast(c, f.data_type()).map_err(|e| Error::arrow("history column", e))?
        };
        cols.push(c);
    }
    RecordBatch::try_new(schema, cols).map_err(|e| Error::arrow(format!("history rows of {}", spec.name), e))
}

/// The `_night` of every row.
pub fn nights_of(b: &RecordBatch) -> Result<Vec<u64>> {
    let c =
        b.column_by_name(NIGHT_COL).ok_or_else(|| crate::other_err!("history rows without {NIGHT_COL}"))?;
    let c = arrow::compute::cast(c, &DataType::Int64).map_err(|e| Error::arrow("night column", e))?;
    let c = c.as_primitive::<arrow::datatypes::Int64Type>();
    Ok((0..c.len()).map(|i| c.value(i).max(0) as u64).collect())
}

/// A text column's values (`""` for null).
pub fn texts(b: &RecordBatch, name: &str) -> Result<Vec<String>> {
    let c = b.column_by_name(name).ok_or_else(|| crate::other_err!("no column {name}"))?;
    let c =
        arrow::compute::cast(c, &DataType::Utf8).map_err(|e| Error::arrow(format!("column {name}"), e))?;
    let c = c.as_string::<i32>();
    Ok((0..c.len()).map(|i| if c.is_null(i) { String::new() } else { c.value(i).to_string() }).collect())
}

/// (year, month) of a date column, per row (`None` for null).
pub fn year_months(b: &RecordBatch, name: &str) -> Result<Vec<Option<(i32, u32)>>> {
    let c = b.column_by_name(name).ok_or_else(|| crate::other_err!("no column {name}"))?;
    let c = c.as_primitive_opt::<Date32Type>().ok_or_else(|| crate::other_err!("{name} is not a date"))?;
    Ok((0..c.len())
        .map(|i| {
            if c.is_null(i) {
                None
            } else {
                crate::ingest::parse::from_days(c.value(i)).map(|d| (d.year(), d.month()))
            }
        })
        .collect())
}

/// The rows of `b` where `keep` is true.
pub fn filter_rows(b: &RecordBatch, keep: &[bool]) -> Result<RecordBatch> {
    let mask: BooleanArray = keep.iter().map(|k| Some(*k)).collect();
    arrow::compute::filter_record_batch(b, &mask).map_err(|e| Error::arrow("selecting rows", e))
}

/// One batch of all of `batches` (an empty batch of `schema` when there are none).
pub fn concat(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<RecordBatch> {
    let cast: Vec<RecordBatch> = batches
        .iter()
        .map(|b| RecordBatch::try_new(schema.clone(), b.columns().to_vec()))
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| Error::arrow("collecting rows", e))?;
    arrow::compute::concat_batches(schema, &cast).map_err(|e| Error::arrow("collecting rows", e))
}

/// Relative path of a history part.
pub fn history_path(table: &str, ym: Option<(i32, u32)>, night: u64) -> String {
    match ym {
        Some((y, m)) => format!("history/{table}/year={y:04}/month={m:02}/part-{night:06}.parquet"),
        None => format!("history/{table}/part-{night:06}.parquet"),
    }
}

/// Relative path of a copy of `part` without its superseded rows, made on `night`.
pub fn rewrite_path(table: &str, part: &Part, night: u64) -> String {
    match (part.year, part.month) {
        (Some(y), Some(m)) => {
            format!("current/{table}/year={y:04}/month={m:02}/part-{:06}-r{night:06}.parquet", part.night)
        }
        _ => format!("current/{table}/part-{:06}-r{night:06}.parquet", part.night),
    }
}

/// Writes a Parquet file under a temporary name and renames it into place.
pub fn write_file(path: &Path, schema: SchemaRef, batches: &[RecordBatch]) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io("creating", parent, e))?;
    }
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    crate::output::write_parquet(&tmp, schema, batches)?;
    if let Ok(f) = std::fs::File::open(&tmp) {
        let _ = f.sync_all();
    }
    std::fs::rename(&tmp, path).map_err(|e| Error::io("renaming into place", path, e))
}

/// Reads a whole file of the store.
pub fn read_file(store: &Path, rel: &str) -> Result<Vec<RecordBatch>> {
    crate::output::read_parquet(&store.join(rel))
}

/// Builds a folder of hard links `<dir>/<table>/<n>.parquet` to the given parts, which the
/// engine's session and [`view_session`] read as one table per folder. `setl` and `fee` get an
/// empty file when they have no part, so that they always exist.
pub fn build_view(store: &Path, parts: &BTreeMap<String, Vec<Part>>, dir: &Path) -> Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| Error::io("removing", dir, e))?;
    }
    for spec in crate::schema::TABLES {
        let list = parts.get(spec.name).map(Vec::as_slice).unwrap_or_default();
        if list.is_empty() && !spec.required {
            continue;
        }
        let tdir = dir.join(spec.name);
        std::fs::create_dir_all(&tdir).map_err(|e| Error::io("creating", &tdir, e))?;
        if list.is_empty() {
            crate::output::write_parquet(&tdir.join("empty.parquet"), history_schema(spec), &[])?;
        }
        for (i, p) in list.iter().enumerate() {
            let src = store.join(&p.path);
            let dst = tdir.join(format!("{i:06}.parquet"));
            if std::fs::hard_link(&src, &dst).is_err() {
                std::fs::copy(&src, &dst).map_err(|e| Error::io("copying", &src, e))?;
            }
        }
    }
    Ok(())
}

/// A DataFusion session over a view folder ([`build_view`]).
pub struct View {
    pub ctx: SessionContext,
    dir: PathBuf,
    lookups: std::sync::atomic::AtomicUsize,
}

/// Key lists longer than this are joined as a file-backed table rather than listed in the
/// query.
const MAX_IN_LIST: usize = 4096;

impl View {
    /// Whether the table has a part.
    pub fn has(&self, table: &str) -> bool {
        self.ctx.table_exist(table).unwrap_or(false)
    }
}

/// A DataFusion session over a view folder ([`build_view`]): every table present, with its
/// history schema, and filters evaluated while decoding Parquet (only the key columns of the
/// rows not asked for are decoded).
pub async fn view_session(dir: &Path) -> Result<View> {
    let ctx = session_over(dir).await?;
    Ok(View { ctx, dir: dir.to_path_buf(), lookups: std::sync::atomic::AtomicUsize::new(0) })
}

async fn session_over(dir: &Path) -> Result<SessionContext> {
    let config = SessionConfig::new()
        .with_target_partitions(std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))
        .set_bool("datafusion.execution.parquet.pushdown_filters", true)
        .set_bool("datafusion.execution.parquet.reorder_filters", true);
    let ctx = SessionContext::new_with_config(config);
    for spec in crate::schema::TABLES {
        let tdir = dir.join(spec.name);
        if !tdir.is_dir() {
            continue;
        }
        let url = format!("{}/", tdir.to_string_lossy().trim_end_matches('/'));
        let table_url =
            ListingTableUrl::parse(&url).map_err(|e| Error::df(format!("view of {}", spec.name), e))?;
        let options = ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
        let cfg = ListingTableConfig::new(table_url)
            .with_listing_options(options)
            .with_schema(history_schema(spec));
        let t = ListingTable::try_new(cfg).map_err(|e| Error::df(format!("view of {}", spec.name), e))?;
        ctx.register_table(spec.name, Arc::new(t))
            .map_err(|e| Error::df(format!("view of {}", spec.name), e))?;
    }
    Ok(ctx)
}

/// The current rows of `table` whose `column` is one of `keys` (none when the table is absent).
/// A short key list is a filter evaluated in the Parquet scan; a long one a file-backed table
/// joined to it.
pub async fn fetch(
    view: &View,
    table: &str,
    column: &str,
    keys: &BTreeSet<String>,
) -> Result<Vec<RecordBatch>> {
    if keys.is_empty() || !view.has(table) {
        return Ok(Vec::new());
    }
    let ctx = &view.ctx;
    let ctx_err = |e| Error::df(format!("looking up {table} by {column}"), e);
    if keys.len() <= MAX_IN_LIST {
        let list: Vec<_> = keys.iter().map(|k| lit(k.as_str())).collect();
        let df = ctx.table(table).await.map_err(ctx_err)?;
        let df = df.filter(col(column).in_list(list, false)).map_err(ctx_err)?;
        return df.collect().await.map_err(ctx_err);
    }
    let n = view.lookups.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("lookup_{n}");
    let kdir = view.dir.join("_lookup").join(&name);
    let schema = Arc::new(Schema::new(vec![Field::new("k", DataType::Utf8, false)]));
    let values = arrow::array::StringArray::from_iter_values(keys.iter());
    let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(values)])
        .map_err(|e| Error::arrow("key list", e))?;
    std::fs::create_dir_all(&kdir).map_err(|e| Error::io("creating", &kdir, e))?;
    crate::output::write_parquet(&kdir.join("keys.parquet"), schema.clone(), &[batch])?;
    let url = format!("{}/", kdir.to_string_lossy().trim_end_matches('/'));
    let table_url = ListingTableUrl::parse(&url).map_err(ctx_err)?;
    let options = ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let cfg = ListingTableConfig::new(table_url).with_listing_options(options).with_schema(schema);
    ctx.register_table(&name, Arc::new(ListingTable::try_new(cfg).map_err(ctx_err)?)).map_err(ctx_err)?;
    // The key list is the join's build side (left); the table is streamed past it.
    let sql = format!("SELECT t.* FROM {name} k JOIN {table} t ON t.{column} = k.k");
    let out = ctx.sql(&sql).await.map_err(ctx_err)?.collect().await.map_err(ctx_err);
    let _ = ctx.deregister_table(&name);
    out
}

/// Every current row of `table` (none when the table is absent).
pub async fn fetch_all(view: &View, table: &str) -> Result<Vec<RecordBatch>> {
    if !view.has(table) {
        return Ok(Vec::new());
    }
    let ctx_err = |e| Error::df(format!("reading {table}"), e);
    view.ctx.table(table).await.map_err(ctx_err)?.collect().await.map_err(ctx_err)
}

/// Removes what an uncommitted night left: files the catalogue does not reference under
/// `current/` and `state/`, history parts and quarantine folders of later nights, output
/// folders of later nights, and `work/`.
pub fn recover(store: &Path, cat: &Catalogue, runs_dir: &Path) -> Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    let referenced = cat.referenced();
    let work = store.join("work");
    if work.exists() {
        std::fs::remove_dir_all(&work).map_err(|e| Error::io("removing", &work, e))?;
    }
    for top in ["history", "current", "state"] {
        for f in crate::manifest::files_below(&store.join(top), &["parquet", "tmp"]) {
            let rel = relative(store, &f);
            let hidden = f.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'));
            let later = top == "history" && night_of_name(&f).is_none_or(|n| n > cat.night);
            let unreferenced = top != "history" && !referenced.contains(&rel);
            if hidden || later || unreferenced {
                std::fs::remove_file(&f).map_err(|e| Error::io("removing", &f, e))?;
                removed.push(f);
            }
        }
    }
    for dir in [store.join("quarantine"), runs_dir.to_path_buf()] {
        let Ok(rd) = std::fs::read_dir(&dir) else { continue };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let n = name.trim_start_matches("night-").parse::<u64>().ok();
            if n.is_some_and(|n| n > cat.night) {
                std::fs::remove_dir_all(e.path()).map_err(|err| Error::io("removing", e.path(), err))?;
                removed.push(e.path());
            }
        }
    }
    Ok(removed)
}

/// Removes files of `current/` and `state/` that the catalogue no longer references (after a
/// commit) and output folders beyond the `keep` latest.
pub fn collect_garbage(store: &Path, cat: &Catalogue, runs_dir: &Path, keep: usize) -> Result<()> {
    let referenced = cat.referenced();
    for top in ["current", "state"] {
        for f in crate::manifest::files_below(&store.join(top), &["parquet", "tmp"]) {
            if !referenced.contains(&relative(store, &f)) {
                std::fs::remove_file(&f).map_err(|e| Error::io("removing", &f, e))?;
            }
        }
    }
    if keep > 0
        && let Ok(rd) = std::fs::read_dir(runs_dir)
    {
        let mut nights: Vec<(u64, PathBuf)> = rd
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.strip_prefix("night-").and_then(|n| n.parse::<u64>().ok()).map(|n| (n, e.path()))
            })
            .collect();
        nights.sort();
        let drop = nights.len().saturating_sub(keep);
        for (_, p) in nights.into_iter().take(drop) {
            std::fs::remove_dir_all(&p).map_err(|e| Error::io("removing", &p, e))?;
        }
    }
    let work = store.join("work");
    if work.exists() {
        std::fs::remove_dir_all(&work).map_err(|e| Error::io("removing", &work, e))?;
    }
    Ok(())
}

/// `a/b/c` relative to the store, with `/` separators.
pub fn relative(store: &Path, f: &Path) -> String {
    let rel = f.strip_prefix(store).unwrap_or(f);
    rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect::<Vec<_>>().join("/")
}

/// The night in a part's file name `part-<night>[-r<night>].parquet`: the later one.
fn night_of_name(f: &Path) -> Option<u64> {
    let stem = f.file_stem()?.to_str()?;
    let rest = stem.strip_prefix("part-")?;
    rest.split("-r").filter_map(|n| n.parse::<u64>().ok()).max()
}

/// Distinct texts of a column over batches.
pub fn distinct(batches: &[RecordBatch], name: &str) -> Result<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    for b in batches {
        out.extend(texts(b, name)?.into_iter().filter(|s| !s.is_empty()));
    }
    Ok(out)
}

/// Keeps the rows whose `column` is (or, with `negate`, is not) in `keys`.
pub fn filter_in(
    batches: &[RecordBatch],
    column: &str,
    keys: &HashSet<String>,
    negate: bool,
) -> Result<Vec<RecordBatch>> {
    let mut out = Vec::new();
    for b in batches {
        let v = texts(b, column)?;
        let keep: Vec<bool> = v.iter().map(|k| keys.contains(k) != negate).collect();
        let f = filter_rows(b, &keep)?;
        if f.num_rows() > 0 {
            out.push(f);
        }
    }
    Ok(out)
}
