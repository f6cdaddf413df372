/*
id = "OOA002"
name = "group-admissions"
title_zh = "同一县区多人短期内集中到同一异地机构住院"
title_en = "Group of persons from one county admitted to the same out-of-area facility"
category = "out_of_area"
severity = "medium"
requires = ["setl"]
basis = ["河南大病合同 第二十七条（异地就医病历调查）", "漯河大额合同 第二十三条"]
what = """Counts, for every insured county (insu_admdvs) and out-of-area facility (first 4 digits of
insu_admdvs and fix_blng_admdvs differ), the persons admitted (view `stay`, one per person and day)
within each window of w = `spread_days` + 1 consecutive days ending on an admission day (admission dates
at most `spread_days` apart; default 2, i.e. within 3 calendar days). A window is hot when it
holds at least `min_persons` persons and at least `min_ratio` times the pair's usual inflow: the
baseline is the pair's admissions outside the window spread evenly over the rest of the data's span
(first to last admission date of all stays), per w days: baseline = (N − c) × w / (D − w),
tested as c × (D − w) ≥ min_ratio × (N − c) × w. Every stay admitted inside a hot window is flagged (each
settlement of it, with its fund payments). Computed with RANGE window frames, no self-join. A statistical
cluster test elsewhere must not count this signal twice."""
why = """Buses of insured persons taken from one county to a distant hospital (组织参保人异地住院, often with
free transport or kickbacks) is a known pattern of organised fraud; the contracts call for investigating
out-of-area medical records."""
example = """Six residents of 睢县 (411422) are admitted to the same Zhengzhou hospital between 2024-05-03
and 2024-05-05, while the hospital usually receives one person from 睢县 a month: all six stays are
flagged."""

[params.min_persons]
type = "int"
default = 5
doc = "Persons admitted within the window needed to flag."

[params.spread_days]
type = "int"
default = 2
doc = "Admission dates at most this many days apart form a group (2: within 3 calendar days)."

[params.min_ratio]
type = "decimal"
default = "5"
doc = "How many times the pair's usual inflow per window the count must reach."
*/
WITH adm AS (
    SELECT DISTINCT psn_no, insu_admdvs, fixmedins_code, CAST(begndate AS INT) AS day
    FROM stay
    WHERE substr(insu_admdvs, 1, 4) <> substr(fix_blng_admdvs, 1, 4)
),
span AS (
    SELECT CAST(MAX(begndate) AS INT) - CAST(MIN(begndate) AS INT) + 1 AS d FROM stay
),
per_day AS (
    SELECT insu_admdvs, fixmedins_code, day, COUNT(*) AS persons
    FROM adm
    GROUP BY insu_admdvs, fixmedins_code, day
),
win AS (
    SELECT per_day.*,
           SUM(persons) OVER (PARTITION BY insu_admdvs, fixmedins_code ORDER BY day
                              RANGE BETWEEN ${spread_days} PRECEDING AND CURRENT ROW) AS c,
           SUM(persons) OVER (PARTITION BY insu_admdvs, fixmedins_code) AS n
    FROM per_day
),
hot AS (
    SELECT win.*,
           CASE WHEN c >= ${min_persons}
                     AND CAST(c AS DECIMAL(20, 0)) * CAST(greatest(span.d - ${spread_days} - 1, 1) AS DECIMAL(20, 0))
                         >= ${min_ratio} * CAST(n - c AS DECIMAL(20, 0)) * CAST(${spread_days} + 1 AS DECIMAL(20, 0))
                THEN 1 ELSE 0 END AS is_hot
    FROM win CROSS JOIN span
),
marked AS (
    SELECT hot.*,
           MAX(is_hot) OVER (PARTITION BY insu_admdvs, fixmedins_code ORDER BY day
                             RANGE BETWEEN CURRENT ROW AND ${spread_days} FOLLOWING) AS in_hot,
           MAX(CASE WHEN is_hot = 1 THEN c END) OVER (PARTITION BY insu_admdvs, fixmedins_code ORDER BY day
                             RANGE BETWEEN CURRENT ROW AND ${spread_days} FOLLOWING) AS hot_c
    FROM hot
)
SELECT s.setl_id,
       s.fund_pay AS amount_at_risk,
       concat('参保地', m.insu_admdvs, '的', CAST(m.hot_c AS VARCHAR), '人在', CAST(${spread_days} + 1 AS VARCHAR),
              '日内集中到异地机构', m.fixmedins_code, '住院（本人', CAST(s.begndate AS VARCHAR), '入院），该机构全期共收治该县区',
              CAST(m.n AS VARCHAR), '人次，远超平常水平') AS detail
FROM marked m
JOIN stay st ON st.insu_admdvs = m.insu_admdvs AND st.fixmedins_code = m.fixmedins_code
            AND CAST(st.begndate AS INT) = m.day
JOIN setl_valid s ON s.psn_no = st.psn_no AND s.fixmedins_code = st.fixmedins_code AND s.mdtrt_id = st.mdtrt_id
WHERE m.in_hot = 1
  AND s.is_inpatient
  AND substr(st.insu_admdvs, 1, 4) <> substr(st.fix_blng_admdvs, 1, 4)
