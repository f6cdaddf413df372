/*
id = "OVC004"
name = "second-surgery-full-price"
title_zh = "同一切口第二项手术未按规定折价"
title_en = "Second operation through the same incision billed at full price"
category = "overcharge"
severity = "medium"
requires = ["setl", "fee"]
basis = ["知识库 item_secondary_surgery（限定主次操作）", "河南大病合同 第十六条"]
what = """Flags operations billed at full price as the second or later operation through the same
incision. Two or more different operations of one surgery_group of kb_item_secondary_surgery
billed in one settlement on the same day are taken as done through one incision: the operation
with the highest unit price is the main one (ties: the lower feedetl_sn), the others are
secondary and must be discounted. "Not discounted" is read from the data, as the knowledge base
carries no prices: a secondary line is at full price when its pric is not below the highest pric
that the same facility bills for that item in the data (on settlements that stand). Each such
line is flagged; the amount at risk is secondary_discount (default 50 %) of its fund-paid part.
Refund lines are netted; lines fully paid by the patient are not flagged."""
why = """Pricing rules charge the second and later operations through one incision at a reduced rate
(经同一切口进行的两种及以上不同手术，第二及以后的手术折价计收); charging each at full price
inflates the bill of an already expensive stay."""
example = """On 2024-03-05 settlement S1 carries 结肠癌根治术 at 3,000.00 and 阑尾切除术 at 600.00, both of 胃肠手术组,
and the facility's usual price of 阑尾切除术 is 600.00: the appendectomy is billed at full price and
half of its fund-paid part, 300.00 yuan, is at risk. Billed at 300.00 it would be lawful."""

[params.secondary_discount]
type = "decimal"
default = "0.5"
doc = """Share of a secondary operation's price that the pricing rules deduct (0.5: second and later
operations at 50 %). The amount at risk of a full-price secondary line is this share of its
fund-paid part."""
*/
-- Conventions as in RST001 (stands = setl_valid; refunds netted; fund part = inscp_scp_amt, else
-- total - fulamt_ownpay_amt; 丙类 and zero-fund lines not flagged).
WITH codes AS (
    SELECT DISTINCT med_list_codg FROM kb_item_secondary_surgery
),
refund AS (
    SELECT r.init_feedetl_sn,
           SUM(r.cnt) AS refund_cnt,
           SUM(COALESCE(r.inscp_scp_amt, r.det_item_fee_sumamt - COALESCE(r.fulamt_ownpay_amt, 0))) AS refund_fund
    FROM codes k
    JOIN fee r ON r.med_list_codg = k.med_list_codg
    WHERE r.init_feedetl_sn <> ''
    GROUP BY r.init_feedetl_sn
),
line AS (
    SELECT arrow_cast(f.feedetl_sn, 'Utf8') AS feedetl_sn, arrow_cast(f.setl_id, 'Utf8') AS setl_id,
           CAST(f.fee_ocur_time AS DATE) AS fee_day, arrow_cast(f.med_list_codg, 'Utf8') AS med_list_codg,
           arrow_cast(f.med_list_name, 'Utf8') AS med_list_name, f.pric,
           COALESCE(f.chrgitm_lv, '') <> '03' AS fund_item,
           CAST(f.cnt + COALESCE(r.refund_cnt, 0) AS DECIMAL(20, 4)) AS cnt,
           CAST(COALESCE(f.inscp_scp_amt, f.det_item_fee_sumamt - COALESCE(f.fulamt_ownpay_amt, 0))
                + COALESCE(r.refund_fund, 0) AS DECIMAL(20, 2)) AS fund
    FROM refund r
    RIGHT JOIN (codes k JOIN fee f ON f.med_list_codg = k.med_list_codg) ON r.init_feedetl_sn = f.feedetl_sn
    WHERE COALESCE(f.init_feedetl_sn, '') = ''
      AND f.cnt > 0
),
-- every operation line that stands, with the facility's full (highest) price of the item
priced AS (
    SELECT l.*, s.fixmedins_code,
           MAX(l.pric) OVER (PARTITION BY s.fixmedins_code, l.med_list_codg) AS full_pric
    FROM setl_valid s
    JOIN line l ON l.setl_id = s.setl_id
    WHERE l.cnt > 0
),
grouped AS (
    SELECT p.*, g.surgery_group,
           MIN(p.med_list_codg) OVER w AS min_code,
           MAX(p.med_list_codg) OVER w AS max_code,
           ROW_NUMBER() OVER (PARTITION BY p.setl_id, p.fee_day, g.surgery_group
                              ORDER BY p.pric DESC, p.feedetl_sn) AS rank_in_group,
           first_value(p.med_list_name) OVER (PARTITION BY p.setl_id, p.fee_day, g.surgery_group
                                              ORDER BY p.pric DESC, p.feedetl_sn) AS main_name
    FROM priced p
    JOIN (SELECT DISTINCT med_list_codg, surgery_group FROM kb_item_secondary_surgery) g
      ON g.med_list_codg = p.med_list_codg
    WINDOW w AS (PARTITION BY p.setl_id, p.fee_day, g.surgery_group)
),
secondary AS (
    -- a line secondary in two groups (an item listed under both) is counted once
    SELECT feedetl_sn,
           MIN(setl_id) AS setl_id, MIN(fee_day) AS fee_day, MIN(med_list_codg) AS med_list_codg,
           MIN(med_list_name) AS med_list_name, MIN(pric) AS pric, MIN(full_pric) AS full_pric,
           MIN(fund) AS fund, MIN(surgery_group) AS surgery_group, MIN(main_name) AS main_name
    FROM grouped
    WHERE min_code <> max_code
      AND rank_in_group > 1
      AND pric >= full_pric
      AND fund_item
      AND fund > 0
    GROUP BY feedetl_sn
)
SELECT c.setl_id,
       CAST(round(CAST(c.fund AS DECIMAL(20, 2)) * ${secondary_discount}, 2) AS DECIMAL(18, 2)) AS amount_at_risk,
       concat(CAST(c.fee_day AS VARCHAR), '同一', c.surgery_group, '内主手术', c.main_name, '之外的',
              c.med_list_name, '(', c.med_list_codg, ')按全价',
              regexp_replace(regexp_replace(CAST(c.pric AS VARCHAR), '0+$', ''), '\.$', ''),
              '元计收，未按规定折价，医保支付部分', CAST(CAST(c.fund AS DECIMAL(18, 2)) AS VARCHAR), '元') AS detail,
       c.feedetl_sn AS feedetl_sns
FROM secondary c
