//! What every chunk shares: the assets, facility random effects, the facilities chosen as
//! outliers, sampling tables, the calendar, the time window and the anomaly plan.

use crate::synth::anomalies::Plan;
use crate::synth::assets::{Assets, Diagnosis, Facility};
use crate::synth::cal::{Calendar, ymd};
use crate::synth::rng::{Rng, Weighted};

/// Care settings a stay can be placed in.
pub const L1: usize = 0;
pub const L2: usize = 1;
pub const L3: usize = 2;
pub const OUT: usize = 3;

/// Age bands of `diagnoses.csv`: 0–4, 5–17, 18–44, 45–64, 65+.
pub fn band(age: i32) -> usize {
    match age {
        ..=4 => 0,
        5..=17 => 1,
        18..=44 => 2,
        45..=64 => 3,
        _ => 4,
    }
}

/// Shared, read-only state of one `generate` call.
pub struct Ctx {
    pub a: &'static Assets,
    pub seed: u64,
    /// Short stays (at most 5 days unless an anomaly needs more), for the bundled sample.
    pub compact: bool,
    pub cal: Calendar,
    /// Multiplicative random effect of each facility on cost and length of stay.
    pub fac_cost: Vec<f64>,
    pub fac_los: Vec<f64>,
    /// Facilities with injected inflated costs.
    pub outlier_fac: Vec<u16>,
    /// Out-of-area facilities with a small natural inflow, where clusters are injected.
    pub cluster_targets: Vec<u16>,
    /// Inpatient / outpatient / chronic diagnosis sampling by sex (0 male, 1 female) and age band.
    pub dx_ip: Vec<Vec<Weighted>>,
    pub dx_op: Vec<Vec<Weighted>>,
    pub dx_chronic: Vec<Vec<Weighted>>,
    pub resident_counties: Vec<u16>,
    pub resident_w: Weighted,
    pub employee_counties: Vec<u16>,
    pub employee_w: Weighted,
    /// Candidate facilities per county (index into regions) and setting, with base weights.
    pub cands: Vec<[Vec<(u16, f64)>; 4]>,
    /// Pharmacies per county.
    pub pharmacies: Vec<Vec<u16>>,
    /// First and last day a settlement may end on; the as-of date of the data.
    pub first_day: i32,
    pub last_day: i32,
    pub as_of: i32,
    pub plan: Plan,
}

impl Ctx {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        a: &'static Assets,
        seed: u64,
        settlements: u64,
        anomaly_rate: f64,
        csv: bool,
        malformed: bool,
        cal: Calendar,
        compact: bool,
    ) -> Self {
        let mut rng = Rng::new(seed, 0xFAC1_1171);
        let n = a.facilities.len();
        let fac_cost: Vec<f64> = (0..n).map(|_| rng.lognormal(1.0, 0.10)).collect();
        let fac_los: Vec<f64> = (0..n).map(|_| rng.lognormal(1.0, 0.08)).collect();
        // Outliers among in-area private level-2 hospitals; one per million settlements.
        let mut cands: Vec<u16> = (0..n as u16)
            .filter(|&i| {
                let f = &a.facilities[i as usize];
                f.private && f.lv == 2 && f.serves != "both"
            })
            .collect();
        let want = (settlements / 1_000_000).clamp(1, cands.len() as u64) as usize;
        let mut outlier_fac = Vec::new();
        for _ in 0..want {
            let k = rng.index(cands.len());
            outlier_fac.push(cands.swap_remove(k));
        }
        outlier_fac.sort_unstable();
        let cluster_targets: Vec<u16> = (0..n as u16)
            .filter(|&i| {
                let f = &a.facilities[i as usize];
                f.private && f.serves == "both"
            })
            .collect();
        let tables = |w: &dyn Fn(&Diagnosis) -> f64| -> Vec<Vec<Weighted>> {
            (0..2)
                .map(|sex| {
                    (0..5)
                        .map(|b| {
                            Weighted::new(a.dx.iter().map(|d| {
                                if d.max_age_days > 0 || d.sex.is_some_and(|s| s != sex as u8 + 1) {
                                    return 0.0;
                                }
                                let m = if sex == 0 { d.male_factor } else { 1.0 };
                                w(d) * d.w[b] * m
                            }))
                        })
                        .collect()
                })
                .collect()
        };
        let dx_ip = tables(&|d| d.ip);
        let dx_op = tables(&|d| d.op);
        let dx_chronic = tables(&|d| if d.chronic { d.op } else { 0.0 });
        let role_counties = |role: &str| -> (Vec<u16>, Weighted) {
            let idx: Vec<u16> =
                (0..a.regions.len() as u16).filter(|&i| a.regions[i as usize].role == role).collect();
            let w = Weighted::new(idx.iter().map(|&i| a.regions[i as usize].weight));
            (idx, w)
        };
        let (resident_counties, resident_w) = role_counties("resident");
        let (employee_counties, employee_w) = role_counties("employee");
        let plan = Plan::new(settlements, anomaly_rate, malformed, csv, !cal.years.is_empty(), compact);
        let mut ctx = Ctx {
            a,
            seed,
            compact,
            cal,
            fac_cost,
            fac_los,
            outlier_fac,
            cluster_targets,
            dx_ip,
            dx_op,
            dx_chronic,
            resident_counties,
            resident_w,
            employee_counties,
            employee_w,
            first_day: ymd(2024, 1, 1),
            last_day: ymd(2026, 10, 31),
            as_of: ymd(2026, 11, 30),
            plan,
            cands: Vec::new(),
            pharmacies: Vec::new(),
        };
        for (i, r) in a.regions.iter().enumerate() {
            let employee = r.role == "employee";
            let inside = r.role != "out_of_area";
            ctx.cands.push(std::array::from_fn(|s| {
                if inside { ctx.setting_candidates(i as u16, employee, s) } else { Vec::new() }
            }));
            ctx.pharmacies.push(
                (0..a.facilities.len() as u16)
                    .filter(|&f| {
                        a.facilities[f as usize].pharmacy && a.facilities[f as usize].admdvs == r.admdvs
                    })
                    .collect(),
            );
        }
        ctx
    }

    pub fn fac(&self, i: u16) -> &'static Facility {
        &self.a.facilities[i as usize]
    }

    pub fn is_outlier(&self, fac: u16) -> bool {
        self.outlier_fac.binary_search(&fac).is_ok()
    }

    /// How well a facility fits a diagnosis (0: never placed there).
    pub fn fit(&self, f: &Facility, d: &Diagnosis, age: i32) -> f64 {
        let p = d.profile.as_str();
        if f.pharmacy {
            return 0.0;
        }
        if p == "psych" {
            return if f.specialty == "psych" { 1.0 } else { 0.0 };
        }
        let spec = match f.specialty.as_str() {
            "psych" => 0.0,
            "tumor" => {
                if matches!(p, "oncology" | "chemo" | "radio") {
                    3.0
                } else {
                    0.0
                }
            }
            "children" => {
                if age < 18 {
                    3.0
                } else {
                    0.0
                }
            }
            "maternity" => {
                if matches!(p, "obstetric" | "neonatal") {
                    3.0
                } else if d.sex == Some(2) {
                    1.5
                } else if age < 14 && p == "medical" {
                    1.0
                } else {
                    0.0
                }
            }
            "rehab" => {
                if p == "rehab" {
                    4.0
                } else if matches!(d.cat3(), "M51" | "I63" | "M17") {
                    0.5
                } else {
                    0.0
                }
            }
            "tcm" => {
                if matches!(p, "medical" | "rehab") {
                    1.0
                } else {
                    0.15
                }
            }
            _ => 1.0,
        };
        if spec == 0.0 {
            return 0.0;
        }
        let level = match f.lv {
            1 => match p {
                "medical" | "rehab" => 1.0,
                "obstetric" => 0.3,
                "injury" if d.severity <= 2 && d.surgery.is_none() => 0.6,
                _ => 0.0,
            },
            2 if p == "radio" => 0.0,
            _ => 1.0,
        };
        spec * level
    }

    /// Candidate facilities of a setting for a person of a county.
    pub fn setting_candidates(&self, county: u16, employee: bool, setting: usize) -> Vec<(u16, f64)> {
        let r = &self.a.regions[county as usize];
        let serves = if employee { "employee" } else { "resident" };
        let mut out = Vec::new();
        for (i, f) in self.a.facilities.iter().enumerate() {
            if f.pharmacy {
                continue;
            }
            let w = match setting {
                OUT => {
                    if f.serves == "both" {
                        f.weight
                    } else {
                        0.0
                    }
                }
                _ if f.serves != serves || f.city != r.city => 0.0,
                L1 => {
                    if f.lv == 1 && f.admdvs == r.admdvs {
                        f.weight
                    } else {
                        0.0
                    }
                }
                L2 => {
                    if f.lv != 2 {
                        0.0
                    } else if f.admdvs == r.admdvs {
                        f.weight * 6.0
                    } else if f.specialty == "psych" || f.specialty == "rehab" {
                        f.weight * 3.0
                    } else {
                        f.weight * 0.15
                    }
                }
                _ => {
                    if f.lv == 3 {
                        f.weight
                    } else {
                        0.0
                    }
                }
            };
            if w > 0.0 {
                out.push((i as u16, w));
            }
        }
        out
    }
}
