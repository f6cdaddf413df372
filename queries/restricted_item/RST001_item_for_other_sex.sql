/*
id = "RST001"
name = "item-for-other-sex"
title_zh = "限性别诊疗项目用于另一性别"
title_en = "Sex-limited service item billed for the other sex"
category = "restricted_item"
severity = "high"
requires = ["setl", "fee"]
basis = ["知识库 item_limit_gender（限性别诊疗项目）", "河南大病合同 第十六条"]
what = """Flags fee lines of a service item that the knowledge base limits to one sex (kb_item_limit_gender,
column gend '1' male / '2' female) billed on a settlement whose gend is the other sex. Settlements of
unknown sex (gend 0/9) are not checked. Lines fully paid by the patient are not flagged."""
why = """An examination or operation on organs the patient does not have cannot have been performed on
that patient: either the care was given to someone else under this person's insurance (冒名) or the
item was invented or miscoded. The fund must not pay for it."""
example = """A male insured person (gend 1) is billed 子宫造影 (002101030300000, 限女性) on 2024-03-02;
the line's fund-paid part, 120.00 yuan, is at risk."""
*/
-- Conventions shared by the knowledge-base rules (RST*, OVC*, DUP006):
--   * only settlements that stand (view setl_valid: no reversal rows, none cancelled by one);
--   * refund lines (negative cnt, init_feedetl_sn naming the line they cancel) are netted onto that
--     line; a line refunded in full disappears; unlinked negative lines are ignored;
--   * the fund-paid part of a line is inscp_scp_amt where the export carries it, else
--     det_item_fee_sumamt - fulamt_ownpay_amt (0 when absent); a line of class 丙 (chrgitm_lv 03) or
--     whose fund-paid part is 0 costs the fund nothing and is not flagged;
--   * plan shape: the knowledge-base relation comes first in its join with fee, so that it is the
--     hash-join build side (DataFusion builds from the left input and pushes the KB codes into the
--     fee scan as a dynamic filter); the refund totals are the build side of a RIGHT JOIN onto the
--     lines; refund columns are named refund_*: DataFusion 55's physical filter pushdown maps
--     columns by name, so a `cnt` on both sides of that join silently got the wrong one
--     (apache/datafusion#21246, fixed after 55 by #25259); keep join sides' names distinct;
--   * the selected lines' strings are copied out of the scan's string views (arrow_cast to Utf8),
--     so that rows held by a hash table, a sort or a window do not pin whole fee pages in memory
--     (OVC004 on 20 M lines: 1.1 GB without, 0.24 GB with).
WITH kb AS (
    SELECT DISTINCT med_list_codg, med_list_name AS kb_name, limit_gender, gend AS kb_gend
    FROM kb_item_limit_gender
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
       concat(CASE s.gend WHEN '1' THEN '男' ELSE '女' END, '性参保人收取限', l.limit_gender, '性项目',
              l.kb_name, '(', l.med_list_codg, ')，', CAST(CAST(l.fee_ocur_time AS DATE) AS VARCHAR),
              '，数量', regexp_replace(regexp_replace(CAST(l.cnt AS VARCHAR), '0+$', ''), '\.$', ''),
              '，医保支付部分', CAST(CAST(l.fund AS DECIMAL(18, 2)) AS VARCHAR), '元') AS detail,
       l.feedetl_sn AS feedetl_sns
FROM setl_valid s
JOIN line l ON l.setl_id = s.setl_id
WHERE l.cnt > 0
  AND l.fund > 0
  AND s.gend IN ('1', '2')
  AND s.gend <> l.kb_gend
