/*
id = "RST006"
name = "inpatient-drug-outside-stay"
title_zh = "限住院用药品用于非住院就医"
title_en = "Inpatient-only drug billed outside an inpatient stay"
category = "restricted_item"
severity = "medium"
requires = ["setl", "fee"]
basis = ["知识库 drug_limit_care_setting（限定就医方式）"]
what = """Flags fee lines of a drug that the knowledge base pays for inpatients only (kb_drug_limit_care_setting)
billed on a settlement that is not an inpatient stay: setl_valid.is_inpatient false (med_type class
other than inpatient, and not 52 maternity inpatient). Drugs with allows_emergency = true (the 207
rows 限急诊或住院) are also lawful on an emergency settlement (class emergency). A settlement whose
med_type is unknown to the code table is not checked. Lines fully paid by the patient are not
flagged."""
why = """Parenteral nutrition, 安宫牛黄丸 and similar drugs are paid only where the patient's condition
is monitored in hospital; billed in ordinary outpatient care or at a pharmacy they are outside the
catalogue's conditions, and often a sign of drugs dispensed for resale."""
example = """An ordinary outpatient settlement (med_type 11) carries 安宫牛黄丸 (ZA07AAA0061010100166, 限急诊或住院):
flagged. The same drug on an emergency settlement (med_type 13) is lawful; a parenteral nutrition
emulsion (住院 only) on an emergency settlement is flagged."""
*/
-- Conventions as in RST001 (stands = setl_valid; refunds netted; fund part = inscp_scp_amt, else
-- total - fulamt_ownpay_amt; 丙类 and zero-fund lines not flagged).
WITH kb AS (
    SELECT DISTINCT med_list_codg, med_list_name AS kb_name, COALESCE(allows_emergency, 'false') AS allows_emergency
    FROM kb_drug_limit_care_setting
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
           kb.allows_emergency,
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
       concat(COALESCE(c.label, s.med_class), '(医疗类别', s.med_type, ')结算收取',
              CASE WHEN l.allows_emergency = 'true' THEN '限急诊或住院' ELSE '限住院' END, '药品',
              l.kb_name, '(', l.med_list_codg, ')，', CAST(l.fee_day AS VARCHAR),
              '，医保支付部分', CAST(CAST(l.fund AS DECIMAL(18, 2)) AS VARCHAR), '元') AS detail,
       l.feedetl_sn AS feedetl_sns
FROM setl_valid s
JOIN line l ON l.setl_id = s.setl_id
LEFT JOIN (SELECT code, MIN(label) AS label FROM code WHERE field = 'med_type' GROUP BY code) c ON c.code = s.med_type
WHERE l.cnt > 0
  AND l.fund > 0
  AND s.med_class IS NOT NULL
  AND NOT s.is_inpatient
  AND NOT (l.allows_emergency = 'true' AND s.med_class = 'emergency')
