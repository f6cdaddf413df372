//! The checks written in Rust rather than SQL (row-level data quality at ingest, the benefit
//! recalculation and the payment deadlines), documented like the SQL rules so that
//! `medaudit rules list` and `rules show` cover every check the engine runs.

/// One Rust-side check.
#[derive(Debug, Clone, Copy)]
pub struct Check {
    pub id: &'static str,
    pub title_zh: &'static str,
    pub title_en: &'static str,
    pub category: &'static str,
    pub severity: &'static str,
    pub requires: &'static [&'static str],
    pub basis: &'static str,
    pub what: &'static str,
    pub why: &'static str,
    pub example: &'static str,
    /// Where the check lives.
    pub module: &'static str,
}

/// Every Rust-side check.
pub static CHECKS: &[Check] = &[
    Check {
        id: "DQ001",
        title_zh: "结算金额恒等式不成立",
        title_en: "Settlement amounts do not add up",
        category: "data_quality",
        severity: "medium",
        requires: &["setl"],
        basis: "SCHEMA.md: medfee_sumamt = fulamt_ownpay_amt + overlmt_selfpay + preselfpay_amt + inscp_scp_amt",
        what: "Compares the total medical fee with the sum of its four parts, to the cent.",
        why: "Every settlement of the national platform satisfies the identity; one that does not was altered or \
              exported wrongly, and its fund payments cannot be trusted.",
        example: "medfee_sumamt 1,000.00 but the parts add up to 980.00: a 20.00 difference.",
        module: "ingest::quality",
    },
    Check {
        id: "DQ002",
        title_zh: "结束日期早于开始日期",
        title_en: "End date before begin date",
        category: "data_quality",
        severity: "low",
        requires: &["setl"],
        basis: "SCHEMA.md: begndate / enddate",
        what: "Flags settlements whose discharge or visit end date is before the admission or visit date.",
        why: "Length of stay, bed-day and overlap checks rest on the dates.",
        example: "begndate 2024-03-10, enddate 2024-03-08.",
        module: "ingest::quality",
    },
    Check {
        id: "DQ004",
        title_zh: "身份证号码与出生日期或性别不符",
        title_en: "ID number disagrees with birth date or sex",
        category: "data_quality",
        severity: "medium",
        requires: &["setl"],
        basis: "GB 11643-1999; 河南大病合同 第十六条（冒名顶替）",
        what: "For resident ID cards (psn_cert_type 01 or absent): the check digit, the birth date in the number \
               against brdy, and the sex digit against gend.",
        why: "A number that fails its own check or contradicts the person's data is a sign of a made-up or \
              borrowed identity.",
        example: "certno 4114**********1234 with brdy 1980-01-01, but the number says 1981-01-01.",
        module: "ingest::quality",
    },
    Check {
        id: "DQ005",
        title_zh: "明细金额不等于数量×单价",
        title_en: "Fee line amount is not count × price",
        category: "data_quality",
        severity: "low",
        requires: &["fee"],
        basis: "SCHEMA.md: det_item_fee_sumamt = cnt × pric, to the cent",
        what: "Recomputes each fee line's amount from its count and unit price, rounded half away from zero.",
        why: "A line billed above count × price is an overcharge hidden in the arithmetic.",
        example: "cnt 2, pric 35.00, det_item_fee_sumamt 80.00.",
        module: "ingest::quality",
    },
    Check {
        id: "BEN001",
        title_zh: "大病保险支付与政策不符",
        title_en: "Critical-illness payment differs from the policy",
        category: "benefit_mismatch",
        severity: "high",
        requires: &["setl"],
        basis: "河南大病合同 第十一～十四条、第三十四条(三); POLICY.md",
        what: "Recomputes hifmi_pay of every resident settlement the fund covers, person-year by person-year, \
               with cumulative bases, the ordinary and the preferential curve, caps and reversals netted where \
               they happen, and compares it with what was recorded.",
        why: "An insurer that raises or lowers the reimbursement ratio on its own loses its contract; \
              underpayments must be paid to the insured person (第十七条).",
        example: "Cumulative base 51,000 of an ordinary resident: expected 24,000.00, recorded 26,000.00.",
        module: "benefit",
    },
    Check {
        id: "BEN002",
        title_zh: "大额补助支付与政策不符",
        title_en: "Large-expense subsidy differs from the policy",
        category: "benefit_mismatch",
        severity: "high",
        requires: &["setl"],
        basis: "漯河大额合同 第十条、第十四条、第三十二条(五); POLICY.md",
        what: "Recomputes hifob_pay of every employee settlement: 95 % of policy-scope costs above the point \
               where the pool has paid 90,000 in the year, up to 280,000.",
        why: "Paying more or less than the policy gives is a breach of the contract.",
        example: "r = 0.85, inscp 30,000, hifp 10,000 where the pool passes 90,000: expected 17,323.53.",
        module: "benefit",
    },
    Check {
        id: "PAY001",
        title_zh: "超过支付时限",
        title_en: "Payment after the deadline in working days",
        category: "late_payment",
        severity: "medium",
        requires: &["pay"],
        basis: "河南大病合同 第十六条、第十七条; 漯河大额合同 第十四条",
        what: "Counts working days of the official calendar from the declaration date and flags payments made \
               after the deadline, or unpaid past it at the as-of date.",
        why: "Late payment is a breach of the contract.",
        example: "Direct settlement declared 2026-02-10 (Spring Festival in between): deadline 2026-03-09; paid \
                  2026-03-10 is one working day late.",
        module: "benefit::deadline",
    },
    Check {
        id: "STA001",
        title_zh: "单次结算费用远高于同组",
        title_en: "Settlement cost far above its peer group",
        category: "statistical_outlier",
        severity: "low",
        requires: &["setl"],
        basis: "漯河大额合同 第二十五条（风险管控、精算与趋势分析）; datasets/stats/README.md",
        what: "Modified z-score of ln(total fee) against the peer group (3-character ICD-10 × hospital level × \
               medical-type class; small groups merged upward) by median and MAD; flags z > 5, fee ≥ 3 × the \
               group median and Benjamini–Hochberg q < 0.01.",
        why: "A case costing several times what the same diagnosis costs at the same level of hospital is worth \
              a reviewer's look: inflated billing, upcoding or an error.",
        example: "I63 at level-2 hospitals, median 8,200 yuan: a stay of 41,000 yuan (z 6.1) is flagged.",
        module: "stats",
    },
    Check {
        id: "STA002",
        title_zh: "住院天数远高于同组",
        title_en: "Length of stay far above its peer group",
        category: "statistical_outlier",
        severity: "low",
        requires: &["setl"],
        basis: "漯河大额合同 第二十五条; datasets/stats/README.md",
        what: "Modified z-score of ln(1 + length of stay) of inpatient settlements against the peer group; flags \
               z > 5, stay ≥ 3 × the group median and q < 0.01. Amount 0 (a review hint).",
        why: "Stays far longer than the diagnosis needs may be padded (挂床) or badly coded.",
        example: "J18 at level-1 hospitals, median 7 days: a 40-day stay is flagged.",
        module: "stats",
    },
    Check {
        id: "STA003",
        title_zh: "机构费用高于病例组合期望",
        title_en: "Facility cost above its case-mix expected cost",
        category: "statistical_outlier",
        severity: "medium",
        requires: &["setl"],
        basis: "漯河大额合同 第二十五条; datasets/stats/README.md",
        what: "Observed inpatient cost of each facility against its expected cost by indirect standardisation: \
               every case at the mean cost of its peer group among the other facilities. Tested on the mean \
               log-cost residual against the other facilities' in the same groups, random-effects z-test with the \
               between-facility variance (DerSimonian–Laird, the facility left out); BH over facilities, \
               q < 0.01 and O/E ≥ 1.30. Written on every compared settlement of the facility, the excess O − E \
               split over them.",
        why: "A facility billing systematically more than its case mix explains inflates every claim a little; \
              rules on single claims do not see it.",
        example: "O = 2.6 million, E = 1.35 million over 310 cases: O/E 1.93, log residual +0.66, z 4.9, q 0.0001.",
        module: "stats",
    },
    Check {
        id: "STA004",
        title_zh: "机构规则命中率远高于同类",
        title_en: "Facility's share of rule-flagged settlements far above its case-mix expectation",
        category: "statistical_outlier",
        severity: "low",
        requires: &["setl"],
        basis: "漯河大额合同 第二十五条; 河南大病合同 第二十八条; datasets/stats/README.md",
        what: "Counts the facility's settlements flagged by the SQL rules of the configured categories (fraud and \
               abuse, not data quality or injury review) against the number expected from its case mix (each \
               peer group's flagged share among the other facilities); negative-binomial upper tail with the \
               over-dispersion between facilities estimated by moments leaving the facility out; BH over \
               facilities, q < 0.01, at least 5 flagged and 2 × expected. Written on the facility's flagged \
               settlements with amount 0 (the rules carry the amounts).",
        why: "Where the rules fire far more often than at comparable facilities, the facility as a whole deserves \
              an on-site inspection rather than claim-by-claim review.",
        example: "41 of 620 settlements flagged, 9.8 expected from the case mix: 4.2 ×, φ 0.12, q 1e-8.",
        module: "stats",
    },
    Check {
        id: "STA005",
        title_zh: "机构再入院率异常",
        title_en: "Facility readmission rate far above its case-mix expectation",
        category: "statistical_outlier",
        severity: "medium",
        requires: &["setl"],
        basis: "漯河大额合同 第二十一条、第二十五条; 河南大病合同 第二十八条; datasets/stats/README.md",
        what: "Stays (view `stay`) after which the same person is admitted to the same facility within 15 days, \
               against the number expected from the index stays' diagnosis groups (3-character ICD-10, small \
               groups merged to the chapter, then all) at the other facilities' rates; planned Z51 courses left \
               out; negative-binomial test as STA004, BH, q < 0.01, at least 5 readmissions and 2 × expected. \
               Written on the readmission stays' settlements with amount 0 (SPL001 carries the amounts of \
               same-diagnosis readmissions).",
        why: "A facility that readmits far more than its case mix explains is splitting stays (分解住院) as a \
              practice, including across diagnoses where the single-claim rule does not look.",
        example: "38 readmissions after 240 discharges (15.8 %), 9.1 expected: 4.2 ×, q 2e-9.",
        module: "stats",
    },
    Check {
        id: "STA006",
        title_zh: "机构收费金额首位数字分布异常",
        title_en: "Facility's fee-amount first digits unlike its peers'",
        category: "statistical_outlier",
        severity: "low",
        requires: &["setl", "fee"],
        basis: "漯河大额合同 第二十五条; datasets/stats/README.md",
        what: "First significant digit (1–9) of the facility's positive fee-line amounts against the digits of the \
               other facilities' lines in the same peer groups (regulated prices make plain Benford a measure of \
               case mix); Pearson chi-square scaled by a Dirichlet-multinomial over-dispersion factor \
               1 + (n − 1) ρ estimated leaving the facility out; BH over facilities, q < 0.01 and total \
               variation distance ≥ 0.10. Written on the facility's settlements with amount 0 (a review hint).",
        why: "Amounts that do not come from the price catalogue (made-up or hand-edited bills) change the digit \
              pattern of a facility's bills against facilities treating the same cases.",
        example: "Digit shares 31/18/12/... against 45/12/9/... expected: distance 0.19, χ² 412 on 8 df, scaled \
                  by 6.3: p 2e-11.",
        module: "stats",
    },
    Check {
        id: "STA007",
        title_zh: "个人年度住院次数异常",
        title_en: "Admissions of a person in a year far above the population rate",
        category: "statistical_outlier",
        severity: "medium",
        requires: &["setl"],
        basis: "漯河大额合同 第二十五条; 河南大病合同 第十六条; datasets/stats/README.md",
        what: "Stays per person and calendar year (planned chemotherapy / radiotherapy courses Z51 excluded) \
               against the population's annual rate: Poisson upper tail, BH over person-years, q < 0.01, at \
               least 8 stays and 3 × the expected. Written on every settlement of those stays.",
        why: "Repeated admissions far beyond what anyone needs point to 挂床住院, lent cards or induced \
              admissions.",
        example: "13 stays in 2024 against 0.12 per person: p 1e-20, flagged.",
        module: "stats",
    },
    Check {
        id: "STA008",
        title_zh: "同一县区多人短期内集中到同一机构住院（统计检验）",
        title_en: "Persons of one county admitted to one facility within days, beyond its usual inflow",
        category: "statistical_outlier",
        severity: "medium",
        requires: &["setl"],
        basis: "河南大病合同 第二十七条; 漯河大额合同 第二十三条、第二十五条; datasets/stats/README.md",
        what: "For every insured county × facility pair (in or out of the city), persons admitted in each window \
               of 3 consecutive days against the pair's admissions outside the window spread over the rest of \
               the span; negative-binomial upper tail with the over-dispersion of daily admissions estimated by \
               moments (the pair left out); BH over every window of every pair, q < 0.01, at least 5 persons and \
               5 × the usual inflow. Written on every settlement of the stays in the cluster; the amount is the \
               fund payments beyond the usual inflow. Counts as one signal with OOA002 in the risk score.",
        why: "Groups of insured persons brought together to one hospital (组织参保人住院, free transport, kickbacks) \
              show up as bursts of admissions from one county.",
        example: "Six residents of 411422 admitted to one hospital 2024-05-03 to 05-05, usually 0.02 per 3 days: \
                  p 1e-13, q 2e-7.",
        module: "stats",
    },
];

/// Looks a Rust-side check up by id.
pub fn check(id: &str) -> Option<&'static Check> {
    CHECKS.iter().find(|c| c.id == id)
}
