//! Stays and visits: the fee lines a real stay or visit carries, day by day, from the
//! diagnosis' profile, the facility's level and random effect, and the stay's intensity.
//! Clean lines respect every knowledge sheet: daily items once a day, one line per item and
//! day, sex-, age-, setting- and level-limited drugs only where they are allowed, no
//! duplicate-charging pair, at most one operation per stay, period-limited tests spaced out.

use crate::synth::assets::Billable;
use crate::synth::chunk::{Draft, Gen, line_money};
use crate::synth::model::Line;

/// Drug quantities of the facility with injected inflated costs, relative to what the stay's
/// intensity warrants (see `Gen::stay`).
const OUTLIER_QUANTITY: f64 = 1.8;

/// What a stay looks like.
#[derive(Debug, Clone)]
pub struct StaySpec {
    pub fac: u16,
    /// The diagnosis whose profile the fee lines follow.
    pub dx: usize,
    /// The recorded main diagnosis, when it differs from the profile's.
    pub dise: Option<&'static str>,
    pub begn: i32,
    /// Days in hospital (`enddate − begndate`), at least 1.
    pub los: i32,
    pub med_type: &'static str,
    pub refl: bool,
    pub manual: bool,
    pub surgery: Option<bool>,
    /// Only bed, nursing and consultation on most days.
    pub phantom: bool,
    /// Multiplies the stay's intensity.
    pub boost: f64,
    /// Premium drug lines are added until the stay costs at least this much (cents).
    pub min_cost: i64,
    /// Bill the bed fee on the discharge day too (one bed-day more than days in hospital).
    pub bed_discharge_day: bool,
    /// Mid-stay settlements (中途结算): the last day of every piece but the final one.
    pub cuts: Vec<i32>,
    /// Settlement time: seconds after midnight of the discharge day.
    pub setl_sec: Option<i64>,
}

impl StaySpec {
    pub fn new(fac: u16, dx: usize, begn: i32, los: i32) -> Self {
        StaySpec {
            fac,
            dx,
            dise: None,
            begn,
            los: los.max(1),
            med_type: "21",
            refl: false,
            manual: false,
            surgery: None,
            phantom: false,
            boost: 1.0,
            min_cost: 0,
            bed_discharge_day: false,
            cuts: Vec::new(),
            setl_sec: None,
        }
    }
    pub fn end(&self) -> i32 {
        self.begn + self.los
    }
}

/// What an outpatient or pharmacy settlement looks like.
#[derive(Debug, Clone)]
pub struct VisitSpec {
    pub fac: u16,
    pub dx: usize,
    pub dise: Option<&'static str>,
    pub day: i32,
    /// Extra days covered (a month of dialysis sessions on one settlement).
    pub span: i32,
    pub med_type: &'static str,
}

/// Context of the lines of one settlement.
pub struct LineCtx {
    pub service_factor4: i64,
    pub class_b4: i64,
    pub dr: u16,
    pub dept: u8,
    pub inpatient: bool,
    pub lvl: u8,
    pub sex: u8,
    pub age: i32,
    /// Age on the last day the settlement can carry lines (child-only drugs need a child
    /// throughout: the rules judge age on the day of each fee line).
    pub age_last: i32,
}

/// Department codes (科室) by index.
pub const DEPTS: [&str; 10] = ["A02", "A03", "A04", "A05", "A07", "A10", "A15", "A19", "A21", "A50"];

const DAY: i64 = 86_400;

impl Gen<'_> {
    /// The settlement context for a person at a facility.
    pub fn line_ctx(&mut self, p: u32, fac: u16, dx: usize, day: i32, inpatient: bool) -> LineCtx {
        let f = self.c.fac(fac);
        let person = &self.persons[p as usize];
        let age = person.age_at(day);
        let d = &self.a.dx[dx];
        let dept = if f.lv == 1 {
            0
        } else if f.specialty == "tcm" {
            9
        } else {
            match d.profile.as_str() {
                "surgical" | "injury" => 2,
                "obstetric" => 3,
                "neonatal" => 4,
                "ophth" => 5,
                "psych" => 6,
                "oncology" | "chemo" | "radio" => 7,
                "rehab" => 8,
                _ if age < 14 => 4,
                _ => 1,
            }
        };
        let service_factor4 = match (f.serves.as_str(), f.lv) {
            ("both", _) if matches!(f.city.as_str(), "1101" | "3101") => 13_000,
            ("both", _) => 10_500,
            (_, 1) => 7_500,
            (_, 2) => 9_000,
            _ => 10_000,
        };
        let basic = self.a.basic(person.insutype(), "level3");
        let dr = self.rng.range(1, 8 + 12 * i64::from(f.lv.max(1))) as u16;
        LineCtx {
            service_factor4,
            class_b4: basic.class_b4,
            dr,
            dept,
            inpatient,
            lvl: f.lv,
            sex: person.gend,
            age,
            age_last: age,
        }
    }

    /// Unit price (×10⁶) of a billable at the context's facility.
    pub fn price_of(&self, b: &Billable, lc: &LineCtx) -> i64 {
        if b.drug.is_some() || b.typ == "08" {
            b.price6
        } else {
            // Regulated service prices differ by level; rounded to the fen.
            let p = i128::from(b.price6) * i128::from(lc.service_factor4) / 10_000;
            (((p + 5_000) / 10_000) * 10_000) as i64
        }
    }

    /// One fee line.
    pub fn mk_line(&self, lc: &LineCtx, bill: u32, time: i64, cnt4: i64) -> Line {
        self.mk_line_priced(lc, bill, time, cnt4, None)
    }

    pub fn mk_line_priced(&self, lc: &LineCtx, bill: u32, time: i64, cnt4: i64, pric6: Option<i64>) -> Line {
        let b = &self.a.bill[bill as usize];
        let pric6 = pric6.unwrap_or_else(|| self.price_of(b, lc));
        let over4 = if b.typ == "08" && b.lv == "02" && b.price6 >= 500_000_000 { 1_000 } else { 0 };
        let (amt, inscp, fulamt, pre, overlmt) = line_money(cnt4, pric6, &b.lv, lc.class_b4, over4);
        let lmt = match &b.drug {
            Some(d) => d.min_level > 0 || d.ip_only || d.child || b.sex.is_some() || !b.clean,
            None => b.sex.is_some() || !b.clean,
        };
        Line {
            sn: 0,
            time,
            bill,
            cnt4,
            pric6,
            amt,
            inscp,
            fulamt,
            pre,
            overlmt,
            lmt,
            dr: lc.dr,
            dept: lc.dept,
            init_sn: None,
        }
    }

    /// A drug of a class allowed in this context, if any.
    pub fn pick_drug(&mut self, class: &str, lc: &LineCtx, route_ok: &dyn Fn(&str) -> bool) -> Option<u32> {
        let a = self.a;
        let list = a.drug_classes.get(class)?;
        let ok: Vec<u32> = list
            .iter()
            .copied()
            .filter(|&i| {
                let b = &a.bill[i as usize];
                let d = b.drug.as_ref().expect("drug");
                (!d.ip_only || lc.inpatient)
                    && (d.min_level == 0 || (lc.lvl >= d.min_level))
                    && b.sex.is_none_or(|s| s == lc.sex)
                    && (!d.child || lc.age_last < 18)
                    && route_ok(&d.route)
            })
            .collect();
        if ok.is_empty() {
            return None;
        }
        Some(ok[self.rng.index(ok.len())])
    }

    /// Daily count (×10⁴) of a drug, scaled by intensity.
    pub fn drug_cnt(&mut self, bill: u32, q: f64) -> i64 {
        let d = self.a.bill[bill as usize].drug.as_ref().expect("drug");
        let base = d.daily_min + (d.daily_max - d.daily_min) * self.rng.f64();
        let step = if d.daily_min < 1.0 { 0.1 } else { 1.0 };
        let v = ((base * q) / step).round().max(1.0) * step;
        (v * 10_000.0).round() as i64
    }

    fn period_ok(&self, bill: u32, day: i32) -> bool {
        let Some(&(_, _, days)) = self.a.kb.period.iter().find(|(i, _, _)| *i == bill) else {
            return true;
        };
        self.period_last.get(&bill).is_none_or(|&last| day - last > days as i32 + 2)
    }

    /// The drafts of one stay (several when it is settled in pieces), with their lines.
    pub fn stay(&mut self, p: u32, s: &StaySpec) -> Vec<Draft> {
        let a = self.a;
        let mut lc = self.line_ctx(p, s.fac, s.dx, s.begn, true);
        lc.age_last = self.persons[p as usize].age_at(s.begn + s.los.max(1));
        let dx = &a.dx[s.dx];
        let los = s.los.max(1);
        let b0 = i64::from(s.begn) * DAY;
        let t = |d: i32, sec: i64| b0 + i64::from(d) * DAY + sec;
        let mut v: Vec<Line> = Vec::with_capacity((los as usize) * 9 + 24);
        let fac_eff = self.c.fac_cost[s.fac as usize] * if self.c.is_outlier(s.fac) { 1.9 } else { 1.0 };
        let inten = dx.intensity * fac_eff * self.rng.lognormal(1.0, 0.45) * s.boost;
        let lvl_q = match (self.c.fac(s.fac).serves.as_str(), lc.lvl) {
            ("both", _) => 2.4,
            (_, 1) => 1.2,
            (_, 2) => 1.7,
            _ => 2.2,
        };
        let q = (inten.sqrt() * lvl_q).clamp(0.5, 4.0);
        // The inflated facility also over-serves: it bills more of every drug than even the
        // raised intensity warrants, so that its costs end up about twice what its case mix
        // explains (O/E ≈ 2, clearly above the 30 % floor of STA003).
        let q = if self.c.is_outlier(s.fac) { q * OUTLIER_QUANTITY } else { q };
        let profile = dx.profile.as_str();
        // Daily charges.
        let nursing = match profile {
            "psych" => a.role("nursing_psych"),
            "neonatal" => a.role("nursing_newborn"),
            _ => a.role("nursing2"),
        };
        let nursing1 = a.role("nursing1");
        let (bed, consult) = (a.role("bed"), a.role("consult_ip"));
        let bed_days = if s.bed_discharge_day { los + 1 } else { los };
        for d in 0..bed_days {
            v.push(self.mk_line(&lc, bed, t(d, 72_000), 10_000));
        }
        for d in 0..los {
            let n = if dx.severity >= 3 && d < 2 && profile != "neonatal" && profile != "psych" {
                nursing1
            } else {
                nursing
            };
            v.push(self.mk_line(&lc, n, t(d, 72_001), 10_000));
            v.push(self.mk_line(&lc, consult, t(d, 72_002), 10_000));
        }
        if s.phantom {
            for role in ["lab_cbc", "lab_urine"] {
                v.push(self.mk_line(&lc, a.role(role), t(0, 27_000), 10_000));
            }
            if let Some(drug) = self.pick_drug("antihyp", &lc, &|r| r == "po") {
                v.push(self.mk_line(&lc, drug, t(0, 30_000), 10_000));
            }
            return self.pieces(p, s, v);
        }
        // Drugs: one per class of the diagnosis, more for intense stays.
        let mut classes: Vec<&str> = dx.drug_classes.iter().map(String::as_str).collect();
        if profile != "psych" && profile != "neonatal" {
            let p_support = match lc.lvl {
                1 => 0.6,
                2 => 0.8,
                _ => 0.9,
            };
            if self.rng.chance(p_support) {
                classes.push("support");
            }
            if lc.lvl >= 3 && self.rng.chance(0.5) {
                classes.push("support");
            }
            if inten > 1.8 {
                classes.push("premium");
            }
        }
        let iv_days = ((f64::from(los) * (0.5 + 0.4 * self.rng.f64())).round() as i32).clamp(1, los);
        let mut iv_groups = vec![0i64; los as usize];
        let mut chosen: Vec<u32> = Vec::new();
        for (k, class) in classes.iter().enumerate() {
            let Some(drug) = self.pick_drug(class, &lc, &|_| true) else { continue };
            if chosen.contains(&drug) {
                continue;
            }
            chosen.push(drug);
            let route = a.bill[drug as usize].drug.as_ref().map_or("po", |d| d.route.as_str());
            let (from, to) = match (*class, route) {
                ("onco", _) => (los.min(1).min(los - 1), (los.min(1) + 2).min(los)),
                (_, "iv") => (0, iv_days),
                _ => (0, los),
            };
            let cnt = self.drug_cnt(drug, q);
            for d in from..to.max(from + 1) {
                let sec = 28_800 + 300 * k as i64;
                v.push(self.mk_line(&lc, drug, t(d, sec), cnt));
                if route == "iv" {
                    iv_groups[d as usize] += 1;
                }
            }
        }
        let (infusion, set, cannula) = (a.role("infusion"), a.role("mat_infusion"), a.role("mat_cannula"));
        let syringe = a.role("mat_syringe");
        for (d, &g) in iv_groups.iter().enumerate() {
            if g > 0 {
                let d = d as i32;
                v.push(self.mk_line(&lc, infusion, t(d, 28_700), g * 10_000));
                v.push(self.mk_line(&lc, set, t(d, 28_650), g * 10_000));
                v.push(self.mk_line(&lc, syringe, t(d, 28_640), (g + 1) * 10_000));
                if d % 3 == 0 {
                    v.push(self.mk_line(&lc, cannula, t(d, 28_600), 10_000));
                }
            }
        }
        // Monitoring, counted in hours (at most 24 a day).
        for (tag, role) in [("ecg_mon", "ecg_mon"), ("spo2", "spo2")] {
            if dx.exams.iter().any(|e| e == tag) {
                for d in 0..los.min(3) {
                    let h = self.rng.range(12, 24);
                    v.push(self.mk_line(&lc, a.role(role), t(d, 75_600), h * 10_000));
                }
            }
        }
        if matches!(dx.cat3(), "J44" | "J18" | "I50") && lc.age >= 60 {
            for d in 0..los.min(5) {
                let h = self.rng.range(6, 24);
                v.push(self.mk_line(&lc, a.role("oxygen"), t(d, 75_601), h * 10_000));
            }
        }
        // Laboratory tests: a panel on admission, a few repeated every two or three days.
        let cat = dx.cat3();
        let cardio = matches!(cat, "I20" | "I21" | "I25" | "I50" | "I48");
        let onco = matches!(profile, "oncology" | "chemo" | "radio");
        let panel: [(&str, f64); 18] = [
            ("lab_cbc", 1.0),
            ("lab_urine", 0.9),
            ("lab_stool", 0.5),
            ("lab_alt", 0.9),
            ("lab_cr", 0.9),
            ("lab_k", 0.8),
            ("lab_na", 0.8),
            ("lab_cl", 0.8),
            ("lab_glu", 0.8),
            ("lab_crp", 0.5),
            ("lab_pt", 0.7),
            ("lab_lipid", 0.4),
            ("lab_hbv", 0.6),
            ("lab_pct", if dx.severity >= 2 && lc.lvl >= 2 { 0.3 } else { 0.0 }),
            ("lab_tn", if cardio { 0.9 } else { 0.0 }),
            ("lab_bnp", if matches!(cat, "I50" | "I21" | "J44") { 0.7 } else { 0.0 }),
            ("lab_cea", if onco { 0.9 } else { 0.0 }),
            ("lab_gas", if matches!(cat, "J44" | "J18" | "I50") && lc.lvl >= 2 { 0.4 } else { 0.0 }),
        ];
        let tube = a.role("mat_tube");
        let mut n0 = 0;
        for (k, (role, pr)) in panel.iter().enumerate() {
            if profile == "neonatal" && *role != "lab_cbc" {
                continue;
            }
            if self.rng.chance(*pr) {
                v.push(self.mk_line(&lc, a.role(role), t(0, 25_200 + 60 * k as i64), 10_000));
                n0 += 1;
            }
        }
        v.push(self.mk_line(&lc, tube, t(0, 25_100), n0 * 10_000));
        let every = if lc.lvl >= 2 && !self.c.compact { 2 } else { 3 };
        let mut d = every;
        while d < los {
            let repeat: &[&str] = if cardio {
                &["lab_cbc", "lab_k", "lab_na", "lab_tn"]
            } else {
                &["lab_cbc", "lab_k", "lab_na", "lab_crp", "lab_glu"]
            };
            for (k, role) in repeat.iter().enumerate() {
                v.push(self.mk_line(&lc, a.role(role), t(d, 25_200 + 60 * k as i64), 10_000));
            }
            v.push(self.mk_line(&lc, tube, t(d, 25_100), repeat.len() as i64 * 10_000));
            d += every;
        }
        // Examinations.
        for (k, tag) in dx.exams.iter().enumerate() {
            let (role, day) = match tag.as_str() {
                "ct" if onco && lc.lvl >= 3 => ("exam_cte", los.min(1).min(los - 1)),
                "ct" => ("exam_ct", los.min(1).min(los - 1)),
                "dr" => ("exam_dr", 0),
                "us" => ("exam_us", los.min(1).min(los - 1)),
                "echo" => ("exam_echo", los.min(2).min(los - 1)),
                "ecg" => ("exam_ecg", 0),
                "gastro" => ("exam_gastro", los.min(1).min(los - 1)),
                "hba1c" => ("lab_hba1c", 0),
                _ => continue,
            };
            let bill = a.role(role);
            if !self.period_ok(bill, s.begn + day) {
                continue;
            }
            if role == "lab_hba1c" {
                self.period_last.insert(bill, s.begn + day);
            }
            v.push(self.mk_line(&lc, bill, t(day, 36_000 + 600 * k as i64), 10_000));
        }
        if dx.cat3() == "I63" && lc.lvl >= 2 && self.rng.chance(0.4) {
            v.push(self.mk_line(&lc, a.role("exam_mri"), t(los.min(2).min(los - 1), 50_400), 10_000));
        }
        // The operation, if any, with its anaesthesia, materials and dressings.
        let operate = match s.surgery {
            Some(x) => x,
            None => dx.surgery.is_some() && self.rng.chance(dx.surgery_prob),
        };
        if let Some(op) = dx.surgery.filter(|_| operate) {
            if a.bill[op as usize].role == "phototherapy" {
                for d in 0..los.min(5) {
                    v.push(self.mk_line(&lc, op, t(d, 43_200), 10_000));
                }
            } else {
                let sd = if los >= 3 { 1 } else { 0 };
                v.push(self.mk_line(&lc, op, t(sd, 34_200), 10_000));
                if dx.code != "O80.000" {
                    v.push(self.mk_line(&lc, a.role("anesthesia"), t(sd, 34_000), 10_000));
                    let h = self.rng.range(2, 4);
                    v.push(self.mk_line(&lc, a.role("anes_monitor"), t(sd, 34_100), h * 10_000));
                }
                let n = self.rng.range(1, 3);
                v.push(self.mk_line(&lc, a.role("mat_suture"), t(sd, 34_300), n * 10_000));
                v.push(self.mk_line(&lc, a.role("mat_catheter"), t(sd, 33_900), 10_000));
                v.push(self.mk_line(&lc, a.role("catheter"), t(sd, 33_950), 10_000));
                match dx.cat3() {
                    "K80" | "N83" | "D25" | "C18" if self.rng.chance(0.6) => {
                        v.push(self.mk_line(&lc, a.role("mat_trocar"), t(sd, 34_250), 30_000));
                    }
                    "I21" => {
                        let n = self.rng.range(1, 2);
                        v.push(self.mk_line(&lc, a.role("mat_stent"), t(sd, 34_250), n * 10_000));
                    }
                    "S32" => v.push(self.mk_line(&lc, a.role("mat_plate"), t(sd, 34_250), 10_000)),
                    _ => {}
                }
                let mut d = sd + 1;
                while d < los {
                    v.push(self.mk_line(&lc, a.role("dressing"), t(d, 39_600), 10_000));
                    v.push(self.mk_line(&lc, a.role("mat_dressing"), t(d, 39_601), 20_000));
                    d += 2;
                }
            }
        }
        match profile {
            "ophth" => {
                let sd = if los >= 2 { 1 } else { 0 };
                v.push(self.mk_line(&lc, a.role("surgery_eye"), t(sd, 34_200), 10_000));
                v.push(self.mk_line(&lc, a.role("mat_iol"), t(sd, 34_250), 10_000));
            }
            "rehab" => {
                for d in 0..los {
                    v.push(self.mk_line(&lc, a.role("rehab_pt"), t(d, 37_800), 10_000));
                    v.push(self.mk_line(&lc, a.role("acupuncture"), t(d, 54_000), 10_000));
                }
            }
            "radio" => {
                v.push(self.mk_line(&lc, a.role("radio_plan"), t(0, 39_600), 10_000));
                v.push(self.mk_line(&lc, a.role("radio_sim"), t(0, 43_200), 10_000));
                for d in 1..los {
                    if crate::synth::cal::weekday(s.begn + d) < 5 {
                        v.push(self.mk_line(&lc, a.role("radio_tx"), t(d, 36_000), 10_000));
                    }
                }
            }
            "dialysis" => {
                let mut d = 1;
                while d < los {
                    v.push(self.mk_line(&lc, a.role("dialysis"), t(d, 32_400), 10_000));
                    d += 2;
                }
            }
            _ => {}
        }
        if s.min_cost > 0 {
            self.top_up(&lc, &mut v, s.begn, los, s.min_cost);
        }
        self.pieces(p, s, v)
    }

    /// Adds premium drug lines until the lines cost at least `min_cost` cents.
    pub fn top_up(&mut self, lc: &LineCtx, v: &mut Vec<Line>, begn: i32, los: i32, min_cost: i64) {
        let a = self.a;
        let total: i64 = v.iter().map(|l| l.amt).sum();
        if total >= min_cost {
            return;
        }
        let premium: Vec<u32> = a.drug_classes["premium"]
            .iter()
            .copied()
            .filter(|&i| a.bill[i as usize].drug.as_ref().is_some_and(|d| d.min_level <= lc.lvl.max(1)))
            .filter(|i| !v.iter().any(|l| l.bill == *i))
            .collect();
        let slots = (premium.len() as i64 * i64::from(los)).max(1);
        let deficit = min_cost - total;
        let mut added = 0;
        for d in 0..los {
            for (k, &drug) in premium.iter().enumerate() {
                if added >= deficit {
                    return;
                }
                let price = a.bill[drug as usize].price6 / 10_000; // cents
                let want = deficit / slots;
                let units = (want / price.max(1)).clamp(1, 60);
                let l = self.mk_line(
                    lc,
                    drug,
                    i64::from(begn + d) * DAY + 29_000 + 120 * k as i64,
                    units * 10_000,
                );
                added += l.amt;
                v.push(l);
            }
        }
        // Still short: raise the counts of the premium lines just added.
        if added < deficit {
            let short = deficit - added;
            let n = premium.len() as i64 * i64::from(los);
            for l in v.iter_mut().rev().take(n as usize) {
                let price = l.pric6 / 10_000;
                let extra = (short / n / price.max(1) + 1) * 10_000;
                let cnt4 = l.cnt4 + extra;
                *l = self.mk_line_priced(lc, l.bill, l.time, cnt4, Some(l.pric6));
            }
        }
    }

    /// Splits a stay's lines into its settlement pieces (one when not settled mid-stay).
    fn pieces(&mut self, _p: u32, s: &StaySpec, lines: Vec<Line>) -> Vec<Draft> {
        let a = self.a;
        let dise: &'static str = s.dise.unwrap_or(a.dx[s.dx].code.as_str());
        let mdtrt = self.new_mdtrt();
        let mut bounds: Vec<(i32, i32)> = Vec::new();
        let mut start = s.begn;
        for &cut in &s.cuts {
            if cut > start && cut < s.end() {
                bounds.push((start, cut));
                start = cut + 1;
            }
        }
        bounds.push((start, s.end()));
        let n = bounds.len();
        let mut drafts: Vec<Draft> = bounds
            .iter()
            .enumerate()
            .map(|(k, &(b, e))| {
                let sec = if k + 1 == n {
                    s.setl_sec.unwrap_or_else(|| self.rng.range(32_400, 61_200))
                } else {
                    self.rng.range(57_600, 64_800)
                };
                let mut d = Draft::new(s.fac, s.med_type, b, e, i64::from(e) * DAY + sec, dise);
                d.refl = s.refl;
                d.manual = s.manual;
                d.mdtrt = mdtrt;
                d.first_piece = k == 0;
                d
            })
            .collect();
        for l in lines {
            let day = (l.time.div_euclid(DAY)) as i32;
            let k = bounds.iter().position(|&(_, e)| day <= e).unwrap_or(n - 1);
            drafts[k].lines.push(l);
        }
        drafts
    }

    /// One outpatient, chronic-disease or pharmacy settlement.
    pub fn visit(&mut self, p: u32, v: &VisitSpec) -> Draft {
        let a = self.a;
        let lc = self.line_ctx(p, v.fac, v.dx, v.day, false);
        let dx = &a.dx[v.dx];
        let f = self.c.fac(v.fac);
        let t0 = i64::from(v.day) * DAY + self.rng.range(28_800, 59_400);
        let mut lines = Vec::new();
        let pharmacy = v.med_type == "41";
        if !pharmacy {
            if f.lv >= 2 {
                lines.push(self.mk_line(&lc, a.role("registration"), t0, 10_000));
            }
            let consult = if v.med_type == "13" { "consult_er" } else { "consult_op" };
            lines.push(self.mk_line(&lc, a.role(consult), t0 + 120, 10_000));
            let n_lab = if v.med_type == "14" { self.rng.range(0, 2) } else { self.rng.range(0, 3) };
            let labs = ["lab_cbc", "lab_urine", "lab_glu", "lab_crp", "lab_alt", "lab_cr"];
            let first = self.rng.index(labs.len());
            for k in 0..n_lab as usize {
                let role = labs[(first + k) % labs.len()];
                lines.push(self.mk_line(&lc, a.role(role), t0 + 600 + 60 * k as i64, 10_000));
            }
            if dx.exams.iter().any(|e| e == "hba1c") {
                let bill = a.role("lab_hba1c");
                if self.period_ok(bill, v.day) && self.rng.chance(0.35) {
                    self.period_last.insert(bill, v.day);
                    lines.push(self.mk_line(&lc, bill, t0 + 900, 10_000));
                }
            }
            if v.med_type != "14" && self.rng.chance(0.3) {
                let exams: Vec<&str> = dx
                    .exams
                    .iter()
                    .filter_map(|e| match e.as_str() {
                        "dr" => Some("exam_dr"),
                        "us" => Some("exam_us"),
                        "ecg" => Some("exam_ecg"),
                        _ => None,
                    })
                    .collect();
                if !exams.is_empty() {
                    let role = exams[self.rng.index(exams.len())];
                    lines.push(self.mk_line(&lc, a.role(role), t0 + 1_800, 10_000));
                }
            }
        }
        if dx.profile == "dialysis" && v.med_type == "14" {
            let mut d = 0;
            while d <= v.span {
                let ts = i64::from(v.day + d) * DAY + 32_400;
                lines.push(self.mk_line(&lc, a.role("dialysis"), ts, 10_000));
                if let Some(epo) = self.pick_drug("epo", &lc, &|r| r != "iv") {
                    lines.push(self.mk_line(&lc, epo, ts + 3_600, 10_000));
                }
                d += if d % 7 == 4 { 3 } else { 2 };
            }
        } else {
            let supply = match v.med_type {
                "14" => self.rng.range(28, 30),
                "41" => self.rng.range(7, 30),
                _ => self.rng.range(3, 7),
            };
            let n_drug = if pharmacy { self.rng.range(1, 2) } else { self.rng.range(1, 3) } as usize;
            let mut chosen = Vec::new();
            for (k, class) in dx.drug_classes.iter().enumerate() {
                if chosen.len() >= n_drug {
                    break;
                }
                let route_ok =
                    |r: &str| matches!(r, "po" | "ext" | "inh") || (r == "sc" && v.med_type == "14");
                let Some(drug) = self.pick_drug(class, &lc, &route_ok) else { continue };
                if chosen.contains(&drug) {
                    continue;
                }
                chosen.push(drug);
                let daily = self.drug_cnt(drug, 1.0);
                let cnt = daily * supply;
                lines.push(self.mk_line(&lc, drug, t0 + 1_200 + 60 * k as i64, cnt));
            }
        }
        let end = v.day + v.span;
        let time = i64::from(end) * DAY + (t0 % DAY) + 2_400;
        let dise: &'static str = v.dise.unwrap_or(dx.code.as_str());
        let mut d = Draft::new(v.fac, v.med_type, v.day, end, time, dise);
        d.mdtrt = self.new_mdtrt();
        d.lines = lines;
        d
    }
}
