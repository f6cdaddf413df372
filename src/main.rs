//! The `medaudit` command line: parse arguments, call the library, map errors to one clear
//! message and an exit code.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use chrono::NaiveDate;
use clap::{Parser, Subcommand, ValueEnum};

use medaudit::ingest::{Encoding, EncodingChoice};

#[derive(Parser)]
#[command(
    name = "medaudit",
    version,
    about = "Audit medical-insurance settlement data for fraud, error and abuse"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum EncArg {
    Auto,
    Utf8,
    Gb18030,
}

impl From<EncArg> for EncodingChoice {
    fn from(e: EncArg) -> Self {
        match e {
            EncArg::Auto => EncodingChoice::Auto,
            EncArg::Utf8 => EncodingChoice::Force(Encoding::Utf8),
            EncArg::Gb18030 => EncodingChoice::Force(Encoding::Gb18030),
        }
    }
}

// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Cmd {
    /// Run the whole audit on an input folder and publish the results in an output folder.
    Run {
        /// Input folder: setl, fee (required), psn, medins, pay (optional) as .csv or .parquet.
        #[arg(long)]
        input: PathBuf,
        /// Output folder (replaced atomically when the run succeeds).
        #[arg(long)]
        out: PathBuf,
        /// As-of date for payment deadlines (default: the latest date in the input).
        #[arg(long, value_parser = parse_date)]
        as_of: Option<NaiveDate>,
        /// Knowledge-base folder whose CSV sheets replace the shipped ones, table by table.
        #[arg(long)]
        kb: Vec<PathBuf>,
        /// Policy folder replacing the shipped policy files.
        #[arg(long)]
        policy: Option<PathBuf>,
        /// Calendar folder replacing the shipped working-day calendar.
        #[arg(long)]
        calendar: Option<PathBuf>,
        /// Code table (CSV: field,code,class,label) replacing the shipped one.
        #[arg(long)]
        codes: Option<PathBuf>,
        /// Mapping file translating an export layout into the data contract.
        #[arg(long)]
        mapping: Option<PathBuf>,
        /// Text encoding of CSV input.
        #[arg(long, value_enum, default_value = "auto")]
        encoding: EncArg,
        /// Rule configuration (TOML): disabled rules, parameters, extra rule folders.
        #[arg(long)]
        rules_config: Option<PathBuf>,
        /// Rule folder to use instead of the shipped `queries/` (repeatable).
        #[arg(long)]
        rules: Vec<PathBuf>,
        /// Run only these rules (repeatable; comma-separated accepted).
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
        /// Memory the query engine's operators may hold before they spill to disk (e.g. 3GiB,
        /// 512MiB); the whole process needs about 1.5 GiB more. Default: 2.5GiB.
        #[arg(long, value_parser = medaudit::engine::parse_bytes)]
        memory_limit: Option<u64>,
    },
    /// Audit the night's deliveries against the history store (for cron or a systemd timer).
    ///
    /// Exit codes: 0 a night was audited and committed; 1 error (nothing committed, safe to
    /// re-run); 2 bad command line; 3 another run holds the store's lock; 4 no new file in the
    /// inbox (nothing done). See docs/nightly.md.
    Nightly {
        /// Folder where the platform's exports arrive (deliveries as subfolders or files).
        #[arg(long)]
        inbox: PathBuf,
        /// History store folder (created on the first night).
        #[arg(long)]
        store: PathBuf,
        /// Output folder of this night (default: STORE/runs/night-<n>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// As-of date for payment deadlines (default: the latest date in the store).
        #[arg(long, value_parser = parse_date)]
        as_of: Option<NaiveDate>,
        /// Nightly configuration replacing datasets/nightly/config.toml.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Knowledge-base folder whose CSV sheets replace the shipped ones, table by table.
        #[arg(long)]
        kb: Vec<PathBuf>,
        /// Policy folder replacing the shipped policy files.
        #[arg(long)]
        policy: Option<PathBuf>,
        /// Calendar folder replacing the shipped working-day calendar.
        #[arg(long)]
        calendar: Option<PathBuf>,
        /// Code table replacing the shipped one.
        #[arg(long)]
        codes: Option<PathBuf>,
        /// Mapping file translating the export layout into the data contract.
        #[arg(long)]
        mapping: Option<PathBuf>,
        /// Text encoding of CSV input.
        #[arg(long, value_enum, default_value = "auto")]
        encoding: EncArg,
        /// Rule configuration (TOML): disabled rules, parameters, extra rule folders.
        #[arg(long)]
        rules_config: Option<PathBuf>,
    },
    /// Check an input folder against the data contract and report, without auditing.
    Validate {
        #[arg(long)]
        input: PathBuf,
        #[arg(long)]
        mapping: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "auto")]
        encoding: EncArg,
    },
    /// Generate a synthetic input folder with labelled anomalies (and `labels/` beside it).
    Gen {
        /// Output folder: `input/` and `labels/` are written inside it.
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 10_000)]
        settlements: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, value_enum, default_value = "parquet")]
        format: FormatArg,
        #[arg(long, value_enum, default_value = "utf8")]
        encoding: GenEncArg,
        /// Share of settlements given an injected anomaly.
        #[arg(long, default_value_t = 0.03)]
        anomaly_rate: f64,
        /// Do not write malformed rows (for benchmarks).
        #[arg(long)]
        no_malformed: bool,
    },
    /// The rules: list them, or show one's documentation.
    Rules {
        #[command(subcommand)]
        cmd: RulesCmd,
        /// Rule configuration (shows what is disabled and the parameters in force).
        #[arg(long, global = true)]
        rules_config: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    Csv,
    Parquet,
}

#[derive(Clone, Copy, ValueEnum)]
enum GenEncArg {
    Utf8,
    Gb18030,
}

#[derive(Subcommand)]
enum RulesCmd {
    /// One line per rule.
    List,
    /// A rule's documentation: what it checks, why, an example, its basis and parameters.
    Show { id: String },
}

fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| format!("`{s}` is not a date of the form YYYY-MM-DD"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("medaudit: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn logger() -> Arc<dyn Fn(&str) + Send + Sync> {
    Arc::new(|m: &str| eprintln!("[{}] {m}", chrono::Local::now().format("%H:%M:%S")))
}

fn progress() -> Option<medaudit::ingest::Progress> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {msg} {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    Some(Arc::new(move |table: &str, rows: u64| {
        bar.set_message(format!("ingest {table}: {rows} rows"));
        bar.tick();
    }))
}

/// Runs the command; `Ok` carries the exit code.
fn dispatch(cli: Cli) -> medaudit::Result<u8> {
    match cli.cmd {
        Cmd::Run {
            input,
            out,
            as_of,
            kb,
            policy,
            calendar,
            codes,
            mapping,
            encoding,
            rules_config,
            rules,
            only,
            memory_limit,
        } => {
            let opts = medaudit::run::RunOptions {
                input,
                out,
                as_of,
                kb,
                policy,
                calendar,
                codes,
                mapping,
                encoding: encoding.into(),
                rules_config,
                rules_dirs: rules,
                only_rules: only,
                skip_benefit: false,
                memory_limit,
                progress: progress(),
                log: Some(logger()),
                ..Default::default()
            };
            let s = medaudit::run::run(&opts)?;
            print!("{}", medaudit::report_text::run_summary(&s));
            Ok(0)
        }
        Cmd::Nightly {
            inbox,
            store,
            out,
            as_of,
            config,
            kb,
            policy,
            calendar,
            codes,
            mapping,
            encoding,
            rules_config,
        } => {
            let opts = medaudit::nightly::NightlyOptions {
                inbox,
                store,
                out,
                as_of,
                config,
                kb,
                policy,
                calendar,
                codes,
                mapping,
                encoding: encoding.into(),
                rules_config,
                log: Some(logger()),
            };
            Ok(nightly_outcome(medaudit::nightly::nightly(&opts)?))
        }
        Cmd::Validate { input, mapping, encoding } => {
            let codes =
                medaudit::codes::CodeTables::load(&medaudit::paths::datasets_dir().join("codes/codes.csv"))?;
            let mut o = medaudit::ingest::IngestOptions::new(codes);
            o.encoding = encoding.into();
            if let Some(m) = mapping {
                o.mapping = medaudit::ingest::Mapping::load(&m)?;
            }
            o.progress = progress();
            let r = medaudit::run::validate(&input, &o)?;
            print!("{}", medaudit::report_text::ingest_summary(&r));
            Ok(0)
        }
        Cmd::Gen { out, settlements, seed, format, encoding, anomaly_rate, no_malformed } => {
            let cfg = medaudit::synth::GenConfig {
                out,
                settlements,
                seed,
                format: match format {
                    FormatArg::Csv => medaudit::synth::OutFormat::Csv,
                    FormatArg::Parquet => medaudit::synth::OutFormat::Parquet,
                },
                encoding: match encoding {
                    GenEncArg::Utf8 => medaudit::synth::OutEncoding::Utf8,
                    GenEncArg::Gb18030 => medaudit::synth::OutEncoding::Gb18030,
                },
                anomaly_rate,
                malformed_rows: !no_malformed,
            };
            let s = medaudit::synth::generate(&cfg)?;
            println!(
                "generated {} settlements, {} fee lines, {} persons, {} facilities, {} labels in {:.1} s → {}",
                s.settlements,
                s.fee_lines,
                s.persons,
                s.facilities,
                s.labels,
                s.seconds,
                cfg.out.display()
            );
            Ok(0)
        }
        Cmd::Rules { cmd, rules_config } => {
            let rules = medaudit::engine::RuleSet::load_default()?;
            let config = match rules_config {
                Some(p) => medaudit::engine::RuleConfig::load(&p)?,
                None => medaudit::engine::RuleConfig::default(),
            };
            match cmd {
                RulesCmd::List => print!("{}", medaudit::report_text::rules_list(&rules, &config)),
                RulesCmd::Show { id } => print!("{}", medaudit::report_text::rule_show(&rules, &id)?),
            }
            Ok(0)
        }
    }
}

/// Prints how a nightly run ended and returns its exit code (docs/nightly.md).
fn nightly_outcome(o: medaudit::nightly::Outcome) -> u8 {
    use medaudit::nightly::Outcome;
    match o {
        Outcome::Audited(s) => {
            let e = &s.entry;
            println!(
                "night {} committed: {} file(s) ingested ({} skipped as already ingested), {} person(s) re-audited \
                 ({} settlements), {} findings, {} fee line(s) waiting for their settlement → {}",
                s.night,
                e.files.len(),
                s.skipped_files,
                e.touched_persons,
                e.audited_settlements,
                s.manifest.findings.total,
                e.pending.after,
                s.out.display()
            );
            0
        }
        Outcome::NothingNew { last_night } => {
            println!("no new file in the inbox: nothing to do (last night committed: {last_night})");
            4
        }
        Outcome::Locked { holder, hung } => {
            let who = holder
                .map(|h| format!("pid {} since {}", h.pid, h.started_at))
                .unwrap_or_else(|| "another process".into());
            if hung {
                eprintln!(
                    "medaudit: the store is locked by {who}, longer than the configured limit: that run looks hung; \
                     stop it and run again"
                );
            } else {
                eprintln!("medaudit: the store is locked by {who}: another nightly run is in progress");
            }
            3
        }
    }
}
