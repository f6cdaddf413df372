//! Scores an audit run's findings against the generator's labels: recall per kind and check,
//! false positives on clean settlements per category, and findings on negative controls.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::path::Path;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::DataType;

use crate::error::{Error, Result};
use crate::synth::labels::{self, Summary};
use crate::synth::model::Role;

/// Recall of one (kind, subkind).
#[derive(Debug, Clone, PartialEq)]
pub struct RecallRow {
    pub kind: String,
    pub subkind: String,
    pub instances: u64,
    pub detected: u64,
}

impl RecallRow {
    pub fn recall(&self) -> f64 {
        if self.instances == 0 { 1.0 } else { self.detected as f64 / self.instances as f64 }
    }
}

/// Findings of one category on settlements without any label.
#[derive(Debug, Clone, PartialEq)]
pub struct FpRow {
    pub kind: String,
    pub flagged: u64,
    pub clean: u64,
}

impl FpRow {
    pub fn rate(&self) -> f64 {
        if self.clean == 0 { 0.0 } else { self.flagged as f64 / self.clean as f64 }
    }
}

/// Negative controls of one (kind, subkind) and how many a check of that kind flagged.
#[derive(Debug, Clone, PartialEq)]
pub struct ControlRow {
    pub kind: String,
    pub subkind: String,
    pub instances: u64,
    /// Flagged by a finding of the kind the control is for.
    pub flagged: u64,
    /// Flagged by a finding of any category (for information).
    pub flagged_any: u64,
}

/// The scores of one run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScoreTable {
    pub recall: Vec<RecallRow>,
    pub false_positives: Vec<FpRow>,
    pub controls: Vec<ControlRow>,
    pub clean_settlements: u64,
    /// Clean settlements with a finding of any category.
    pub clean_flagged_any: u64,
    /// Findings read.
    pub findings: u64,
}

impl ScoreTable {
    /// Recall of a kind over all its checks (instances detected / instances).
    pub fn kind_recall(&self, kind: &str) -> Option<f64> {
        let (n, d) = self
            .recall
            .iter()
            .filter(|r| r.kind == kind)
            .fold((0, 0), |(n, d), r| (n + r.instances, d + r.detected));
        (n > 0).then(|| d as f64 / n as f64)
    }

    /// Share of clean settlements with a finding of this category.
    pub fn fp_rate(&self, kind: &str) -> f64 {
        self.false_positives.iter().find(|r| r.kind == kind).map_or(0.0, FpRow::rate)
    }

    /// Negative controls of this kind flagged by a finding of this kind.
    pub fn control_hits(&self, kind: &str) -> u64 {
        self.controls.iter().filter(|r| r.kind == kind).map(|r| r.flagged).sum()
    }

    /// What misses the thresholds, for the given kinds (all labelled kinds when empty):
    /// recall below `min_recall`, clean false-positive rate above `max_fp_rate`, or any
    /// negative control of the kind flagged.
    pub fn failures(&self, kinds: &[&str], min_recall: f64, max_fp_rate: f64) -> Vec<String> {
        let all: BTreeSet<&str> = self
            .recall
            .iter()
            .map(|r| r.kind.as_str())
            .chain(self.controls.iter().map(|r| r.kind.as_str()))
            .collect();
        let kinds: Vec<&str> = if kinds.is_empty() { all.into_iter().collect() } else { kinds.to_vec() };
        let mut out = Vec::new();
        for k in kinds {
            if let Some(r) = self.kind_recall(k)
                && r < min_recall
            {
                let missed: Vec<String> = self
                    .recall
                    .iter()
                    .filter(|x| x.kind == k && x.detected < x.instances)
                    .map(|x| format!("{} {}/{}", x.subkind, x.detected, x.instances))
                    .collect();
                out.push(format!("{k}: recall {r:.3} < {min_recall} (missed: {})", missed.join(", ")));
            }
            let fp = self.fp_rate(k);
            if fp > max_fp_rate {
                out.push(format!("{k}: {fp:.4} of clean settlements flagged > {max_fp_rate}"));
            }
            for c in self.controls.iter().filter(|c| c.kind == k && c.flagged > 0) {
                out.push(format!(
                    "{k}: {} of {} negative controls `{}` flagged",
                    c.flagged, c.instances, c.subkind
                ));
            }
        }
        out
    }
}

impl fmt::Display for ScoreTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<20} {:<28} {:>9} {:>9} {:>7}",
            "kind", "check (subkind)", "instances", "detected", "recall"
        )?;
        let mut last = "";
        for r in &self.recall {
            let k = if r.kind == last { "" } else { r.kind.as_str() };
            last = &r.kind;
            writeln!(
                f,
                "{:<20} {:<28} {:>9} {:>9} {:>7.3}",
                k,
                r.subkind,
                r.instances,
                r.detected,
                r.recall()
            )?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "false positives on {} clean settlements (any category: {})",
            self.clean_settlements, self.clean_flagged_any
        )?;
        writeln!(f, "{:<20} {:>9} {:>9}", "category", "flagged", "rate")?;
        for r in &self.false_positives {
            writeln!(f, "{:<20} {:>9} {:>9.5}", r.kind, r.flagged, r.rate())?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "{:<20} {:<28} {:>9} {:>9} {:>9}",
            "negative controls", "subkind", "instances", "flagged", "any kind"
        )?;
        for r in &self.controls {
            writeln!(
                f,
                "{:<20} {:<28} {:>9} {:>9} {:>9}",
                r.kind, r.subkind, r.instances, r.flagged, r.flagged_any
            )?;
        }
        Ok(())
    }
}

fn text_col(b: &RecordBatch, name: &str) -> Result<Option<arrow::array::StringArray>> {
    let Some(c) = b.column_by_name(name) else { return Ok(None) };
    let c = if c.data_type() == &DataType::Utf8 {
        c.clone()
    } else {
        arrow::compute::cast(c, &DataType::Utf8)
            .map_err(|e| Error::arrow(format!("findings column {name}"), e))?
    };
    Ok(Some(c.as_string::<i32>().clone()))
}

/// Scores findings (batches of `crate::schema::findings_schema()`) against a labels folder.
pub fn score(labels_dir: &Path, findings: &[RecordBatch]) -> Result<ScoreTable> {
    let rows = labels::read(labels_dir)?;
    let summary = Summary::read(labels_dir)?;
    // Findings by category: the settlements and entities they name.
    let mut by_setl: HashMap<String, HashSet<String>> = HashMap::new();
    let mut by_entity: HashSet<(String, String, String)> = HashSet::new();
    let mut n_findings = 0;
    for b in findings {
        let (Some(setl), Some(cat)) = (text_col(b, "setl_id")?, text_col(b, "category")?) else {
            return Err(crate::input_err!("findings need the columns setl_id and category"));
        };
        let et = text_col(b, "entity_type")?;
        let ei = text_col(b, "entity_id")?;
        for r in 0..b.num_rows() {
            if cat.is_null(r) {
                continue;
            }
            n_findings += 1;
            let c = cat.value(r).to_string();
            if !setl.is_null(r) {
                by_setl.entry(setl.value(r).to_string()).or_default().insert(c.clone());
            }
            if let (Some(et), Some(ei)) = (&et, &ei)
                && !et.is_null(r)
                && !ei.is_null(r)
            {
                by_entity.insert((c, et.value(r).to_string(), ei.value(r).to_string()));
            }
        }
    }
    let labelled: HashSet<&str> =
        rows.iter().filter(|r| !r.setl_id.is_empty()).map(|r| r.setl_id.as_str()).collect();
    // Instances: (anomaly_id, kind) → subkind, settlements, entity.
    #[derive(Default)]
    struct Inst {
        subkind: String,
        setls: Vec<String>,
        entity: Option<(String, String)>,
    }
    let mut anomalies: BTreeMap<(String, String), Inst> = BTreeMap::new();
    let mut controls: BTreeMap<(String, String), Inst> = BTreeMap::new();
    for r in &rows {
        let map = match r.role {
            Role::Anomaly => &mut anomalies,
            Role::NegativeControl => &mut controls,
            _ => continue,
        };
        let e = map.entry((r.anomaly_id.clone(), r.kind.clone())).or_default();
        e.subkind = r.subkind.clone();
        if !r.setl_id.is_empty() {
            e.setls.push(r.setl_id.clone());
        }
        if r.entity_type == "person" || r.entity_type == "facility" {
            e.entity = Some((r.entity_type.clone(), r.entity_id.clone()));
        }
    }
    let hit = |kind: &str, inst: &Inst| {
        inst.setls.iter().any(|s| by_setl.get(s).is_some_and(|c| c.contains(kind)))
            || inst
                .entity
                .as_ref()
                .is_some_and(|(t, i)| by_entity.contains(&(kind.to_string(), t.clone(), i.clone())))
    };
    let mut recall: BTreeMap<(String, String), RecallRow> = BTreeMap::new();
    for ((_, kind), inst) in &anomalies {
        let r = recall.entry((kind.clone(), inst.subkind.clone())).or_insert_with(|| RecallRow {
            kind: kind.clone(),
            subkind: inst.subkind.clone(),
            instances: 0,
            detected: 0,
        });
        r.instances += 1;
        if hit(kind, inst) {
            r.detected += 1;
        }
    }
    let mut ctl: BTreeMap<(String, String), ControlRow> = BTreeMap::new();
    for ((_, kind), inst) in &controls {
        let r = ctl.entry((kind.clone(), inst.subkind.clone())).or_insert_with(|| ControlRow {
            kind: kind.clone(),
            subkind: inst.subkind.clone(),
            instances: 0,
            flagged: 0,
            flagged_any: 0,
        });
        r.instances += 1;
        if hit(kind, inst) {
            r.flagged += 1;
        }
        if inst.setls.iter().any(|s| by_setl.contains_key(s)) {
            r.flagged_any += 1;
        }
    }
    let mut fp: BTreeMap<String, u64> =
        crate::schema::CATEGORIES.iter().map(|c| (c.to_string(), 0)).collect();
    let mut any = 0;
    for (s, cats) in &by_setl {
        if labelled.contains(s.as_str()) {
            continue;
        }
        any += 1;
        for c in cats {
            *fp.entry(c.clone()).or_default() += 1;
        }
    }
    Ok(ScoreTable {
        recall: recall.into_values().collect(),
        false_positives: fp
            .into_iter()
            .map(|(kind, flagged)| FpRow { kind, flagged, clean: summary.clean_settlements })
            .collect(),
        controls: ctl.into_values().collect(),
        clean_settlements: summary.clean_settlements,
        clean_flagged_any: any,
        findings: n_findings,
    })
}
