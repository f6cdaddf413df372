/*
id = "DUP005"
name = "outpatient-during-stay"
title_zh = "住院期间在同一机构门诊结算"
title_en = "Outpatient settlement at a facility during an inpatient stay there"
category = "duplicate_billing"
severity = "medium"
requires = ["setl"]
basis = ["河南大病合同 第十六条（不符合政策规定纳入支付范围）", "漯河大额合同 第二十一条"]
what = """Flags outpatient-type settlements (med_type class in `outpatient_classes`: ordinary outpatient,
emergency, outpatient chronic/special disease, maternity outpatient) of a person at a facility on a day
strictly inside an inpatient stay of the same person at the same facility (view `stay`): after the
admission day and before the discharge day. Visits on the admission day (the visit that led to the
admission) and on the discharge day (prescriptions to take home) are lawful and not flagged. Only
settlements that stand (view `setl_valid`)."""
why = """While a patient is an inpatient, the facility bills everything it does in the inpatient
settlement. An outpatient settlement in between either bills the same care again or moves costs out of
the stay (to dodge a per-case price or to use outpatient benefits)."""
example = """P1 is in hospital A from 2024-03-01 to 2024-03-10; an ordinary outpatient settlement at A on
2024-03-05 is flagged, with its fund payments; one at A on 2024-03-10 or at hospital B on 2024-03-05 is not."""

[params.outpatient_classes]
type = "text_list"
default = ["outpatient", "emergency", "chronic_special", "maternity"]
doc = "med_type classes (code table) treated as outpatient care; inpatient rows are never included."
*/
-- One window per (person, facility) over stays and visits ordered by date, visits before stays of the
-- same day: the running max of the discharge dates of the stays admitted before a visit's day tells
-- whether one is still open on that day.
-- Only (person, facility) pairs with both an inpatient and an outpatient settlement can match; they
-- are found first by a hash aggregate, so that the window sees only their events.
WITH pair AS (
    SELECT psn_no, fixmedins_code
    FROM setl_valid
    GROUP BY psn_no, fixmedins_code
    HAVING bool_or(is_inpatient)
       AND bool_or(NOT is_inpatient AND COALESCE(med_class IN ${outpatient_classes}, FALSE))
),
ev AS (
    SELECT st.psn_no, st.fixmedins_code, st.begndate AS d, 1 AS ord,
           concat(CAST(st.enddate AS VARCHAR), ' ', CAST(st.begndate AS VARCHAR)) AS stay_key,
           CAST(NULL AS VARCHAR) AS setl_id, CAST(NULL AS DECIMAL(18, 2)) AS fund_pay, CAST(NULL AS VARCHAR) AS med_type
    FROM pair p
    JOIN stay st ON st.psn_no = p.psn_no AND st.fixmedins_code = p.fixmedins_code
    UNION ALL
    SELECT s.psn_no, s.fixmedins_code, s.begndate AS d, 0 AS ord, CAST(NULL AS VARCHAR) AS stay_key,
           s.setl_id, s.fund_pay, s.med_type
    FROM pair p
    JOIN setl_valid s ON s.psn_no = p.psn_no AND s.fixmedins_code = p.fixmedins_code
    WHERE NOT s.is_inpatient AND s.med_class IN ${outpatient_classes}
),
w AS (
    SELECT ev.*,
           MAX(stay_key) OVER (PARTITION BY psn_no, fixmedins_code ORDER BY d, ord
                               ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS open_stay
    FROM ev
)
SELECT setl_id,
       fund_pay AS amount_at_risk,
       concat(CAST(d AS VARCHAR), '门诊结算（医疗类别', med_type, '）时，同一机构住院中（', substr(open_stay, 12), '入院，',
              substr(open_stay, 1, 10), '出院）') AS detail
FROM w
WHERE ord = 0 AND substr(open_stay, 1, 10) > CAST(d AS VARCHAR)
