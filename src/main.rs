//! The `medaudit` command line: parse arguments, call the library, map errors to one clear
//! message and an exit code.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand, ValueEnum};

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
        /// Run the rules and statistical aggregations on an Apache Ballista cluster: the
        /// scheduler's address, df://HOST:PORT (`medaudit scheduler`). --out and the shipped
        /// datasets must be on a file system every executor sees at the same path. Needs a
        /// build with `--features distributed`; see docs/distributed.md.
        #[arg(long, value_name = "df://HOST:PORT")]
        cluster: Option<String>,
        /// Parallel partitions per query (default: the number of cores). With --cluster, the
        /// tasks each stage is split into: at least the cluster's task slots (executors ×
        /// --vcores).
        #[arg(long)]
        partitions: Option<usize>,
    },
    /// Start a Ballista scheduler for `run --cluster`, with medaudit's functions registered
    /// (runs until stopped). See docs/distributed.md.
    #[cfg(feature = "distributed")]
    Scheduler {
        /// Address to listen on.
        #[arg(long, default_value = "0.0.0.0")]
        bind_host: String,
        /// Port to listen on.
        #[arg(long, default_value_t = 50050)]
        port: u16,
        /// Host name or address the executors and clients reach this machine by.
        #[arg(long, default_value = "localhost")]
        external_host: String,
    },
    /// Start a Ballista executor for `run --cluster`, with medaudit's functions registered
    /// (runs until stopped). See docs/distributed.md.
    #[cfg(feature = "distributed")]
    Executor {
        /// The scheduler: df://HOST:PORT.
        #[arg(long, default_value = "df://localhost:50050")]
        scheduler: String,
        /// Address to listen on.
        #[arg(long, default_value = "0.0.0.0")]
        bind_host: String,
        /// Host name or address the scheduler, the other executors and the clients reach
        /// this machine by (default: the address the scheduler sees).
        #[arg(long)]
        external_host: Option<String>,
        /// Arrow Flight port (shuffle and result data).
        #[arg(long, default_value_t = 50051)]
        port: u16,
        /// gRPC port (tasks pushed by the scheduler).
        #[arg(long, default_value_t = 50052)]
        grpc_port: u16,
        /// Tasks run at once (default: the number of cores).
        #[arg(long)]
        vcores: Option<usize>,
        /// Folder for shuffle files and spills (default: a temporary folder); local disk.
        #[arg(long)]
        work_dir: Option<PathBuf>,
        /// Memory the tasks may hold together before they spill (e.g. 16GiB), split evenly
        /// over the task slots. Default: 70 % of the machine's memory.
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
        /// Case store folder (see `medaudit cases`) into which the night's findings are merged.
        #[arg(long)]
        cases: Option<PathBuf>,
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
    /// The case store: merge a run's findings and sample, list cases, show one.
    Cases {
        #[command(subcommand)]
        cmd: CasesCmd,
    },
    /// Record review decisions on cases (reviewers).
    Review {
        #[command(subcommand)]
        cmd: ReviewCmd,
    },
    /// The deduction list for a month's payment: confirmed violations per facility.
    Deductions {
        #[command(flatten)]
        who: StoreArgs,
        /// The month of the payment the deductions go into (YYYY-MM).
        #[arg(long)]
        month: String,
        /// Record the ready deductions as deducted in that month.
        #[arg(long)]
        record: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Export a filtered set of cases to CSV (UTF-8 with BOM), Excel (.xlsx) or Parquet.
    /// ID numbers and names are masked unless an investigator states a purpose.
    Export {
        #[command(flatten)]
        who: StoreArgs,
        #[command(flatten)]
        filter: FilterArgs,
        /// The file to write; the format follows its extension unless --format is given.
        #[arg(long)]
        out: PathBuf,
        #[arg(long, value_enum)]
        format: Option<ExportFormatArg>,
        /// Export ID numbers and names in full (investigators only; needs --purpose; logged).
        #[arg(long)]
        unmasked: bool,
        /// Why the unmasked data is needed (recorded in the audit log).
        #[arg(long)]
        purpose: Option<String>,
    },
    /// Horvitz–Thompson estimates of the violation rate and money at stake from a run's
    /// second-review sample, per locality and overall, and rule precision.
    Estimate {
        #[command(flatten)]
        who: StoreArgs,
        /// The run whose sample to use (default: the latest merged run with a sample).
        #[arg(long)]
        run: Option<String>,
        /// Confidence level of the intervals.
        #[arg(long, default_value_t = 0.95)]
        confidence: f64,
        #[arg(long)]
        json: bool,
    },
    /// Users and roles of the case store.
    Users {
        #[command(subcommand)]
        cmd: UsersCmd,
    },
    /// The tamper-evident audit log of the case store.
    Audit {
        #[command(subcommand)]
        cmd: AuditCmd,
    },
    /// The review workbench: a web application (in Chinese) where reviewers sign in with the
    /// case store's users, work through the queue and record decisions.
    Serve {
        /// The case store folder.
        #[arg(long, env = "MEDAUDIT_STORE")]
        store: PathBuf,
        /// Address and port to listen on (keep it on localhost or behind an HTTPS proxy).
        #[arg(long, default_value = "127.0.0.1:8080")]
        bind: std::net::SocketAddr,
        /// Minutes without a request after which a session ends.
        #[arg(long, default_value_t = 30)]
        session_minutes: u64,
        /// Mark the session cookie Secure (when served through HTTPS).
        #[arg(long)]
        secure_cookie: bool,
    },
    /// The rules: list them, or show one's documentation.
    Rules {
        #[command(subcommand)]
        cmd: RulesCmd,
        /// Rule configuration (shows what is disabled and the parameters in force).
        #[arg(long, global = true)]
        rules_config: Option<PathBuf>,
    },
    /// Reports for the agency: monthly (月报表), quarterly (季报), half-year and annual
    /// operation analysis, as Excel (.xlsx) and a self-contained HTML page with charts.
    Report {
        #[command(subcommand)]
        kind: ReportKindCmd,
        #[command(flatten)]
        args: ReportArgs,
    },
}

#[derive(Subcommand)]
enum ReportKindCmd {
    /// The monthly report (due the 5th of the next month, moved past holidays).
    Monthly {
        /// The month, YYYY-MM.
        #[arg(long)]
        month: String,
    },
    /// The quarterly report (employee subsidy 季报) with the funding-request figures.
    Quarterly {
        /// The quarter, YYYY-Qn.
        #[arg(long)]
        quarter: String,
    },
    /// The half-year operation analysis (January to June; due 15 July).
    HalfYear {
        #[arg(long)]
        year: i32,
    },
    /// The annual operation analysis (due 20 January of the next year).
    Annual {
        #[arg(long)]
        year: i32,
    },
}

/// Where a report's data comes from and where it goes.
#[derive(Args, Clone)]
struct ReportArgs {
    /// Output folder of `medaudit run` (repeat for runs over distinct data).
    #[arg(long, global = true)]
    run: Vec<PathBuf>,
    /// A nightly history store (instead of --run).
    #[arg(long, global = true, conflicts_with = "run")]
    history: Option<PathBuf>,
    /// Folder of the report inputs: funds_raised.csv, allocations.csv, inspections.csv,
    /// premium_base.csv (docs/report-inputs.md).
    #[arg(long, global = true)]
    inputs: Option<PathBuf>,
    /// Case store folder: medical-record audits, deductions, confirmed violations.
    #[arg(long, global = true)]
    cases: Option<PathBuf>,
    /// Output folder (replaced atomically).
    #[arg(long, global = true)]
    out: Option<PathBuf>,
    /// Reporting configuration replacing datasets/report/reporting.toml.
    #[arg(long, global = true)]
    reporting: Option<PathBuf>,
    /// Policy folder replacing the shipped policy files.
    #[arg(long, global = true)]
    policy: Option<PathBuf>,
    /// Working-day calendar folder replacing the shipped one.
    #[arg(long, global = true)]
    calendar: Option<PathBuf>,
}

/// The case store and the acting user. The password comes from `MEDAUDIT_PASSWORD` or a
/// prompt.
#[derive(Args, Clone)]
struct StoreArgs {
    /// Case store folder (created when missing).
    #[arg(long, env = "MEDAUDIT_STORE")]
    store: PathBuf,
    /// The acting user (password from MEDAUDIT_PASSWORD, else prompted).
    #[arg(long, env = "MEDAUDIT_USER")]
    user: String,
}

/// Which cases (every option narrows; comma-separated lists are alternatives).
#[derive(Args, Clone, Default)]
struct FilterArgs {
    /// Rule ids (e.g. DUP001).
    #[arg(long, value_delimiter = ',')]
    rule: Vec<String>,
    /// Finding categories (e.g. duplicate_billing).
    #[arg(long, value_delimiter = ',')]
    category: Vec<String>,
    /// Facility codes (fixmedins_code).
    #[arg(long, value_delimiter = ',')]
    facility: Vec<String>,
    /// Localities: prefixes of insu_admdvs (e.g. 4114).
    #[arg(long, value_delimiter = ',')]
    locality: Vec<String>,
    /// Settled on or after this date (YYYY-MM-DD).
    #[arg(long, value_parser = parse_date)]
    from: Option<NaiveDate>,
    /// Settled on or before this date (YYYY-MM-DD).
    #[arg(long, value_parser = parse_date)]
    to: Option<NaiveDate>,
    /// Statuses: flagged, sampled, in_review, confirmed, appealed, dismissed, deducted, recovered.
    #[arg(long, value_delimiter = ',')]
    status: Vec<String>,
    /// Minimum amount at risk (yuan).
    #[arg(long)]
    min_amount: Option<String>,
    /// Case types: settlement, person, facility.
    #[arg(long = "type", value_delimiter = ',')]
    entity_type: Vec<String>,
    /// Only cases the latest run still flags.
    #[arg(long)]
    active: bool,
    /// At most this many cases (largest amounts first).
    #[arg(long)]
    limit: Option<usize>,
}

impl FilterArgs {
    fn to_filter(&self) -> medaudit::Result<medaudit::cases::Filter> {
        let mut status = Vec::new();
        for s in &self.status {
            status.push(s.parse::<medaudit::cases::Status>()?);
        }
        let min_amount = match &self.min_amount {
            Some(m) => Some(
                m.trim()
                    .parse::<rust_decimal::Decimal>()
                    .map_err(|_| medaudit::input_err!("--min-amount `{m}` is not an amount in yuan"))?,
            ),
            None => None,
        };
        Ok(medaudit::cases::Filter {
            rule: self.rule.clone(),
            category: self.category.clone(),
            facility: self.facility.clone(),
            locality: self.locality.clone(),
            from: self.from,
            to: self.to,
            status,
            min_amount,
            entity_type: self.entity_type.clone(),
            active_only: self.active,
            min_risk: None,
            limit: self.limit,
        })
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum ExportFormatArg {
    Csv,
    Xlsx,
    Parquet,
}

#[derive(Subcommand)]
enum CasesCmd {
    /// Merge the output folder of `medaudit run` (findings, sample, evidence); idempotent.
    Merge {
        #[command(flatten)]
        who: StoreArgs,
        /// The run's output folder.
        run: PathBuf,
    },
    /// List cases, largest amount at risk first.
    List {
        #[command(flatten)]
        who: StoreArgs,
        #[command(flatten)]
        filter: FilterArgs,
        #[arg(long)]
        json: bool,
    },
    /// Show a case: the settlement, its fee lines, every finding with its evidence, the
    /// person's other settlements that year, decisions and history.
    Show {
        #[command(flatten)]
        who: StoreArgs,
        /// A settlement id, a case number (C12), or facility:CODE / person:PSN_NO.
        reference: String,
        /// Show ID numbers and names in full (investigators only; needs --purpose; logged).
        #[arg(long)]
        unmasked: bool,
        #[arg(long)]
        purpose: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ReviewCmd {
    /// Put a flagged case into the review by hand (it then has no inclusion probability).
    Sample {
        #[command(flatten)]
        who: StoreArgs,
        case: String,
        #[arg(long)]
        note: String,
    },
    /// Start reviewing sampled cases (the acting user becomes their reviewer).
    Start {
        #[command(flatten)]
        who: StoreArgs,
        #[arg(required = true)]
        cases: Vec<String>,
    },
    /// Confirm a violation: the amount to deduct and the facts.
    Confirm {
        #[command(flatten)]
        who: StoreArgs,
        case: String,
        /// Amount to deduct or recover, in yuan.
        #[arg(long)]
        amount: String,
        /// The facts found (违规事实).
        #[arg(long)]
        note: String,
        /// facility:CODE or person:PSN_NO (default: the facility for direct settlements,
        /// the person for manual reimbursements).
        #[arg(long)]
        recover_from: Option<String>,
        /// Date of the decision (default: today).
        #[arg(long, value_parser = parse_date)]
        date: Option<NaiveDate>,
    },
    /// Dismiss a case: not a violation.
    Dismiss {
        #[command(flatten)]
        who: StoreArgs,
        case: String,
        #[arg(long)]
        reason: String,
    },
    /// Put a dismissed case back into review.
    Reopen {
        #[command(flatten)]
        who: StoreArgs,
        case: String,
        #[arg(long)]
        reason: String,
    },
    /// Record a party's confirmation of a confirmed violation (insurer, agency, facility).
    Confirmation {
        #[command(flatten)]
        who: StoreArgs,
        case: String,
        /// insurer, agency or facility.
        #[arg(long)]
        party: String,
        /// The document recording it (letter number, minutes).
        #[arg(long, default_value = "")]
        reference: String,
        #[arg(long, value_parser = parse_date)]
        date: Option<NaiveDate>,
    },
    /// Record the facility's appeal (申诉) against a confirmed violation, before deduction.
    Appeal {
        #[command(flatten)]
        who: StoreArgs,
        case: String,
        #[arg(long)]
        reason: String,
        #[arg(long, value_parser = parse_date)]
        date: Option<NaiveDate>,
    },
    /// Record how an appeal ended: upheld, accepted, or adjusted with a new amount.
    ResolveAppeal {
        #[command(flatten)]
        who: StoreArgs,
        case: String,
        #[arg(long, value_enum)]
        outcome: AppealArg,
        /// The new amount (yuan) for `adjusted`.
        #[arg(long)]
        amount: Option<String>,
        #[arg(long)]
        note: String,
    },
    /// Record one case as deducted from the facility's payment of a month.
    Deduct {
        #[command(flatten)]
        who: StoreArgs,
        case: String,
        #[arg(long)]
        month: String,
    },
    /// Record a manual reimbursement's amount as recovered from the person.
    Recover {
        #[command(flatten)]
        who: StoreArgs,
        case: String,
        #[arg(long, value_parser = parse_date)]
        date: Option<NaiveDate>,
        #[arg(long, default_value = "")]
        note: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum AppealArg {
    Upheld,
    Accepted,
    Adjusted,
}

#[derive(Subcommand)]
enum UsersCmd {
    /// Create the first administrator of a new store (password from MEDAUDIT_PASSWORD or a
    /// prompt).
    Init {
        #[arg(long, env = "MEDAUDIT_STORE")]
        store: PathBuf,
        #[arg(long, env = "MEDAUDIT_USER")]
        user: String,
    },
    /// Add a user (administrators; the new password from MEDAUDIT_NEW_PASSWORD or a prompt).
    Add {
        #[command(flatten)]
        who: StoreArgs,
        name: String,
        /// reviewer, investigator, admin (repeatable or comma-separated).
        #[arg(long, required = true, value_delimiter = ',')]
        role: Vec<String>,
    },
    /// List the users.
    List {
        #[command(flatten)]
        who: StoreArgs,
    },
    /// Replace a user's roles.
    Roles {
        #[command(flatten)]
        who: StoreArgs,
        name: String,
        #[arg(long, required = true, value_delimiter = ',')]
        role: Vec<String>,
    },
    /// Disable a user.
    Disable {
        #[command(flatten)]
        who: StoreArgs,
        name: String,
    },
    /// Enable a disabled user.
    Enable {
        #[command(flatten)]
        who: StoreArgs,
        name: String,
    },
    /// Set a password (one's own, or anyone's for an administrator) from
    /// MEDAUDIT_NEW_PASSWORD or a prompt.
    Passwd {
        #[command(flatten)]
        who: StoreArgs,
        name: Option<String>,
    },
}

#[derive(Subcommand)]
enum AuditCmd {
    /// Check the hash chain of the audit log; fails when an entry was changed.
    Verify {
        #[command(flatten)]
        who: StoreArgs,
    },
    /// Show the latest entries, of all cases or of one.
    Log {
        #[command(flatten)]
        who: StoreArgs,
        #[arg(long)]
        case: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
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

/// The runtime of `medaudit scheduler` / `medaudit executor` (deep plans need a large stack,
/// as Ballista's own binaries use).
#[cfg(feature = "distributed")]
fn server_runtime() -> medaudit::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(32 * 1024 * 1024)
        .build()
        .map_err(|e| medaudit::Error::Other(format!("starting the runtime: {e}")))
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
            cluster,
            partitions,
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
                cluster,
                partitions,
                ..Default::default()
            };
            let s = medaudit::run::run(&opts)?;
            print!("{}", medaudit::report_text::run_summary(&s));
            Ok(0)
        }
        #[cfg(feature = "distributed")]
        Cmd::Scheduler { bind_host, port, external_host } => {
            let opts = medaudit::distributed::SchedulerOptions { bind_host, port, external_host };
            server_runtime()?.block_on(medaudit::distributed::run_scheduler(&opts))?;
            Ok(0)
        }
        #[cfg(feature = "distributed")]
        Cmd::Executor {
            scheduler,
            bind_host,
            external_host,
            port,
            grpc_port,
            vcores,
            work_dir,
            memory_limit,
        } => {
            let mut opts = medaudit::distributed::ExecutorOptions {
                scheduler,
                bind_host,
                external_host,
                port,
                grpc_port,
                work_dir,
                memory_limit,
                ..Default::default()
            };
            if let Some(v) = vcores {
                opts.vcores = v;
            }
            server_runtime()?.block_on(medaudit::distributed::run_executor(&opts))?;
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
            cases,
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
                cases,
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
        Cmd::Cases { cmd } => cases_cmd(cmd).map(|()| 0),
        Cmd::Review { cmd } => review_cmd(cmd).map(|()| 0),
        Cmd::Deductions { who, month, record, json } => {
            let (mut store, actor) = login(&who)?;
            if record {
                let done = store.record_deductions(&actor, &month)?;
                eprintln!("已登记 {} 件扣款（{month}）", done.len());
            }
            let list = store.deductions(&actor, &month)?;
            if json {
                println!("{}", to_json(&list)?);
            } else {
                print!("{}", medaudit::cases::text::deduction_list(&list));
            }
            Ok(0)
        }
        Cmd::Export { who, filter, out, format, unmasked, purpose } => {
            let (store, actor) = login(&who)?;
            let format = match format {
                Some(ExportFormatArg::Csv) => medaudit::cases::ExportFormat::Csv,
                Some(ExportFormatArg::Xlsx) => medaudit::cases::ExportFormat::Xlsx,
                Some(ExportFormatArg::Parquet) => medaudit::cases::ExportFormat::Parquet,
                None => medaudit::cases::ExportFormat::from_path(&out).ok_or_else(|| {
                    medaudit::input_err!(
                        "{}: give --format or a .csv, .xlsx or .parquet file name",
                        out.display()
                    )
                })?,
            };
            let unmask =
                unmask_purpose(unmasked, purpose)?.map(|purpose| medaudit::cases::Unmask { purpose });
            let r = store.export(&actor, &filter.to_filter()?, &out, format, unmask.as_ref())?;
            println!(
                "已导出 {} 件案件到 {}（{}，{}），SHA-256 {}",
                r.rows,
                r.path.display(),
                r.format.as_str(),
                if r.masked { "证件号码和姓名已脱敏" } else { "未脱敏，已记入审计日志" },
                r.sha256
            );
            Ok(0)
        }
        Cmd::Estimate { who, run, confidence, json } => {
            let (store, actor) = login(&who)?;
            let e = store.estimate(&actor, run.as_deref(), confidence)?;
            if json {
                println!("{}", to_json(&e)?);
            } else {
                print!(
                    "{}",
                    medaudit::cases::text::estimate(&e, &medaudit::cases::text::Labels::load_default())
                );
            }
            Ok(0)
        }
        Cmd::Users { cmd } => users_cmd(cmd).map(|()| 0),
        Cmd::Audit { cmd } => match cmd {
            AuditCmd::Verify { who } => {
                let (store, actor) = login(&who)?;
                let r = store.verify_audit(&actor)?;
                print!("{}", medaudit::cases::text::audit_report(&r));
                if r.ok() { Ok(0) } else { Err(medaudit::other_err!("the audit log does not verify")) }
            }
            AuditCmd::Log { who, case, limit } => {
                let (store, actor) = login(&who)?;
                let case = match case {
                    Some(c) => Some(store.resolve(&medaudit::cases::CaseRef::parse(&c))?),
                    None => None,
                };
                for e in store.audit_entries(&actor, case, limit)? {
                    println!(
                        "{} {} {} {} {}{}",
                        e.seq,
                        e.at,
                        e.user,
                        e.action,
                        e.case_id.map(|c| format!("C{c} ")).unwrap_or_default(),
                        e.detail
                    );
                }
                Ok(0)
            }
        },
        Cmd::Report { kind, args } => report_cmd(kind, args).map(|()| 0),
        Cmd::Serve { store, bind, session_minutes, secure_cookie } => {
            if session_minutes == 0 {
                return Err(medaudit::input_err!("--session-minutes must be at least 1"));
            }
            let mut cfg = medaudit::web::Config::new(store);
            cfg.session_idle = std::time::Duration::from_secs(session_minutes.saturating_mul(60));
            cfg.secure_cookie = secure_cookie;
            medaudit::web::serve(cfg, bind)?;
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

fn to_json<T: serde::Serialize>(v: &T) -> medaudit::Result<String> {
    serde_json::to_string_pretty(v).map_err(|e| medaudit::other_err!("writing JSON: {e}"))
}

/// A password from the environment variable `var`, else prompted (twice when `confirm`).
fn password(var: &str, prompt: &str, confirm: bool) -> medaudit::Result<String> {
    if let Ok(p) = std::env::var(var) {
        return Ok(p);
    }
    if !std::io::stdin().is_terminal() {
        return Err(medaudit::input_err!("no password: set {var} or run in a terminal"));
    }
    let p =
        rpassword::prompt_password(prompt).map_err(|e| medaudit::other_err!("reading the password: {e}"))?;
    if confirm {
        let again = rpassword::prompt_password("再次输入密码: ")
            .map_err(|e| medaudit::other_err!("reading the password: {e}"))?;
        if again != p {
            return Err(medaudit::input_err!("the two passwords differ"));
        }
    }
    Ok(p)
}

/// Opens the store and logs the acting user in.
fn login(who: &StoreArgs) -> medaudit::Result<(medaudit::cases::Store, medaudit::cases::Actor)> {
    let store = medaudit::cases::Store::open(&who.store)?;
    if !store.has_users()? {
        return Err(medaudit::input_err!(
            "the case store {} has no users yet: create the first administrator with `medaudit users init`",
            who.store.display()
        ));
    }
    let pw = password("MEDAUDIT_PASSWORD", &format!("{} 的密码: ", who.user), false)?;
    let actor = store.login(&who.user, &pw)?;
    Ok((store, actor))
}

fn unmask_purpose(unmasked: bool, purpose: Option<String>) -> medaudit::Result<Option<String>> {
    match (unmasked, purpose) {
        (true, Some(p)) if !p.trim().is_empty() => Ok(Some(p)),
        (true, _) => Err(medaudit::input_err!("--unmasked needs --purpose: why the full data is needed")),
        (false, Some(_)) => Err(medaudit::input_err!("--purpose is only for --unmasked")),
        (false, None) => Ok(None),
    }
}

fn case_id(store: &medaudit::cases::Store, reference: &str) -> medaudit::Result<i64> {
    Ok(store.resolve(&medaudit::cases::CaseRef::parse(reference))?)
}

fn parse_amount(s: &str) -> medaudit::Result<rust_decimal::Decimal> {
    s.trim().parse().map_err(|_| medaudit::input_err!("`{s}` is not an amount in yuan"))
}

fn cases_cmd(cmd: CasesCmd) -> medaudit::Result<()> {
    use medaudit::cases::text;
    match cmd {
        CasesCmd::Merge { who, run } => {
            let (mut store, actor) = login(&who)?;
            let r = store.merge_run(&actor, &run)?;
            print!("{}", text::merge_report(&r));
        }
        CasesCmd::List { who, filter, json } => {
            let (store, actor) = login(&who)?;
            let rows = store.list(&actor, &filter.to_filter()?)?;
            if json {
                println!("{}", to_json(&rows)?);
            } else {
                print!("{}", text::case_list(&rows));
            }
        }
        CasesCmd::Show { who, reference, unmasked, purpose, json } => {
            let (store, actor) = login(&who)?;
            let purpose = unmask_purpose(unmasked, purpose)?;
            let d = store.show(&actor, &medaudit::cases::CaseRef::parse(&reference), purpose.as_deref())?;
            if json {
                println!("{}", to_json(&d)?);
            } else {
                print!("{}", text::case_detail(&d, &text::Labels::load_default()));
            }
        }
    }
    Ok(())
}

fn review_cmd(cmd: ReviewCmd) -> medaudit::Result<()> {
    use medaudit::cases::{AppealOutcome, Confirmation, RecoverFrom, Status};
    let done = |case: &str, s: Status| println!("案件 {case}：{}", s.label());
    match cmd {
        ReviewCmd::Sample { who, case, note } => {
            let (mut store, actor) = login(&who)?;
            let id = case_id(&store, &case)?;
            done(&case, store.sample_case(&actor, id, &note)?);
        }
        ReviewCmd::Start { who, cases } => {
            let (mut store, actor) = login(&who)?;
            for case in &cases {
                let id = case_id(&store, case)?;
                done(case, store.start_review(&actor, id)?);
            }
        }
        ReviewCmd::Confirm { who, case, amount, note, recover_from, date } => {
            let (mut store, actor) = login(&who)?;
            let id = case_id(&store, &case)?;
            let rf = match recover_from.as_deref() {
                None => None,
                Some(s) => Some(match s.split_once(':') {
                    Some(("facility", c)) if !c.is_empty() => RecoverFrom::Facility(c.to_string()),
                    Some(("person", p)) if !p.is_empty() => RecoverFrom::Person(p.to_string()),
                    _ => {
                        return Err(medaudit::input_err!(
                            "--recover-from is facility:CODE or person:PSN_NO, not `{s}`"
                        ));
                    }
                }),
            };
            done(&case, store.confirm(&actor, id, parse_amount(&amount)?, &note, rf, date)?);
        }
        ReviewCmd::Dismiss { who, case, reason } => {
            let (mut store, actor) = login(&who)?;
            let id = case_id(&store, &case)?;
            done(&case, store.dismiss(&actor, id, &reason)?);
        }
        ReviewCmd::Reopen { who, case, reason } => {
            let (mut store, actor) = login(&who)?;
            let id = case_id(&store, &case)?;
            done(&case, store.reopen(&actor, id, &reason)?);
        }
        ReviewCmd::Confirmation { who, case, party, reference, date } => {
            let (mut store, actor) = login(&who)?;
            let id = case_id(&store, &case)?;
            let c = Confirmation { party: party.parse()?, date, reference };
            done(&case, store.record_confirmation(&actor, id, &c)?);
        }
        ReviewCmd::Appeal { who, case, reason, date } => {
            let (mut store, actor) = login(&who)?;
            let id = case_id(&store, &case)?;
            done(&case, store.appeal(&actor, id, &reason, date)?);
        }
        ReviewCmd::ResolveAppeal { who, case, outcome, amount, note } => {
            let (mut store, actor) = login(&who)?;
            let id = case_id(&store, &case)?;
            let outcome = match (outcome, amount) {
                (AppealArg::Upheld, None) => AppealOutcome::Upheld,
                (AppealArg::Accepted, None) => AppealOutcome::Accepted,
                (AppealArg::Adjusted, Some(a)) => AppealOutcome::Adjusted(parse_amount(&a)?),
                (AppealArg::Adjusted, None) => {
                    return Err(medaudit::input_err!("--outcome adjusted needs --amount"));
                }
                (_, Some(_)) => return Err(medaudit::input_err!("--amount is only for --outcome adjusted")),
            };
            done(&case, store.resolve_appeal(&actor, id, outcome, &note)?);
        }
        ReviewCmd::Deduct { who, case, month } => {
            let (mut store, actor) = login(&who)?;
            let id = case_id(&store, &case)?;
            done(&case, store.deduct(&actor, id, &month)?);
        }
        ReviewCmd::Recover { who, case, date, note } => {
            let (mut store, actor) = login(&who)?;
            let id = case_id(&store, &case)?;
            done(&case, store.recover(&actor, id, date, &note)?);
        }
    }
    Ok(())
}

fn roles(list: &[String]) -> medaudit::Result<Vec<medaudit::cases::Role>> {
    list.iter().map(|r| r.parse::<medaudit::cases::Role>().map_err(Into::into)).collect()
}

fn users_cmd(cmd: UsersCmd) -> medaudit::Result<()> {
    match cmd {
        UsersCmd::Init { store, user } => {
            let mut s = medaudit::cases::Store::open(&store)?;
            if s.has_users()? {
                return Err(medaudit::input_err!(
                    "the case store {} already has users: an administrator adds more with `medaudit users add`",
                    store.display()
                ));
            }
            let pw = password("MEDAUDIT_PASSWORD", &format!("{user} 的新密码: "), true)?;
            s.init_admin(&user, &pw)?;
            println!("已创建管理员 {user}（案件库 {}）", store.display());
        }
        UsersCmd::Add { who, name, role } => {
            let (mut s, actor) = login(&who)?;
            let roles = roles(&role)?;
            let pw = password("MEDAUDIT_NEW_PASSWORD", &format!("{name} 的新密码: "), true)?;
            s.add_user(&actor, &name, &roles, &pw)?;
            println!("已添加用户 {name}（{}）", role.join(","));
        }
        UsersCmd::List { who } => {
            let (s, actor) = login(&who)?;
            for u in s.users(&actor)? {
                println!(
                    "{}  {}  {}  {} {}",
                    u.name,
                    u.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(","),
                    if u.active { "启用" } else { "停用" },
                    u.created_at,
                    u.created_by
                );
            }
        }
        UsersCmd::Roles { who, name, role } => {
            let (mut s, actor) = login(&who)?;
            s.set_roles(&actor, &name, &roles(&role)?)?;
            println!("用户 {name} 的角色：{}", role.join(","));
        }
        UsersCmd::Disable { who, name } => {
            let (mut s, actor) = login(&who)?;
            s.set_active(&actor, &name, false)?;
            println!("已停用用户 {name}");
        }
        UsersCmd::Enable { who, name } => {
            let (mut s, actor) = login(&who)?;
            s.set_active(&actor, &name, true)?;
            println!("已启用用户 {name}");
        }
        UsersCmd::Passwd { who, name } => {
            let (mut s, actor) = login(&who)?;
            let name = name.unwrap_or_else(|| actor.name.clone());
            let pw = password("MEDAUDIT_NEW_PASSWORD", &format!("{name} 的新密码: "), true)?;
            s.set_password(&actor, &name, &pw)?;
            println!("已设置 {name} 的密码");
        }
    }
    Ok(())
}

fn report_cmd(kind: ReportKindCmd, a: ReportArgs) -> medaudit::Result<()> {
    use medaudit::report::{self, Period, Source};
    let period = match kind {
        ReportKindCmd::Monthly { month } => Period::month(&month)?,
        ReportKindCmd::Quarterly { quarter } => Period::quarter(&quarter)?,
        ReportKindCmd::HalfYear { year } => Period::half_year(year),
        ReportKindCmd::Annual { year } => Period::annual(year),
    };
    let source = match a.history {
        Some(s) => Source::Store(s),
        None if a.run.is_empty() => {
            return Err(medaudit::input_err!(
                "give the data: --run DIR (output of `medaudit run`) or --history STORE"
            ));
        }
        None => Source::Runs(a.run),
    };
    let out = a.out.unwrap_or_else(|| PathBuf::from("reports").join(period.stem()));
    let opts = report::ReportOptions {
        period,
        source,
        inputs: a.inputs,
        cases: a.cases,
        reporting: a.reporting,
        policy: a.policy,
        calendar: a.calendar,
        generated_at: None,
    };
    let r = report::build(&opts)?;
    let dir = report::write(&r, &out)?;
    let (x, h) = report::file_names(&r);
    println!("{}", r.title);
    match r.due.due {
        Some(d) => println!(
            "报送截止日 {d}{}",
            if r.due.note.is_empty() { String::new() } else { format!("（{}）", r.due.note) }
        ),
        None => println!("报送截止日 未定（{}）", r.due.note),
    }
    println!("{}\n{}", dir.join(x).display(), dir.join(h).display());
    Ok(())
}
