//! The generator's assets: readable data files under `datasets/gen/`, compiled into the binary
//! so that `medaudit gen` works anywhere. See `datasets/gen/README.md` for their format.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::error::{Error, Result};
use crate::synth::rng::{Weighted, hash_str};

macro_rules! asset {
    ($name:literal) => {
        ($name, include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/datasets/gen/", $name)))
    };
}

const REGIONS: (&str, &str) = asset!("regions.csv");
const FACILITIES: (&str, &str) = asset!("facilities.csv");
const NAMES: (&str, &str) = asset!("names.csv");
const DIAGNOSES: (&str, &str) = asset!("diagnoses.csv");
const ITEMS: (&str, &str) = asset!("items.csv");
const DRUGS: (&str, &str) = asset!("drugs.csv");
const BASIC: (&str, &str) = asset!("basic.csv");
const BENEFIT: (&str, &str) = asset!("benefit.toml");
const KB_PAIRS: (&str, &str) = asset!("kb/item_duplicate_pairs.csv");
const KB_FREQ: (&str, &str) = asset!("kb/item_limit_frequency.csv");
const KB_PERIOD: (&str, &str) = asset!("kb/item_limit_period.csv");
const KB_SURGERY: (&str, &str) = asset!("kb/item_secondary_surgery.csv");
const KB_COURSE: (&str, &str) = asset!("kb/item_limit_course.csv");
const KB_GENDER: (&str, &str) = asset!("kb/item_limit_gender.csv");
const KB_AGE: (&str, &str) = asset!("kb/item_limit_age.csv");
const KB_WORKING_AGE: (&str, &str) = asset!("kb/item_limit_working_age.csv");
const KB_DRUGS: (&str, &str) = asset!("kb/restricted_drugs.csv");

/// A region (医保区划) of `regions.csv`.
#[derive(Debug, Clone)]
pub struct Region {
    pub admdvs: String,
    pub city: String,
    /// `resident` (Shangqiu), `employee` (Luohe) or `out_of_area`.
    pub role: String,
    pub weight: f64,
}

/// A designated facility of `facilities.csv`.
#[derive(Debug, Clone)]
pub struct Facility {
    pub code: String,
    pub name: String,
    pub admdvs: String,
    pub city: String,
    /// 1..=3, 0 for pharmacies.
    pub lv: u8,
    pub pharmacy: bool,
    pub specialty: String,
    /// `resident`, `employee` or `both` (out-of-area).
    pub serves: String,
    pub weight: f64,
    pub private: bool,
}

impl Facility {
    pub fn lv_str(&self) -> &'static str {
        match self.lv {
            1 => "1",
            2 => "2",
            3 => "3",
            _ => "",
        }
    }
}

/// Sex restriction: 1 male, 2 female.
pub type Sex = u8;

/// A main diagnosis with its epidemiology and resource profile (`diagnoses.csv`).
#[derive(Debug, Clone)]
pub struct Diagnosis {
    pub code: String,
    pub profile: String,
    pub sex: Option<Sex>,
    /// Only for persons at most this many days old (0: no bound).
    pub max_age_days: i32,
    /// Relative frequency by age band 0–4, 5–17, 18–44, 45–64, 65+.
    pub w: [f64; 5],
    pub male_factor: f64,
    pub ip: f64,
    pub op: f64,
    pub chronic: bool,
    pub los: f64,
    pub intensity: f64,
    pub severity: u8,
    pub surgery: Option<u32>,
    pub surgery_prob: f64,
    pub drug_classes: Vec<String>,
    pub exams: Vec<String>,
}

impl Diagnosis {
    pub fn cat3(&self) -> &str {
        &self.code[..3.min(self.code.len())]
    }
    pub fn is_injury(&self) -> bool {
        self.code.starts_with('S') || self.code.starts_with('T')
    }
}

/// Drug attributes of a billable line.
#[derive(Debug, Clone)]
pub struct DrugInfo {
    pub daily_min: f64,
    pub daily_max: f64,
    pub route: String,
    pub min_level: u8,
    pub ip_only: bool,
    pub child: bool,
}

/// Anything that can be billed on a fee line: service item, drug or material.
#[derive(Debug, Clone)]
pub struct Billable {
    pub code: String,
    pub name: String,
    /// `med_chrgitm_type`.
    pub typ: String,
    /// `chrgitm_lv`: 01 甲, 02 乙, 03 丙.
    pub lv: String,
    /// Unit price at a level-3 facility, in millionths of a yuan (`pric` has 6 decimals).
    pub price6: i64,
    pub role: String,
    pub sex: Option<Sex>,
    pub drug: Option<DrugInfo>,
    /// Listed in `items.csv`/`drugs.csv` (the clean catalogue), not only in a knowledge sheet.
    pub clean: bool,
}

/// A main item / sub item pair of `item_duplicate_pairs.csv`.
#[derive(Debug, Clone)]
pub struct Pair {
    pub main: u32,
    pub sub: u32,
}

/// The knowledge sheets the generator injects anomalies from (and keeps clean data clear of).
#[derive(Debug, Clone, Default)]
pub struct Kb {
    pub pairs: Vec<Pair>,
    /// item → (max count, per hour-based 24 h unit)
    pub freq: HashMap<u32, (u32, bool)>,
    /// (item, max count, period days)
    pub period: Vec<(u32, u32, u32)>,
    /// surgery group → items
    pub surgery_groups: Vec<(String, Vec<u32>)>,
    pub surgery_item_group: HashMap<u32, usize>,
    /// (item, sex it is limited to)
    pub gender_items: Vec<(u32, Sex)>,
    pub child_items: Vec<u32>,
    pub working_age_items: Vec<u32>,
    /// (item, days payable)
    pub course_items: Vec<(u32, u32)>,
    /// subkind → (drug, restriction text)
    pub restricted_drugs: HashMap<String, Vec<(u32, String)>>,
    /// Every item that appears in a pair, on either side.
    pub paired: std::collections::HashSet<u32>,
}

/// Basic-insurance parameters per insutype and setting (`basic.csv`).
#[derive(Debug, Clone, Copy)]
pub struct Basic {
    /// Deductible in cents.
    pub deductible: i64,
    /// Pool ratio, scale 4 (0.8500 → 8500).
    pub ratio4: i64,
    /// 乙类 first self-pay share, scale 4.
    pub class_b4: i64,
}

/// One curve of the resident critical-illness insurance, in cents and scale-4 shares.
#[derive(Debug, Clone, Copy)]
pub struct Curve {
    pub deductible: i64,
    pub bound: i64,
    pub share_low4: i64,
    pub share_high4: i64,
    pub cap: Option<i64>,
}

/// The fund arithmetic of `benefit.toml`.
#[derive(Debug, Clone)]
pub struct Policy {
    pub resident_covered: Vec<String>,
    pub preferential: Vec<String>,
    pub ordinary: Curve,
    pub pref: Curve,
    pub employee_covered: Vec<String>,
    pub pool_cap: i64,
    pub share4: i64,
    pub employee_cap: i64,
    /// (fund, pay_chnl) → working days
    pub deadlines: HashMap<(String, String), u32>,
}

impl Policy {
    pub fn deadline(&self, fund: &str, chnl: &str) -> u32 {
        self.deadlines.get(&(fund.to_string(), chnl.to_string())).copied().unwrap_or(15)
    }
}

/// All assets.
#[derive(Debug)]
pub struct Assets {
    pub regions: Vec<Region>,
    pub facilities: Vec<Facility>,
    pub surnames: Vec<String>,
    pub surname_w: Weighted,
    pub male_given: Vec<String>,
    pub female_given: Vec<String>,
    pub dx: Vec<Diagnosis>,
    pub bill: Vec<Billable>,
    pub by_code: HashMap<String, u32>,
    /// role → billables of the clean catalogue
    pub roles: HashMap<String, Vec<u32>>,
    /// drug class → clean drugs
    pub drug_classes: HashMap<String, Vec<u32>>,
    pub kb: Kb,
    pub basic: HashMap<(String, String), Basic>,
    pub policy: Policy,
}

impl Assets {
    /// The assets compiled into the binary (parsed once).
    pub fn get() -> Result<&'static Assets> {
        static A: OnceLock<std::result::Result<Assets, String>> = OnceLock::new();
        A.get_or_init(|| Assets::load().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|m| crate::other_err!("{m}"))
    }

    pub fn role(&self, role: &str) -> u32 {
        self.roles.get(role).and_then(|v| v.first().copied()).unwrap_or_else(|| panic!("asset role `{role}`"))
    }

    pub fn code(&self, code: &str) -> Option<u32> {
        self.by_code.get(code).copied()
    }

    pub fn dx_by_code(&self, code: &str) -> Option<usize> {
        self.dx.iter().position(|d| d.code == code)
    }

    pub fn basic(&self, insutype: &str, setting: &str) -> Basic {
        self.basic.get(&(insutype.to_string(), setting.to_string())).copied().unwrap_or(Basic {
            deductible: 0,
            ratio4: 0,
            class_b4: 1000,
        })
    }

    fn load() -> Result<Assets> {
        let mut a = Assets {
            regions: Vec::new(),
            facilities: Vec::new(),
            surnames: Vec::new(),
            surname_w: Weighted::default(),
            male_given: Vec::new(),
            female_given: Vec::new(),
            dx: Vec::new(),
            bill: Vec::new(),
            by_code: HashMap::new(),
            roles: HashMap::new(),
            drug_classes: HashMap::new(),
            kb: Kb::default(),
            basic: HashMap::new(),
            policy: parse_policy(BENEFIT.1).map_err(|m| cfg(BENEFIT.0, m))?,
        };
        for r in rows(REGIONS)? {
            a.regions.push(Region {
                admdvs: r.s("admdvs")?,
                city: r.s("city")?,
                role: r.s("role")?,
                weight: r.f("weight")?,
            });
        }
        for r in rows(FACILITIES)? {
            let admdvs = r.s("admdvs")?;
            let lv = r.s("hosp_lv")?;
            a.facilities.push(Facility {
                code: r.s("fixmedins_code")?,
                name: r.s("fixmedins_name")?,
                city: admdvs[..4].to_string(),
                admdvs,
                lv: lv.parse().unwrap_or(0),
                pharmacy: r.s("kind")? == "pharmacy",
                specialty: r.s("specialty")?,
                serves: r.s("serves")?,
                weight: r.f("weight")?,
                private: r.s("private")? == "1",
            });
        }
        let mut sw = Vec::new();
        for r in rows(NAMES)? {
            match r.s("kind")?.as_str() {
                "surname" => {
                    a.surnames.push(r.s("text")?);
                    sw.push(r.f("weight")?);
                }
                "given_male" => a.male_given.push(r.s("text")?),
                "given_female" => a.female_given.push(r.s("text")?),
                k => return Err(cfg(NAMES.0, format!("unknown kind `{k}`"))),
            }
        }
        a.surname_w = Weighted::new(sw);
        // The clean catalogue first, then whatever the knowledge sheets add.
        for r in rows(ITEMS)? {
            let sex = sex_of(&r.s("sex")?);
            a.add_bill(Billable {
                code: r.s("code")?,
                name: r.s("name")?,
                typ: r.s("type")?,
                lv: r.s("lv")?,
                price6: price6(&r.s("price")?).map_err(|m| cfg(ITEMS.0, m))?,
                role: r.s("role")?,
                sex,
                drug: None,
                clean: true,
            });
        }
        for r in rows(DRUGS)? {
            let class = r.s("class")?;
            let idx = a.add_bill(Billable {
                code: r.s("code")?,
                name: r.s("name")?,
                typ: r.s("type")?,
                lv: r.s("lv")?,
                price6: price6(&r.s("price")?).map_err(|m| cfg(DRUGS.0, m))?,
                role: "drug".into(),
                sex: sex_of(&r.s("sex")?),
                drug: Some(DrugInfo {
                    daily_min: r.f("daily_min")?,
                    daily_max: r.f("daily_max")?,
                    route: r.s("route")?,
                    min_level: r.s("min_level")?.parse().unwrap_or(0),
                    ip_only: r.s("ip_only")? == "1",
                    child: r.s("child")? == "1",
                }),
                clean: true,
            });
            a.drug_classes.entry(class).or_default().push(idx);
        }
        for (i, b) in a.bill.iter().enumerate() {
            if b.drug.is_none() {
                a.roles.entry(b.role.clone()).or_default().push(i as u32);
            }
        }
        for r in rows(DIAGNOSES)? {
            let surgery = r.s("surgery")?;
            let surgery = if surgery.is_empty() {
                None
            } else {
                Some(
                    a.code(&surgery)
                        .ok_or_else(|| cfg(DIAGNOSES.0, format!("surgery `{surgery}` not in items")))?,
                )
            };
            let list = |s: String| -> Vec<String> {
                s.split(';').filter(|x| !x.is_empty()).map(str::to_string).collect()
            };
            let drug_classes = list(r.s("drugs")?);
            for c in &drug_classes {
                if !a.drug_classes.contains_key(c) {
                    return Err(cfg(DIAGNOSES.0, format!("drug class `{c}` has no drug")));
                }
            }
            a.dx.push(Diagnosis {
                code: r.s("code")?,
                profile: r.s("profile")?,
                sex: sex_of(&r.s("sex")?),
                max_age_days: r.s("max_age_days")?.parse().unwrap_or(0),
                w: [r.f("w0_4")?, r.f("w5_17")?, r.f("w18_44")?, r.f("w45_64")?, r.f("w65")?],
                male_factor: r.f("male_factor")?,
                ip: r.f("ip")?,
                op: r.f("op")?,
                chronic: r.s("chronic")? == "1",
                los: r.f("los")?,
                intensity: r.f("intensity")?,
                severity: r.s("severity")?.parse().unwrap_or(2),
                surgery,
                surgery_prob: r.f("surgery_prob")?,
                drug_classes,
                exams: list(r.s("exams")?),
            });
        }
        for r in rows(BASIC)? {
            a.basic.insert(
                (r.s("insutype")?, r.s("setting")?),
                Basic {
                    deductible: cents(&r.s("deductible")?).map_err(|m| cfg(BASIC.0, m))?,
                    ratio4: scaled(&r.s("pool_ratio")?, 4).map_err(|m| cfg(BASIC.0, m))?,
                    class_b4: scaled(&r.s("class_b_selfpay")?, 4).map_err(|m| cfg(BASIC.0, m))?,
                },
            );
        }
        a.load_kb()?;
        Ok(a)
    }

    fn add_bill(&mut self, b: Billable) -> u32 {
        if let Some(&i) = self.by_code.get(&b.code) {
            return i;
        }
        let i = self.bill.len() as u32;
        self.by_code.insert(b.code.clone(), i);
        self.bill.push(b);
        i
    }

    /// The index of a knowledge-sheet item, adding it with a derived type and price when it
    /// is not in the clean catalogue.
    fn kb_item(&mut self, code: &str, name: &str) -> u32 {
        if let Some(i) = self.code(code) {
            return i;
        }
        let (typ, lo, hi) = derived_type_and_price(code);
        let h = hash_str(code);
        let yuan = lo + (h % ((hi - lo) as u64 * 10 + 1)) as i64 / 10;
        self.add_bill(Billable {
            code: code.to_string(),
            name: name.to_string(),
            typ: typ.to_string(),
            lv: if h.is_multiple_of(4) { "02".into() } else { "01".into() },
            price6: yuan * 1_000_000,
            role: "kb".into(),
            sex: None,
            drug: None,
            clean: false,
        })
    }

    fn load_kb(&mut self) -> Result<()> {
        let mut kb = Kb::default();
        for r in rows(KB_PAIRS)? {
            let main = self.kb_item(&r.s("main_codg")?, &r.s("main_name")?);
            let sub = self.kb_item(&r.s("sub_codg")?, &r.s("sub_name")?);
            kb.paired.insert(main);
            kb.paired.insert(sub);
            kb.pairs.push(Pair { main, sub });
        }
        for r in rows(KB_FREQ)? {
            let i = self.kb_item(&r.s("med_list_codg")?, &r.s("med_list_name")?);
            let max: u32 = r.s("max_cnt")?.parse().map_err(|_| cfg(KB_FREQ.0, "max_cnt"))?;
            kb.freq.insert(i, (max, r.s("per")? == "小时"));
        }
        for r in rows(KB_PERIOD)? {
            let i = self.kb_item(&r.s("med_list_codg")?, &r.s("med_list_name")?);
            let max: u32 = r.s("max_cnt")?.parse().map_err(|_| cfg(KB_PERIOD.0, "max_cnt"))?;
            let days: u32 = r.s("period_days")?.parse().map_err(|_| cfg(KB_PERIOD.0, "period_days"))?;
            kb.period.push((i, max, days));
        }
        for r in rows(KB_SURGERY)? {
            let i = self.kb_item(&r.s("med_list_codg")?, &r.s("med_list_name")?);
            if self.bill[i as usize].typ == "05" {
                self.bill[i as usize].typ = "06".into();
            }
            let g = r.s("surgery_group")?;
            let gi = match kb.surgery_groups.iter().position(|(n, _)| *n == g) {
                Some(p) => p,
                None => {
                    kb.surgery_groups.push((g, Vec::new()));
                    kb.surgery_groups.len() - 1
                }
            };
            kb.surgery_groups[gi].1.push(i);
            kb.surgery_item_group.entry(i).or_insert(gi);
        }
        for r in rows(KB_GENDER)? {
            let i = self.kb_item(&r.s("med_list_codg")?, &r.s("med_list_name")?);
            let sex = if r.s("limit_gender")? == "男" { 1 } else { 2 };
            kb.gender_items.push((i, sex));
        }
        for r in rows(KB_AGE)? {
            let i = self.kb_item(&r.s("med_list_codg")?, &r.s("med_list_name")?);
            if r.s("limit_age_group")? == "儿童" {
                kb.child_items.push(i);
            }
        }
        for r in rows(KB_WORKING_AGE)? {
            kb.working_age_items.push(self.kb_item(&r.s("med_list_codg")?, &r.s("med_list_name")?));
        }
        for r in rows(KB_COURSE)? {
            let i = self.kb_item(&r.s("med_list_codg")?, &r.s("med_list_name")?);
            let note = r.s("note")?;
            let days = if note.contains("30天") {
                30
            } else if note.contains("一年") {
                365
            } else {
                90
            };
            kb.course_items.push((i, days));
        }
        for r in rows(KB_DRUGS)? {
            let code = r.s("med_list_codg")?;
            let sub = r.s("subkind")?;
            let daily = r.f("daily")?;
            let i = match self.code(&code) {
                Some(i) => i,
                None => self.add_bill(Billable {
                    code,
                    name: r.s("med_list_name")?,
                    typ: r.s("type")?,
                    lv: "02".into(),
                    price6: price6(&r.s("price")?).map_err(|m| cfg(KB_DRUGS.0, m))?,
                    role: "kb_drug".into(),
                    sex: None,
                    drug: Some(DrugInfo {
                        daily_min: daily,
                        daily_max: daily,
                        route: "po".into(),
                        min_level: 0,
                        ip_only: false,
                        child: false,
                    }),
                    clean: false,
                }),
            };
            kb.restricted_drugs.entry(sub).or_default().push((i, r.s("restriction")?));
        }
        self.kb = kb;
        Ok(())
    }
}

/// `med_chrgitm_type` and a price range (yuan) for a national service-item code by its chapter.
fn derived_type_and_price(code: &str) -> (&'static str, i64, i64) {
    let p = |n: usize| code.get(..n).unwrap_or("");
    match p(4) {
        _ if p(6) == "001109" => ("01", 20, 120),
        _ if p(6) == "001102" => ("02", 8, 30),
        _ if p(4) == "0012" && p(6) == "001201" => ("07", 10, 60),
        "0011" | "0012" | "0013" => ("05", 5, 60),
        "0021" | "0022" | "0023" | "0024" => ("03", 30, 400),
        "0025" | "0026" | "0027" => ("04", 5, 80),
        "0031" | "0032" => ("05", 20, 300),
        "0033" => ("06", 400, 3500),
        "0034" => ("05", 20, 80),
        _ => ("05", 15, 120),
    }
}

fn sex_of(s: &str) -> Option<Sex> {
    match s {
        "M" | "男" | "1" => Some(1),
        "F" | "女" | "2" => Some(2),
        _ => None,
    }
}

fn cfg(file: &str, msg: impl Into<String>) -> Error {
    Error::config(format!("datasets/gen/{file}"), msg)
}

/// A decimal string as an integer of the given scale (exact; more places is an error).
pub fn scaled(s: &str, scale: u32) -> std::result::Result<i64, String> {
    let s = s.trim();
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() && frac.is_empty() || frac.len() > scale as usize {
        return Err(format!("`{s}` is not a decimal with at most {scale} places"));
    }
    let mut v: i64 =
        if int.is_empty() { 0 } else { int.parse().map_err(|_| format!("`{s}` is not a number"))? };
    let mut f = frac.to_string();
    while f.len() < scale as usize {
        f.push('0');
    }
    for _ in 0..scale {
        v *= 10;
    }
    if !f.is_empty() {
        v += f.parse::<i64>().map_err(|_| format!("`{s}` is not a number"))?;
    }
    Ok(if neg { -v } else { v })
}

fn cents(s: &str) -> std::result::Result<i64, String> {
    scaled(s, 2)
}

fn price6(s: &str) -> std::result::Result<i64, String> {
    scaled(s, 6)
}

/// A CSV asset's rows with access by column name.
struct Row<'a> {
    file: &'static str,
    head: &'a HashMap<String, usize>,
    rec: csv::StringRecord,
}

impl Row<'_> {
    fn s(&self, col: &str) -> Result<String> {
        let i = self.head.get(col).ok_or_else(|| cfg(self.file, format!("missing column `{col}`")))?;
        Ok(self.rec.get(*i).unwrap_or("").trim().to_string())
    }
    fn f(&self, col: &str) -> Result<f64> {
        let s = self.s(col)?;
        if s.is_empty() {
            return Ok(0.0);
        }
        s.parse().map_err(|_| cfg(self.file, format!("column `{col}`: `{s}` is not a number")))
    }
}

fn rows((file, text): (&'static str, &'static str)) -> Result<Vec<Row<'static>>> {
    let mut rdr = csv::ReaderBuilder::new().from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    let head: HashMap<String, usize> = rdr
        .headers()
        .map_err(|e| cfg(file, e.to_string()))?
        .iter()
        .enumerate()
        .map(|(i, h)| (h.trim().to_string(), i))
        .collect();
    // Leaked once per asset: the assets live for the whole process.
    let head: &'static HashMap<String, usize> = Box::leak(Box::new(head));
    let mut out = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| cfg(file, format!("row {}: {e}", i + 2)))?;
        out.push(Row { file, head, rec });
    }
    Ok(out)
}

fn parse_policy(text: &str) -> std::result::Result<Policy, String> {
    let v: toml::Value = toml::from_str(text).map_err(|e| e.to_string())?;
    let get = |path: &[&str]| -> std::result::Result<&toml::Value, String> {
        let mut cur = &v;
        for p in path {
            cur = cur.get(p).ok_or_else(|| format!("missing `{}`", path.join(".")))?;
        }
        Ok(cur)
    };
    let dec = |path: &[&str], scale: u32| -> std::result::Result<i64, String> {
        let s = get(path)?.as_str().ok_or_else(|| format!("`{}` must be a string", path.join(".")))?;
        scaled(s, scale)
    };
    let strs = |path: &[&str]| -> std::result::Result<Vec<String>, String> {
        Ok(get(path)?
            .as_array()
            .ok_or_else(|| format!("`{}` must be a list", path.join(".")))?
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect())
    };
    let curve = |g: &str| -> std::result::Result<Curve, String> {
        Ok(Curve {
            deductible: dec(&["resident", g, "deductible"], 2)?,
            bound: dec(&["resident", g, "tier_bound"], 2)?,
            share_low4: dec(&["resident", g, "share_up_to_bound"], 4)?,
            share_high4: dec(&["resident", g, "share_above_bound"], 4)?,
            cap: match get(&["resident", g, "cap"]) {
                Ok(_) => Some(dec(&["resident", g, "cap"], 2)?),
                Err(_) => None,
            },
        })
    };
    let mut deadlines = HashMap::new();
    for d in get(&["deadline"])?.as_array().ok_or("`deadline` must be a list of tables")? {
        let s =
            |k: &str| d.get(k).and_then(|x| x.as_str()).map(str::to_string).ok_or(format!("deadline.{k}"));
        let wd = d.get("working_days").and_then(|x| x.as_integer()).ok_or("deadline.working_days")?;
        deadlines.insert((s("fund")?, s("pay_chnl")?), wd as u32);
    }
    Ok(Policy {
        resident_covered: strs(&["resident", "covered_med_types"])?,
        preferential: strs(&["resident", "preferential_idet_types"])?,
        ordinary: curve("ordinary")?,
        pref: curve("preferential")?,
        employee_covered: strs(&["employee", "covered_med_types"])?,
        pool_cap: dec(&["employee", "pool_cap"], 2)?,
        share4: dec(&["employee", "share"], 4)?,
        employee_cap: dec(&["employee", "cap"], 2)?,
        deadlines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_load_and_are_consistent() {
        let a = Assets::get().unwrap();
        assert!(a.facilities.len() > 100);
        assert!(a.dx.len() > 50);
        let used = "bed nursing1 nursing2 nursing_psych nursing_newborn consult_ip consult_op consult_er \
            registration infusion mat_infusion mat_cannula ecg_mon spo2 oxygen lab_cbc lab_urine lab_stool lab_alt \
            lab_cr lab_k lab_na lab_cl lab_glu lab_crp lab_pt lab_lipid lab_hba1c exam_ct exam_dr exam_us exam_echo \
            exam_ecg exam_gastro exam_mri anesthesia anes_monitor mat_suture mat_catheter catheter mat_trocar \
            mat_stent mat_plate dressing mat_dressing surgery_eye mat_iol rehab_pt acupuncture radio_plan radio_sim \
            radio_tx dialysis";
        for role in used.split_whitespace() {
            assert!(a.roles.contains_key(role), "no item for role {role}");
        }
        for class in ["premium", "epo", "antihyp"] {
            assert!(a.drug_classes.contains_key(class), "{class}");
        }
        // Clean catalogue items never form a duplicate-charging pair with each other unless they
        // are never billed together (the only such pair, angiography and stent, belongs to
        // different diagnoses).
        let clean_pairs: Vec<_> =
            a.kb.pairs
                .iter()
                .filter(|p| a.bill[p.main as usize].clean && a.bill[p.sub as usize].clean)
                .map(|p| (a.bill[p.main as usize].code.as_str(), a.bill[p.sub as usize].code.as_str()))
                .collect();
        assert_eq!(clean_pairs, vec![("003205000030000", "003205000010000")]);
        assert_eq!(a.policy.ordinary.deductible, 1_100_000);
        assert_eq!(a.policy.pref.cap, None);
        assert_eq!(a.policy.deadline("hifmi", "2"), 20);
        assert_eq!(scaled("0.85", 4), Ok(8500));
        assert_eq!(scaled("-1.5", 2), Ok(-150));
        assert!(scaled("12.345", 2).is_err());
    }

    /// `benefit.toml` simulates the platform with the parameters of the engine's policy files.
    #[test]
    fn benefit_parameters_agree_with_the_policy_files() {
        let a = Assets::get().unwrap();
        let p = &a.policy;
        let dir = crate::paths::datasets_dir().join("policy");
        let mut seen = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let path = e.unwrap().path();
            if path.extension().and_then(|x| x.to_str()) != Some("toml") {
                continue;
            }
            let v: toml::Value = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let dec = |t: &toml::Value, k: &str, scale: u32| scaled(t[k].as_str().unwrap(), scale).unwrap();
            let fund = v["fund"].as_str().unwrap();
            if let Some(r) = v.get("resident") {
                for (g, c) in [("ordinary", &p.ordinary), ("preferential", &p.pref)] {
                    let t = &r[g];
                    assert_eq!(dec(t, "deductible", 2), c.deductible, "{g}");
                    assert_eq!(dec(t, "tier_bound", 2), c.bound, "{g}");
                    assert_eq!(dec(t, "share_up_to_bound", 4), c.share_low4, "{g}");
                    assert_eq!(dec(t, "share_above_bound", 4), c.share_high4, "{g}");
                    assert_eq!(t.get("cap").map(|_| dec(t, "cap", 2)), c.cap, "{g}");
                }
                let pref: Vec<&str> = r["preferential_idet_types"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(|x| x.as_str())
                    .collect();
                assert_eq!(pref, p.preferential.iter().map(String::as_str).collect::<Vec<_>>());
                seen += 1;
            }
            if let Some(e) = v.get("employee") {
                assert_eq!(dec(e, "pool_cap", 2), p.pool_cap);
                assert_eq!(dec(e, "share", 4), p.share4);
                assert_eq!(dec(e, "cap", 2), p.employee_cap);
                seen += 1;
            }
            for d in v["deadline"].as_array().unwrap() {
                let chnl = d["pay_chnl"].as_str().unwrap();
                assert_eq!(
                    i64::from(p.deadline(fund, chnl)),
                    d["working_days"].as_integer().unwrap(),
                    "{fund} {chnl}"
                );
            }
        }
        assert!(seen >= 2, "both schemes' policy files in {}", dir.display());
    }
}
