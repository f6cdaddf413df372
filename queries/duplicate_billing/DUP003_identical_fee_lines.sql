/*
id = "DUP003"
name = "identical-fee-lines"
title_zh = "同一明细重复计费"
title_en = "Identical fee lines under different feedetl_sn"
category = "duplicate_billing"
severity = "medium"
requires = ["setl", "fee"]
basis = ["河南大病合同 第十六条（不符合政策规定纳入支付范围）", "漯河大额合同 第二十一条"]
what = """Flags fee lines identical to another line of the same settlement (same med_list_codg,
fee_ocur_time, cnt and pric) under a different feedetl_sn. Refund lines (negative cnt or an
init_feedetl_sn) and the lines a refund cancels are left out, so a line billed twice and refunded once
is not flagged. The first line of a group (lowest feedetl_sn) is taken as the original; every further
line is flagged with its fund-paid part (inscp_scp_amt where filled, else det_item_fee_sumamt minus
fulamt_ownpay_amt; 0 for class 丙 lines) as amount at risk. Only settlements that stand (view
`setl_valid`)."""
why = """The same drug, test or service recorded twice at the same second in the same quantity and price
is a double charge (重复收费), whether by error or on purpose."""
example = """Settlement S1 holds F10 and F11, both 0.9%氯化钠注射液 (XB05BBA…), 2024-03-02 08:00:00, cnt 2,
pric 3.50: F11 is flagged with 7.00 yuan."""
*/
-- Cost at 100 M lines: the identity of a line is reduced to one 64-bit hash (medaudit_hash64) and the
-- hashes are sorted once (a narrow sort, no wide group-by); the few hashes seen twice are joined back
-- to their lines (the small candidate set on the build side), refunds are checked for those lines
-- only, and the duplicates are verified exactly on the real columns, so a hash collision cannot flag
-- anything.
WITH h AS (
    SELECT medaudit_hash64(setl_id, med_list_codg, fee_ocur_time, cnt, pric) AS h
    FROM fee
    WHERE cnt > 0 AND COALESCE(init_feedetl_sn, '') = ''
),
seq AS (
    SELECT h, LAG(h) OVER (ORDER BY h) AS prev_h
    FROM h
),
dup AS (
    SELECT DISTINCT h FROM seq WHERE h = prev_h
),
cand AS (
    SELECT f.feedetl_sn, f.setl_id, f.med_list_codg, f.med_list_name, f.fee_ocur_time, f.cnt, f.pric,
           CASE WHEN f.chrgitm_lv = '03' THEN CAST(0 AS DECIMAL(18, 2))
                ELSE COALESCE(f.inscp_scp_amt, f.det_item_fee_sumamt - COALESCE(f.fulamt_ownpay_amt, 0)) END AS fund
    FROM dup d
    JOIN fee f ON d.h = medaudit_hash64(f.setl_id, f.med_list_codg, f.fee_ocur_time, f.cnt, f.pric)
    WHERE f.cnt > 0 AND COALESCE(f.init_feedetl_sn, '') = ''
),
live AS (
    SELECT c.*
    FROM cand c
    LEFT JOIN fee r ON r.init_feedetl_sn = c.feedetl_sn
    WHERE r.feedetl_sn IS NULL
),
ranked AS (
    SELECT live.*,
           ROW_NUMBER() OVER (PARTITION BY setl_id, med_list_codg, fee_ocur_time, cnt, pric
                              ORDER BY feedetl_sn) AS rn,
           first_value(feedetl_sn) OVER (PARTITION BY setl_id, med_list_codg, fee_ocur_time, cnt, pric
                                         ORDER BY feedetl_sn) AS first_sn
    FROM live
)
SELECT r.setl_id,
       CAST(r.fund AS DECIMAL(18, 2)) AS amount_at_risk,
       concat('明细', r.feedetl_sn, '与', r.first_sn, '重复：', r.med_list_codg, COALESCE(r.med_list_name, ''),
              '，', to_char(r.fee_ocur_time, '%Y-%m-%d %H:%M:%S'), '，数量',
              regexp_replace(regexp_replace(CAST(r.cnt AS VARCHAR), '0+$', ''), '\.$', ''),
              '，单价', regexp_replace(regexp_replace(CAST(r.pric AS VARCHAR), '0+$', ''), '\.$', '')) AS detail,
       r.feedetl_sn AS feedetl_sns
FROM ranked r
JOIN setl_valid s ON s.setl_id = r.setl_id
WHERE r.rn > 1
