//! Where a report's data comes from: the output folder(s) of `medaudit run` or a nightly
//! history store, registered as file-backed DataFusion tables (`setl`, `pay`, `medins`,
//! `benefit_check`, `findings`), and the provenance the report states (run ids, input files
//! and their sha256 from the manifests).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::error::{Error, Result};

/// The data a report is built from.
#[derive(Debug, Clone)]
pub enum Source {
    /// One or more output folders of `medaudit run` (distinct settlements each).
    Runs(Vec<PathBuf>),
    /// A nightly history store: its current tables and results.
    Store(PathBuf),
}

/// One input file a run read.
#[derive(Debug, Clone, PartialEq)]
pub struct InputFile {
    pub table: String,
    pub path: String,
    pub sha256: String,
    pub rows: u64,
}

/// What a report was built from.
#[derive(Debug, Clone, Default)]
pub struct Provenance {
    /// `run` folders or `store`.
    pub kind: String,
    pub locations: Vec<String>,
    pub run_ids: Vec<String>,
    pub as_of: Vec<String>,
    pub input_files: Vec<InputFile>,
    pub versions: Vec<(String, String)>,
}

/// The session with the tables registered, and the provenance.
pub struct Loaded {
    pub ctx: SessionContext,
    pub provenance: Provenance,
    /// Tables present (`pay`, `medins` may be missing).
    pub tables: Vec<String>,
}

fn config() -> SessionConfig {
    SessionConfig::new()
        .with_target_partitions(std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))
        .with_information_schema(false)
        .set_bool("datafusion.sql_parser.parse_float_as_decimal", true)
}

async fn register(ctx: &SessionContext, name: &str, files: &[PathBuf]) -> Result<()> {
    let mut urls = Vec::with_capacity(files.len());
    for f in files {
        let abs = std::fs::canonicalize(f).map_err(|e| Error::io("opening", f, e))?;
        urls.push(
            ListingTableUrl::parse(abs.to_string_lossy())
                .map_err(|e| Error::df(format!("table {name}"), e))?,
        );
    }
    let options = ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let cfg = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .infer_schema(&ctx.state())
        .await
        .map_err(|e| Error::df(format!("reading the schema of {name}"), e))?;
    let t = ListingTable::try_new(cfg).map_err(|e| Error::df(format!("table {name}"), e))?;
    ctx.register_table(name, Arc::new(t)).map_err(|e| Error::df(format!("table {name}"), e))?;
    Ok(())
}

fn manifest(path: &Path, p: &mut Provenance) -> Result<()> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("reading", path, e))?;
    let m: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| crate::input_err!("{}: not a run manifest: {e}", path.display()))?;
    let run_id = m["run_id"]
        .as_str()
        .ok_or_else(|| crate::input_err!("{}: no run_id: not a run manifest", path.display()))?;
    p.run_ids.push(run_id.to_string());
    if let Some(a) = m["as_of"].as_str() {
        p.as_of.push(a.to_string());
    }
    for t in m["input"]["tables"].as_array().into_iter().flatten() {
        let table = t["table"].as_str().unwrap_or_default();
        for f in t["files"].as_array().into_iter().flatten() {
            p.input_files.push(InputFile {
                table: table.to_string(),
                path: f["path"].as_str().unwrap_or_default().to_string(),
                sha256: f["sha256"].as_str().unwrap_or_default().to_string(),
                rows: f["rows"].as_u64().unwrap_or(0),
            });
        }
    }
    if let Some(v) = m["versions"].as_object() {
        for (k, v) in v {
            let sha = v["sha256"].as_str().unwrap_or_default();
            if !p.versions.iter().any(|(a, b)| a == k && b == sha) {
                p.versions.push((k.clone(), sha.to_string()));
            }
        }
    }
    Ok(())
}

impl Source {
    /// Registers the tables and reads the provenance.
    pub async fn load(&self) -> Result<Loaded> {
        let ctx = SessionContext::new_with_config(config());
        let mut prov = Provenance::default();
        let mut files: Vec<(&str, Vec<PathBuf>)> =
            ["setl", "pay", "medins", "benefit_check", "findings"].iter().map(|t| (*t, Vec::new())).collect();
        match self {
            Source::Runs(dirs) => {
                if dirs.is_empty() {
                    return Err(crate::input_err!("no run folder given"));
                }
                prov.kind = "run".into();
                for d in dirs {
                    let m = d.join("manifest.json");
                    if !m.exists() {
                        return Err(crate::input_err!(
                            "{} is not an output folder of `medaudit run` (no manifest.json)",
                            d.display()
                        ));
                    }
                    manifest(&m, &mut prov)?;
                    prov.locations.push(d.display().to_string());
                    for (t, list) in files.iter_mut() {
                        let p = match *t {
                            "benefit_check" | "findings" => d.join(format!("{t}.parquet")),
                            _ => d.join("data").join(format!("{t}.parquet")),
                        };
                        if p.exists() {
                            list.push(p);
                        }
                    }
                }
            }
            Source::Store(store) => {
                prov.kind = "store".into();
                prov.locations.push(store.display().to_string());
                let cat = crate::nightly::catalogue::Catalogue::load(store)?;
                if cat.night == 0 {
                    return Err(crate::input_err!("{}: the store has no committed night", store.display()));
                }
                if let Some(n) = cat.nights.last() {
                    let out = store.join(&n.out);
                    let m = if out.join("manifest.json").exists() {
                        out.join("manifest.json")
                    } else {
                        store.join("runs").join(format!("night-{}", n.night)).join("manifest.json")
                    };
                    if m.exists() {
                        manifest(&m, &mut prov)?;
                    } else {
                        prov.run_ids.push(n.run_id.clone());
                    }
                }
                for (t, list) in files.iter_mut() {
                    match *t {
                        "benefit_check" => list.extend(cat.state.benefit_check.iter().map(|p| store.join(p))),
                        "findings" => list.extend(cat.state.findings.iter().map(|p| store.join(p))),
                        _ => {
                            list.extend(cat.parts.get(*t).into_iter().flatten().map(|p| store.join(&p.path)))
                        }
                    }
                }
            }
        }
        let mut tables = Vec::new();
        for (t, list) in &files {
            if list.is_empty() {
                if matches!(*t, "setl" | "benefit_check" | "findings") {
                    return Err(crate::input_err!("the data has no `{t}` table: cannot report"));
                }
                continue;
            }
            register(&ctx, t, list).await?;
            tables.push(t.to_string());
        }
        if let Source::Runs(dirs) = self
            && dirs.len() > 1
        {
            let dup =
                crate::report::model::scalar_i64(&ctx, "SELECT COUNT(*) - COUNT(DISTINCT setl_id) FROM setl")
                    .await?;
            if dup > 0 {
                return Err(crate::input_err!(
                    "the run folders share {dup} settlements: give runs over distinct data, or the nightly store"
                ));
            }
        }
        Ok(Loaded { ctx, provenance: prov, tables })
    }
}
