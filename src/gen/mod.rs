//! Synthetic settlement data with labelled anomalies (`medaudit gen`).
//!
//! Real settlement data never leaves the insurer, so the project makes its own: insured
//! residents of Shangqiu (`390`) and employees of Luohe (`310`), their admissions, outpatient
//! and pharmacy care over 2024–2026 at facilities of levels 1–3 and out of area, with fee
//! lines from the national item and drug codes, basic-insurance fields and the
//! critical-illness / large-expense payments as POLICY.md computes them, and payment records.
//! Into this it injects anomalies of every SCHEMA category, negative controls that a careless
//! check would flag, and malformed rows for quarantine, and writes the answer key beside the
//! input folder:
//!
//! ```text
//! OUT/input/   setl, fee, psn, medins, pay  (.csv or .parquet; large tables as <table>/part-*)
//! OUT/labels/  labels.csv, summary.json     (format: datasets/gen/README.md)
//! ```
//!
//! Output is a function of the seed and the settlement count only: chunks of persons draw
//! from their own random streams (seed, chunk) and are written in chunk order, whatever the
//! number of threads. [`score`] compares an audit run's findings with the labels.
//!
//! ```no_run
//! use medaudit::synth::{GenConfig, generate};
//! let cfg = GenConfig::new("/tmp/demo".into(), 20_000, 7);
//! let summary = generate(&cfg)?;
//! println!("{} settlements, {} fee lines", summary.settlements, summary.fee_lines);
//! # Ok::<(), medaudit::Error>(())
//! ```

mod anomalies;
mod assets;
mod benefit;
mod cal;
mod chunk;
mod clinical;
mod ctx;
mod labels;
mod model;
mod people;
mod rng;
mod score;
mod write;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;
use rayon::prelude::*;

use crate::error::{Error, Result};
use anomalies::Task;
use cal::{Calendar, DateText, ymd};
use chunk::Gen;
use model::{Label, Role};
use write::{ArrowSink, CsvSink};

pub use labels::{LabelRow, Summary, read as read_labels};
pub use model::Role as LabelRole;
pub use score::{ControlRow, FpRow, RecallRow, ScoreTable, score};

/// Output format of the input tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutFormat {
    Csv,
    Parquet,
}

/// Text encoding of CSV output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutEncoding {
    Utf8,
    Gb18030,
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenConfig {
    /// Output folder: `input/` and `labels/` are written inside it.
    pub out: PathBuf,
    /// Number of settlements (exact, unless it is too small for one instance of every
    /// anomaly kind, about 400).
    pub settlements: u64,
    pub seed: u64,
    pub format: OutFormat,
    pub encoding: OutEncoding,
    /// Share of settlements given an anomaly (about 0.6 × as many go to negative controls).
    pub anomaly_rate: f64,
    /// Add malformed rows for quarantine.
    pub malformed_rows: bool,
}

impl GenConfig {
    /// Defaults: CSV, UTF-8, anomaly rate 0.03, malformed rows.
    pub fn new(out: PathBuf, settlements: u64, seed: u64) -> Self {
        GenConfig {
            out,
            settlements,
            seed,
            format: OutFormat::Csv,
            encoding: OutEncoding::Utf8,
            anomaly_rate: 0.03,
            malformed_rows: true,
        }
    }
}

/// What was generated.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GenSummary {
    pub settlements: u64,
    pub fee_lines: u64,
    pub persons: u64,
    pub facilities: u64,
    pub labels: u64,
    pub seconds: f64,
}

/// Chunks per output part file (about 260,000 settlements).
const PART_CHUNKS: usize = 64;
const TABLES: [&str; 4] = ["setl", "fee", "psn", "pay"];

/// Generates an input folder and its labels. See the module documentation.
pub fn generate(cfg: &GenConfig) -> Result<GenSummary> {
    generate_with(cfg, false)
}

fn generate_with(cfg: &GenConfig, compact: bool) -> Result<GenSummary> {
    let started = Instant::now();
    if cfg.settlements == 0 {
        return Err(crate::input_err!("--settlements must be at least 1"));
    }
    if !(0.0..=0.5).contains(&cfg.anomaly_rate) {
        return Err(crate::input_err!("anomaly rate must be between 0 and 0.5, got {}", cfg.anomaly_rate));
    }
    let a = assets::Assets::get()?;
    let input = cfg.out.join("input");
    let labels_dir = cfg.out.join("labels");
    prepare_dir(&input, &labels_dir)?;
    let cal = Calendar::load(&crate::paths::datasets_dir().join("calendar"))?;
    let csv = cfg.format == OutFormat::Csv;
    let ctx =
        ctx::Ctx::new(a, cfg.seed, cfg.settlements, cfg.anomaly_rate, csv, cfg.malformed_rows, cal, compact);
    let dates = DateText::new(ymd(1900, 1, 1), ymd(2027, 12, 31));
    let n_chunks = ctx.plan.targets.len();
    let parts: Vec<(usize, usize)> =
        (0..n_chunks).step_by(PART_CHUNKS).map(|s| (s, (s + PART_CHUNKS).min(n_chunks))).collect();
    let multi = parts.len() > 1;
    if multi {
        for t in TABLES {
            std::fs::create_dir_all(input.join(t)).map_err(|e| Error::io("creating", input.join(t), e))?;
        }
    }
    let inner_parallel = parts.len() < rayon::current_num_threads();
    let results: Vec<PartStats> = parts
        .par_iter()
        .enumerate()
        .map(|(pi, &(c0, c1))| {
            let w = Writers::open(&input, multi.then_some(pi), cfg)?;
            write_part(&ctx, &dates, w, c0..c1, cfg, inner_parallel)
        })
        .collect::<Result<_>>()?;
    let mut labels: Vec<Label> = Vec::new();
    let mut stats = PartStats::default();
    for r in results {
        stats.add(&r);
        labels.extend(r.labels);
    }
    labels.extend(write_medins(&ctx, &input, cfg, &dates)?);
    let text = labels::to_csv(&labels, true);
    let path = labels_dir.join("labels.csv");
    std::fs::write(&path, text).map_err(|e| Error::io("writing", &path, e))?;
    let summary = Summary {
        generator: format!("medaudit {} gen", env!("CARGO_PKG_VERSION")),
        seed: cfg.seed,
        format: if csv { "csv" } else { "parquet" }.into(),
        encoding: match cfg.encoding {
            OutEncoding::Utf8 => "utf8",
            OutEncoding::Gb18030 => "gb18030",
        }
        .into(),
        anomaly_rate: cfg.anomaly_rate,
        settlements: stats.settlements,
        clean_settlements: stats.clean,
        fee_lines: stats.lines,
        persons: stats.persons,
        facilities: a.facilities.len() as u64,
        payments: stats.pays,
        labels: labels.len() as u64,
        malformed_rows: labels.iter().filter(|l| l.role == Role::Malformed).count() as u64,
        as_of: {
            let mut s = String::new();
            cal::fmt_date(ctx.as_of, &mut s);
            s
        },
        calendar_years: ctx.cal.years.iter().copied().collect(),
        outlier_facilities: ctx.outlier_fac.iter().map(|&f| ctx.fac(f).code.clone()).collect(),
    };
    let path = labels_dir.join("summary.json");
    let json = serde_json::to_string_pretty(&summary).map_err(|e| crate::other_err!("summary: {e}"))?;
    std::fs::write(&path, json + "\n").map_err(|e| Error::io("writing", &path, e))?;
    Ok(GenSummary {
        settlements: stats.settlements,
        fee_lines: stats.lines,
        persons: stats.persons,
        facilities: a.facilities.len() as u64,
        labels: labels.len() as u64,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Regenerates the bundled sample (`datasets/sample/`): a few hundred settlements as UTF-8
/// CSV with one instance of every anomaly, control and malformed row, and short stays (at
/// most 5 days unless an anomaly needs more) so that it stays under 2 MB.
pub fn write_sample(dir: &Path) -> Result<GenSummary> {
    let cfg = GenConfig::new(dir.to_path_buf(), SAMPLE_SETTLEMENTS, SAMPLE_SEED);
    generate_with(&cfg, true)
}

/// Size and seed of the bundled sample.
pub const SAMPLE_SETTLEMENTS: u64 = 200;
pub const SAMPLE_SEED: u64 = 20_240_101;

/// Clears a previous generator output (recognised by its `labels/summary.json`); refuses to
/// write over anything else.
fn prepare_dir(input: &Path, labels_dir: &Path) -> Result<()> {
    let ours = labels_dir.join("summary.json").is_file();
    for d in [input, labels_dir] {
        if d.exists() {
            let empty = std::fs::read_dir(d).map_err(|e| Error::io("reading", d, e))?.next().is_none();
            if !empty && !ours {
                return Err(crate::input_err!(
                    "{} exists and was not written by `medaudit gen`: choose an empty output folder",
                    d.display()
                ));
            }
            std::fs::remove_dir_all(d).map_err(|e| Error::io("clearing", d, e))?;
        }
        std::fs::create_dir_all(d).map_err(|e| Error::io("creating", d, e))?;
    }
    Ok(())
}

#[derive(Debug, Default)]
struct PartStats {
    settlements: u64,
    clean: u64,
    lines: u64,
    persons: u64,
    pays: u64,
    labels: Vec<Label>,
}

impl PartStats {
    fn add(&mut self, o: &PartStats) {
        self.settlements += o.settlements;
        self.clean += o.clean;
        self.lines += o.lines;
        self.persons += o.persons;
        self.pays += o.pays;
    }
}

enum Payload {
    Bytes(Vec<u8>),
    Batch(arrow::array::RecordBatch),
}

/// One chunk, generated and encoded.
struct Encoded {
    tables: Vec<Payload>,
    stats: PartStats,
}

fn run_chunk(ctx: &ctx::Ctx, chunk: usize) -> Gen<'_> {
    let mut g = Gen::new(ctx, chunk as u32);
    let target = ctx.plan.targets[chunk];
    let tasks = &ctx.plan.tasks[chunk];
    for &t in tasks {
        if !matches!(t, Task::Malformed(..)) {
            g.run(t);
        }
    }
    while g.count() < target {
        let budget = target - g.count();
        g.natural_person(budget);
    }
    for &t in tasks {
        if matches!(t, Task::Malformed(..)) {
            g.run(t);
        }
    }
    g
}

fn encode_chunk(ctx: &ctx::Ctx, dates: &DateText, chunk: usize, cfg: &GenConfig) -> Result<Encoded> {
    let g = run_chunk(ctx, chunk);
    let mut tables = Vec::with_capacity(4);
    for t in TABLES {
        let spec = write::spec(t);
        tables.push(match cfg.format {
            OutFormat::Csv => {
                let mut sink = CsvSink::new(dates, write::rows_hint(&g, t) * 160);
                write::emit(&mut sink, &g, t);
                Payload::Bytes(encode_text(sink.buf, cfg.encoding))
            }
            OutFormat::Parquet => {
                let mut sink = ArrowSink::new(spec, write::rows_hint(&g, t));
                write::emit(&mut sink, &g, t);
                Payload::Batch(sink.finish()?)
            }
        });
    }
    let labelled: std::collections::HashSet<&str> = g.labels.iter().map(|l| l.setl_id.as_str()).collect();
    let clean = g.setls.iter().filter(|s| !labelled.contains(model::setl_id(s.id).as_str())).count() as u64;
    let stats = PartStats {
        settlements: g.setls.len() as u64,
        clean,
        lines: g.lines.len() as u64,
        persons: g.persons.len() as u64,
        pays: g.pays.len() as u64,
        labels: g.labels,
    };
    Ok(Encoded { tables, stats })
}

fn encode_text(utf8: Vec<u8>, enc: OutEncoding) -> Vec<u8> {
    match enc {
        OutEncoding::Utf8 => utf8,
        OutEncoding::Gb18030 => {
            let text = String::from_utf8(utf8)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
            let (bytes, _, _) = encoding_rs::GB18030.encode(&text);
            bytes.into_owned()
        }
    }
}

enum TableWriter {
    Csv(BufWriter<File>, PathBuf),
    Parquet(Box<ArrowWriter<File>>, PathBuf),
}

struct Writers {
    tables: Vec<TableWriter>,
}

fn parquet_props() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).unwrap_or_default()))
        .set_column_dictionary_enabled(ColumnPath::from("feedetl_sn"), false)
        .set_max_row_group_row_count(None)
        .build()
}

impl Writers {
    fn open(input: &Path, part: Option<usize>, cfg: &GenConfig) -> Result<Writers> {
        let ext = if cfg.format == OutFormat::Csv { "csv" } else { "parquet" };
        let mut tables = Vec::new();
        for t in TABLES {
            let path = match part {
                Some(p) => input.join(t).join(format!("part-{p:05}.{ext}")),
                None => input.join(format!("{t}.{ext}")),
            };
            let file = File::create(&path).map_err(|e| Error::io("creating", &path, e))?;
            let spec = write::spec(t);
            tables.push(match cfg.format {
                OutFormat::Csv => {
                    let mut w = BufWriter::with_capacity(1 << 20, file);
                    w.write_all(&CsvSink::header(spec)).map_err(|e| Error::io("writing", &path, e))?;
                    TableWriter::Csv(w, path)
                }
                OutFormat::Parquet => {
                    let w = ArrowWriter::try_new(file, spec.arrow_schema(), Some(parquet_props()))
                        .map_err(|e| Error::arrow(format!("creating {}", path.display()), e))?;
                    TableWriter::Parquet(Box::new(w), path)
                }
            });
        }
        Ok(Writers { tables })
    }

    fn write(&mut self, e: &Encoded) -> Result<()> {
        for (w, p) in self.tables.iter_mut().zip(&e.tables) {
            match (w, p) {
                (TableWriter::Csv(w, path), Payload::Bytes(b)) => {
                    w.write_all(b).map_err(|e| Error::io("writing", path.as_path(), e))?
                }
                (TableWriter::Parquet(w, path), Payload::Batch(b)) => {
                    w.write(b).map_err(|e| Error::arrow(format!("writing {}", path.display()), e))?;
                    w.flush().map_err(|e| Error::arrow(format!("writing {}", path.display()), e))?;
                }
                _ => return Err(crate::other_err!("generator bug: payload of the wrong format")),
            }
        }
        Ok(())
    }

    fn close(self) -> Result<()> {
        for w in self.tables {
            match w {
                TableWriter::Csv(mut w, path) => w.flush().map_err(|e| Error::io("writing", &path, e))?,
                TableWriter::Parquet(w, path) => {
                    w.close().map_err(|e| Error::arrow(format!("closing {}", path.display()), e))?;
                }
            }
        }
        Ok(())
    }
}

fn write_part(
    ctx: &ctx::Ctx,
    dates: &DateText,
    mut w: Writers,
    chunks: std::ops::Range<usize>,
    cfg: &GenConfig,
    parallel: bool,
) -> Result<PartStats> {
    let mut stats = PartStats::default();
    let window = if parallel { rayon::current_num_threads().max(1) * 2 } else { 1 };
    let ids: Vec<usize> = chunks.collect();
    for win in ids.chunks(window) {
        let encoded: Vec<Encoded> = if parallel {
            win.par_iter().map(|&c| encode_chunk(ctx, dates, c, cfg)).collect::<Result<_>>()?
        } else {
            win.iter().map(|&c| encode_chunk(ctx, dates, c, cfg)).collect::<Result<_>>()?
        };
        for e in encoded {
            w.write(&e)?;
            stats.add(&e.stats);
            stats.labels.extend(e.stats.labels);
        }
    }
    w.close()?;
    Ok(stats)
}

/// The facility table (with its malformed rows), written once.
fn write_medins(ctx: &ctx::Ctx, input: &Path, cfg: &GenConfig, dates: &DateText) -> Result<Vec<Label>> {
    let a = ctx.a;
    let spec = &crate::schema::MEDINS;
    let mut labels = Vec::new();
    let mut extra: Vec<(assets::Facility, String)> = Vec::new();
    if cfg.malformed_rows {
        let mut f = a.facilities[0].clone();
        extra.push((f.clone(), f.name.clone()));
        labels.push(medins_label("Q-medins-1", "duplicate_key", &f.code));
        f.code = format!("H{}99999", f.admdvs);
        extra.push((f.clone(), String::new()));
        labels.push(medins_label("Q-medins-2", "missing_value", &f.code));
    }
    let emit = |o: &mut dyn FnMut(&assets::Facility, &str)| {
        for f in &a.facilities {
            o(f, &f.name);
        }
        for (f, name) in &extra {
            o(f, name);
        }
    };
    match cfg.format {
        OutFormat::Csv => {
            let mut sink = CsvSink::new(dates, 1 << 16);
            sink.buf.extend_from_slice(&CsvSink::header(spec));
            emit(&mut |f, name| write::medins_row(&mut sink, f, name));
            let path = input.join("medins.csv");
            std::fs::write(&path, encode_text(sink.buf, cfg.encoding))
                .map_err(|e| Error::io("writing", &path, e))?;
        }
        OutFormat::Parquet => {
            let mut sink = ArrowSink::new(spec, a.facilities.len() + 2);
            emit(&mut |f, name| write::medins_row(&mut sink, f, name));
            let batch = sink.finish()?;
            let path = input.join("medins.parquet");
            let file = File::create(&path).map_err(|e| Error::io("creating", &path, e))?;
            let mut w = ArrowWriter::try_new(file, spec.arrow_schema(), Some(parquet_props()))
                .map_err(|e| Error::arrow("medins", e))?;
            w.write(&batch).map_err(|e| Error::arrow("medins", e))?;
            w.close().map_err(|e| Error::arrow("medins", e))?;
        }
    }
    Ok(labels)
}

fn medins_label(id: &str, class: &'static str, code: &str) -> Label {
    Label {
        anomaly_id: id.into(),
        role: Role::Malformed,
        kind: "quarantine",
        subkind: class,
        table: "medins",
        setl_id: String::new(),
        psn_no: String::new(),
        entity_type: "row",
        entity_id: code.into(),
        key: code.into(),
        expected: class,
        note: format!("定点医药机构畸形行：{class}"),
    }
}

/// Every (kind, subkind, role) the generator labels anomalies and negative controls with
/// (`related` rows aside), for documentation and tests.
pub fn label_kinds() -> Vec<(&'static str, &'static str, &'static str)> {
    let mut v: Vec<_> = anomalies::SPECS.iter().map(|s| (s.kind, s.subkind, s.role.as_str())).collect();
    v.extend(anomalies::EXTRA_LABELS.iter().map(|&(k, s, r)| (k, s, r.as_str())));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[ignore = "development tool: MEDAUDIT_GEN_OUT, _N, _SEED, _FORMAT"]
    fn dev_generate() {
        let out = PathBuf::from(std::env::var("MEDAUDIT_GEN_OUT").unwrap());
        let n: u64 = std::env::var("MEDAUDIT_GEN_N").unwrap().parse().unwrap();
        let seed: u64 = std::env::var("MEDAUDIT_GEN_SEED").map_or(1, |s| s.parse().unwrap());
        let mut cfg = GenConfig::new(out, n, seed);
        if std::env::var("MEDAUDIT_GEN_FORMAT").is_ok_and(|f| f == "parquet") {
            cfg.format = OutFormat::Parquet;
        }
        let s = if std::env::var_os("MEDAUDIT_GEN_SAMPLE").is_some() {
            write_sample(&cfg.out).unwrap()
        } else {
            generate(&cfg).unwrap()
        };
        eprintln!("{s:?}");
    }

    #[test]
    fn small_run_writes_every_table() {
        let dir = std::env::temp_dir().join(format!("medaudit-gen-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let cfg = GenConfig::new(dir.clone(), 1500, 11);
        let s = generate(&cfg).unwrap();
        assert_eq!(s.settlements, 1500);
        for t in ["setl", "fee", "psn", "medins", "pay"] {
            assert!(dir.join("input").join(format!("{t}.csv")).is_file(), "{t}");
        }
        assert!(dir.join("labels/labels.csv").is_file());
        if std::env::var_os("MEDAUDIT_KEEP_GEN").is_none() {
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }
}
