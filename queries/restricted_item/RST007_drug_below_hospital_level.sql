/*
id = "RST007"
name = "drug-below-hospital-level"
title_zh = "限定医疗机构等级药品在低等级机构使用"
title_en = "Drug billed at a facility below its required hospital level"
category = "restricted_item"
severity = "medium"
requires = ["setl", "fee", "medins"]
basis = ["知识库 drug_limit_hospital_level（限定机构等级）"]
what = """Flags fee lines of a drug that the knowledge base pays only at hospitals of level min_level or above
(kb_drug_limit_hospital_level: 952 rows 二级 = 2, 10 rows 三级 = 3) billed at a facility of a lower
level. The level is setl.hosp_lv where the settlement carries it, else medins.hosp_lv, read through
the code table (hosp_lv class level1/level2/level3). A facility of unknown level (empty, a pharmacy,
a code not in the table) is not flagged. Lines fully paid by the patient are not flagged."""
why = """The catalogue restricts these drugs (traditional-Chinese-medicine injections, intravitreal
anti-VEGF drugs...) to hospitals that can diagnose and monitor their indications; a first-level
facility billing them is outside the payment conditions."""
example = """A level-1 township health centre (hosp_lv 1) bills 参附注射液 (ZA05CAC0029010102312, 二级) on
2024-03-02: flagged. 阿柏西普眼内注射溶液 (三级) billed at a level-2 hospital is flagged; at a level-3
hospital it is lawful."""
*/
-- Conventions as in RST001 (stands = setl_valid; refunds netted; fund part = inscp_scp_amt, else
-- total - fulamt_ownpay_amt; 丙类 and zero-fund lines not flagged).
WITH kb AS (
    SELECT DISTINCT med_list_codg, med_list_name AS kb_name, min_hospital_level,
           CAST(min_level AS INT) AS min_level
    FROM kb_drug_limit_hospital_level
    WHERE min_level IS NOT NULL
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
           kb.min_hospital_level, kb.min_level,
           CAST(f.cnt + COALESCE(r.refund_cnt, 0) AS DECIMAL(20, 4)) AS cnt,
           CAST(COALESCE(f.inscp_scp_amt, f.det_item_fee_sumamt - COALESCE(f.fulamt_ownpay_amt, 0))
                + COALESCE(r.refund_fund, 0) AS DECIMAL(20, 2)) AS fund
    FROM refund r
    RIGHT JOIN (kb JOIN fee f ON f.med_list_codg = kb.med_list_codg) ON r.init_feedetl_sn = f.feedetl_sn
    WHERE COALESCE(f.init_feedetl_sn, '') = ''
      AND f.cnt > 0
      AND COALESCE(f.chrgitm_lv, '') <> '03'
),
facility AS (
    SELECT s.setl_id, s.fixmedins_code,
           CASE c.class WHEN 'level1' THEN 1 WHEN 'level2' THEN 2 WHEN 'level3' THEN 3 END AS level,
           c.label AS level_label
    FROM setl_valid s
    LEFT JOIN medins m ON m.fixmedins_code = s.fixmedins_code
    JOIN (SELECT code, MIN(class) AS class, MIN(label) AS label FROM code WHERE field = 'hosp_lv' GROUP BY code) c
      ON c.code = COALESCE(NULLIF(trim(s.hosp_lv), ''), m.hosp_lv)
)
SELECT l.setl_id,
       CAST(l.fund AS DECIMAL(18, 2)) AS amount_at_risk,
       concat(l.min_hospital_level, '及以上医疗机构限定药品', l.kb_name, '(', l.med_list_codg, ')在',
              v.level_label, '机构', v.fixmedins_code, '使用，', CAST(l.fee_day AS VARCHAR),
              '，医保支付部分', CAST(CAST(l.fund AS DECIMAL(18, 2)) AS VARCHAR), '元') AS detail,
       l.feedetl_sn AS feedetl_sns
FROM facility v
JOIN line l ON l.setl_id = v.setl_id
WHERE l.cnt > 0
  AND l.fund > 0
  AND v.level < l.min_level
