//! The DataFusion session the rules run in: the accepted input tables, the code table, the
//! knowledge base and two documented views, all file-backed (Ballista-compatible: no
//! in-memory tables; the views are logical plans over the files).

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::datasource::file_format::csv::CsvFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::{FairSpillPool, TrackConsumersPool};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::error::{Error, Result};

/// Where the session's tables come from.
#[derive(Debug, Clone)]
pub struct Tables {
    /// Accepted rows: `<data_dir>/<table>.parquet` or a folder `<data_dir>/<table>/` of parts.
    pub data_dir: PathBuf,
    /// Knowledge-base folders of `<stem>.csv` files, registered as `kb_<stem>`: the shipped
    /// default first, overrides (`--kb DIR`) later; a later folder replaces a table by stem.
    pub kb_dirs: Vec<PathBuf>,
    /// The code table (`datasets/codes/codes.csv`), registered as `code`.
    pub codes: PathBuf,
}

impl Tables {
    /// The shipped code table and knowledge base (`datasets/kb`, if present) over `data_dir`,
    /// with `kb_override` (`--kb DIR`) replacing tables by stem.
    pub fn new(data_dir: impl Into<PathBuf>, kb_override: Option<PathBuf>) -> Self {
        let ds = crate::paths::datasets_dir();
        let mut kb_dirs = vec![ds.join("kb")];
        kb_dirs.extend(kb_override);
        Tables { data_dir: data_dir.into(), kb_dirs, codes: ds.join("codes/codes.csv") }
    }
}

/// `setl_valid`: the settlements that stand, i.e. neither a reversal row
/// (`refd_setl_flag = '1'`) nor cancelled by a reversal present in the data, with
/// `med_class` (the `med_type` class from `code`), `is_inpatient` (class `inpatient`, or
/// `52` maternity inpatient) and `fund_pay` (`hifp_pay + hifmi_pay + hifob_pay`, what the
/// funds paid: the amount at risk of a settlement that should not exist).
pub const VIEW_SETL_VALID: &str = "CREATE VIEW setl_valid AS
SELECT s.*,
       c.class AS med_class,
       COALESCE(c.class = 'inpatient' OR s.med_type = '52', FALSE) AS is_inpatient,
       s.hifp_pay + s.hifmi_pay + s.hifob_pay AS fund_pay
FROM setl s
LEFT JOIN (SELECT code, MIN(class) AS class FROM code WHERE field = 'med_type' GROUP BY code) c
       ON c.code = s.med_type
WHERE COALESCE(s.refd_setl_flag, '0') <> '1'
  AND NOT EXISTS (SELECT 1 FROM setl r
                  WHERE r.refd_setl_flag = '1' AND r.init_setl_id = s.setl_id)";

/// `stay`: one row per inpatient stay, i.e. per (`psn_no`, `fixmedins_code`, `mdtrt_id`) of
/// the inpatient rows of `setl_valid`: pieces settled separately (中途结算) are one stay.
/// Columns: `psn_no`, `fixmedins_code`, `mdtrt_id`, `begndate` (first admission),
/// `enddate` (last discharge), `pieces`, `dise_codg` (of the last piece), `med_type` (of the
/// first piece), `insu_admdvs`, `fix_blng_admdvs`, `refl_flag` (max over pieces),
/// `fund_pay` (sum), `medfee_sumamt` (sum).
pub const VIEW_STAY: &str = "CREATE VIEW stay AS
SELECT psn_no, fixmedins_code, mdtrt_id,
       MIN(begndate) AS begndate,
       MAX(enddate) AS enddate,
       COUNT(*) AS pieces,
       first_value(dise_codg ORDER BY enddate DESC, setl_time DESC, setl_id DESC) AS dise_codg,
       first_value(med_type ORDER BY begndate, setl_time, setl_id) AS med_type,
       MIN(insu_admdvs) AS insu_admdvs,
       MIN(fix_blng_admdvs) AS fix_blng_admdvs,
       MAX(refl_flag) AS refl_flag,
       SUM(fund_pay) AS fund_pay,
       SUM(medfee_sumamt) AS medfee_sumamt
FROM setl_valid
WHERE is_inpatient
GROUP BY psn_no, fixmedins_code, mdtrt_id";

/// The input tables the session looks for in `data_dir`.
pub const INPUT_TABLES: [&str; 5] = ["setl", "fee", "psn", "medins", "pay"];

/// The memory the query operators may hold by default: 2.5 GiB, so that a run stays under a
/// 4 GB peak with the Parquet readers' buffers, the batches in flight and the rest of the
/// process beside the pool.
pub const DEFAULT_MEMORY_LIMIT: u64 = 5 << 29;

/// How the query engine may use the machine.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Bytes the operators may reserve together (a DataFusion `FairSpillPool`): sorts,
    /// aggregations and repartitions spill to disk beyond their share; hash-join build sides
    /// and window buffers cannot spill and fail the query with a clear message instead.
    pub memory_limit: u64,
    /// Folder for spill files: a fresh sub-folder is made inside it and removed when the
    /// session ends. `None`: the system's temporary folder.
    pub spill_dir: Option<PathBuf>,
    /// Parallel partitions per query; default: the number of cores.
    pub target_partitions: usize,
    /// A Ballista scheduler (`df://HOST:PORT`) that plans and runs the queries on its
    /// executors instead of this process (cargo feature `distributed`; `docs/distributed.md`).
    /// The memory limit and spill folder then apply to the client only: the executors have
    /// their own (`medaudit executor --memory-limit --work-dir`).
    pub cluster: Option<String>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        EngineOptions {
            memory_limit: DEFAULT_MEMORY_LIMIT,
            spill_dir: None,
            target_partitions: cores,
            cluster: None,
        }
    }
}

impl EngineOptions {
    /// The settings in force, for the manifest.
    pub fn describe(&self) -> serde_json::Value {
        serde_json::json!({
            "memory_limit_bytes": self.memory_limit,
            "memory_limit": format_bytes(self.memory_limit),
            "memory_pool": "fair_spill",
            "spill": self.spill_dir.as_ref().map_or_else(
                || "system temporary folder".to_string(),
                |d| d.display().to_string()
            ),
            "target_partitions": self.target_partitions,
            "batch_size": BATCH_SIZE,
            "parquet_pushdown_filters": true,
            "cluster": self.cluster,
        })
    }
}

/// Parses a byte size: a number with an optional unit `B`, `K`/`KB`/`KiB`, `M`/`MB`/`MiB`,
/// `G`/`GB`/`GiB`, `T`/`TB`/`TiB` (case-insensitive; all units binary, 1 K = 1024), e.g. `3GiB`,
/// `512m`, `2.5G`.
pub fn parse_bytes(s: &str) -> std::result::Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad = || format!("`{s}` is not a size: write e.g. 3GiB, 512MiB or a number of bytes");
    let value: f64 = num.parse().map_err(|_| bad())?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(bad()),
    };
    let bytes = value * (1u64 << shift) as f64;
    if !bytes.is_finite() || bytes < 1.0 || bytes > u64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes as u64)
}

/// `3.0 GiB`-style text of a byte count.
pub fn format_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 { format!("{b} B") } else { format!("{v:.1} {}", UNITS[i]) }
}

/// Rows per batch in the query operators.
const BATCH_SIZE: usize = 8192;

fn session_config(opts: &EngineOptions) -> SessionConfig {
    SessionConfig::new()
        .with_target_partitions(opts.target_partitions.max(1))
        .with_batch_size(BATCH_SIZE)
        .with_information_schema(false)
        .set_bool("datafusion.sql_parser.parse_float_as_decimal", true)
        // Joins build a hash table of their left input once and stream the right input without
        // repartitioning it: the rules write the small side (a knowledge-base sheet, candidate
        // settlements, duplicate keys) first, so that the 100 M-row fee table is never shuffled
        // or built into a hash table (see queries/README.md).
        .set_bool("datafusion.optimizer.repartition_joins", false)
        // Late materialisation: the scan evaluates its filters (the rule's own and the dynamic
        // filter of a hash join whose build side is a knowledge-base sheet) on the filter
        // columns first and decodes the other columns only for the rows that pass, so a rule
        // about a few hundred item codes does not decode every column of every fee line. The
        // dynamic filters go first (optimizer::DynamicFiltersFirst), the rule's own in the
        // order written (no reordering by column size, which would put them first).
        .set_bool("datafusion.execution.parquet.pushdown_filters", true)
        .set_bool("datafusion.execution.parquet.reorder_filters", false)
}

/// The runtime: a fair spilling memory pool of `memory_limit` bytes (the five largest
/// consumers are named when a query runs out) and a disk manager for spill files.
fn runtime_env(opts: &EngineOptions) -> Result<Arc<RuntimeEnv>> {
    let limit = usize::try_from(opts.memory_limit).unwrap_or(usize::MAX);
    let pool =
        TrackConsumersPool::new(FairSpillPool::new(limit), NonZeroUsize::new(5).unwrap_or(NonZeroUsize::MIN));
    let mode = match &opts.spill_dir {
        Some(d) => {
            std::fs::create_dir_all(d).map_err(|e| Error::io("creating the spill folder", d, e))?;
            DiskManagerMode::Directories(vec![d.clone()])
        }
        None => DiskManagerMode::OsTmpDirectory,
    };
    RuntimeEnvBuilder::new()
        .with_memory_pool(Arc::new(pool))
        .with_disk_manager_builder(DiskManagerBuilder::default().with_mode(mode))
        .build_arc()
        .map_err(|e| Error::df("setting up the query runtime", e))
}

/// Builds the session: registers every input table found in `data_dir` (`setl` and `fee` are
/// required), `code`, every knowledge-base table and the views `setl_valid` and `stay`.
/// Which input tables are present: [`present_tables`]. Default [`EngineOptions`].
pub async fn session(tables: &Tables) -> Result<SessionContext> {
    session_with(tables, &EngineOptions::default()).await
}

/// [`session`] with the given memory limit, spill folder and parallelism.
pub async fn session_with(tables: &Tables, opts: &EngineOptions) -> Result<SessionContext> {
    let state = SessionStateBuilder::new()
        .with_config(session_config(opts))
        .with_runtime_env(runtime_env(opts)?)
        .with_default_features()
        .with_physical_optimizer_rule(Arc::new(super::optimizer::DynamicFiltersFirst))
        .build();
    let ctx = match &opts.cluster {
        None => SessionContext::new_with_state(state),
        Some(addr) => remote(addr, state).await?,
    };
    // After the Ballista upgrade, which replaces the state's functions with its defaults.
    for f in super::udf::functions() {
        ctx.register_udf(f);
    }
    for name in INPUT_TABLES {
        let spec = crate::schema::table(name).ok_or_else(|| crate::other_err!("no table spec for {name}"))?;
        match find_input(&tables.data_dir, name) {
            Some((url, path)) => register_parquet(&ctx, name, url, &path, spec).await?,
            None if spec.required => {
                return Err(crate::input_err!(
                    "table {name} not found in {}: expected {name}.parquet or a folder {name}/ of parts",
                    tables.data_dir.display()
                ));
            }
            None => {}
        }
    }
    register_csv(&ctx, "code", &tables.codes).await?;
    for (stem, path) in kb_files(&tables.kb_dirs)? {
        register_csv(&ctx, &format!("kb_{stem}"), &path).await?;
    }
    for v in [VIEW_SETL_VALID, VIEW_STAY] {
        ctx.sql(v).await.map_err(|e| Error::df("creating view", e))?;
    }
    Ok(ctx)
}

/// Computes the views `setl_valid` and `stay` once and replaces them in the session by
/// Parquet tables in `dir` (which the caller removes after the session ends). Every rule
/// and statistic reads them: as views, each query would recompute the reversal anti-join
/// and the stay aggregation over all settlements. File-backed, so a cluster can read them.
pub async fn materialize_views(ctx: &SessionContext, dir: &Path) -> Result<()> {
    // `stay` was planned over the view `setl_valid`: drop it, and define it again over the
    // materialised table before materialising it in turn.
    ctx.deregister_table("stay").map_err(|e| Error::df("materialising the view stay", e))?;
    materialize_query(ctx, "setl_valid", "SELECT * FROM setl_valid", dir).await?;
    ctx.sql(VIEW_STAY).await.map_err(|e| Error::df("creating view", e))?;
    materialize_query(ctx, "stay", "SELECT * FROM stay", dir).await
}

/// Writes the result of `query` to `dir/<name>.parquet` and registers it as the table `name`
/// (replacing a view or table of that name, which the query may read).
pub async fn materialize_query(ctx: &SessionContext, name: &str, query: &str, dir: &Path) -> Result<()> {
    use datafusion::dataframe::DataFrameWriteOptions;
    use datafusion::prelude::ParquetReadOptions;
    std::fs::create_dir_all(dir).map_err(|e| Error::io("creating", dir, e))?;
    let path = dir.join(format!("{name}.parquet"));
    let url = path.to_string_lossy().into_owned();
    let what = format!("materialising {name}");
    let df = ctx.sql(query).await.map_err(|e| Error::df(&what, e))?;
    // Read back with the query's own types: without a schema, strings would come back as
    // Utf8View, whose shared buffers make the sorts of the statistics over-count memory.
    let schema = df.schema().as_arrow().clone();
    df.write_parquet(&url, DataFrameWriteOptions::new().with_single_file_output(true), None)
        .await
        .map_err(|e| Error::df(&what, e))?;
    ctx.deregister_table(name).map_err(|e| Error::df(&what, e))?;
    ctx.register_parquet(name, &url, ParquetReadOptions::default().schema(&schema))
        .await
        .map_err(|e| Error::df(&what, e))?;
    Ok(())
}

#[cfg(feature = "distributed")]
async fn remote(addr: &str, state: datafusion::execution::SessionState) -> Result<SessionContext> {
    crate::distributed::connect(addr, state).await
}

#[cfg(not(feature = "distributed"))]
async fn remote(addr: &str, _state: datafusion::execution::SessionState) -> Result<SessionContext> {
    Err(crate::input_err!(
        "cannot run on the cluster {addr}: this medaudit was built without the `distributed` feature \
         (cargo build --release --features distributed)"
    ))
}

/// The input tables registered in the session.
pub fn present_tables(ctx: &SessionContext) -> Vec<String> {
    INPUT_TABLES.iter().filter(|t| ctx.table_exist(**t).unwrap_or(false)).map(|t| t.to_string()).collect()
}

fn find_input(dir: &Path, name: &str) -> Option<(String, PathBuf)> {
    let file = dir.join(format!("{name}.parquet"));
    if file.is_file() {
        return Some((file.to_string_lossy().into_owned(), file));
    }
    let folder = dir.join(name);
    if folder.is_dir() {
        return Some((format!("{}/", folder.to_string_lossy().trim_end_matches('/')), folder));
    }
    None
}

/// Registers a Parquet table with the contract's columns (all nullable, so that a file without
/// an optional column reads it as null) followed by any extra columns of the files.
async fn register_parquet(
    ctx: &SessionContext,
    name: &str,
    url: String,
    path: &Path,
    spec: &crate::schema::TableSpec,
) -> Result<()> {
    let table_url =
        ListingTableUrl::parse(&url).map_err(|e| Error::df(format!("table {name} at {url}"), e))?;
    let options = ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let file_schema = options
        .infer_schema(&ctx.state(), &table_url)
        .await
        .map_err(|e| Error::df(format!("reading the schema of {}", path.display()), e))?;
    let mut fields: Vec<Field> = Vec::new();
    for f in spec.fields {
        if let Ok(ff) = file_schema.field_with_name(f.name)
            && !compatible(ff.data_type(), &f.data_type())
        {
            return Err(crate::input_err!(
                "{}: column {} is {} but the contract stores it as {}",
                path.display(),
                f.name,
                ff.data_type(),
                f.data_type()
            ));
        }
        fields.push(Field::new(f.name, f.data_type(), true));
    }
    for ff in file_schema.fields() {
        if spec.field(ff.name()).is_none() {
            fields.push(Field::new(ff.name(), ff.data_type().clone(), true));
        }
    }
    let schema: SchemaRef = Arc::new(Schema::new(fields));
    let config = ListingTableConfig::new(table_url).with_listing_options(options).with_schema(schema);
    let table = ListingTable::try_new(config).map_err(|e| Error::df(format!("table {name}"), e))?;
    ctx.register_table(name, Arc::new(table)).map_err(|e| Error::df(format!("registering {name}"), e))?;
    Ok(())
}

fn compatible(file: &DataType, contract: &DataType) -> bool {
    use DataType::*;
    match (file, contract) {
        (Utf8 | LargeUtf8 | Utf8View, Utf8) => true,
        (Timestamp(_, None), Timestamp(_, None)) => true,
        (Date32 | Date64, Date32) => true,
        (Decimal128(_, s1), Decimal128(_, s2)) => s1 == s2,
        (a, b) => a == b,
    }
}

/// The knowledge-base files by stem: later folders replace earlier ones.
fn kb_files(dirs: &[PathBuf]) -> Result<std::collections::BTreeMap<String, PathBuf>> {
    let mut out = std::collections::BTreeMap::new();
    for (i, d) in dirs.iter().enumerate() {
        if !d.is_dir() {
            // The shipped default may be absent in a stripped install; an override must exist.
            if i == 0 {
                continue;
            }
            return Err(Error::config(d, "knowledge-base folder does not exist"));
        }
        let rd = std::fs::read_dir(d).map_err(|e| Error::io("listing knowledge-base folder", d, e))?;
        for e in rd {
            let e = e.map_err(|e| Error::io("listing knowledge-base folder", d, e))?;
            let p = e.path();
            if p.extension().is_none_or(|x| x != "csv") {
                continue;
            }
            let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or("").to_string();
            if stem.is_empty()
                || !stem.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                return Err(Error::config(
                    &p,
                    "a knowledge-base file name must be lower-case letters, digits and `_` (it becomes table kb_<name>)",
                ));
            }
            out.insert(stem, p);
        }
    }
    Ok(out)
}

/// Registers a CSV file (header row, `,`, `"` quoting, UTF-8) with every column `Utf8`, named
/// after its header. Empty fields read as null.
pub(crate) async fn register_csv(ctx: &SessionContext, name: &str, path: &Path) -> Result<()> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("reading", path, e))?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| Error::config(path, "not UTF-8: convert it first (e.g. `iconv -f GB18030 -t UTF-8`)"))?;
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    let headers = rdr.headers().map_err(|e| Error::config(path, format!("bad CSV header: {e}")))?.clone();
    let mut fields = Vec::new();
    for h in headers.iter() {
        let h = h.trim();
        if h.is_empty() {
            return Err(Error::config(path, "the CSV header has an empty column name"));
        }
        if fields.iter().any(|f: &Field| f.name() == h) {
            return Err(Error::config(path, format!("the CSV header repeats column `{h}`")));
        }
        fields.push(Field::new(h, DataType::Utf8, true));
    }
    let schema = Arc::new(Schema::new(fields));
    let format = CsvFormat::default()
        .with_has_header(true)
        .with_delimiter(b',')
        .with_quote(b'"')
        .with_newlines_in_values(true);
    let ext = path.extension().and_then(|e| e.to_str()).map(|e| format!(".{e}")).unwrap_or_default();
    let options = ListingOptions::new(Arc::new(format)).with_file_extension(ext);
    let url = ListingTableUrl::parse(path.to_string_lossy().as_ref())
        .map_err(|e| Error::df(format!("table {name} at {}", path.display()), e))?;
    let config = ListingTableConfig::new(url).with_listing_options(options).with_schema(schema);
    let table = ListingTable::try_new(config).map_err(|e| Error::df(format!("table {name}"), e))?;
    ctx.register_table(name, Arc::new(table)).map_err(|e| Error::df(format!("registering {name}"), e))?;
    Ok(())
}
