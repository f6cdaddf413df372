/*
id = "DUP002"
name = "direct-and-manual"
title_zh = "同一就医直接结算后又手工报销"
title_en = "The same care settled directly and reimbursed manually"
category = "duplicate_billing"
severity = "high"
requires = ["setl"]
basis = ["河南大病合同 第十六条、第十七条", "漯河大额合同 第十四条、第二十一条"]
what = """Pairs each manual reimbursement (setl_mode 2) with the direct settlements (setl_mode 1) of the
same person at the same facility among the settlements that stand (view `setl_valid`): the same care
when both are inpatient and their periods overlap (strictly, or the same dates), or, for any other
medical type, the same begndate, enddate and medfee_sumamt. Both are flagged: the manual one carries its
fund payments as amount at risk, the direct one 0 (it is the original)."""
why = """Care already settled directly at the facility, whose funds already went to the facility, must
not be reimbursed again to the person at the window."""
example = """P1's stay at hospital A, 2024-03-01 to 2024-03-10, settled directly (S1, setl_mode 1); on
2024-04-20 P1 is reimbursed manually for the same stay (S2, setl_mode 2, another mdtrt_id): S2 is flagged
with its fund payments, S1 with 0."""
*/
WITH m AS (
    SELECT setl_id, psn_no, fixmedins_code, begndate, enddate, medfee_sumamt, is_inpatient, fund_pay
    FROM setl_valid
    WHERE setl_mode = '2'
),
d AS (
    SELECT setl_id, psn_no, fixmedins_code, begndate, enddate, medfee_sumamt, is_inpatient
    FROM setl_valid
    WHERE setl_mode = '1'
),
pairs AS (
    SELECT m.setl_id AS m_id, d.setl_id AS d_id, m.fund_pay AS m_fund,
           m.begndate, m.enddate, d.begndate AS d_begndate, d.enddate AS d_enddate
    FROM m
    JOIN d ON d.psn_no = m.psn_no AND d.fixmedins_code = m.fixmedins_code
    WHERE (m.is_inpatient AND d.is_inpatient
           AND ((m.begndate < d.enddate AND d.begndate < m.enddate)
                OR (m.begndate = d.begndate AND m.enddate = d.enddate)))
       OR (m.begndate = d.begndate AND m.enddate = d.enddate AND m.medfee_sumamt = d.medfee_sumamt)
)
SELECT m_id AS setl_id,
       MIN(m_fund) AS amount_at_risk,
       concat('手工报销', CAST(MIN(begndate) AS VARCHAR), '至', CAST(MIN(enddate) AS VARCHAR),
              '的就医，同一机构已直接结算（', string_agg(d_id, '、' ORDER BY d_id), '）') AS detail
FROM pairs
GROUP BY m_id
UNION ALL
SELECT d_id AS setl_id,
       CAST(0 AS DECIMAL(18, 2)) AS amount_at_risk,
       concat('本次直接结算', CAST(MIN(d_begndate) AS VARCHAR), '至', CAST(MIN(d_enddate) AS VARCHAR),
              '的就医又被手工报销（', string_agg(m_id, '、' ORDER BY m_id), '）') AS detail
FROM pairs
GROUP BY d_id
