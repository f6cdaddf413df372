/*
id = "RST008"
name = "work-injury-drug"
title_zh = "工伤保险目录用药由医疗保险支付"
title_en = "Work-injury-only drug paid by medical insurance"
category = "restricted_item"
severity = "medium"
requires = ["setl", "fee"]
basis = ["知识库 drug_limit_insurance（限定保险类型）"]
what = """Flags fee lines of a drug that the knowledge base restricts to another insurance
(kb_drug_limit_insurance rows with restricts = true: the 85 work-injury rows, 工伤) paid by the
medical-insurance fund. The 27 maternity rows (生育) carry restricts = false: Henan pays maternity
drugs through medical insurance, so they are never flagged. Lines fully paid by the patient are
not flagged."""
why = """Drugs listed only in the work-injury catalogue (scar-softening plasters and the like) are paid by
the work-injury fund for an accepted work injury; medical insurance must not pay them, and a work
injury settled through medical insurance shifts a liable employer's cost onto the fund."""
example = """A resident's settlement carries 疤痕止痒软化膏 (ZH01AAB0066010100716, 工伤保险目录用药) for 36.00
yuan: flagged. 地诺前列酮栓 (生育保险目录用药) on a delivery stay is lawful."""
*/
-- Conventions as in RST001 (stands = setl_valid; refunds netted; fund part = inscp_scp_amt, else
-- total - fulamt_ownpay_amt; 丙类 and zero-fund lines not flagged).
WITH kb AS (
    SELECT DISTINCT med_list_codg, med_list_name AS kb_name, limit_insurance
    FROM kb_drug_limit_insurance
    WHERE restricts = 'true'
),
refund AS (
    SELECT r.init_feedetl_sn,
           SUM(r.cnt) AS refund_cnt,
           SUM(COALESCE(r.inscp_scp_amt, r.det_item_fee_sumamt - COALESCE(r.fulamt_ownpay_amt, 0))) AS refund_fund
    FROM (SELECT DISTINCT med_list_codg FROM kb) k
    JOIN fee r ON r.med_list_codg = k.med_list_codg
    WHERE r.init_feedetl_sn <> ''
    GROUP BY r.init_feedetl_sn
),
line AS (
    SELECT arrow_cast(f.feedetl_sn, 'Utf8') AS feedetl_sn, arrow_cast(f.setl_id, 'Utf8') AS setl_id,
           CAST(f.fee_ocur_time AS DATE) AS fee_day, arrow_cast(f.med_list_codg, 'Utf8') AS med_list_codg,
           kb.kb_name,
           kb.limit_insurance,
           CAST(f.cnt + COALESCE(r.refund_cnt, 0) AS DECIMAL(20, 4)) AS cnt,
           CAST(COALESCE(f.inscp_scp_amt, f.det_item_fee_sumamt - COALESCE(f.fulamt_ownpay_amt, 0))
                + COALESCE(r.refund_fund, 0) AS DECIMAL(20, 2)) AS fund
    FROM refund r
    RIGHT JOIN (kb JOIN fee f ON f.med_list_codg = kb.med_list_codg) ON r.init_feedetl_sn = f.feedetl_sn
    WHERE COALESCE(f.init_feedetl_sn, '') = ''
      AND f.cnt > 0
      AND COALESCE(f.chrgitm_lv, '') <> '03'
)
SELECT l.setl_id,
       CAST(l.fund AS DECIMAL(18, 2)) AS amount_at_risk,
       concat('限', l.limit_insurance, '保险支付的药品', l.kb_name, '(', l.med_list_codg, ')由医疗保险结算，',
              CAST(l.fee_day AS VARCHAR), '，医保支付部分', CAST(CAST(l.fund AS DECIMAL(18, 2)) AS VARCHAR), '元')
           AS detail,
       l.feedetl_sn AS feedetl_sns
FROM setl_valid s
JOIN line l ON l.setl_id = s.setl_id
WHERE l.cnt > 0
  AND l.fund > 0
