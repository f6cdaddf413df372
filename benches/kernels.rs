//! Benchmarks of the Rust-side kernels and of each rule family (criterion).
//!
//! - `benefit/benefit_recalculate_2m`: the benefit recalculation over 2,000,000 synthetic
//!   settlements (500,000 persons, residents and employees, about 4 % reversals and 10 %
//!   uncovered outpatient care, about 1 % of payments off), split into batches of 65,536 rows.
//!   Target: under 5 s on 2 cores.
//! - `ingest/parquet`: reading, validating and writing the typed copy of a generated input
//!   folder (`medaudit gen --no-malformed`, Parquet), throughput in fee lines + settlements.
//! - `calendar/add_working_days`: payment deadlines (15 to 30 working days) from 10,000 dates.
//! - `rules/<ID>`: one rule of each family on the accepted tables of that input, as the
//!   engine runs it (same session, same SQL with the default parameters).
//!
//! `cargo bench --bench kernels` runs all; `cargo bench --bench kernels -- rules/OVC001` one.
//! Environment: `MEDAUDIT_BENCH_SETTLEMENTS` (default 20000) sizes the generated input,
//! `MEDAUDIT_BENCH_RULES=ID,ID` chooses the rules, and `MEDAUDIT_BENCH_EXPLAIN=1` prints
//! DataFusion's `EXPLAIN ANALYZE` of each chosen rule (operators, rows, time, memory) to stderr
//! before timing it. The end-to-end benchmark is `benches/e2e.sh` (see benches/README.md).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use arrow::array::{
    ArrayRef, AsArray, Date32Builder, Decimal128Builder, RecordBatch, StringBuilder, TimestampSecondBuilder,
};
use arrow::datatypes::{DataType, Decimal128Type};
use chrono::{Datelike, NaiveDate};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use medaudit::benefit::{Calendar, Incomplete, PolicySet, recalculate};
use medaudit::codes::CodeTables;
use medaudit::engine::{RuleConfig, RuleSet};
use medaudit::ingest::{IngestOptions, ingest};
use medaudit::schema::SETL;

const SETTLEMENTS: usize = 2_000_000;
const PER_PERSON: usize = 4;
const BATCH: usize = 65_536;

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One synthetic settlement (amounts in cents).
struct Synth {
    setl: u64,
    psn: u64,
    employee: bool,
    idet: &'static str,
    med_type: &'static str,
    day: i32,
    time: i64,
    reversal_of: Option<u64>,
    inscp: i64,
    hifp: i64,
    ratio: i64,
    paid: i64,
}

fn synthesize() -> Vec<Synth> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let day0 = 19_723; // 2024-01-01
    let mut out = Vec::with_capacity(SETTLEMENTS);
    let persons = SETTLEMENTS / PER_PERSON;
    for p in 0..persons as u64 {
        let employee = rng.below(3) == 0;
        let idet = match rng.below(10) {
            0 => "1102",
            1 => "1104",
            _ => "",
        };
        let mut day = day0 + rng.below(200) as i32;
        let first = out.len();
        for _ in 0..PER_PERSON {
            if out.len() >= SETTLEMENTS {
                break;
            }
            let setl = out.len() as u64;
            // about 4 % reversals of the person's previous settlement
            if out.len() > first && rng.below(25) == 0 {
                let prev: &Synth = &out[out.len() - 1];
                let r = Synth {
                    setl,
                    psn: p,
                    employee,
                    idet,
                    med_type: prev.med_type,
                    day: prev.day,
                    time: prev.time + 3_600,
                    reversal_of: Some(prev.setl),
                    inscp: -prev.inscp,
                    hifp: -prev.hifp,
                    ratio: prev.ratio,
                    paid: -prev.paid,
                };
                out.push(r);
                continue;
            }
            day += 1 + rng.below(40) as i32;
            let med_type = if rng.below(10) == 0 { "11" } else { "21" };
            let inscp = 100_000 + rng.below(12_000_000) as i64;
            let ratio = if employee { 8_500 } else { 6_000 };
            let hifp = inscp * ratio / 10_000;
            out.push(Synth {
                setl,
                psn: p,
                employee,
                idet,
                med_type,
                day,
                time: i64::from(day) * 86_400 + 36_000,
                reversal_of: None,
                inscp,
                hifp,
                ratio,
                paid: 0,
            });
        }
    }
    out
}

fn batch(rows: &[Synth]) -> RecordBatch {
    let schema = SETL.arrow_schema();
    let mut cols: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for f in schema.fields() {
        let name = f.name().as_str();
        let col: ArrayRef = match f.data_type() {
            DataType::Utf8 => {
                let mut b = StringBuilder::with_capacity(rows.len(), rows.len() * 12);
                for r in rows {
                    match name {
                        "setl_id" => b.append_value(format!("S{:09}", r.setl)),
                        "mdtrt_id" => b.append_value(format!("M{:09}", r.setl)),
                        "psn_no" => b.append_value(format!("P{:08}", r.psn)),
                        "insutype" => b.append_value(if r.employee { "310" } else { "390" }),
                        "psn_idet_type" => b.append_value(r.idet),
                        "med_type" => b.append_value(r.med_type),
                        "refd_setl_flag" => b.append_value(if r.reversal_of.is_some() { "1" } else { "0" }),
                        "init_setl_id" => match r.reversal_of {
                            Some(o) => b.append_value(format!("S{o:09}")),
                            None => b.append_value(""),
                        },
                        "psn_name" => b.append_value("王小明"),
                        "certno" => b.append_value("411102198001011234"),
                        _ => b.append_value("1"),
                    }
                }
                Arc::new(b.finish())
            }
            DataType::Date32 => {
                let mut b = Date32Builder::with_capacity(rows.len());
                for r in rows {
                    b.append_value(if name == "brdy" { 3_653 } else { r.day });
                }
                Arc::new(b.finish())
            }
            DataType::Timestamp(_, _) => {
                let mut b = TimestampSecondBuilder::with_capacity(rows.len());
                for r in rows {
                    b.append_value(r.time);
                }
                Arc::new(b.finish())
            }
            DataType::Decimal128(p, s) => {
                let mut b = Decimal128Builder::with_capacity(rows.len());
                for r in rows {
                    b.append_value(i128::from(match name {
                        "inscp_scp_amt" | "medfee_sumamt" => r.inscp,
                        "hifp_pay" => r.hifp,
                        "pool_prop_selfpay" => r.ratio,
                        "hifmi_pay" if !r.employee => r.paid,
                        "hifob_pay" if r.employee => r.paid,
                        _ => 0,
                    }));
                }
                Arc::new(b.finish().with_precision_and_scale(*p, *s).expect("decimal type"))
            }
            t => panic!("unexpected type {t}"),
        };
        cols.push(col);
    }
    RecordBatch::try_new(schema, cols).expect("setl batch")
}

/// Sets every recorded payment to the recalculated one, then perturbs about 1 % of them, so
/// that the benchmark sees as many mismatches as an ordinary month would.
fn realistic_payments(rows: &mut [Synth], policies: &PolicySet, codes: &CodeTables) {
    let batches: Vec<RecordBatch> = rows.chunks(BATCH).map(batch).collect();
    let out = recalculate(&batches, policies, codes, &Incomplete::default(), None).expect("recalculation");
    let mut expected: HashMap<String, i128> = HashMap::with_capacity(rows.len());
    for b in &out.checks {
        let ids = b.column(0).as_string::<i32>();
        let fund = b.column(1).as_string::<i32>();
        let exp = b.column(3).as_primitive::<Decimal128Type>();
        for i in 0..b.num_rows() {
            expected.insert(format!("{}{}", ids.value(i), fund.value(i)), exp.value(i));
        }
    }
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    for r in rows.iter_mut() {
        let fund = if r.employee { "hifob" } else { "hifmi" };
        let key = format!("S{:09}{fund}", r.setl);
        let e = expected.get(&key).copied().unwrap_or(0) as i64;
        r.paid =
            if r.reversal_of.is_none() && rng.below(100) == 0 { e + 1 + rng.below(50_000) as i64 } else { e };
    }
}

fn bench_recalculate(c: &mut Criterion) {
    let home = medaudit::paths::home();
    let policies = PolicySet::load(&home.join("datasets/policy")).expect("policies");
    let codes = CodeTables::load(&home.join("datasets/codes/codes.csv")).expect("codes");
    let incomplete = Incomplete::default();
    let mut rows = synthesize();
    realistic_payments(&mut rows, &policies, &codes);
    let batches: Vec<RecordBatch> = rows.chunks(BATCH).map(batch).collect();
    drop(rows);
    let mut g = c.benchmark_group("benefit");
    g.sample_size(10);
    g.bench_function("benefit_recalculate_2m", |b| {
        b.iter(|| {
            let out = recalculate(&batches, &policies, &codes, &incomplete, None).expect("recalculation");
            std::hint::black_box(out.checks.len())
        })
    });
    g.finish();
}

/// One rule of each family (override with `MEDAUDIT_BENCH_RULES`).
const DEFAULT_RULES: &[&str] = &[
    "DUP001", "DUP003", "DUP004", "DUP005", "IMP001", "IMP005", "SPL001", "OOA001", "PHS001", "OVC001",
    "OVC002", "RST001", "INJ001", "DQ003",
];

/// A generated input folder and its accepted tables, made once for all benches.
struct Dataset {
    _dir: tempfile::TempDir,
    input: PathBuf,
    data: PathBuf,
    rows: u64,
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok()).unwrap_or(default)
}

fn dataset() -> &'static Dataset {
    static DS: OnceLock<Dataset> = OnceLock::new();
    DS.get_or_init(|| {
        let n = env_usize("MEDAUDIT_BENCH_SETTLEMENTS", 20_000) as u64;
        let dir = tempfile::tempdir().expect("temporary folder");
        let mut cfg = medaudit::synth::GenConfig::new(dir.path().join("gen"), n, 7);
        cfg.format = medaudit::synth::OutFormat::Parquet;
        cfg.malformed_rows = false;
        let summary = medaudit::synth::generate(&cfg).expect("generating the bench input");
        let input = dir.path().join("gen/input");
        let data = dir.path().join("accepted");
        ingest(&input, &data, &dir.path().join("quarantine"), &ingest_options()).expect("ingest");
        Dataset { rows: summary.settlements + summary.fee_lines, input, data, _dir: dir }
    })
}

fn ingest_options() -> IngestOptions {
    let codes = CodeTables::load(&medaudit::paths::datasets_dir().join("codes/codes.csv")).expect("codes");
    IngestOptions::new(codes)
}

fn bench_ingest(c: &mut Criterion) {
    let ds = dataset();
    let opts = ingest_options();
    let out = ds.input.parent().unwrap_or(Path::new(".")).join("ingest-bench");
    let mut g = c.benchmark_group("ingest");
    g.sample_size(10);
    g.throughput(Throughput::Elements(ds.rows));
    g.bench_function("parquet", |b| {
        b.iter(|| {
            let r = ingest(&ds.input, &out.join("data"), &out.join("quarantine"), &opts).expect("ingest");
            std::hint::black_box(r.tables.len())
        })
    });
    g.finish();
}

fn bench_calendar(c: &mut Criterion) {
    let cal = Calendar::load_default().expect("calendar");
    let years = cal.years();
    let (Some(&first), Some(&last)) = (years.first(), years.last()) else {
        panic!("the shipped calendar covers no year")
    };
    let start = NaiveDate::from_ymd_opt(first, 1, 1).expect("date");
    // dates spread over all but the last two months of the calendar, so every deadline is decided
    let span = (NaiveDate::from_ymd_opt(last, 10, 31).expect("date") - start).num_days().max(1);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let days: Vec<(NaiveDate, u32)> = (0..10_000)
        .map(|_| {
            (
                start + chrono::Duration::days(rng.below(span as u64) as i64),
                [15, 20, 30][rng.below(3) as usize],
            )
        })
        .collect();
    let mut g = c.benchmark_group("calendar");
    g.throughput(Throughput::Elements(days.len() as u64));
    g.bench_function("add_working_days", |b| {
        b.iter(|| {
            let mut n = 0u32;
            for &(d, k) in &days {
                if let Ok(due) = cal.add_working_days(d, k) {
                    n = n.wrapping_add(due.day0());
                }
            }
            std::hint::black_box(n)
        })
    });
    g.finish();
}

fn bench_rules(c: &mut Criterion) {
    let ds = dataset();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let tables = medaudit::engine::Tables::new(&ds.data, None);
    let ctx = rt.block_on(medaudit::engine::session(&tables)).expect("session");
    let rules = RuleSet::load_default().expect("rules");
    let config = RuleConfig::default();
    let chosen: Vec<String> = match std::env::var("MEDAUDIT_BENCH_RULES") {
        Ok(v) if !v.trim().is_empty() => v.split(',').map(|s| s.trim().to_string()).collect(),
        _ => DEFAULT_RULES.iter().map(|s| s.to_string()).collect(),
    };
    let explain = std::env::var("MEDAUDIT_BENCH_EXPLAIN").is_ok_and(|v| v == "1");
    let mut g = c.benchmark_group("rules");
    g.sample_size(10);
    g.throughput(Throughput::Elements(ds.rows));
    for id in &chosen {
        let Some(rule) = rules.get(id) else {
            eprintln!("rules: no rule {id}, skipped");
            continue;
        };
        let sql = config.sql_for(rule).expect("rule SQL");
        if explain {
            let plan: Result<String, datafusion::error::DataFusionError> = rt.block_on(async {
                let batches = ctx.sql(&format!("EXPLAIN ANALYZE {sql}")).await?.collect().await?;
                Ok(arrow::util::pretty::pretty_format_batches(&batches)?.to_string())
            });
            match plan {
                Ok(p) => eprintln!("== EXPLAIN ANALYZE {id}\n{p}"),
                Err(e) => eprintln!("== EXPLAIN ANALYZE {id} failed: {e}"),
            }
        }
        g.bench_function(id.as_str(), |b| {
            b.iter(|| {
                let out =
                    rt.block_on(medaudit::engine::run_one(&ctx, rule, &sql, "bench")).expect("rule runs");
                std::hint::black_box(out.iter().map(|b| b.num_rows()).sum::<usize>())
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_recalculate, bench_ingest, bench_calendar, bench_rules);
criterion_main!(benches);
