/*
id = "RST002"
name = "drug-for-other-sex"
title_zh = "限性别药品用于另一性别"
title_en = "Sex-limited drug billed for the other sex"
category = "restricted_item"
severity = "medium"
requires = ["setl", "fee"]
basis = ["知识库 drug_limit_gender（限性别药品）", "河南大病合同 第十六条"]
what = """Flags fee lines of a drug that the knowledge base limits to one sex (kb_drug_limit_gender, column
gend '1' male / '2' female) billed on a settlement whose gend is the other sex. Drugs marked
other_indications = true (tadalafil, sildenafil: also pulmonary hypertension in either sex) are
reported with low severity. Settlements of unknown sex are not checked; lines fully paid by the
patient are not flagged."""
why = """A gynaecological drug for a man or an erectile-dysfunction drug for a woman is, most often, a
drug bought on one person's insurance for someone else (串换/冒名) or a miscoded line. Where the drug
has lawful uses for both sexes the hit is only a question to the facility."""
example = """A male insured person is billed 益母草颗粒 (限女性, 活血调经) on 2024-03-02 for 25.00 yuan:
flagged, medium. A woman billed 他达拉非片 is flagged with low severity (肺动脉高压 is an indication)."""

[params.other_indications_severity]
type = "text"
default = "low"
doc = "Severity of a hit on a drug with other indications (other_indications = true): high, medium or low."
*/
-- Conventions shared by the knowledge-base rules (RST*, OVC*, DUP006):
--   * only settlements that stand (view setl_valid: no reversal rows, none cancelled by one);
--   * refund lines (negative cnt, init_feedetl_sn naming the line they cancel) are netted onto that
--     line; a line refunded in full disappears; unlinked negative lines are ignored;
--   * the fund-paid part of a line is inscp_scp_amt where the export carries it, else
--     det_item_fee_sumamt - fulamt_ownpay_amt (0 when absent); a line of class 丙 (chrgitm_lv 03) or
--     whose fund-paid part is 0 costs the fund nothing and is not flagged.
WITH kb AS (
    SELECT DISTINCT med_list_codg, med_list_name AS kb_name, limit_gender, gend AS kb_gend,
           COALESCE(other_indications, 'false') AS other_indications
    FROM kb_drug_limit_gender
    WHERE gend IN ('1', '2')
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
           f.fee_ocur_time, arrow_cast(f.med_list_codg, 'Utf8') AS med_list_codg, kb.kb_name,
           kb.limit_gender, kb.kb_gend,
           kb.other_indications,
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
       concat(CASE s.gend WHEN '1' THEN '男' ELSE '女' END, '性参保人收取限', l.limit_gender, '性药品',
              l.kb_name, '(', l.med_list_codg, ')，', CAST(CAST(l.fee_ocur_time AS DATE) AS VARCHAR),
              '，数量', regexp_replace(regexp_replace(CAST(l.cnt AS VARCHAR), '0+$', ''), '\.$', ''),
              '，医保支付部分', CAST(CAST(l.fund AS DECIMAL(18, 2)) AS VARCHAR), '元',
              CASE WHEN l.other_indications = 'true' THEN '（该药另有适应症，需核实）' ELSE '' END) AS detail,
       l.feedetl_sn AS feedetl_sns,
       CASE WHEN l.other_indications = 'true' THEN ${other_indications_severity} END AS severity
FROM setl_valid s
JOIN line l ON l.setl_id = s.setl_id
WHERE l.cnt > 0
  AND l.fund > 0
  AND s.gend IN ('1', '2')
  AND s.gend <> l.kb_gend
