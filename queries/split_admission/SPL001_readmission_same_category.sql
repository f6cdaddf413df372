/*
id = "SPL001"
name = "readmission-same-category"
title_zh = "出院后短期内同一机构同一病种再入院（分解住院）"
title_en = "Readmission to the same facility within days with the same diagnosis category"
category = "split_admission"
severity = "medium"
requires = ["setl"]
basis = ["河南大病合同 第二十八条（规范医疗服务行为，控制不合理医疗费用）", "漯河大额合同 第二十一条", "国家医保局 分解住院 认定口径"]
what = """Orders each person's inpatient stays at one facility by admission (view `stay`: the pieces of one
mdtrt_id are one stay, never a readmission) and flags a stay admitted within `days` days after the
discharge of the previous stay there (0 ≤ admission − previous discharge ≤ days) when both main diagnoses
share the 3-character ICD-10 category. Scheduled cycles are not readmissions: a stay is left out when its
main diagnosis or the previous one starts with one of `scheduled_prefixes` (default Z51.0 radiotherapy
session, Z51.1 chemotherapy session; matched on the trimmed, upper-case code, prefixes of 1 to 7
characters). Every settlement of the readmission stay is flagged with its fund payments."""
why = """Discharging a patient and readmitting them days later for the same illness (分解住院) splits one
stay into several, each with its own per-case payment or deductible cycle, and makes the stays look
shorter and cheaper than they are."""
example = """P1 is discharged from hospital A on 2024-03-10 (I63.900) and readmitted to A on 2024-03-16
(I63.800, same category I63): the second stay is flagged. Chemotherapy cycles with main diagnosis Z51.100
every 14 days are not."""

[params.days]
type = "int"
default = 15
doc = "Maximum days from the previous discharge to the readmission."

[params.scheduled_prefixes]
type = "text_list"
default = ["Z51.0", "Z51.1"]
doc = "Main-diagnosis prefixes of scheduled treatment cycles (放化疗等按周期入院), never readmissions."
*/
-- Only (person, facility) pairs with two stays or more can have a readmission; they are found first by
-- a hash aggregate, so that the window sees only their stays.
WITH pair AS (
    SELECT psn_no, fixmedins_code
    FROM setl_valid
    WHERE is_inpatient
    GROUP BY psn_no, fixmedins_code
    HAVING MIN(mdtrt_id) <> MAX(mdtrt_id)
),
st AS (
    SELECT s.psn_no, s.fixmedins_code, s.mdtrt_id, s.begndate, s.enddate, s.dise_codg,
           upper(trim(s.dise_codg)) AS dx
    FROM pair p
    JOIN stay s ON s.psn_no = p.psn_no AND s.fixmedins_code = p.fixmedins_code
),
seq AS (
    SELECT st.*,
           LAG(enddate) OVER w AS prev_end,
           LAG(dx) OVER w AS prev_dx,
           LAG(dise_codg) OVER w AS prev_dise,
           LAG(mdtrt_id) OVER w AS prev_mdtrt
    FROM st
    WINDOW w AS (PARTITION BY psn_no, fixmedins_code ORDER BY begndate, enddate, mdtrt_id)
),
flagged AS (
    SELECT seq.*, CAST(begndate AS INT) - CAST(prev_end AS INT) AS gap
    FROM seq
    WHERE prev_end IS NOT NULL
      AND CAST(begndate AS INT) - CAST(prev_end AS INT) BETWEEN 0 AND ${days}
      AND left(dx, 3) = left(prev_dx, 3)
      AND NOT COALESCE(left(dx, 1) IN ${scheduled_prefixes} OR left(dx, 2) IN ${scheduled_prefixes}
                       OR left(dx, 3) IN ${scheduled_prefixes} OR left(dx, 4) IN ${scheduled_prefixes}
                       OR left(dx, 5) IN ${scheduled_prefixes} OR left(dx, 6) IN ${scheduled_prefixes}
                       OR left(dx, 7) IN ${scheduled_prefixes}, FALSE)
      AND NOT COALESCE(left(prev_dx, 1) IN ${scheduled_prefixes} OR left(prev_dx, 2) IN ${scheduled_prefixes}
                       OR left(prev_dx, 3) IN ${scheduled_prefixes} OR left(prev_dx, 4) IN ${scheduled_prefixes}
                       OR left(prev_dx, 5) IN ${scheduled_prefixes} OR left(prev_dx, 6) IN ${scheduled_prefixes}
                       OR left(prev_dx, 7) IN ${scheduled_prefixes}, FALSE)
)
SELECT s.setl_id,
       s.fund_pay AS amount_at_risk,
       concat('上次住院（', f.prev_dise, '）于', CAST(f.prev_end AS VARCHAR), '出院，', CAST(f.gap AS VARCHAR), '天后',
              CAST(f.begndate AS VARCHAR), '再次入院同一机构，主诊断', f.dise_codg, '属同一类目', left(f.dx, 3)) AS detail
FROM flagged f
JOIN setl_valid s ON s.psn_no = f.psn_no AND s.fixmedins_code = f.fixmedins_code AND s.mdtrt_id = f.mdtrt_id
WHERE s.is_inpatient
