//! One chunk of persons: their settlements (drafted, then finalised in time order with the
//! fund arithmetic), fee lines, payments and labels.

use std::collections::HashMap;

use crate::synth::assets::{Assets, Basic};
use crate::synth::benefit::{Row, YearState, div_round};
use crate::synth::cal::{year, ymd};
use crate::synth::ctx::Ctx;
use crate::synth::model::{BadRow, Identity, Label, Line, Money, Pay, Person, Role, Setl, pay_id, setl_id};
use crate::synth::rng::Rng;

/// How a settlement's payment record is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayPlan {
    /// Declared and paid within the deadline (or not yet paid, and not yet due).
    Normal,
    /// Paid after the deadline.
    Late,
    /// Unpaid long after the deadline.
    UnpaidOverdue,
    /// Paid on the deadline day, many calendar days after declaration (needs the calendar).
    WorkdayControl,
    /// Declared on the as-of date, unpaid: fixes the as-of date of the data.
    Anchor,
}

/// An injected error in the recorded fund payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenefitErr {
    /// Recorded = expected × (1 + permille/1000), at least ±50 yuan apart.
    Scale(i64),
    /// Paid although nothing is due (or a fixed amount more).
    Add(i64),
}

/// An injected contradiction in the settlement's own money fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoneyErr {
    /// `fulamt_ownpay_amt` changed so that the four parts no longer add up.
    BreakIdentity(i64),
    /// One fee line left out of the output: lines no longer add up to `medfee_sumamt`.
    DropLine,
}

/// Which entity a label names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entity {
    Settlement,
    Person,
    Facility(String),
}

/// A label attached to a draft, resolved to ids when the person is finalised.
#[derive(Debug, Clone)]
pub struct LSpec {
    pub anomaly: String,
    pub role: Role,
    pub kind: &'static str,
    pub subkind: &'static str,
    pub entity: Entity,
    /// `setl` or `pay` (the row the label is about).
    pub table: &'static str,
    pub note: String,
}

/// A settlement before ids and fund payments are known.
#[derive(Debug, Clone)]
pub struct Draft {
    pub fac: u16,
    pub med_type: &'static str,
    pub begn: i32,
    pub end: i32,
    pub time: i64,
    pub dise: &'static str,
    pub refl: bool,
    pub manual: bool,
    pub mdtrt: u64,
    pub ident: Option<Box<Identity>>,
    pub idet: &'static str,
    pub lines: Vec<Line>,
    /// Pays the basic-insurance deductible (first piece of a stay).
    pub first_piece: bool,
    /// A reversal of the draft at this index.
    pub reversal_of: Option<usize>,
    pub labels: Vec<LSpec>,
    pub benefit_err: Option<BenefitErr>,
    pub money_err: Option<MoneyErr>,
    pub pay: PayPlan,
    /// Pay row late by this many working days (for `PayPlan::Late`).
    pub late_by: u32,
    pub id: u64,
}

impl Draft {
    pub fn new(fac: u16, med_type: &'static str, begn: i32, end: i32, time: i64, dise: &'static str) -> Self {
        Draft {
            fac,
            med_type,
            begn,
            end,
            time,
            dise,
            refl: false,
            manual: false,
            mdtrt: 0,
            ident: None,
            idet: "",
            lines: Vec::new(),
            first_piece: true,
            reversal_of: None,
            labels: Vec::new(),
            benefit_err: None,
            money_err: None,
            pay: PayPlan::Normal,
            late_by: 0,
            id: 0,
        }
    }

    pub fn label(&mut self, l: LSpec) {
        self.labels.push(l);
    }
}

/// The generator state of one chunk.
pub struct Gen<'c> {
    pub c: &'c Ctx,
    pub a: &'static Assets,
    pub rng: Rng,
    pub chunk: u32,
    pub persons: Vec<Person>,
    pub setls: Vec<Setl>,
    pub lines: Vec<Line>,
    pub pays: Vec<Pay>,
    pub labels: Vec<Label>,
    pub bad: Vec<BadRow>,
    pub next_setl: u64,
    pub next_mdtrt: u64,
    pub next_anom: u32,
    /// Last billing day of each period-limited item for the current person.
    pub period_last: HashMap<u32, i32>,
}

/// Numbers per chunk: ids are `chunk × STRIDE + local`.
pub const STRIDE: u64 = 100_000_000;

impl<'c> Gen<'c> {
    pub fn new(c: &'c Ctx, chunk: u32) -> Self {
        Gen {
            c,
            a: c.a,
            rng: Rng::new(c.seed, 1 + u64::from(chunk)),
            chunk,
            persons: Vec::new(),
            setls: Vec::new(),
            lines: Vec::new(),
            pays: Vec::new(),
            labels: Vec::new(),
            bad: Vec::new(),
            next_setl: u64::from(chunk) * STRIDE,
            next_mdtrt: u64::from(chunk) * STRIDE,
            next_anom: 0,
            period_last: HashMap::new(),
        }
    }

    pub fn new_mdtrt(&mut self) -> u64 {
        self.next_mdtrt += 1;
        self.next_mdtrt
    }

    pub fn new_anomaly(&mut self) -> String {
        self.next_anom += 1;
        format!("A{:05}{:05}", self.chunk, self.next_anom)
    }

    /// Settlements written so far.
    pub fn count(&self) -> u64 {
        self.setls.len() as u64
    }

    /// Writes a person's drafts: ids in time order, basic insurance and fund payments per
    /// person-year as the platform computes them, injected errors, payments and labels.
    pub fn finalize(&mut self, p: u32, mut drafts: Vec<Draft>) {
        let a = self.a;
        let c = self.c;
        let person = self.persons[p as usize].clone();
        let mut order: Vec<usize> = (0..drafts.len()).collect();
        order.sort_by_key(|&i| (drafts[i].time, i));
        for &i in &order {
            self.next_setl += 1;
            drafts[i].id = self.next_setl;
        }
        // Lines in time order, numbered; reversals carry the negated lines of what they cancel,
        // at the original times, each pointing at the line it refunds.
        for d in drafts.iter_mut().filter(|d| d.reversal_of.is_none()) {
            d.lines.sort_by_key(|l| (l.time, l.bill));
            for (k, l) in d.lines.iter_mut().enumerate() {
                l.sn = (k + 1) as u16;
                l.init_sn = None;
            }
        }
        for i in 0..drafts.len() {
            if let Some(o) = drafts[i].reversal_of {
                drafts[i].lines = drafts[o]
                    .lines
                    .iter()
                    .enumerate()
                    .map(|(k, l)| Line {
                        sn: (k + 1) as u16,
                        cnt4: -l.cnt4,
                        amt: -l.amt,
                        inscp: -l.inscp,
                        fulamt: -l.fulamt,
                        pre: -l.pre,
                        overlmt: -l.overlmt,
                        init_sn: Some(l.sn),
                        ..*l
                    })
                    .collect();
            }
        }
        let insutype = person.insutype();
        let pol = &a.policy;
        let mut money: Vec<Money> = vec![Money::default(); drafts.len()];
        let mut rows: Vec<Option<Row>> = vec![None; drafts.len()];
        let mut expected: Vec<i64> = vec![0; drafts.len()];
        let mut years: HashMap<i32, YearState> = HashMap::new();
        for &i in &order {
            let d = &drafts[i];
            if let Some(o) = d.reversal_of {
                let m = money[o].negated();
                let y = years.entry(year(drafts[o].end)).or_default();
                let exp = match rows[o] {
                    Some(r) => y.reverse(person.employee, &r, expected[o]),
                    None => 0,
                };
                money[i] = m;
                expected[i] = exp;
                continue;
            }
            let mut m = Money::default();
            for l in &d.lines {
                m.medfee += l.amt;
                m.fulamt += l.fulamt;
                m.overlmt += l.overlmt;
                m.pre += l.pre;
                m.inscp += l.inscp;
            }
            let setting = self.setting_of(d);
            let basic: Basic = a.basic(insutype, setting);
            m.dedc = if d.first_piece { basic.deductible.min(m.inscp).max(0) } else { 0 };
            let covered = if person.employee {
                pol.employee_covered.iter().any(|t| t == d.med_type)
            } else {
                pol.resident_covered.iter().any(|t| t == d.med_type)
            };
            let y = years.entry(year(d.end)).or_default();
            let nominal = div_round(i128::from(basic.ratio4) * i128::from(m.inscp - m.dedc), 10_000) as i64;
            m.pool4 = basic.ratio4;
            m.hifp = nominal.max(0);
            if person.employee && covered {
                let room = (pol.pool_cap - y.h).max(0);
                if m.hifp > room {
                    m.hifp = room;
                    if room == 0 {
                        m.pool4 = 0;
                    }
                }
            }
            let row = Row {
                inscp: m.inscp,
                dedc: m.dedc,
                hifp: m.hifp,
                r4: m.pool4,
                preferential: pol.preferential.iter().any(|t| t == d.idet),
            };
            if covered {
                let exp = if person.employee { y.employee(pol, &row) } else { y.resident(pol, &row) };
                expected[i] = exp;
                rows[i] = Some(row);
            }
            if person.employee {
                m.hifob = expected[i];
            } else {
                m.hifmi = expected[i];
            }
            if !person.employee && row.preferential && covered {
                m.maf = div_round(i128::from((m.inscp - m.dedc - m.hifp - m.hifmi).max(0)) * 5, 10) as i64;
            }
            money[i] = m;
        }
        // Injected errors change what is recorded, never what the platform should have paid.
        for (i, d) in drafts.iter().enumerate() {
            let m = &mut money[i];
            if let Some(e) = d.benefit_err {
                let rec = if person.employee { &mut m.hifob } else { &mut m.hifmi };
                match e {
                    BenefitErr::Scale(permille) => {
                        let delta = div_round(i128::from(*rec) * i128::from(permille), 1000) as i64;
                        let delta = if delta >= 0 { delta.max(5_000) } else { delta.min(-5_000) };
                        *rec = (*rec + delta).max(0);
                    }
                    BenefitErr::Add(x) => *rec += x,
                }
            }
            if d.reversal_of.is_none() {
                m.part = m.medfee - m.hifp - m.hifmi - m.hifob - m.maf;
            }
            if let Some(MoneyErr::BreakIdentity(x)) = d.money_err {
                m.fulamt += x;
            }
        }
        // A reversal negates what was recorded for its original (errors included).
        for i in 0..drafts.len() {
            if let Some(o) = drafts[i].reversal_of {
                money[i] = money[o].negated();
            }
        }
        for &i in &order {
            let d = &drafts[i];
            let start = self.lines.len() as u32;
            let drop = if d.money_err == Some(MoneyErr::DropLine) {
                d.lines
                    .iter()
                    .position(|l| a.bill[l.bill as usize].drug.is_some())
                    .or(Some(d.lines.len() - 1))
            } else {
                None
            };
            for (k, l) in d.lines.iter().enumerate() {
                if Some(k) != drop {
                    self.lines.push(*l);
                }
            }
            let end = self.lines.len() as u32;
            let m = money[i];
            self.setls.push(Setl {
                id: d.id,
                mdtrt: d.mdtrt,
                psn: p,
                ident: d.ident.clone(),
                fac: d.fac,
                med_type: d.med_type,
                begn: d.begn,
                end: d.end,
                time: d.time,
                dise: d.dise,
                refl: d.refl,
                manual: d.manual,
                reversal: d.reversal_of.is_some(),
                init: d.reversal_of.map(|o| drafts[o].id),
                idet: d.idet,
                m,
                lines: (start, end),
            });
            let amt = if person.employee { m.hifob } else { m.hifmi };
            if d.reversal_of.is_none() && amt > 0 {
                let pay = self.plan_pay(d, person.employee, amt);
                self.pays.push(pay);
            }
            let mut specs = d.labels.clone();
            if c.is_outlier(d.fac) {
                specs.push(LSpec {
                    anomaly: format!("F-{}", c.fac(d.fac).code),
                    role: Role::Anomaly,
                    kind: "statistical_outlier",
                    subkind: "facility_cost_outlier",
                    entity: Entity::Facility(c.fac(d.fac).code.clone()),
                    table: "setl",
                    note: "机构费用整体虚高（成本放大）".into(),
                });
            }
            for s in specs {
                let sid = setl_id(d.id);
                let (entity_type, entity_id) = match &s.entity {
                    Entity::Settlement => ("settlement", sid.clone()),
                    Entity::Person => ("person", person.psn_no.clone()),
                    Entity::Facility(code) => ("facility", code.clone()),
                };
                let key = if s.table == "pay" { pay_id(d.id) } else { sid.clone() };
                self.labels.push(Label {
                    anomaly_id: s.anomaly,
                    role: s.role,
                    kind: s.kind,
                    subkind: s.subkind,
                    table: s.table,
                    setl_id: sid,
                    psn_no: person.psn_no.clone(),
                    entity_type,
                    entity_id,
                    key,
                    expected: "",
                    note: s.note,
                });
            }
        }
        self.period_last.clear();
    }

    /// The basic-insurance setting of a draft (`basic.csv`).
    pub fn setting_of(&self, d: &Draft) -> &'static str {
        let f = self.c.fac(d.fac);
        match d.med_type {
            "11" | "12" | "13" => "outpatient",
            "14" => "chronic",
            "41" => "pharmacy",
            "51" | "52" => "maternity",
            _ => {
                if f.serves == "both" {
                    if d.refl || d.med_type == "24" { "out_filed" } else { "out_unfiled" }
                } else {
                    match f.lv {
                        1 => "level1",
                        2 => "level2",
                        _ => "level3",
                    }
                }
            }
        }
    }

    fn plan_pay(&mut self, d: &Draft, employee: bool, amt: i64) -> Pay {
        let c = self.c;
        let cal = &c.cal;
        let fund = if employee { "hifob" } else { "hifmi" };
        let chnl = if d.manual { "2" } else { "1" };
        let n = c.a.policy.deadline(fund, chnl);
        let sd = d.end.max((d.time / 86_400) as i32);
        let mut dcla =
            if d.manual { sd + self.rng.range(7, 45) as i32 } else { sd + self.rng.range(2, 20) as i32 };
        if let Some(w) = cal.next_working(dcla) {
            dcla = w;
        }
        if d.pay == PayPlan::WorkdayControl {
            // The instance placed the settlement just before a holiday: declare at once.
            dcla = cal.next_working(sd + 1).unwrap_or(sd + 1);
        }
        dcla = dcla.min(c.as_of);
        let deadline = cal.add_working_days(dcla, n);
        let paid = match d.pay {
            PayPlan::Anchor => {
                dcla = c.as_of;
                None
            }
            PayPlan::UnpaidOverdue => None,
            PayPlan::Late => Some(match deadline.and_then(|dl| cal.add_working_days(dl, d.late_by.max(1))) {
                Some(x) => x,
                // Without a calendar: late under any holiday schedule.
                None => dcla + ((n + d.late_by.max(10)) as i32 * 7 + 4) / 5 + 14,
            }),
            PayPlan::WorkdayControl => deadline,
            PayPlan::Normal => {
                let u = self.rng.f64();
                let k = 1 + ((f64::from(n) - 1.0) * u * u) as u32;
                Some(match cal.add_working_days(dcla, k) {
                    Some(x) => x,
                    None => dcla + k as i32,
                })
            }
        };
        let paid = paid.filter(|&x| x <= c.as_of);
        Pay { setl: d.id, employee, manual: d.manual, dcla, paid, amt }
    }

    /// A new person of the chunk.
    pub fn make_person(&mut self, spec: &PersonSpec) -> u32 {
        let a = self.a;
        let c = self.c;
        let employee = spec.employee.unwrap_or_else(|| self.rng.chance(0.25));
        let county = spec.county.unwrap_or_else(|| {
            if employee {
                c.employee_counties[c.employee_w.sample(&mut self.rng)]
            } else {
                c.resident_counties[c.resident_w.sample(&mut self.rng)]
            }
        });
        let gend = spec.sex.unwrap_or_else(|| if self.rng.chance(0.5) { 1 } else { 2 });
        let ref_day = ymd(2025, 7, 1);
        let brdy = match spec.born {
            Some(b) => b,
            None => {
                let age = match spec.age {
                    Some((lo, hi)) => self.rng.range(i64::from(lo), i64::from(hi)) as i32,
                    None => self.natural_age(employee),
                };
                if age == 0 && !employee && self.rng.chance(0.6) {
                    // Born inside the data window.
                    self.rng.range(i64::from(ymd(2024, 1, 1)), i64::from(ymd(2026, 9, 30))) as i32
                } else {
                    ref_day - age * 365 - self.rng.range(0, 364) as i32
                }
            }
        };
        let name = self.make_name(gend);
        let r = &a.regions[county as usize];
        let mut seq = self.rng.range(0, 998) as u16;
        if (seq % 2 == 1) != (gend == 1) {
            seq += 1;
        }
        let certno = crate::idcard::make(&r.admdvs, crate::synth::cal::date(brdy), seq);
        let local = self.persons.len() as u64;
        let psn_no = format!("{}{:010}", r.city, u64::from(self.chunk) * 100_000 + local);
        let idet = match spec.idet {
            Some(x) => x,
            None if employee => "",
            None => {
                let u = self.rng.f64();
                match u {
                    _ if u < 0.006 => "1101",
                    _ if u < 0.036 => "1102",
                    _ if u < 0.048 => "1103",
                    _ if u < 0.058 => "1104",
                    _ if u < 0.068 => "1105",
                    _ if u < 0.078 => "1201",
                    _ => "",
                }
            }
        };
        self.persons.push(Person { psn_no, name, certno, gend, brdy, employee, idet, county, death: None });
        (self.persons.len() - 1) as u32
    }

    fn natural_age(&mut self, employee: bool) -> i32 {
        if employee {
            if self.rng.chance(0.72) { self.rng.range(22, 59) as i32 } else { self.rng.range(60, 88) as i32 }
        } else {
            let u = self.rng.f64();
            match u {
                _ if u < 0.07 => self.rng.range(0, 4) as i32,
                _ if u < 0.20 => self.rng.range(5, 17) as i32,
                _ if u < 0.44 => self.rng.range(18, 44) as i32,
                _ if u < 0.71 => self.rng.range(45, 64) as i32,
                _ => self.rng.range(65, 92) as i32,
            }
        }
    }

    pub fn make_name(&mut self, gend: u8) -> String {
        let a = self.a;
        let mut s = a.surnames[a.surname_w.sample(&mut self.rng)].clone();
        let given = if gend == 1 { &a.male_given } else { &a.female_given };
        let n = if self.rng.chance(0.75) { 2 } else { 1 };
        for _ in 0..n {
            let k = self.rng.index(given.len());
            s.push_str(&given[k]);
        }
        s
    }

    /// A different, valid identity of the same sex (for an impostor).
    pub fn impostor(&mut self, p: u32) -> Identity {
        let person = self.persons[p as usize].clone();
        let brdy = person.brdy + self.rng.range(400, 3000) as i32 * if self.rng.chance(0.5) { 1 } else { -1 };
        let brdy = brdy.min(ymd(2000, 1, 1));
        let mut name = self.make_name(person.gend);
        while name == person.name {
            name = self.make_name(person.gend);
        }
        let r = &self.a.regions[person.county as usize];
        let mut seq = self.rng.range(0, 998) as u16;
        if (seq % 2 == 1) != (person.gend == 1) {
            seq += 1;
        }
        let certno = crate::idcard::make(&r.admdvs, crate::synth::cal::date(brdy), seq);
        Identity { name, certno, gend: person.gend, brdy }
    }
}

/// Constraints on a new person.
#[derive(Debug, Clone, Default)]
pub struct PersonSpec {
    pub employee: Option<bool>,
    pub sex: Option<u8>,
    /// Age range in years on 2025-07-01.
    pub age: Option<(i32, i32)>,
    pub born: Option<i32>,
    pub county: Option<u16>,
    pub idet: Option<&'static str>,
}

/// Money of a line from its count and unit price, split by the item's class.
pub fn line_money(
    cnt4: i64,
    pric6: i64,
    lv: &str,
    class_b4: i64,
    overlmt_share4: i64,
) -> (i64, i64, i64, i64, i64) {
    let amt = div_round(i128::from(cnt4) * i128::from(pric6), 100_000_000) as i64;
    let (mut inscp, mut fulamt, mut pre) = (0, 0, 0);
    match lv {
        "03" => fulamt = amt,
        "02" => {
            pre = div_round(i128::from(amt) * i128::from(class_b4), 10_000) as i64;
            inscp = amt - pre;
        }
        _ => inscp = amt,
    }
    let overlmt = div_round(i128::from(inscp) * i128::from(overlmt_share4), 10_000) as i64;
    inscp -= overlmt;
    (amt, inscp, fulamt, pre, overlmt)
}

/// `PayPlan` text for notes.
pub fn pay_note(p: PayPlan) -> &'static str {
    match p {
        PayPlan::Late => "支付晚于时限",
        PayPlan::UnpaidOverdue => "逾期未支付",
        PayPlan::WorkdayControl => "按自然日超期、按工作日未超期",
        _ => "",
    }
}
