/*
id = "PHS001"
name = "bed-only-days"
title_zh = "挂床住院：多数住院日仅有床位、护理、诊查费"
title_en = "Phantom stay: most days carry only bed, nursing and consultation fees"
category = "phantom_stay"
severity = "medium"
requires = ["setl", "fee"]
basis = ["河南大病合同 第十六条（弄虚作假）、第二十九条（住院全过程监控）", "漯河大额合同 第二十一条、第二十二条"]
what = """For every inpatient stay (view `stay`, pieces of one mdtrt_id together) of at least `min_days`
days (enddate − begndate), counts the stay-days from admission up to the day before discharge that
carry at least one fee line of another kind than `idle_types` (default bed 01, consultation 02, nursing
07, general 12, registration 13): a drug, test, examination, treatment, operation or material. Refund
lines and lines a refund cancels do not count. The stay is flagged when the days without any such line
are at least `min_idle_share` of its days; each settlement of it carries its fund payments."""
why = """挂床住院: the patient is registered as an inpatient but is not treated (often not even present);
the bed, nursing and consultation fees of the empty days, and the inpatient benefits of the whole stay,
are paid for nothing."""
example = """A 10-day stay (2024-03-01 to 2024-03-11) whose only drug and lab lines are on 2024-03-01:
9 of 10 days carry nothing but 床位费, 护理费 and 诊查费: flagged."""

[params.min_days]
type = "int"
default = 5
doc = "Minimum length of stay in days (enddate − begndate)."

[params.min_idle_share]
type = "decimal"
default = "0.8"
doc = "Share of stay-days without any treatment line from which the stay is flagged."

[params.idle_types]
type = "text_list"
default = ["01", "02", "07", "12", "13"]
doc = "med_chrgitm_type values that are not treatment (bed, consultation, nursing, general, registration)."
*/
-- Cost at 100 M lines: the fee scan keeps only the treatment lines of long stays (joined to the small set
-- of their settlements, written first so that it is the hash-join build side), is reduced to one row
-- per settlement and day, and only then joined to the stays; cancelled lines are removed by an outer
-- join against the (small) set of refunded line ids, again on the build side.
WITH st AS (
    SELECT psn_no, fixmedins_code, mdtrt_id, begndate, enddate,
           CAST(begndate AS INT) AS b, CAST(enddate AS INT) AS e
    FROM stay
    WHERE CAST(enddate AS INT) - CAST(begndate AS INT) >= ${min_days}
),
piece AS (
    SELECT s.setl_id, st.psn_no, st.fixmedins_code, st.mdtrt_id, st.b, st.e
    FROM setl_valid s
    JOIN st ON st.psn_no = s.psn_no AND st.fixmedins_code = s.fixmedins_code AND st.mdtrt_id = s.mdtrt_id
    WHERE s.is_inpatient
),
cancelled AS (
    SELECT DISTINCT init_feedetl_sn AS sn
    FROM fee
    WHERE init_feedetl_sn <> ''
),
line AS (
    SELECT f.setl_id, f.feedetl_sn, CAST(CAST(f.fee_ocur_time AS DATE) AS INT) AS day
    FROM piece p
    JOIN fee f ON f.setl_id = p.setl_id
    WHERE f.cnt > 0
      AND COALESCE(f.init_feedetl_sn, '') = ''
      AND NOT COALESCE(f.med_chrgitm_type IN ${idle_types}, FALSE)
),
setl_day AS (
    SELECT l.setl_id, l.day
    FROM cancelled c
    RIGHT JOIN line l ON c.sn = l.feedetl_sn
    WHERE c.sn IS NULL
    GROUP BY l.setl_id, l.day
),
treat AS (
    SELECT p.psn_no, p.fixmedins_code, p.mdtrt_id, COUNT(DISTINCT d.day) AS treat_days
    FROM piece p
    JOIN setl_day d ON d.setl_id = p.setl_id
    WHERE d.day >= p.b AND d.day < p.e
    GROUP BY p.psn_no, p.fixmedins_code, p.mdtrt_id
),
judged AS (
    SELECT st.*, st.e - st.b AS days, COALESCE(t.treat_days, 0) AS treat_days
    FROM st
    LEFT JOIN treat t ON t.psn_no = st.psn_no AND t.fixmedins_code = st.fixmedins_code AND t.mdtrt_id = st.mdtrt_id
)
SELECT s.setl_id,
       s.fund_pay AS amount_at_risk,
       concat('住院', CAST(j.begndate AS VARCHAR), '至', CAST(j.enddate AS VARCHAR), '共', CAST(j.days AS VARCHAR), '天，其中',
              CAST(j.days - j.treat_days AS VARCHAR), '天仅有床位费、护理费、诊查费等，无药品、检查、治疗') AS detail
FROM judged j
JOIN setl_valid s ON s.psn_no = j.psn_no AND s.fixmedins_code = j.fixmedins_code AND s.mdtrt_id = j.mdtrt_id
WHERE s.is_inpatient
  AND CAST(j.days - j.treat_days AS DECIMAL(20, 4)) >= ${min_idle_share} * CAST(j.days AS DECIMAL(20, 4))
