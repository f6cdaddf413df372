//! The anomaly plan (which instances go to which chunk) and the builders of every injected
//! anomaly, negative control and malformed row. Each instance gets persons of its own, so
//! that it triggers the kind it is labelled with and no other.

use std::sync::OnceLock;

use crate::synth::assets::Assets;
use crate::synth::cal::{weekday, ymd};
use crate::synth::chunk::{BenefitErr, Draft, Entity, Gen, LSpec, MoneyErr, PayPlan, PersonSpec, STRIDE};
use crate::synth::clinical::{StaySpec, VisitSpec};
use crate::synth::ctx::{L1, L2, L3, OUT};
use crate::synth::model::{BadRow, Label, Mutation, Role, feedetl_sn, pay_id, setl_id};
use crate::synth::people::FacOpts;

/// Settlements per chunk (the unit of parallel work and of a Parquet row group).
pub const CHUNK: u64 = 4096;

/// One kind of instance the generator can inject.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub kind: &'static str,
    pub subkind: &'static str,
    pub role: Role,
    /// Relative number of instances.
    pub weight: f64,
}

const fn a(kind: &'static str, subkind: &'static str, weight: f64) -> Spec {
    Spec { kind, subkind, role: Role::Anomaly, weight }
}
const fn nc(kind: &'static str, subkind: &'static str, weight: f64) -> Spec {
    Spec { kind, subkind, role: Role::NegativeControl, weight }
}

/// Every injected anomaly and negative control, by SCHEMA category and the check it targets.
pub const SPECS: &[Spec] = &[
    a("impersonation", "overlapping_stays", 1.0),
    a("impersonation", "sex_impossible_diagnosis", 1.0),
    a("impersonation", "perinatal_diagnosis_adult", 0.6),
    a("impersonation", "care_after_death", 1.0),
    a("impersonation", "identity_mismatch", 1.0),
    a("duplicate_billing", "duplicate_settlement", 1.0),
    a("duplicate_billing", "direct_and_manual", 0.8),
    a("duplicate_billing", "duplicate_fee_lines", 1.0),
    a("duplicate_billing", "bed_days", 1.0),
    a("duplicate_billing", "outpatient_during_stay", 1.0),
    a("duplicate_billing", "item_duplicate_pair", 1.0),
    a("out_of_area", "no_filing", 1.0),
    a("out_of_area", "cluster", 0.0),
    a("split_admission", "readmission_15d", 1.2),
    a("phantom_stay", "bed_only_stay", 1.0),
    a("overcharge", "frequency_limit", 1.0),
    a("overcharge", "period_limit", 0.8),
    a("overcharge", "secondary_surgery", 0.8),
    a("overcharge", "course_limit", 0.5),
    a("restricted_item", "sex_limited_item", 0.8),
    a("restricted_item", "sex_limited_drug", 0.8),
    a("restricted_item", "child_only_drug", 0.8),
    a("restricted_item", "child_only_item", 0.5),
    a("restricted_item", "working_age_item", 0.5),
    a("restricted_item", "inpatient_only_drug", 0.8),
    a("restricted_item", "drug_below_level", 0.8),
    a("restricted_item", "work_injury_drug", 0.6),
    a("restricted_item", "course_days_drug", 0.6),
    a("injury_review", "injury_diagnosis", 0.2),
    a("injury_review", "injury_med_type", 0.2),
    a("benefit_mismatch", "hifmi_wrong", 1.2),
    a("benefit_mismatch", "hifob_wrong", 1.0),
    a("late_payment", "paid_late", 1.0),
    a("late_payment", "unpaid_overdue", 0.6),
    a("statistical_outlier", "person_admission_count", 0.0),
    a("data_quality", "amount_identity", 0.8),
    a("data_quality", "date_order", 0.8),
    a("data_quality", "fee_sum_mismatch", 0.8),
    a("data_quality", "id_check_digit", 0.5),
    a("data_quality", "id_birth_date", 0.5),
    a("data_quality", "id_sex_digit", 0.5),
    nc("split_admission", "chemo_readmission", 1.0),
    nc("split_admission", "radiotherapy_readmission", 0.4),
    nc("impersonation", "same_day_transfer", 1.0),
    nc("impersonation", "death_on_discharge_day", 0.6),
    nc("impersonation", "identity_type_change", 0.5),
    nc("duplicate_billing", "reversal_resettlement", 1.0),
    nc("duplicate_billing", "reversal_with_between", 0.8),
    nc("duplicate_billing", "long_stay_pieces", 1.0),
    nc("duplicate_billing", "year_end_pieces", 0.5),
    nc("out_of_area", "filed_out_of_area", 1.0),
    nc("out_of_area", "emergency_out_of_area", 0.6),
    nc("out_of_area", "same_city_other_county", 1.0),
    nc("late_payment", "working_day_deadline", 0.8),
    nc("benefit_mismatch", "resident_tier", 0.5),
    nc("benefit_mismatch", "resident_cap", 0.3),
    nc("benefit_mismatch", "preferential_high", 0.4),
    nc("benefit_mismatch", "employee_pool_cap", 0.5),
    nc("benefit_mismatch", "employee_cap", 0.3),
];

/// Label kinds written besides the one of `SPECS` (negative controls of two kinds, and the
/// labels of natural data): (kind, subkind, role).
pub const EXTRA_LABELS: &[(&str, &str, Role)] = &[
    ("benefit_mismatch", "identity_type_change", Role::NegativeControl),
    ("benefit_mismatch", "reversal_resettlement", Role::NegativeControl),
    ("benefit_mismatch", "reversal_with_between", Role::NegativeControl),
    ("split_admission", "long_stay_pieces", Role::NegativeControl),
    ("split_admission", "year_end_pieces", Role::NegativeControl),
    ("statistical_outlier", "facility_cost_outlier", Role::Anomaly),
];

/// Malformed-row classes per table: (table, reject class, CSV only).
pub const MALFORMED: &[(&str, &str, bool)] = &[
    ("setl", "not_a_number", true),
    ("setl", "too_many_decimals", true),
    ("setl", "nonexistent_date", true),
    ("setl", "missing_value", false),
    ("setl", "duplicate_key", false),
    ("setl", "field_count", true),
    ("fee", "not_a_number", true),
    ("fee", "too_many_decimals", true),
    ("fee", "nonexistent_date", true),
    ("fee", "missing_value", false),
    ("fee", "duplicate_key", false),
    ("fee", "unknown_settlement", false),
    ("fee", "field_count", true),
    ("psn", "nonexistent_date", true),
    ("psn", "missing_value", false),
    ("psn", "duplicate_key", false),
    ("pay", "not_a_number", true),
    ("pay", "nonexistent_date", true),
    ("pay", "duplicate_key", false),
];

/// One planned instance.
#[derive(Debug, Clone, Copy)]
pub enum Task {
    /// An index into `SPECS`, and its global sequence number among instances of that spec.
    Spec(usize, u32),
    /// An index into `MALFORMED`.
    Malformed(usize, u32),
    /// The as-of anchor (chunk 0 only).
    Anchor,
}

/// Which tasks each chunk carries, and how many settlements each chunk writes.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub targets: Vec<u64>,
    pub tasks: Vec<Vec<Task>>,
}

impl Plan {
    pub fn new(
        settlements: u64,
        rate: f64,
        malformed: bool,
        csv: bool,
        calendar: bool,
        compact: bool,
    ) -> Self {
        let n_chunks = settlements.div_ceil(CHUNK).max(1);
        let targets: Vec<u64> = (0..n_chunks)
            .map(|i| if i + 1 < n_chunks { CHUNK } else { settlements - CHUNK * (n_chunks - 1) })
            .collect();
        let n = settlements as f64;
        let anomalies = (rate * n / 2.2).ceil();
        let controls = (rate * 0.6 * n / 2.5).ceil();
        let w_a: f64 = SPECS.iter().filter(|s| s.role == Role::Anomaly).map(|s| s.weight).sum();
        let w_c: f64 = SPECS.iter().filter(|s| s.role == Role::NegativeControl).map(|s| s.weight).sum();
        let mut list: Vec<(u32, usize, Task)> = Vec::new();
        for (i, s) in SPECS.iter().enumerate() {
            if s.subkind == "working_day_deadline" && !calendar {
                continue;
            }
            let count = match s.subkind {
                "cluster" => (settlements / 50_000).clamp(1, 40),
                "person_admission_count" => (settlements / 40_000).clamp(if compact { 1 } else { 2 }, 60),
                _ if s.role == Role::Anomaly => ((anomalies * s.weight / w_a).round() as u64).max(1),
                _ => ((controls * s.weight / w_c).round() as u64).max(1),
            };
            for k in 0..count as u32 {
                list.push((k, i, Task::Spec(i, k)));
            }
        }
        if malformed {
            let per = (settlements / 200_000).max(1) as u32;
            for (i, &(_, _, csv_only)) in MALFORMED.iter().enumerate() {
                if csv_only && !csv {
                    continue;
                }
                for k in 0..per {
                    list.push((k, 1000 + i, Task::Malformed(i, k)));
                }
            }
        }
        list.sort_by_key(|&(k, i, _)| (k, i));
        let full =
            if n_chunks > 1 && targets[n_chunks as usize - 1] < CHUNK { n_chunks - 1 } else { n_chunks };
        let mut tasks = vec![Vec::new(); n_chunks as usize];
        tasks[0].push(Task::Anchor);
        let total = list.len() as u64;
        for (j, (_, _, t)) in list.into_iter().enumerate() {
            let c = (j as u64 * full / total.max(1)) as usize;
            tasks[c].push(t);
        }
        Plan { targets, tasks }
    }
}

/// Plain diagnoses used for instance stays: adult, either sex, no operation needed.
const PLAIN: &[&str] = &[
    "J18.900", "I63.900", "J44.100", "I25.103", "K29.700", "E11.900", "M51.202", "G45.900", "I50.900",
    "J20.900",
];
/// The same without period-limited tests (for instances that copy a stay).
const PLAIN_COPYABLE: &[&str] =
    &["J18.900", "I63.900", "J44.100", "I25.103", "K29.700", "M51.202", "G45.900", "I50.900", "J20.900"];

/// Duplicate-charging pairs safe to inject alone: (main, sub, sub is a daily charge).
fn injectable_pairs(a: &Assets) -> &'static Vec<(u32, u32, bool)> {
    static P: OnceLock<Vec<(u32, u32, bool)>> = OnceLock::new();
    P.get_or_init(|| {
        let kb = &a.kb;
        let restricted = |i: u32| {
            kb.gender_items.iter().any(|x| x.0 == i)
                || kb.child_items.contains(&i)
                || kb.working_age_items.contains(&i)
                || kb.course_items.iter().any(|x| x.0 == i)
                || kb.period.iter().any(|x| x.0 == i)
                || kb.surgery_item_group.contains_key(&i)
        };
        let daily = |i: u32| {
            ["bed", "nursing2", "consult_ip"].iter().any(|r| a.roles.get(*r).is_some_and(|v| v[0] == i))
        };
        kb.pairs
            .iter()
            .filter(|p| {
                !restricted(p.main) && !kb.freq.contains_key(&p.main) && !a.bill[p.main as usize].clean
            })
            .filter(|p| daily(p.sub) || (!restricted(p.sub) && !kb.freq.contains_key(&p.sub)))
            .map(|p| (p.main, p.sub, daily(p.sub)))
            .collect()
    })
}

/// Knowledge-sheet items that can be billed once without touching another rule.
fn free_item(a: &Assets, i: u32) -> bool {
    let kb = &a.kb;
    !kb.paired.contains(&i)
        && !kb.surgery_item_group.contains_key(&i)
        && !kb.freq.contains_key(&i)
        && !kb.period.iter().any(|x| x.0 == i)
        && !kb.course_items.iter().any(|x| x.0 == i)
        && !kb.working_age_items.contains(&i)
}

impl Gen<'_> {
    fn spec_label(
        &mut self,
        anomaly: &str,
        s: &Spec,
        table: &'static str,
        entity: Entity,
        note: &str,
    ) -> LSpec {
        LSpec {
            anomaly: anomaly.to_string(),
            role: s.role,
            kind: s.kind,
            subkind: s.subkind,
            entity,
            table,
            note: note.to_string(),
        }
    }

    fn lab(&mut self, id: &str, s: &Spec, note: &str) -> LSpec {
        self.spec_label(id, s, "setl", Entity::Settlement, note)
    }

    fn lab_as(
        &mut self,
        id: &str,
        role: Role,
        kind: &'static str,
        subkind: &'static str,
        note: &str,
    ) -> LSpec {
        LSpec {
            anomaly: id.to_string(),
            role,
            kind,
            subkind,
            entity: Entity::Settlement,
            table: "setl",
            note: note.to_string(),
        }
    }

    fn plain_dx(&mut self) -> usize {
        let code = PLAIN[self.rng.index(PLAIN.len())];
        self.a.dx_by_code(code).unwrap_or(0)
    }

    fn dx_of(&mut self, codes: &[&str]) -> usize {
        let k = self.rng.index(codes.len());
        self.dx(codes[k])
    }

    fn dx(&self, code: &str) -> usize {
        self.a.dx_by_code(code).unwrap_or(0)
    }

    /// A length of stay in `lo..=hi` (at most 5 days in compact mode).
    fn span(&mut self, lo: i64, hi: i64) -> i32 {
        if self.c.compact {
            self.rng.range(lo.min(3), hi.min(5)) as i32
        } else {
            self.rng.range(lo, hi) as i32
        }
    }

    fn day_in(&mut self, lo: i32, hi: i32) -> i32 {
        self.rng.range(i64::from(lo), i64::from(hi.max(lo))) as i32
    }

    fn adult(&mut self, employee: Option<bool>) -> u32 {
        self.make_person(&PersonSpec { employee, age: Some((30, 78)), idet: Some(""), ..Default::default() })
    }

    /// An ordinary stay for an instance person (never at an outlier facility).
    fn inst_stay(
        &mut self,
        p: u32,
        dx: usize,
        begn: i32,
        setting: Option<usize>,
        exclude: &[u16],
    ) -> StaySpec {
        let o = FacOpts { avoid_outliers: true, setting, exclude: exclude.to_vec(), outpatient: false };
        let fac = self.choose_facility(p, dx, begn, &o);
        let los = self.los_for(fac, dx).min(30);
        let mut s = StaySpec::new(fac, dx, begn, los);
        s.refl = self.c.fac(fac).serves == "both";
        s
    }

    fn one(&mut self, p: u32, s: &StaySpec) -> Draft {
        let mut v = self.stay(p, s);
        v.swap_remove(0)
    }

    /// Runs one planned task.
    pub fn run(&mut self, t: Task) {
        match t {
            Task::Spec(i, seq) => self.instance(&SPECS[i], seq),
            Task::Malformed(i, seq) => self.malformed(i, seq),
            Task::Anchor => {
                let p = self.make_person(&PersonSpec {
                    employee: Some(false),
                    age: Some((55, 75)),
                    idet: Some("1102"),
                    ..Default::default()
                });
                let dx = self.dx("C34.900");
                let begn = ymd(2026, 10, 5) + self.rng.range(0, 10) as i32;
                let mut s = self.inst_stay(p, dx, begn, Some(L3), &[]);
                s.los = s.los.clamp(5, 14);
                s.min_cost = 4_000_000;
                let mut d = self.one(p, &s);
                d.pay = PayPlan::Anchor;
                self.finalize(p, vec![d]);
            }
        }
    }

    fn instance(&mut self, s: &Spec, seq: u32) {
        let c = self.c;
        let id = self.new_anomaly();
        let (lo, hi) = (c.first_day + 10, c.last_day - 60);
        match s.subkind {
            "overlapping_stays" => {
                let p = self.adult(None);
                let d0 = self.day_in(lo, hi);
                let dx1 = self.plain_dx();
                let setting = if self.rng.chance(0.5) { L2 } else { L3 };
                let mut s1 = self.inst_stay(p, dx1, d0, Some(setting), &[]);
                s1.los = self.rng.range(7, 12) as i32;
                let dx2 = self.plain_dx();
                let b2 = d0 + self.rng.range(2, i64::from(s1.los - 3)) as i32;
                let mut s2 = self.inst_stay(p, dx2, b2, Some(L2), &[s1.fac]);
                s2.los = self.rng.range(3, 6) as i32;
                let mut d1 = self.one(p, &s1);
                let mut d2 = self.one(p, &s2);
                d1.label(self.lab(&id, s, "同一人同期在两家机构住院"));
                d2.label(self.lab(&id, s, "同一人同期在两家机构住院"));
                self.finalize(p, vec![d1, d2]);
            }
            "sex_impossible_diagnosis" | "perinatal_diagnosis_adult" => {
                let male = self.rng.chance(0.5);
                let p = self.make_person(&PersonSpec {
                    sex: Some(if male { 1 } else { 2 }),
                    age: Some((25, 75)),
                    idet: Some(""),
                    ..Default::default()
                });
                let codes: &[&str] = match (s.subkind, male) {
                    ("perinatal_diagnosis_adult", _) => &["P59.900", "P07.300"],
                    (_, true) => &["O80.000", "O20.000", "N83.200", "C53.900"],
                    (_, false) => &["N40.x00", "C61.x00"],
                };
                let code = codes[self.rng.index(codes.len())];
                let dise: &'static str = self.a.dx[self.dx(code)].code.as_str();
                let dx = self.plain_dx();
                let d0 = self.day_in(lo, hi);
                let mut st = self.inst_stay(p, dx, d0, None, &[]);
                st.dise = Some(dise);
                let mut d = self.one(p, &st);
                d.label(self.lab(&id, s, "主诊断与性别或年龄不符"));
                self.finalize(p, vec![d]);
            }
            "care_after_death" => {
                let p = self.make_person(&PersonSpec {
                    age: Some((70, 90)),
                    idet: Some(""),
                    ..Default::default()
                });
                let death = self.day_in(lo + 60, hi - 40);
                self.persons[p as usize].death = Some(death);
                let mut drafts = Vec::new();
                if self.rng.chance(0.5) {
                    let dx = self.plain_dx();
                    let b = death - 60;
                    let mut st = self.inst_stay(p, dx, b, None, &[]);
                    st.los = st.los.min(30);
                    drafts.push(self.one(p, &st));
                }
                let day = death + self.rng.range(5, 40) as i32;
                let dx = self.plain_dx();
                let mut d = if self.rng.chance(0.5) {
                    let st = self.inst_stay(p, dx, day, Some(L2), &[]);
                    self.one(p, &st)
                } else {
                    let fac = self.choose_facility(
                        p,
                        dx,
                        day,
                        &FacOpts { avoid_outliers: true, ..Default::default() },
                    );
                    self.visit(p, &VisitSpec { fac, dx, dise: None, day, span: 0, med_type: "11" })
                };
                d.label(self.lab(&id, s, "死亡后仍有就医结算"));
                drafts.push(d);
                self.finalize(p, drafts);
            }
            "identity_mismatch" => {
                let p = self.adult(None);
                let dx = self.plain_dx();
                let d0 = self.day_in(lo, hi);
                let st = self.inst_stay(p, dx, d0, None, &[]);
                let mut d = self.one(p, &st);
                d.ident = Some(Box::new(self.impostor(p)));
                d.label(self.lab(&id, s, "结算身份信息与参保登记不符"));
                self.finalize(p, vec![d]);
            }
            "duplicate_settlement" | "direct_and_manual" => {
                let p = self.adult(None);
                let dx = self.dx_of(PLAIN_COPYABLE);
                let d0 = self.day_in(lo, hi - 60);
                let st = self.inst_stay(p, dx, d0, Some(L2), &[]);
                let mut d1 = self.one(p, &st);
                let mut d2 = d1.clone();
                if s.subkind == "direct_and_manual" {
                    d2.manual = true;
                    d2.mdtrt = self.new_mdtrt();
                    d2.time += self.rng.range(15, 60) * 86_400;
                } else {
                    d2.time += self.rng.range(3_600, 10 * 86_400);
                    if self.rng.chance(0.5) {
                        d2.mdtrt = self.new_mdtrt();
                    }
                }
                let note = if s.subkind == "direct_and_manual" {
                    "同一住院直接结算后又手工报销"
                } else {
                    "同一住院重复结算"
                };
                d1.label(self.lab(&id, s, note));
                d2.label(self.lab(&id, s, note));
                self.finalize(p, vec![d1, d2]);
            }
            "duplicate_fee_lines" => {
                let p = self.adult(None);
                let dx = self.plain_dx();
                let d0 = self.day_in(lo, hi);
                let st = self.inst_stay(p, dx, d0, None, &[]);
                let mut d = self.one(p, &st);
                let a = self.a;
                let cands: Vec<usize> = (0..d.lines.len())
                    .filter(|&k| {
                        let b = &a.bill[d.lines[k].bill as usize];
                        matches!(b.typ.as_str(), "09" | "11" | "04")
                            && !a.kb.freq.contains_key(&d.lines[k].bill)
                    })
                    .collect();
                let n = self.rng.range(1, 3) as usize;
                for _ in 0..n.min(cands.len()) {
                    let k = cands[self.rng.index(cands.len())];
                    let l = d.lines[k];
                    d.lines.push(l);
                }
                d.label(self.lab(&id, s, "同一明细重复计费"));
                self.finalize(p, vec![d]);
            }
            "bed_days" => {
                let p = self.adult(None);
                let dx = self.plain_dx();
                let d0 = self.day_in(lo, hi);
                let mut st = self.inst_stay(p, dx, d0, None, &[]);
                st.bed_discharge_day = true;
                let mut d = self.one(p, &st);
                d.label(self.lab(&id, s, "床位费天数多于住院天数"));
                self.finalize(p, vec![d]);
            }
            "outpatient_during_stay" => {
                let p = self.adult(None);
                let dx = self.plain_dx();
                let d0 = self.day_in(lo, hi);
                let mut st = self.inst_stay(p, dx, d0, Some(L2), &[]);
                st.los = self.rng.range(6, 14) as i32;
                let mut d = self.one(p, &st);
                let day = d0 + self.rng.range(1, i64::from(st.los - 1)) as i32;
                let odx = self.dx("K29.700");
                let mut v = self
                    .visit(p, &VisitSpec { fac: st.fac, dx: odx, dise: None, day, span: 0, med_type: "11" });
                v.label(self.lab(&id, s, "住院期间在同一机构门诊结算"));
                d.label(self.lab_as(&id, Role::Related, s.kind, s.subkind, "同期住院"));
                self.finalize(p, vec![d, v]);
            }
            "item_duplicate_pair" => {
                let p = self.adult(None);
                let dx = self.plain_dx();
                let d0 = self.day_in(lo, hi);
                let mut st = self.inst_stay(p, dx, d0, None, &[]);
                st.los = st.los.max(3);
                let mut d = self.one(p, &st);
                let pairs = injectable_pairs(self.a);
                let (main, sub, daily) = pairs[self.rng.index(pairs.len())];
                let lc = self.line_ctx(p, st.fac, dx, d0, true);
                let day = self.rng.range(0, i64::from(st.los - 1)) as i32;
                let t = i64::from(d0 + day) * 86_400 + 50_000;
                d.lines.push(self.mk_line(&lc, main, t, 10_000));
                if !daily {
                    d.lines.push(self.mk_line(&lc, sub, t, 10_000));
                }
                d.label(self.lab(&id, s, "主项目已包含的子项目重复收费"));
                self.finalize(p, vec![d]);
            }
            "no_filing" | "filed_out_of_area" | "emergency_out_of_area" => {
                let p = self.adult(None);
                let dx = self.plain_dx();
                let d0 = self.day_in(lo, hi);
                let mut st = self.inst_stay(p, dx, d0, Some(OUT), &[]);
                st.refl = s.subkind == "filed_out_of_area";
                st.med_type = match s.subkind {
                    "emergency_out_of_area" => "24",
                    "filed_out_of_area" if self.rng.chance(0.4) => "23",
                    _ => "21",
                };
                st.manual = self.rng.chance(0.2);
                let mut d = self.one(p, &st);
                let note = match s.subkind {
                    "no_filing" => "异地住院未备案",
                    "filed_out_of_area" => "异地住院已备案",
                    _ => "异地急诊转住院（视同备案）",
                };
                d.label(self.lab(&id, s, note));
                self.finalize(p, vec![d]);
            }
            "same_city_other_county" => {
                let p = self.adult(Some(false));
                let county = self.persons[p as usize].county as usize;
                let own = &self.a.regions[county].admdvs;
                let cands: Vec<u16> = c.cands[county][L2]
                    .iter()
                    .map(|x| x.0)
                    .filter(|&f| {
                        let fa = c.fac(f);
                        &fa.admdvs != own && fa.specialty == "general" && !c.is_outlier(f)
                    })
                    .collect();
                let dx = self.plain_dx();
                let d0 = self.day_in(lo, hi);
                let mut st = self.inst_stay(p, dx, d0, Some(L2), &[]);
                if !cands.is_empty() {
                    st.fac = cands[self.rng.index(cands.len())];
                }
                let mut d = self.one(p, &st);
                d.label(self.lab(&id, s, "本市其他县区就医，不属于异地"));
                self.finalize(p, vec![d]);
            }
            "cluster" => {
                let t = c.cluster_targets[seq as usize % c.cluster_targets.len().max(1)];
                let counties = &c.resident_counties;
                let county = counties[(seq as usize / c.cluster_targets.len().max(1)) % counties.len()];
                let k = self.rng.range(5, 8);
                let d0 = self.day_in(lo, hi);
                let dx = self.dx(if seq.is_multiple_of(2) { "M51.202" } else { "I63.900" });
                for _ in 0..k {
                    let p = self.make_person(&PersonSpec {
                        employee: Some(false),
                        county: Some(county),
                        age: Some((40, 75)),
                        idet: Some(""),
                        ..Default::default()
                    });
                    let begn = d0 + self.rng.range(0, 2) as i32;
                    let los = self.span(7, 14);
                    let mut st = StaySpec::new(t, dx, begn, los);
                    st.refl = true;
                    let mut d = self.one(p, &st);
                    d.label(self.lab(&id, s, "同一县区多人短期内集中到同一异地机构住院"));
                    self.finalize(p, vec![d]);
                }
            }
            "readmission_15d" => {
                let p = self.adult(None);
                let dx = self.plain_dx();
                let d0 = self.day_in(lo, hi - 40);
                let st = self.inst_stay(p, dx, d0, None, &[]);
                let gap = self.rng.range(1, 14) as i32;
                let mut st2 = StaySpec::new(st.fac, dx, st.end() + gap, self.los_for(st.fac, dx).min(20));
                st2.refl = st.refl;
                let mut d1 = self.one(p, &st);
                let mut d2 = self.one(p, &st2);
                d1.label(self.lab_as(&id, Role::Related, s.kind, s.subkind, "首次住院"));
                d2.label(self.lab(&id, s, "出院后15日内同一机构同一病种再入院"));
                self.finalize(p, vec![d1, d2]);
            }
            "bed_only_stay" => {
                let p = self.make_person(&PersonSpec {
                    age: Some((60, 88)),
                    idet: Some(""),
                    ..Default::default()
                });
                let dx = self.plain_dx();
                let d0 = self.day_in(lo, hi);
                let setting = if self.rng.chance(0.6) { L1 } else { L2 };
                let mut st = self.inst_stay(p, dx, d0, Some(setting), &[]);
                st.los = self.rng.range(6, 20) as i32;
                st.phantom = true;
                let mut d = self.one(p, &st);
                d.label(self.lab(&id, s, "住院期间多数日期仅有床位、护理、诊查费"));
                self.finalize(p, vec![d]);
            }
            "frequency_limit" => {
                let p = self.adult(None);
                let dx = self.plain_dx();
                let d0 = self.day_in(lo, hi);
                let mut st = self.inst_stay(p, dx, d0, None, &[]);
                st.los = st.los.max(3);
                let mut d = self.one(p, &st);
                let a = self.a;
                let target = a.role("consult_ip");
                let day = i64::from(d0 + self.rng.range(0, i64::from(st.los - 1)) as i32);
                let lc = self.line_ctx(p, st.fac, dx, d0, true);
                if let Some(k) = d.lines.iter().position(|l| l.bill == target && l.time / 86_400 == day) {
                    let l = d.lines[k];
                    d.lines[k] = self.mk_line_priced(&lc, l.bill, l.time, 20_000, Some(l.pric6));
                }
                d.label(self.lab(&id, s, "日计费项目单日数量超限"));
                self.finalize(p, vec![d]);
            }
            "period_limit" => {
                let p = self.adult(None);
                let dx = self.dx("E11.900");
                let d0 = self.day_in(lo, hi);
                let mut st = self.inst_stay(p, dx, d0, None, &[]);
                st.los = self.rng.range(9, 14) as i32;
                let mut d = self.one(p, &st);
                let bill = self.a.role("lab_hba1c");
                let lc = self.line_ctx(p, st.fac, dx, d0, true);
                let days: Vec<i64> =
                    d.lines.iter().filter(|l| l.bill == bill).map(|l| l.time / 86_400).collect();
                if days.is_empty() {
                    d.lines.push(self.mk_line(&lc, bill, i64::from(d0) * 86_400 + 25_500, 10_000));
                }
                let t = i64::from(d0 + self.rng.range(4, 8) as i32) * 86_400 + 25_600;
                d.lines.push(self.mk_line(&lc, bill, t, 10_000));
                d.label(self.lab(&id, s, "周期内检验次数超限"));
                self.finalize(p, vec![d]);
            }
            "secondary_surgery" => {
                let p = self.adult(None);
                let dx = self.dx("K80.100");
                let d0 = self.day_in(lo, hi);
                let setting = if self.rng.chance(0.5) { L2 } else { L3 };
                let mut st = self.inst_stay(p, dx, d0, Some(setting), &[]);
                st.surgery = Some(true);
                st.los = st.los.max(4);
                let mut d = self.one(p, &st);
                let a = self.a;
                let op = a.dx[dx].surgery.unwrap_or(0);
                let g = a.kb.surgery_item_group.get(&op).copied().unwrap_or(0);
                let have: Vec<u32> = d.lines.iter().map(|l| l.bill).collect();
                let cands: Vec<u32> = a.kb.surgery_groups[g]
                    .1
                    .iter()
                    .copied()
                    .filter(|&i| i != op && !a.kb.gender_items.iter().any(|x| x.0 == i))
                    .filter(|&i| {
                        !a.kb.pairs.iter().any(|pr| {
                            (pr.main == i && have.contains(&pr.sub))
                                || (pr.sub == i && have.contains(&pr.main))
                        })
                    })
                    .collect();
                let t = d
                    .lines
                    .iter()
                    .find(|l| l.bill == op)
                    .map_or(i64::from(d0 + 1) * 86_400 + 34_200, |l| l.time);
                if !cands.is_empty() {
                    let second = cands[self.rng.index(cands.len())];
                    let lc = self.line_ctx(p, st.fac, dx, d0, true);
                    d.lines.push(self.mk_line(&lc, second, t + 1_800, 10_000));
                }
                d.label(self.lab(&id, s, "同一切口第二项手术未按规定折价"));
                self.finalize(p, vec![d]);
            }
            "course_limit" => {
                let p = self.make_person(&PersonSpec {
                    age: Some((50, 64)),
                    idet: Some(""),
                    ..Default::default()
                });
                let dx = self.dx("I69.300");
                let d0 = self.day_in(lo, hi - 50);
                let mut st = self.inst_stay(p, dx, d0, Some(L2), &[]);
                let a = self.a;
                let items: Vec<(u32, u32)> =
                    a.kb.course_items
                        .iter()
                        .copied()
                        .filter(|&(i, days)| days == 30 && free_item_but_course(a, i))
                        .collect();
                let (item, days) = items.first().copied().unwrap_or((a.role("rehab_pt"), 30));
                st.los = days as i32 + self.rng.range(6, 12) as i32;
                let mut d = self.one(p, &st);
                let lc = self.line_ctx(p, st.fac, dx, d0, true);
                for k in 0..(days as i32 + self.rng.range(3, 5) as i32) {
                    d.lines.push(self.mk_line(&lc, item, i64::from(d0 + k) * 86_400 + 41_400, 10_000));
                }
                d.label(self.lab(&id, s, "康复项目超过支付疗程"));
                self.finalize(p, vec![d]);
            }
            "sex_limited_item" | "child_only_item" | "working_age_item" => {
                let a = self.a;
                let (p, items): (u32, Vec<u32>) = match s.subkind {
                    "sex_limited_item" => {
                        let p = self.adult(None);
                        let sex = self.persons[p as usize].gend;
                        let v =
                            a.kb.gender_items
                                .iter()
                                .filter(|x| x.1 != sex && free_item(a, x.0))
                                .map(|x| x.0)
                                .collect();
                        (p, v)
                    }
                    "child_only_item" => {
                        let p = self.adult(None);
                        (p, a.kb.child_items.iter().copied().filter(|&i| free_item(a, i)).collect())
                    }
                    _ => {
                        let p = self.make_person(&PersonSpec {
                            age: Some((66, 85)),
                            idet: Some(""),
                            ..Default::default()
                        });
                        (p, a.kb.working_age_items.clone())
                    }
                };
                let dx = if s.subkind == "working_age_item" { self.dx("I69.300") } else { self.plain_dx() };
                let d0 = self.day_in(lo, hi);
                let st = self.inst_stay(p, dx, d0, Some(L2), &[]);
                let mut d = self.one(p, &st);
                if !items.is_empty() {
                    let item = items[self.rng.index(items.len())];
                    let lc = self.line_ctx(p, st.fac, dx, d0, true);
                    let t = i64::from(d0 + st.los.min(1)) * 86_400 + 46_800;
                    d.lines.push(self.mk_line(&lc, item, t, 10_000));
                }
                let note = match s.subkind {
                    "sex_limited_item" => "限性别项目用于另一性别",
                    "child_only_item" => "限儿童项目用于成人",
                    _ => "超过法定就业年龄使用限定项目",
                };
                d.label(self.lab(&id, s, note));
                self.finalize(p, vec![d]);
            }
            "sex_limited_drug"
            | "child_only_drug"
            | "work_injury_drug"
            | "drug_below_level"
            | "course_days_drug"
            | "inpatient_only_drug" => {
                self.restricted_drug(s, &id);
            }
            "injury_diagnosis" | "injury_med_type" => {
                let p = self.adult(None);
                let codes = ["S72.000", "S06.000", "S52.500", "S82.200", "S32.000"];
                let dx = self.dx_of(&codes);
                let d0 = self.day_in(lo, hi);
                let mut st = self.inst_stay(p, dx, d0, None, &[]);
                st.med_type = if s.subkind == "injury_med_type" { "22" } else { "21" };
                let mut d = self.one(p, &st);
                self.label_injury(&mut d, dx);
                self.finalize(p, vec![d]);
            }
            "hifmi_wrong" | "paid_late" | "unpaid_overdue" | "working_day_deadline" => {
                let p = self.adult(Some(false));
                if self.rng.chance(0.3) {
                    self.persons[p as usize].idet = "1102";
                }
                let idet = self.persons[p as usize].idet;
                let dx = self.dx_of(&["C34.900", "C16.900", "I21.900", "C22.000"]);
                let (mut lo2, mut hi2) = (lo, hi);
                match s.subkind {
                    "paid_late" => hi2 = ymd(2026, 7, 31),
                    "unpaid_overdue" => hi2 = ymd(2025, 10, 31),
                    _ => {}
                }
                let small = s.subkind == "hifmi_wrong" && self.rng.chance(0.25);
                let mut end_target = None;
                if s.subkind == "working_day_deadline" {
                    let hol: Vec<i32> = c
                        .cal
                        .holidays
                        .iter()
                        .copied()
                        .filter(|&h| h > lo + 60 && h < hi && weekday(h) < 5)
                        .collect();
                    if let Some(&h) = hol.get(self.rng.index(hol.len().max(1))) {
                        end_target = Some(h - self.rng.range(3, 8) as i32);
                        lo2 = lo;
                        hi2 = hi;
                    }
                }
                let d0 = self.day_in(lo2, hi2);
                let mut st = self.inst_stay(p, dx, d0, Some(L3), &[]);
                st.los = st.los.clamp(6, 20);
                if let Some(e) = end_target {
                    st.begn = e - st.los;
                }
                st.min_cost = if small { 0 } else { self.rng.range(6_000_000, 15_000_000) };
                st.boost = if small { 0.6 } else { 1.0 };
                let mut d = self.one(p, &st);
                d.idet = idet;
                match s.subkind {
                    "hifmi_wrong" => {
                        d.benefit_err = Some(if small {
                            BenefitErr::Add(self.rng.range(50_000, 300_000))
                        } else if self.rng.chance(0.5) {
                            BenefitErr::Scale(self.rng.range(80, 300))
                        } else {
                            BenefitErr::Scale(-self.rng.range(80, 300))
                        });
                        d.label(self.lab(&id, s, "大病保险支付金额与政策计算结果不符"));
                    }
                    _ => {
                        d.pay = match s.subkind {
                            "paid_late" => PayPlan::Late,
                            "unpaid_overdue" => PayPlan::UnpaidOverdue,
                            _ => PayPlan::WorkdayControl,
                        };
                        d.late_by = self.rng.range(1, 10) as u32;
                        let note = crate::synth::chunk::pay_note(d.pay);
                        let l = self.spec_label(&id, s, "pay", Entity::Settlement, note);
                        d.label(l);
                    }
                }
                self.finalize(p, vec![d]);
            }
            "hifob_wrong" | "employee_pool_cap" | "employee_cap" => {
                let p = self.adult(Some(true));
                let y = 2024 + self.rng.range(0, 2) as i32;
                let n = if s.subkind == "employee_cap" { 3 } else { 2 };
                let per = if s.subkind == "employee_cap" { 18_000_000 } else { 9_000_000 };
                let mut drafts = Vec::new();
                for k in 0..n {
                    let dx = self.dx_of(&["C34.900", "I21.900", "C92.000"]);
                    let b = ymd(y, 1, 10) + 95 * k + self.rng.range(0, 20) as i32;
                    let mut st = self.inst_stay(p, dx, b, Some(L3), &[]);
                    st.los = self.span(8, 25);
                    st.min_cost = per + self.rng.range(0, 3_000_000);
                    drafts.push(self.one(p, &st));
                }
                if s.subkind == "hifob_wrong" {
                    let last = drafts.len() - 1;
                    drafts[last].benefit_err = Some(if self.rng.chance(0.5) {
                        BenefitErr::Scale(self.rng.range(60, 200))
                    } else {
                        BenefitErr::Scale(-self.rng.range(60, 200))
                    });
                    drafts[last].label(self.lab(&id, s, "大额补助支付金额与政策计算结果不符"));
                    drafts[0].label(self.lab_as(&id, Role::Related, s.kind, s.subkind, "同年度此前住院"));
                } else {
                    for d in drafts.iter_mut() {
                        d.label(self.lab(&id, s, "统筹基金达到年度最高支付限额后的大额补助"));
                    }
                }
                self.finalize(p, drafts);
            }
            "resident_tier" | "resident_cap" | "preferential_high" => {
                let idet = if s.subkind == "preferential_high" { "1101" } else { "" };
                let p = self.make_person(&PersonSpec {
                    employee: Some(false),
                    age: Some((35, 75)),
                    idet: Some(idet),
                    ..Default::default()
                });
                let y = 2024 + self.rng.range(0, 2) as i32;
                let (n, per) = match s.subkind {
                    "resident_cap" => (3, 60_000_000),
                    _ => (2, 22_000_000),
                };
                let mut drafts = Vec::new();
                for k in 0..n {
                    let dx = self.dx_of(&["C92.000", "C34.900", "C16.900"]);
                    let b = ymd(y, 1, 10) + 100 * k + self.rng.range(0, 20) as i32;
                    let mut st = self.inst_stay(p, dx, b, Some(L3), &[]);
                    st.los = self.span(10, 30);
                    st.min_cost = per + self.rng.range(0, per / 5);
                    let mut d = self.one(p, &st);
                    d.idet = idet;
                    d.label(self.lab(&id, s, "大病保险跨越10万元分段或达到年度封顶"));
                    drafts.push(d);
                }
                self.finalize(p, drafts);
            }
            "identity_type_change" => {
                let p = self.make_person(&PersonSpec {
                    employee: Some(false),
                    age: Some((40, 75)),
                    idet: Some("1102"),
                    ..Default::default()
                });
                let y = 2024 + self.rng.range(0, 2) as i32;
                let mut drafts = Vec::new();
                for (k, idet) in ["", "1102"].into_iter().enumerate() {
                    let dx = self.dx("C34.900");
                    let b = ymd(y, 2, 1) + 150 * k as i32 + self.rng.range(0, 20) as i32;
                    let mut st = self.inst_stay(p, dx, b, Some(L3), &[]);
                    st.los = st.los.clamp(8, 20);
                    st.min_cost = self.rng.range(4_000_000, 8_000_000);
                    let mut d = self.one(p, &st);
                    d.idet = idet;
                    d.label(self.lab_as(
                        &id,
                        Role::NegativeControl,
                        "impersonation",
                        s.subkind,
                        "年度内人员身份类别变更",
                    ));
                    d.label(self.lab_as(
                        &id,
                        Role::NegativeControl,
                        "benefit_mismatch",
                        s.subkind,
                        "年度内转入倾斜救助人群",
                    ));
                    drafts.push(d);
                }
                self.finalize(p, drafts);
            }
            "chemo_readmission" | "radiotherapy_readmission" => {
                let p = self.make_person(&PersonSpec {
                    age: Some((40, 75)),
                    idet: Some(""),
                    ..Default::default()
                });
                let chemo = s.subkind == "chemo_readmission";
                let dx = self.dx(if chemo { "Z51.100" } else { "Z51.000" });
                let d0 = self.day_in(lo, hi - 120);
                let fac = self.choose_facility(
                    p,
                    dx,
                    d0,
                    &FacOpts { avoid_outliers: true, setting: Some(L3), ..Default::default() },
                );
                let n = if chemo { self.rng.range(4, 6) } else { self.rng.range(2, 3) };
                let mut drafts = Vec::new();
                let mut b = d0;
                for _ in 0..n {
                    let los = if chemo { self.span(2, 4) } else { self.span(8, 14) };
                    let mut d = self.one(p, &StaySpec::new(fac, dx, b, los));
                    d.label(self.lab(&id, s, "按周期入院的放化疗，不属于分解住院"));
                    drafts.push(d);
                    b += if chemo { 14 } else { los + self.rng.range(3, 10) as i32 };
                }
                self.finalize(p, drafts);
            }
            "same_day_transfer" => {
                let p = self.adult(None);
                let dx = self.plain_dx();
                let d0 = self.day_in(lo, hi - 30);
                let setting = if self.rng.chance(0.5) { L1 } else { L2 };
                let st1 = self.inst_stay(p, dx, d0, Some(setting), &[]);
                let st2 = self.inst_stay(p, dx, st1.end(), Some(L3), &[st1.fac]);
                let mut d1 = self.one(p, &st1);
                let mut d2 = self.one(p, &st2);
                d1.label(self.lab(&id, s, "当日转院，出院与入院同日"));
                d2.label(self.lab(&id, s, "当日转院，出院与入院同日"));
                self.finalize(p, vec![d1, d2]);
            }
            "death_on_discharge_day" => {
                let p = self.make_person(&PersonSpec {
                    age: Some((72, 92)),
                    idet: Some(""),
                    ..Default::default()
                });
                let dx = self.plain_dx();
                let d0 = self.day_in(lo, hi);
                let st = self.inst_stay(p, dx, d0, None, &[]);
                self.persons[p as usize].death = Some(st.end());
                let mut d = self.one(p, &st);
                d.label(self.lab(&id, s, "住院期间死亡，出院日即死亡日"));
                self.finalize(p, vec![d]);
            }
            "reversal_resettlement" | "reversal_with_between" => {
                let p = self.adult(Some(false));
                let dx = self.dx_of(&["C34.900", "I63.900", "C16.900"]);
                let y = 2024 + self.rng.range(0, 2) as i32;
                let d0 = ymd(y, 2, 1) + self.rng.range(0, 120) as i32;
                let mut st = self.inst_stay(p, dx, d0, Some(L3), &[]);
                st.los = st.los.clamp(6, 15);
                st.min_cost = self.rng.range(3_000_000, 7_000_000);
                let orig = self.one(p, &st);
                let mut drafts = vec![orig.clone()];
                let rev_day = st.end() + self.rng.range(30, 60) as i32;
                if s.subkind == "reversal_with_between" {
                    let dx2 = self.plain_dx();
                    let mut st2 = self.inst_stay(p, dx2, st.end() + 5, Some(L2), &[st.fac]);
                    st2.los = st2.los.min(rev_day - st2.begn - 3).max(1);
                    st2.min_cost = self.rng.range(2_000_000, 4_000_000);
                    drafts.push(self.one(p, &st2));
                }
                let mut rev = orig.clone();
                rev.reversal_of = Some(0);
                rev.time = i64::from(rev_day) * 86_400 + self.rng.range(32_400, 50_000);
                let mut re = orig.clone();
                re.time = rev.time + self.rng.range(600, 86_400);
                if self.rng.chance(0.5)
                    && let Some(k) =
                        re.lines.iter().rposition(|l| self.a.bill[l.bill as usize].drug.is_some())
                {
                    re.lines.remove(k);
                }
                drafts.push(rev);
                drafts.push(re);
                for d in drafts.iter_mut() {
                    d.label(self.lab_as(
                        &id,
                        Role::NegativeControl,
                        "duplicate_billing",
                        s.subkind,
                        "退费冲销后重新结算",
                    ));
                    d.label(self.lab_as(
                        &id,
                        Role::NegativeControl,
                        "benefit_mismatch",
                        s.subkind,
                        "冲销在发生时轧差",
                    ));
                }
                self.finalize(p, drafts);
            }
            "long_stay_pieces" | "year_end_pieces" => {
                let p = self.make_person(&PersonSpec {
                    age: Some((30, 80)),
                    idet: Some(""),
                    ..Default::default()
                });
                let codes = ["I69.300", "F20.900", "C92.000"];
                let dx = self.dx_of(&codes);
                let (d0, los) = if s.subkind == "year_end_pieces" {
                    let y = 2024 + self.rng.range(0, 1) as i32;
                    (ymd(y, 12, 1) + self.rng.range(0, 20) as i32, self.rng.range(25, 50) as i32)
                } else {
                    (self.day_in(lo, hi - 100), self.rng.range(40, 80) as i32)
                };
                let mut st = self.inst_stay(p, dx, d0, None, &[]);
                st.los = los;
                let mut cuts = Vec::new();
                for day in d0 + 1..d0 + los - 1 {
                    let next = crate::synth::cal::date(day + 1);
                    if chrono::Datelike::day(&next) == 1
                        && (s.subkind == "long_stay_pieces" || chrono::Datelike::month(&next) == 1)
                    {
                        cuts.push(day);
                    }
                }
                if cuts.is_empty() {
                    cuts.push(d0 + los / 2);
                }
                st.cuts = cuts;
                let mut drafts = self.stay(p, &st);
                for d in drafts.iter_mut() {
                    d.label(self.lab_as(
                        &id,
                        Role::NegativeControl,
                        "duplicate_billing",
                        s.subkind,
                        "同一住院中途结算的分段",
                    ));
                    d.label(self.lab_as(
                        &id,
                        Role::NegativeControl,
                        "split_admission",
                        s.subkind,
                        "同一住院中途结算的分段",
                    ));
                }
                self.finalize(p, drafts);
            }
            "person_admission_count" => {
                let p = self.make_person(&PersonSpec {
                    employee: Some(false),
                    age: Some((55, 80)),
                    idet: Some(""),
                    ..Default::default()
                });
                let y = 2024 + self.rng.range(0, 1) as i32;
                let n = self.rng.range(12, 15) as i32;
                let facs: Vec<u16> = {
                    let mut v = Vec::new();
                    for setting in [L1, L2, L1] {
                        let dx = self.dx("J44.100");
                        v.push(self.choose_facility(
                            p,
                            dx,
                            ymd(y, 1, 5),
                            &FacOpts { avoid_outliers: true, setting: Some(setting), ..Default::default() },
                        ));
                    }
                    v
                };
                let mut drafts = Vec::new();
                for k in 0..n {
                    let dx = self.plain_dx();
                    let fac = facs[k as usize % facs.len()];
                    let b = ymd(y, 1, 5) + 24 * k + self.rng.range(0, 2) as i32;
                    let los = self.rng.range(3, 6) as i32;
                    let mut d = self.one(p, &StaySpec::new(fac, dx, b, los));
                    let l = self.spec_label(&id, s, "setl", Entity::Person, "年度住院次数远高于人群水平");
                    d.label(l);
                    drafts.push(d);
                }
                self.finalize(p, drafts);
            }
            "amount_identity" | "fee_sum_mismatch" | "date_order" => {
                let p = self.adult(None);
                let dx = self.plain_dx();
                let d0 = self.day_in(lo, hi);
                let mut d = if s.subkind == "date_order" {
                    let odx = self.dx("K29.700");
                    let fac = self.choose_facility(
                        p,
                        odx,
                        d0,
                        &FacOpts { avoid_outliers: true, outpatient: true, ..Default::default() },
                    );
                    let mut v = self
                        .visit(p, &VisitSpec { fac, dx: odx, dise: None, day: d0, span: 0, med_type: "11" });
                    v.end = v.begn - self.rng.range(1, 30) as i32;
                    v
                } else {
                    let st = self.inst_stay(p, dx, d0, None, &[]);
                    let mut d = self.one(p, &st);
                    d.money_err = Some(if s.subkind == "amount_identity" {
                        MoneyErr::BreakIdentity(self.rng.range(1_000, 50_000))
                    } else {
                        MoneyErr::DropLine
                    });
                    d
                };
                let note = match s.subkind {
                    "amount_identity" => "医疗费总额不等于四项之和",
                    "fee_sum_mismatch" => "费用明细合计不等于医疗费总额",
                    _ => "结束日期早于开始日期",
                };
                d.label(self.lab(&id, s, note));
                self.finalize(p, vec![d]);
            }
            "id_check_digit" | "id_birth_date" | "id_sex_digit" => {
                let p = self.adult(None);
                let person = self.persons[p as usize].clone();
                let body = &person.certno[..17];
                let cert = match s.subkind {
                    "id_check_digit" => {
                        let right = person.certno.as_bytes()[17];
                        let wrong = if right == b'0' { '1' } else { '0' };
                        format!("{body}{wrong}")
                    }
                    "id_birth_date" => {
                        let shifted = crate::synth::cal::date(person.brdy + self.rng.range(1, 200) as i32);
                        let seq: u16 = body[14..17].parse().unwrap_or(0);
                        crate::idcard::make(&body[..6], shifted, seq)
                    }
                    _ => {
                        let seq: u16 = body[14..17].parse().unwrap_or(0);
                        let other = if seq % 2 == 1 { seq - 1 } else { seq + 1 };
                        crate::idcard::make(&body[..6], crate::synth::cal::date(person.brdy), other)
                    }
                };
                self.persons[p as usize].certno = cert;
                let dx = self.plain_dx();
                let d0 = self.day_in(lo, hi);
                let mut d = if self.rng.chance(0.5) {
                    let st = self.inst_stay(p, dx, d0, None, &[]);
                    self.one(p, &st)
                } else {
                    let fac = self.choose_facility(
                        p,
                        dx,
                        d0,
                        &FacOpts { avoid_outliers: true, outpatient: true, ..Default::default() },
                    );
                    self.visit(p, &VisitSpec { fac, dx, dise: None, day: d0, span: 0, med_type: "11" })
                };
                d.label(self.lab(&id, s, "证件号码校验位、出生日期或性别位与登记信息不符"));
                self.finalize(p, vec![d]);
            }
            other => unreachable!("no builder for `{other}`"),
        }
    }

    fn restricted_drug(&mut self, s: &Spec, id: &str) {
        let c = self.c;
        let a = self.a;
        let (lo, hi) = (c.first_day + 10, c.last_day - 60);
        let list = a.kb.restricted_drugs.get(s.subkind).cloned().unwrap_or_default();
        let p = match s.subkind {
            "child_only_drug" => {
                self.make_person(&PersonSpec { age: Some((25, 70)), idet: Some(""), ..Default::default() })
            }
            _ => self.adult(None),
        };
        let sex = self.persons[p as usize].gend;
        let list: Vec<(u32, String)> = list
            .into_iter()
            .filter(|(_, r)| s.subkind != "sex_limited_drug" || (r == "男") != (sex == 1))
            .collect();
        let Some((drug, restriction)) = list.get(self.rng.index(list.len().max(1))).cloned() else { return };
        let d0 = self.day_in(lo, hi);
        let mut d = match s.subkind {
            "inpatient_only_drug" => {
                let dx = self.dx("K29.700");
                let fac = self.choose_facility(
                    p,
                    dx,
                    d0,
                    &FacOpts {
                        avoid_outliers: true,
                        setting: Some(L2),
                        outpatient: true,
                        ..Default::default()
                    },
                );
                let mut v =
                    self.visit(p, &VisitSpec { fac, dx, dise: None, day: d0, span: 0, med_type: "11" });
                let lc = self.line_ctx(p, fac, dx, d0, false);
                let t = v.lines.first().map_or(i64::from(d0) * 86_400 + 36_000, |l| l.time) + 1_500;
                v.lines.push(self.mk_line(&lc, drug, t, 10_000));
                v
            }
            _ => {
                let dx = if s.subkind == "course_days_drug" { self.dx("I63.900") } else { self.plain_dx() };
                let setting = match (s.subkind, restriction.as_str()) {
                    ("drug_below_level", "三级") => Some(L2),
                    ("drug_below_level", _) => Some(L1),
                    ("course_days_drug", _) => Some(L2),
                    _ => None,
                };
                let mut st = self.inst_stay(p, dx, d0, setting, &[]);
                let limit: i32 = restriction.trim_end_matches('天').parse().unwrap_or(14);
                let days = if s.subkind == "course_days_drug" {
                    st.los = limit + self.rng.range(6, 10) as i32;
                    limit + self.rng.range(3, 5) as i32
                } else {
                    st.los = st.los.max(3);
                    self.rng.range(1, 3) as i32
                };
                let mut d = self.one(p, &st);
                let lc = self.line_ctx(p, st.fac, dx, d0, true);
                let cnt = (a.bill[drug as usize].drug.as_ref().map_or(1.0, |x| x.daily_min).max(1.0)
                    * 10_000.0) as i64;
                for k in 0..days.min(st.los) {
                    d.lines.push(self.mk_line(&lc, drug, i64::from(d0 + k) * 86_400 + 30_600, cnt));
                }
                d
            }
        };
        let note = match s.subkind {
            "sex_limited_drug" => "限性别药品用于另一性别",
            "child_only_drug" => "限儿童药品用于成人",
            "work_injury_drug" => "工伤保险目录药品由医疗保险支付",
            "drug_below_level" => "低于限定医疗机构等级使用药品",
            "course_days_drug" => "药品超过限定支付疗程",
            _ => "限住院药品用于门诊",
        };
        d.label(self.lab(id, s, note));
        self.finalize(p, vec![d]);
    }

    /// An extra malformed row copied from a generated one.
    /// `i` indexes `MALFORMED`; keys made up for the row differ per class and `seq`.
    fn malformed(&mut self, i: usize, seq: u32) {
        let (table, class, _) = MALFORMED[i];
        // distinct made-up keys for the classes of one table
        let uniq = seq * MALFORMED.len() as u32 + i as u32;
        let anomaly = format!("Q{:05}{:05}", self.chunk, self.next_anom + 1);
        self.next_anom += 1;
        let mutation = |field: &'static str, text: &str| Mutation::Field(field, text.to_string());
        let mut label = Label {
            anomaly_id: anomaly,
            role: Role::Malformed,
            kind: "quarantine",
            subkind: class,
            table,
            setl_id: String::new(),
            psn_no: String::new(),
            entity_type: "row",
            entity_id: String::new(),
            key: String::new(),
            expected: class,
            note: String::new(),
        };
        match table {
            "setl" => {
                let Some(k) = self.template_setl() else { return };
                let mut s = self.setls[k].clone();
                let psn = self.persons[s.psn as usize].psn_no.clone();
                if class != "duplicate_key" {
                    self.next_setl += 1;
                    s.id = self.next_setl;
                    s.lines = (0, 0);
                }
                let m = match class {
                    "not_a_number" => mutation("medfee_sumamt", "壹仟贰佰元"),
                    "too_many_decimals" => mutation("medfee_sumamt", &format!("{}.125", s.m.medfee / 100)),
                    "nonexistent_date" => mutation("begndate", "2025-02-30"),
                    "missing_value" => mutation("psn_no", ""),
                    "field_count" => Mutation::ExtraField,
                    _ => mutation("setl_mode", if s.manual { "2" } else { "1" }),
                };
                label.setl_id = setl_id(s.id);
                label.psn_no = psn;
                label.key = setl_id(s.id);
                label.entity_id = label.key.clone();
                label.note = format!("结算信息畸形行：{class}");
                self.bad.push(BadRow::Setl(s, m));
            }
            "fee" => {
                let Some(k) = self.template_setl() else { return };
                let s = self.setls[k].clone();
                let l = self.lines[s.lines.0 as usize];
                let mut line = l;
                let mut setl = s.id;
                if class != "duplicate_key" {
                    line.sn = 9_000 + (uniq % 900) as u16;
                }
                if class == "unknown_settlement" {
                    setl = u64::from(self.chunk) * STRIDE + STRIDE - 1 - u64::from(seq);
                }
                let m = match class {
                    "not_a_number" => mutation("cnt", "两支"),
                    "too_many_decimals" => mutation("det_item_fee_sumamt", "12.345"),
                    "nonexistent_date" => mutation("fee_ocur_time", "2025-13-01 10:00:00"),
                    "missing_value" => mutation("med_list_codg", ""),
                    "field_count" => Mutation::ExtraField,
                    _ => mutation("chrgitm_lv", &self.a.bill[l.bill as usize].lv),
                };
                label.setl_id = setl_id(setl);
                label.psn_no = self.persons[s.psn as usize].psn_no.clone();
                label.key = feedetl_sn(setl, line.sn);
                label.entity_id = label.key.clone();
                label.note = format!("费用明细畸形行：{class}");
                self.bad.push(BadRow::Fee { line, setl, psn: s.psn, mdtrt: s.mdtrt, fac: s.fac, m });
            }
            "psn" => {
                let Some(k) = self.template_setl() else { return };
                let pi = self.setls[k].psn as usize;
                let mut person = self.persons[pi].clone();
                if class != "duplicate_key" {
                    let r = &self.a.regions[person.county as usize];
                    person.psn_no = format!(
                        "{}{:010}",
                        r.city,
                        u64::from(self.chunk) * 100_000 + 99_999 - u64::from(uniq)
                    );
                }
                let m = match class {
                    "nonexistent_date" => mutation("brdy", "1985-02-30"),
                    "missing_value" => mutation("psn_name", ""),
                    _ => mutation("insutype", person.insutype()),
                };
                label.psn_no = person.psn_no.clone();
                label.key = person.psn_no.clone();
                label.entity_id = label.key.clone();
                label.note = format!("参保人员畸形行：{class}");
                self.bad.push(BadRow::Psn(person, m));
            }
            _ => {
                let Some(pay) = self.pays.first().copied() else { return };
                let key = if class == "duplicate_key" {
                    pay_id(pay.setl)
                } else {
                    format!("{}-{uniq}", pay_id(pay.setl))
                };
                let m = match class {
                    "not_a_number" => mutation("pay_amt", "N/A"),
                    "nonexistent_date" => mutation("dcla_date", "2025-04-31"),
                    _ => mutation("fund", if pay.employee { "hifob" } else { "hifmi" }),
                };
                label.setl_id = setl_id(pay.setl);
                label.key = key.clone();
                label.entity_id = key.clone();
                label.note = format!("支付记录畸形行：{class}");
                self.bad.push(BadRow::Pay(pay, key, m));
            }
        }
        self.labels.push(label);
    }

    /// A non-reversal settlement with fee lines, unlabelled, to copy a malformed row from.
    fn template_setl(&mut self) -> Option<usize> {
        let labelled: std::collections::HashSet<&str> =
            self.labels.iter().map(|l| l.setl_id.as_str()).collect();
        let cands: Vec<usize> = (0..self.setls.len())
            .filter(|&k| {
                let s = &self.setls[k];
                !s.reversal && s.lines.1 > s.lines.0 && !labelled.contains(setl_id(s.id).as_str())
            })
            .collect();
        if cands.is_empty() {
            return None;
        }
        Some(cands[self.rng.index(cands.len())])
    }
}

fn free_item_but_course(a: &Assets, i: u32) -> bool {
    let kb = &a.kb;
    !kb.paired.contains(&i)
        && !kb.surgery_item_group.contains_key(&i)
        && !kb.freq.contains_key(&i)
        && !kb.period.iter().any(|x| x.0 == i)
        && !kb.working_age_items.contains(&i)
        && !kb.gender_items.iter().any(|x| x.0 == i)
        && !kb.child_items.contains(&i)
}
