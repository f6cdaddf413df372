//! Mapping files (`--mapping`): translate a real export layout into the contract. A mapping
//! names the files that hold each table, renames columns and recodes values.
//!
//! ```toml
//! [tables.setl]
//! files = ["SETL_D"]            # file or folder stems that hold this table (besides `setl`)
//! lowercase_headers = true      # `SETL_ID` → `setl_id` before renaming
//! [tables.setl.columns]
//! inscp_amt = "inscp_scp_amt"   # source name (after lowercasing) → contract name
//! [tables.setl.values.med_type]
//! "2101" = "21"                 # source code → contract code
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

/// A parsed mapping file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    #[serde(default)]
    pub tables: HashMap<String, TableMapping>,
    #[serde(skip)]
    pub path: Option<PathBuf>,
}

/// How one contract table is found and translated.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableMapping {
    #[serde(default)]
    pub files: Vec<String>,
    #[serde(default)]
    pub lowercase_headers: bool,
    #[serde(default)]
    pub columns: HashMap<String, String>,
    #[serde(default)]
    pub values: HashMap<String, HashMap<String, String>>,
}

impl Mapping {
    /// Loads and checks a mapping file: every table and target column must exist in the
    /// contract.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("reading mapping file", path, e))?;
        let mut m: Mapping = toml::from_str(&text).map_err(|e| Error::config(path, e.to_string()))?;
        for (table, tm) in &m.tables {
            let spec = crate::schema::table(table)
                .ok_or_else(|| Error::config(path, format!("unknown table `{table}`")))?;
            for target in tm.columns.values().chain(tm.values.keys()) {
                if spec.field(target).is_none() {
                    return Err(Error::config(path, format!("table `{table}` has no column `{target}`")));
                }
            }
        }
        m.path = Some(path.to_path_buf());
        Ok(m)
    }

    /// The file stems that may hold a table: its own name, then the mapping's names.
    pub fn stems(&self, table: &str) -> Vec<String> {
        let mut v = vec![table.to_string()];
        if let Some(tm) = self.tables.get(table) {
            v.extend(tm.files.iter().cloned());
        }
        v
    }

    /// Translates a header cell into a contract column name.
    pub fn column(&self, table: &str, header: &str) -> String {
        let h = header.trim().trim_start_matches('\u{feff}');
        match self.tables.get(table) {
            Some(tm) => {
                let h = if tm.lowercase_headers { h.to_ascii_lowercase() } else { h.to_string() };
                tm.columns.get(&h).cloned().unwrap_or(h)
            }
            None => h.to_string(),
        }
    }

    /// The recoding table of one column, if any.
    pub fn recode(&self, table: &str, column: &str) -> Option<&HashMap<String, String>> {
        self.tables.get(table)?.values.get(column)
    }
}
