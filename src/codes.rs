//! Code tables: which code values the engine knows and the class each maps to
//! (`med_type` 21 → `inpatient`, ...). Data, not code: `datasets/codes/codes.csv`, which
//! users extend (a row per field, code and class). Policies and rules speak of classes.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::error::{Error, Result};

/// The code tables of all fields.
#[derive(Debug, Clone, Default)]
pub struct CodeTables {
    /// field → code → (class, label)
    fields: HashMap<String, HashMap<String, (String, String)>>,
}

impl CodeTables {
    /// Loads `codes.csv` (columns `field,code,class,label`).
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("reading code table", path, e))?;
        Self::parse(&text).map_err(|m| Error::config(path, m))
    }

    /// Parses the text of a code table.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let mut rdr = csv::ReaderBuilder::new().from_reader(text.trim_start_matches('\u{feff}').as_bytes());
        let headers = rdr.headers().map_err(|e| e.to_string())?.clone();
        let idx =
            |n: &str| headers.iter().position(|h| h == n).ok_or_else(|| format!("missing column `{n}`"));
        let (fi, ci, ki, li) = (idx("field")?, idx("code")?, idx("class")?, idx("label")?);
        let mut fields: HashMap<String, HashMap<String, (String, String)>> = HashMap::new();
        for (i, rec) in rdr.records().enumerate() {
            let rec = rec.map_err(|e| format!("row {}: {e}", i + 2))?;
            let get = |j: usize| rec.get(j).unwrap_or("").trim().to_string();
            fields.entry(get(fi)).or_default().insert(get(ci), (get(ki), get(li)));
        }
        Ok(CodeTables { fields })
    }

    /// Whether the engine has a code list for this field.
    pub fn has_field(&self, field: &str) -> bool {
        self.fields.contains_key(field)
    }

    /// The class of a code, `None` when the code is unknown.
    pub fn class(&self, field: &str, code: &str) -> Option<&str> {
        self.fields.get(field)?.get(code).map(|(c, _)| c.as_str())
    }

    /// Whether the code is known (fields without a code list know every value).
    pub fn is_known(&self, field: &str, code: &str) -> bool {
        match self.fields.get(field) {
            Some(m) => m.contains_key(code),
            None => true,
        }
    }

    /// The Chinese label of a code.
    pub fn label(&self, field: &str, code: &str) -> Option<&str> {
        self.fields.get(field)?.get(code).map(|(_, l)| l.as_str())
    }

    /// All codes of a field with their classes, sorted.
    pub fn codes(&self, field: &str) -> BTreeMap<&str, &str> {
        self.fields
            .get(field)
            .map(|m| m.iter().map(|(k, (c, _))| (k.as_str(), c.as_str())).collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_code_table_maps_med_types_to_classes() {
        let t = CodeTables::load(&crate::paths::home().join("datasets/codes/codes.csv")).unwrap();
        assert_eq!(t.class("med_type", "21"), Some("inpatient"));
        assert_eq!(t.class("med_type", "14"), Some("chronic_special"));
        assert_eq!(t.class("med_type", "41"), Some("pharmacy"));
        assert!(!t.is_known("med_type", "77"));
        assert!(t.is_known("psn_name", "anything"));
    }
}
