//! Ordinary insured persons and their care over the data window: admissions, outpatient
//! chronic-disease care, outpatient visits and pharmacy purchases, and some deaths.

use crate::synth::chunk::{Draft, Entity, Gen, LSpec, PersonSpec};
use crate::synth::clinical::{StaySpec, VisitSpec};
use crate::synth::ctx::{L1, L2, L3, OUT, band};
use crate::synth::model::Role;
use crate::synth::rng::Weighted;

/// Options of a facility choice.
#[derive(Debug, Clone, Default)]
pub struct FacOpts {
    /// Never an injected outlier facility (every dedicated anomaly person).
    pub avoid_outliers: bool,
    /// Force a setting (`L1`, `L2`, `L3`, `OUT`).
    pub setting: Option<usize>,
    pub exclude: Vec<u16>,
    /// Setting probabilities for outpatient care instead of inpatient.
    pub outpatient: bool,
}

/// Setting probabilities (L1, L2, L3, out of area) by severity.
const RESIDENT_SETTINGS: [[f64; 4]; 3] =
    [[0.55, 0.38, 0.06, 0.01], [0.18, 0.52, 0.26, 0.04], [0.02, 0.33, 0.50, 0.15]];
const EMPLOYEE_SETTINGS: [[f64; 4]; 3] =
    [[0.35, 0.45, 0.18, 0.02], [0.10, 0.45, 0.40, 0.05], [0.01, 0.25, 0.56, 0.18]];
const OUTPATIENT_SETTINGS: [f64; 4] = [0.50, 0.35, 0.15, 0.0];
/// Admissions a year by age band.
const IP_RATE: [f64; 5] = [0.35, 0.12, 0.14, 0.28, 0.60];

impl Gen<'_> {
    /// A facility for a person's care with a diagnosis.
    pub fn choose_facility(&mut self, p: u32, dx: usize, day: i32, o: &FacOpts) -> u16 {
        let c = self.c;
        let person = &self.persons[p as usize];
        let age = person.age_at(day);
        let d = &self.a.dx[dx];
        let probs = if o.outpatient {
            OUTPATIENT_SETTINGS
        } else if person.employee {
            EMPLOYEE_SETTINGS[(d.severity.clamp(1, 3) - 1) as usize]
        } else {
            RESIDENT_SETTINGS[(d.severity.clamp(1, 3) - 1) as usize]
        };
        let first = o.setting.unwrap_or_else(|| Weighted::new(probs).sample(&mut self.rng));
        let county = person.county as usize;
        for setting in [first, L2, L3, OUT, L1] {
            let cands = &c.cands[county][setting];
            let w: Vec<f64> = cands
                .iter()
                .map(|&(f, w)| {
                    if (o.avoid_outliers && c.is_outlier(f)) || o.exclude.contains(&f) {
                        return 0.0;
                    }
                    if setting == OUT && c.cluster_targets.contains(&f) && o.avoid_outliers {
                        return 0.0;
                    }
                    w * c.fit(c.fac(f), d, age)
                })
                .collect();
            let ws = Weighted::new(w);
            if !ws.is_empty() {
                return cands[ws.sample(&mut self.rng)].0;
            }
            if o.setting.is_some() && setting == first && first == OUT {
                break;
            }
        }
        // Nothing fits: the county's first level-2 hospital.
        c.cands[county][L2].first().map_or(0, |x| x.0)
    }

    /// An inpatient main diagnosis for the person's sex and age.
    pub fn sample_dx_ip(&mut self, p: u32, day: i32) -> usize {
        let person = &self.persons[p as usize];
        let (s, b) = ((person.gend - 1) as usize, band(person.age_at(day)));
        self.c.dx_ip[s][b].sample(&mut self.rng)
    }

    pub fn sample_dx_op(&mut self, p: u32, day: i32) -> usize {
        let person = &self.persons[p as usize];
        let (s, b) = ((person.gend - 1) as usize, band(person.age_at(day)));
        self.c.dx_op[s][b].sample(&mut self.rng)
    }

    /// Length of stay: the diagnosis' median, the level, the facility and chance.
    pub fn los_for(&mut self, fac: u16, dx: usize) -> i32 {
        let d = &self.a.dx[dx];
        let f = self.c.fac(fac);
        let lvl = match (f.serves.as_str(), f.lv) {
            ("both", _) => 1.1,
            (_, 1) => 0.85,
            (_, 2) => 1.0,
            _ => 1.05,
        };
        let cap = match (self.c.compact, d.profile.as_str()) {
            (true, _) => 4.0,
            (_, "psych") => 120.0,
            _ => 90.0,
        };
        (d.los * lvl * self.c.fac_los[fac as usize] * self.rng.lognormal(1.0, 0.45)).round().clamp(1.0, cap)
            as i32
    }

    /// `med_type` of a stay (injuries as `22` sometimes, acute care via emergency, ...).
    pub fn med_type_for(&mut self, fac: u16, dx: usize) -> &'static str {
        let d = &self.a.dx[dx];
        let out = self.c.fac(fac).serves == "both";
        if d.is_injury() {
            return if self.rng.chance(0.4) { "22" } else { "21" };
        }
        if out {
            return if self.rng.chance(0.35) { "23" } else { "21" };
        }
        if matches!(d.code.as_str(), "O80.000" | "O82.000") && self.rng.chance(0.5) {
            return "52";
        }
        if matches!(d.cat3(), "I63" | "I61" | "I21" | "I20" | "K35" | "K92" | "K85") && self.rng.chance(0.15)
        {
            return "24";
        }
        "21"
    }

    /// Labels every injury stay for the accident-case check.
    pub fn label_injury(&mut self, d: &mut Draft, dx: usize) {
        if self.a.dx[dx].is_injury() || d.med_type == "22" {
            let sub = if d.med_type == "22" { "injury_med_type" } else { "injury_diagnosis" };
            let anomaly = self.new_anomaly();
            d.label(LSpec {
                anomaly,
                role: Role::Anomaly,
                kind: "injury_review",
                subkind: sub,
                entity: Entity::Settlement,
                table: "setl",
                note: "外伤住院，需核查是否有第三方责任".into(),
            });
        }
    }

    /// One ordinary person with up to `budget` settlements; returns how many were written.
    pub fn natural_person(&mut self, budget: u64) -> u64 {
        let c = self.c;
        let p = self.make_person(&PersonSpec::default());
        let person = self.persons[p as usize].clone();
        let lo = (c.first_day - 20).max(person.brdy);
        let hi = c.last_day;
        let span_years = f64::from((hi - lo).max(30)) / 365.25;
        let age_mid = person.age_at((lo + hi) / 2);
        let frailty = self.rng.gamma(1.3, 1.0 / 1.3);
        let mut rate = IP_RATE[band(age_mid)];
        if person.gend == 2 && (20..=40).contains(&age_mid) {
            rate += 0.07;
        }
        let dies = age_mid >= 70 && self.rng.chance(0.05);
        let death = dies.then(|| self.rng.range(i64::from(c.first_day + 60), i64::from(hi)) as i32);
        let limit = death.unwrap_or(hi);
        let mut drafts: Vec<Draft> = Vec::new();
        let mut stays: Vec<(i32, i32, u16, usize)> = Vec::new();
        let opts = FacOpts::default();
        // A newborn's first days.
        if person.brdy >= c.first_day && self.rng.chance(0.08) {
            let dx = self.a.dx_by_code(if self.rng.chance(0.7) { "P59.900" } else { "P07.300" }).unwrap_or(0);
            let begn = person.brdy + self.rng.range(0, 4) as i32;
            let fac = self.choose_facility(p, dx, begn, &FacOpts { setting: Some(L2), ..opts.clone() });
            let los = self.los_for(fac, dx).min(20);
            if begn + los <= limit {
                let mut s = StaySpec::new(fac, dx, begn, los);
                s.med_type = "21";
                let ds = self.stay(p, &s);
                stays.push((begn, begn + los, fac, dx));
                drafts.extend(ds);
            }
        }
        let n_ip = self.rng.poisson(rate * frailty * span_years).min(10);
        let mean_gap = f64::from(hi - lo) / (f64::from(n_ip) + 1.0);
        let mut t = stays.last().map_or(lo, |s| s.1 + 1) + self.rng.exp(mean_gap) as i32;
        let mut per_year = std::collections::HashMap::<i32, u32>::new();
        for _ in 0..n_ip {
            if t >= limit {
                break;
            }
            let mut dx = self.sample_dx_ip(p, t);
            let mut fac = self.choose_facility(p, dx, t, &opts);
            if c.is_outlier(fac) && self.a.dx[dx].is_injury() {
                fac = self.choose_facility(p, dx, t, &FacOpts { avoid_outliers: true, ..opts.clone() });
            }
            let mut begn = t;
            if let Some(&(_, pe, pf, pdx)) = stays.last()
                && pf == fac
                && begn - pe <= 15
            {
                let mut tries = 0;
                while self.a.dx[dx].cat3() == self.a.dx[pdx].cat3() && tries < 5 {
                    dx = self.sample_dx_ip(p, t);
                    tries += 1;
                }
                if self.a.dx[dx].cat3() == self.a.dx[pdx].cat3()
                    || self.a.dx[dx].is_injury() && c.is_outlier(fac)
                {
                    begn = pe + 16;
                }
            }
            let mut los = self.los_for(fac, dx);
            if begn + los < c.first_day {
                begn = c.first_day - los + self.rng.range(0, i64::from(los)) as i32;
            }
            let mut end = begn + los;
            if end > limit {
                if death.is_some() && begn < limit {
                    // Died in hospital: discharged on the day of death.
                    los = limit - begn;
                    end = limit;
                } else {
                    break;
                }
            }
            let y = crate::synth::cal::year(end);
            let n = per_year.entry(y).or_default();
            if *n >= 4 {
                t = end + 30;
                continue;
            }
            *n += 1;
            let mut s = StaySpec::new(fac, dx, begn, los);
            s.med_type = self.med_type_for(fac, dx);
            s.refl = c.fac(fac).serves == "both";
            s.manual = if s.refl { self.rng.chance(0.15) } else { self.rng.chance(0.01) };
            let mut ds = self.stay(p, &s);
            for d in ds.iter_mut() {
                self.label_injury(d, dx);
            }
            drafts.extend(ds);
            stays.push((begn, end, fac, dx));
            t = end + 1 + self.rng.exp(mean_gap.max(20.0)) as i32;
            if end == limit {
                break;
            }
        }
        let busy = |day: i32, stays: &[(i32, i32, u16, usize)]| {
            stays.iter().any(|&(b, e, _, _)| day >= b && day <= e)
        };
        let mut used_days: Vec<(i32, i32)> = Vec::new();
        let free = |b: i32, e: i32, used: &[(i32, i32)], stays: &[(i32, i32, u16, usize)]| {
            (b..=e).all(|d| !busy(d, stays)) && used.iter().all(|&(ub, ue)| e < ub || b > ue)
        };
        let start = c.first_day.max(person.brdy + 1);
        // Chronic disease care: monthly at a county or city hospital.
        let chronic_p = match age_mid {
            ..=17 => 0.0,
            18..=44 => 0.02,
            45..=64 => 0.08,
            _ => 0.15,
        };
        if self.rng.chance(chronic_p) {
            let (s, b) = ((person.gend - 1) as usize, band(age_mid));
            if !c.dx_chronic[s][b].is_empty() {
                let dx = c.dx_chronic[s][b].sample(&mut self.rng);
                let setting = if self.rng.chance(0.6) { L2 } else { L3 };
                let fac =
                    self.choose_facility(p, dx, start, &FacOpts { setting: Some(setting), ..opts.clone() });
                let dialysis = self.a.dx[dx].profile == "dialysis";
                let mut day = start + self.rng.range(0, 300) as i32;
                let n_max = self.rng.range(3, 15);
                let mut n = 0;
                while day + 30 < limit && n < n_max {
                    let span = if dialysis { 24 } else { 0 };
                    if free(day, day + span, &used_days, &stays) {
                        let d = self.visit(p, &VisitSpec { fac, dx, dise: None, day, span, med_type: "14" });
                        used_days.push((day, day + span));
                        drafts.push(d);
                        n += 1;
                    }
                    day += if dialysis { 30 } else { self.rng.range(28, 75) as i32 };
                }
            }
        }
        // Outpatient visits, emergencies and pharmacy purchases.
        let n_op = self.rng.poisson(0.25 * frailty * span_years);
        let n_ph = self.rng.poisson(0.08 * span_years);
        let n_er = self.rng.poisson(0.04 * span_years);
        for k in 0..(n_op + n_ph + n_er) {
            let day = self.rng.range(i64::from(start), i64::from(limit - 1)) as i32;
            if day < start || !free(day, day, &used_days, &stays) {
                continue;
            }
            let dx = self.sample_dx_op(p, day);
            let (fac, med_type) = if k < n_op {
                (self.choose_facility(p, dx, day, &FacOpts { outpatient: true, ..opts.clone() }), "11")
            } else if k < n_op + n_ph {
                let ph = &c.pharmacies[person.county as usize];
                if ph.is_empty() {
                    continue;
                }
                (ph[self.rng.index(ph.len())], "41")
            } else {
                (self.choose_facility(p, dx, day, &FacOpts { setting: Some(L2), ..opts.clone() }), "13")
            };
            let d = self.visit(p, &VisitSpec { fac, dx, dise: None, day, span: 0, med_type });
            used_days.push((day, day));
            drafts.push(d);
        }
        if drafts.is_empty() {
            let day = self.rng.range(i64::from(start), i64::from(limit - 1)) as i32;
            let dx = self.sample_dx_op(p, day);
            let fac = self.choose_facility(p, dx, day, &FacOpts { outpatient: true, ..opts.clone() });
            drafts.push(self.visit(p, &VisitSpec { fac, dx, dise: None, day, span: 0, med_type: "11" }));
        }
        if let Some(d) = death {
            let last = drafts.iter().map(|x| x.end).max().unwrap_or(d);
            self.persons[p as usize].death = Some(d.max(last));
        }
        if drafts.len() as u64 > budget {
            drafts.sort_by_key(|d| d.time);
            drafts.truncate(budget as usize);
        }
        let n = drafts.len() as u64;
        self.finalize(p, drafts);
        n
    }
}
