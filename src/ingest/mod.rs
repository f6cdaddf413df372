//! Ingest: read an input folder exactly as `SCHEMA.md` defines it, validate every row, keep
//! what is good as Parquet and put what is bad in quarantine with its reason. Nothing is
//! dropped silently: for every table, accepted + quarantined = rows read.
//!
//! The work is streamed: a reader thread decodes the files into chunks, chunks are parsed in
//! parallel (rayon), keys and references are checked in file order (so the first occurrence
//! of a key always wins), and accepted rows are written as they come. Memory stays bounded by
//! a few chunks plus the key sets.

pub mod columns;
pub mod keys;
pub mod mapping;
pub mod parse;
pub mod quality;
pub mod quarantine;
pub mod source;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::sync_channel;
use std::time::Instant;

use arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use arrow::datatypes::Date32Type;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use rayon::prelude::*;
use serde::Serialize;

use crate::codes::CodeTables;
use crate::error::{Error, Result};
use crate::findings::Finding;
use crate::schema::{Kind, TABLES, TableSpec};
use columns::{ColumnMap, Parsed, Reject};
use keys::KeySet;
pub use mapping::Mapping;
pub use source::{Encoding, EncodingChoice, Format};
use source::{RawChunk, SourceFile};

/// Called with (table, rows read so far) as ingest goes on.
pub type Progress = Arc<dyn Fn(&str, u64) + Send + Sync>;

/// How to ingest.
#[derive(Clone)]
pub struct IngestOptions {
    pub encoding: EncodingChoice,
    pub mapping: Mapping,
    pub codes: CodeTables,
    /// Rows per chunk.
    pub chunk_rows: usize,
    pub progress: Option<Progress>,
    /// Accept fee lines whose settlement is not in this input (neither accepted nor
    /// quarantined here) instead of quarantining them: the caller resolves them against data
    /// it already holds (the nightly audit's history, where such lines wait as pending).
    pub defer_unknown_settlements: bool,
    /// Allow the required tables to be absent (a nightly delivery may bring only some tables).
    pub partial: bool,
}

impl IngestOptions {
    pub fn new(codes: CodeTables) -> Self {
        IngestOptions {
            encoding: EncodingChoice::Auto,
            mapping: Mapping::default(),
            codes,
            chunk_rows: 64 * 1024,
            progress: None,
            defer_unknown_settlements: false,
            partial: false,
        }
    }
}

/// One input file as the manifest records it.
#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    pub path: String,
    pub format: Format,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoding: Option<Encoding>,
    pub sha256: String,
    pub bytes: u64,
    pub rows: u64,
    /// Of `rows`: accepted and quarantined (accepted + quarantined = rows).
    pub accepted: u64,
    pub quarantined: u64,
}

/// What happened to one table.
#[derive(Debug, Clone, Serialize)]
pub struct TableReport {
    pub table: String,
    pub present: bool,
    pub files: Vec<FileReport>,
    pub read: u64,
    pub accepted: u64,
    pub quarantined: u64,
    /// Rejected rows per reason class (a row may have several reasons; counted under its first).
    pub reject_reasons: BTreeMap<String, u64>,
    pub seconds: f64,
}

/// A quarantined settlement, for marking its person-year incomplete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantinedSettlement {
    pub setl_id: Option<String>,
    pub psn_no: Option<String>,
    /// Year of `enddate`, if it parsed.
    pub year: Option<i32>,
}

/// The result of ingesting an input folder.
#[derive(Debug, Default)]
pub struct IngestReport {
    pub tables: Vec<TableReport>,
    /// `table.field` → code value → rows accepted with that unknown value.
    pub unknown_codes: BTreeMap<String, BTreeMap<String, u64>>,
    /// Data-quality findings on accepted rows.
    pub findings: Vec<Finding>,
    pub quarantined_settlements: Vec<QuarantinedSettlement>,
}

impl IngestReport {
    pub fn table(&self, name: &str) -> Option<&TableReport> {
        self.tables.iter().find(|t| t.table == name)
    }
    /// Whether an input table was supplied.
    pub fn present(&self, name: &str) -> bool {
        self.table(name).is_some_and(|t| t.present)
    }
}

/// Reads every table of `input`, writes accepted rows to `data_out/<table>.parquet` and
/// rejected rows to `quarantine_out/<table>.csv`.
pub fn ingest(
    input: &Path,
    data_out: &Path,
    quarantine_out: &Path,
    opts: &IngestOptions,
) -> Result<IngestReport> {
    if !input.is_dir() {
        return Err(crate::input_err!("input folder {} does not exist or is not a folder", input.display()));
    }
    std::fs::create_dir_all(data_out).map_err(|e| Error::io("creating", data_out, e))?;
    std::fs::create_dir_all(quarantine_out).map_err(|e| Error::io("creating", quarantine_out, e))?;
    // Find every table first, so that a missing required table or column is reported before
    // any work is done.
    let mut plans = Vec::new();
    for spec in TABLES {
        let files = source::discover(input, spec.name, &opts.mapping.stems(spec.name))?;
        if files.is_empty() && spec.required && !opts.partial {
            return Err(crate::input_err!(
                "{}: required table `{}` ({}) is missing: expected {}.csv, {}.parquet or a folder {}/",
                input.display(),
                spec.name,
                spec.label,
                spec.name,
                spec.name,
                spec.name
            ));
        }
        let mut prepared = Vec::new();
        for f in files {
            prepared.push(prepare_file(spec, f, opts)?);
        }
        plans.push((spec, prepared));
    }
    let mut state = State { defer_unknown_settlements: opts.defer_unknown_settlements, ..State::default() };
    let mut report = IngestReport::default();
    for (spec, files) in plans {
        let t = ingest_table(spec, &files, data_out, quarantine_out, opts, &mut state, &mut report)?;
        report.tables.push(t);
    }
    report.findings.extend(quality::fee_line_findings(std::mem::take(&mut state.line_mismatches)));
    report.quarantined_settlements = std::mem::take(&mut state.quarantined);
    Ok(report)
}

/// A file with its encoding and column map decided.
struct PreparedFile {
    file: SourceFile,
    encoding: Option<Encoding>,
    header: Vec<String>,
    map: ColumnMap,
}

fn prepare_file(spec: &TableSpec, file: SourceFile, opts: &IngestOptions) -> Result<PreparedFile> {
    let (encoding, header) = match file.format {
        Format::Csv => {
            let enc = match opts.encoding {
                EncodingChoice::Force(e) => e,
                EncodingChoice::Auto => source::detect_encoding(&file.path)?,
            };
            (Some(enc), source::csv_header(&file.path, enc)?)
        }
        Format::Parquet => {
            let f = File::open(&file.path).map_err(|e| Error::io("opening", &file.path, e))?;
            let b =
                parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f).map_err(|e| {
                    crate::input_err!("{}: not a readable Parquet file: {e}", file.path.display())
                })?;
            (None, b.schema().fields().iter().map(|f| f.name().clone()).collect())
        }
    };
    let mapped: Vec<String> = header.iter().map(|h| opts.mapping.column(spec.name, h)).collect();
    let mut source = vec![None; spec.fields.len()];
    for (j, name) in mapped.iter().enumerate() {
        if let Some(i) = spec.index_of(name) {
            if source[i].is_some() {
                return Err(crate::input_err!(
                    "{}: column `{name}` appears more than once in the header",
                    file.path.display()
                ));
            }
            source[i] = Some(j);
        }
    }
    let missing: Vec<String> = spec
        .fields
        .iter()
        .zip(&source)
        .filter(|(f, s)| f.column_required() && s.is_none())
        .map(|(f, _)| format!("{}（{}）", f.name, f.label))
        .collect();
    if !missing.is_empty() {
        return Err(crate::input_err!(
            "{}: table `{}` lacks required column{} {}",
            file.path.display(),
            spec.name,
            if missing.len() > 1 { "s" } else { "" },
            missing.join(", ")
        ));
    }
    let recode = spec.fields.iter().map(|f| opts.mapping.recode(spec.name, f.name).cloned()).collect();
    let map = ColumnMap { source, width: header.len(), recode };
    Ok(PreparedFile { file, encoding, header, map })
}

/// What later tables need to know of earlier ones.
#[derive(Default)]
struct State {
    /// Keys of every table seen so far (for `setl`: the accepted settlements).
    keys: std::collections::HashMap<&'static str, KeySet>,
    setl_quarantined: KeySet,
    quarantined: Vec<QuarantinedSettlement>,
    line_mismatches: Vec<quality::LineMismatch>,
    defer_unknown_settlements: bool,
}

/// A parsed chunk after keys and references were checked.
struct Judged {
    parsed: Parsed,
    accepted: Option<RecordBatch>,
    quarantine: Vec<(Vec<String>, String, u64)>,
    first_classes: Vec<&'static str>,
    unknown: BTreeMap<String, BTreeMap<String, u64>>,
    findings: Vec<Finding>,
    mismatches: Vec<quality::LineMismatch>,
}

fn ingest_table(
    spec: &'static TableSpec,
    files: &[PreparedFile],
    data_out: &Path,
    quarantine_out: &Path,
    opts: &IngestOptions,
    state: &mut State,
    report: &mut IngestReport,
) -> Result<TableReport> {
    let started = Instant::now();
    let mut t = TableReport {
        table: spec.name.to_string(),
        present: !files.is_empty(),
        files: Vec::new(),
        read: 0,
        accepted: 0,
        quarantined: 0,
        reject_reasons: BTreeMap::new(),
        seconds: 0.0,
    };
    if files.is_empty() {
        return Ok(t);
    }
    let out_path = data_out.join(format!("{}.parquet", spec.name));
    let out_file = File::create(&out_path).map_err(|e| Error::io("creating", &out_path, e))?;
    let mut props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(1024 * 1024));
    if let Some(key) = spec.key {
        // Every value of a key is distinct: a dictionary would only be built to be dropped.
        props = props.set_column_dictionary_enabled(parquet::schema::types::ColumnPath::from(key), false);
    }
    let props = props.build();
    let mut writer = ArrowWriter::try_new(out_file, spec.arrow_schema(), Some(props))
        .map_err(|e| Error::arrow(format!("writing {}", out_path.display()), e))?;
    let mut qw = quarantine::QuarantineWriter::new(quarantine_out.join(format!("{}.csv", spec.name)));
    qw.set_header(&files[0].header);

    let group = (rayon::current_num_threads() * 2).max(2);
    let (tx, rx) = sync_channel::<(usize, RawChunk)>(group);
    let chunk_rows = opts.chunk_rows.max(1);
    // Accepted rows are encoded and written on a thread of their own, while the next chunks
    // are parsed.
    let (wtx, wrx) = sync_channel::<RecordBatch>(group);
    let infos = std::thread::scope(|scope| -> Result<Vec<source::FileInfo>> {
        let out_path = &out_path;
        let write_thread = scope.spawn(move || -> Result<()> {
            for b in wrx {
                writer.write(&b).map_err(|e| Error::arrow(format!("writing {}", out_path.display()), e))?;
            }
            writer.close().map_err(|e| Error::arrow(format!("writing {}", out_path.display()), e))?;
            Ok(())
        });
        let reader = scope.spawn(move || -> Result<Vec<source::FileInfo>> {
            let mut infos = Vec::new();
            for (i, pf) in files.iter().enumerate() {
                let mut send = |c: RawChunk| tx.send((i, c)).is_ok();
                let info = match pf.file.format {
                    Format::Csv => source::stream_csv(
                        &pf.file.path,
                        pf.encoding.unwrap_or(Encoding::Utf8),
                        chunk_rows,
                        &mut send,
                    )?,
                    Format::Parquet => source::stream_parquet(&pf.file.path, chunk_rows, &mut send)?,
                };
                infos.push(info);
            }
            Ok(infos)
        });
        let mut rows_per_file = vec![0u64; files.len()];
        let mut accepted_per_file = vec![0u64; files.len()];
        let consumed = (|| -> Result<()> {
            let mut pending: Vec<(usize, RawChunk)> = Vec::with_capacity(group);
            let mut done = false;
            while !done {
                pending.clear();
                while pending.len() < group {
                    match rx.recv() {
                        Ok(c) => pending.push(c),
                        Err(_) => {
                            done = true;
                            break;
                        }
                    }
                }
                if pending.is_empty() {
                    break;
                }
                let parsed: Vec<Parsed> = std::mem::take(&mut pending)
                    .into_par_iter()
                    .map(|(i, raw)| columns::parse_chunk(spec, &files[i].map, i, raw))
                    .collect::<Result<_>>()?;
                // Keys and references in file order.
                let mut judged: Vec<Judged> = parsed.into_iter().map(|p| judge(spec, p, state)).collect();
                judged.par_iter_mut().try_for_each(|j| finalize(spec, j, &opts.codes))?;
                for mut j in judged {
                    let n = j.parsed.batch.num_rows() as u64;
                    rows_per_file[j.parsed.file] += n;
                    t.read += n;
                    if let Some(b) = j.accepted.take() {
                        t.accepted += b.num_rows() as u64;
                        accepted_per_file[j.parsed.file] += b.num_rows() as u64;
                        if wtx.send(b).is_err() {
                            // The writer stopped: its error is reported below.
                            return Ok(());
                        }
                    }
                    let src = &files[j.parsed.file].file.path;
                    for ((cells, reason, line), class) in j.quarantine.iter().zip(&j.first_classes) {
                        qw.write(cells, reason, src, *line)?;
                        *t.reject_reasons.entry((*class).to_string()).or_default() += 1;
                    }
                    t.quarantined += j.quarantine.len() as u64;
                    for (k, m) in j.unknown {
                        let e = report.unknown_codes.entry(k).or_default();
                        for (code, c) in m {
                            *e.entry(code).or_default() += c;
                        }
                    }
                    report.findings.extend(j.findings);
                    state.line_mismatches.extend(j.mismatches);
                }
                if let Some(p) = &opts.progress {
                    p(spec.name, t.read);
                }
            }
            Ok(())
        })();
        // Stop the reader before reporting an error, so that the scope can end; let the writer
        // finish.
        drop(rx);
        drop(wtx);
        let infos =
            reader.join().map_err(|_| crate::other_err!("the reader of table `{}` panicked", spec.name))?;
        let written = write_thread
            .join()
            .map_err(|_| crate::other_err!("the writer of table `{}` panicked", spec.name))?;
        consumed?;
        written?;
        let infos = infos?;
        for (i, (pf, info)) in files.iter().zip(&infos).enumerate() {
            t.files.push(FileReport {
                path: pf.file.path.display().to_string(),
                format: pf.file.format,
                encoding: info.encoding,
                sha256: info.sha256.clone(),
                bytes: info.bytes,
                rows: rows_per_file[i],
                accepted: accepted_per_file[i],
                quarantined: rows_per_file[i] - accepted_per_file[i],
            });
        }
        Ok(infos)
    })?;
    debug_assert_eq!(infos.len(), files.len());
    qw.finish()?;
    if t.accepted + t.quarantined != t.read {
        return Err(crate::other_err!(
            "table `{}`: {} accepted + {} quarantined ≠ {} read; this is a bug",
            spec.name,
            t.accepted,
            t.quarantined,
            t.read
        ));
    }
    t.seconds = started.elapsed().as_secs_f64();
    Ok(t)
}

/// Checks keys and references of a parsed chunk, in order (sequential).
fn judge(spec: &TableSpec, mut p: Parsed, state: &mut State) -> Judged {
    let n = p.batch.num_rows();
    if let Some(key) = spec.key {
        let col = p.batch.column_by_name(key).expect("key column").as_string::<i32>();
        let label = spec.field(key).map_or("", |f| f.label);
        let hashes: Vec<Option<u128>> = (0..n)
            .into_par_iter()
            .map(|r| (p.rejects[r].is_empty() && !col.is_null(r)).then(|| keys::hash(col.value(r))))
            .collect();
        let fresh = state.keys.entry(spec.name).or_default().insert_all(&hashes);
        for (r, _) in fresh.iter().enumerate().filter(|(_, new)| !**new) {
            p.rejects[r].push(Reject {
                class: "duplicate_key",
                message: format!("{key}（{label}）重复：{}，已保留首次出现的行", col.value(r)),
            });
        }
    }
    if spec.name == "fee" {
        let col = p.batch.column_by_name("setl_id").expect("contract column").as_string::<i32>();
        let empty = KeySet::default();
        let accepted = state.keys.get("setl").unwrap_or(&empty);
        let quarantined = &state.setl_quarantined;
        let defer = state.defer_unknown_settlements;
        // Lookups only (the settlements are all known by now): in parallel. For each row whose
        // settlement is unknown: whether it was quarantined. Unknown (not quarantined) settlements
        // are left for a later delivery when the caller defers them (nightly).
        let unknown: Vec<Option<bool>> = (0..n)
            .into_par_iter()
            .map(|r| {
                if !p.rejects[r].is_empty() || col.is_null(r) {
                    return None;
                }
                let h = keys::hash(col.value(r));
                if accepted.contains(h) {
                    return None;
                }
                let q = quarantined.contains(h);
                (q || !defer).then_some(q)
            })
            .collect();
        for (r, u) in unknown.into_iter().enumerate() {
            if let Some(quarantined) = u {
                p.rejects[r].push(Reject {
                    class: "unknown_settlement",
                    message: if quarantined {
                        format!("setl_id（结算ID）{} 所属结算已被隔离", col.value(r))
                    } else {
                        format!("setl_id（结算ID）{} 在结算信息中不存在", col.value(r))
                    },
                });
            }
        }
    }
    if spec.name == "setl" {
        let ids = p.batch.column_by_name("setl_id").expect("contract column").as_string::<i32>();
        let psn = p.batch.column_by_name("psn_no").expect("contract column").as_string::<i32>();
        let end = p.batch.column_by_name("enddate").expect("contract column").as_primitive::<Date32Type>();
        for r in 0..n {
            if !p.rejects[r].is_empty() {
                if !ids.is_null(r) {
                    state.setl_quarantined.insert(keys::hash(ids.value(r)));
                }
                state.quarantined.push(QuarantinedSettlement {
                    setl_id: (!ids.is_null(r)).then(|| ids.value(r).to_string()),
                    psn_no: (!psn.is_null(r)).then(|| psn.value(r).to_string()),
                    year: (!end.is_null(r)).then(|| parse::from_days(end.value(r))).flatten().map(|d| {
                        use chrono::Datelike;
                        d.year()
                    }),
                });
            }
        }
    }
    Judged {
        parsed: p,
        accepted: None,
        quarantine: Vec::new(),
        first_classes: Vec::new(),
        unknown: BTreeMap::new(),
        findings: Vec::new(),
        mismatches: Vec::new(),
    }
}

/// Splits a judged chunk into accepted and quarantined rows, counts unknown codes and runs
/// the row-level data-quality checks on what is accepted (parallel).
fn finalize(spec: &TableSpec, j: &mut Judged, codes: &CodeTables) -> Result<()> {
    let p = &j.parsed;
    let n = p.batch.num_rows();
    let keep: BooleanArray = (0..n).map(|r| Some(p.rejects[r].is_empty())).collect();
    for r in 0..n {
        if let Some(first) = p.rejects[r].first() {
            let reason = p.rejects[r].iter().map(|x| x.message.as_str()).collect::<Vec<_>>().join("；");
            j.quarantine.push((columns::raw_row(&p.raw, r), reason, p.lines[r]));
            j.first_classes.push(first.class);
        }
    }
    let filtered = arrow::compute::filter_record_batch(&p.batch, &keep)
        .map_err(|e| Error::arrow(format!("filtering table `{}`", spec.name), e))?;
    let accepted = RecordBatch::try_new(spec.arrow_schema(), filtered.columns().to_vec())
        .map_err(|e| Error::arrow(format!("table `{}`: accepted rows", spec.name), e))?;
    for f in spec.fields.iter().filter(|f| f.kind == Kind::Code && codes.has_field(f.name)) {
        let col = accepted.column_by_name(f.name).expect("contract column").as_string::<i32>();
        // A code column has few distinct values: look each up once per chunk.
        let mut known: std::collections::HashMap<&str, bool, datafusion::common::hash_utils::RandomState> =
            Default::default();
        for v in col.iter().flatten() {
            if !*known.entry(v).or_insert_with(|| codes.is_known(f.name, v)) {
                *j.unknown
                    .entry(format!("{}.{}", spec.name, f.name))
                    .or_default()
                    .entry(v.to_string())
                    .or_default() += 1;
            }
        }
    }
    match spec.name {
        "setl" => j.findings = quality::check_setl(&accepted),
        "fee" => j.mismatches = quality::check_fee(&accepted),
        _ => {}
    }
    j.accepted = Some(accepted);
    Ok(())
}

/// Where the accepted rows of a table are written.
pub fn table_path(data_dir: &Path, table: &str) -> PathBuf {
    data_dir.join(format!("{table}.parquet"))
}
