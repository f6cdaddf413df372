/*
id = "OVC002"
name = "item-over-period-limit"
title_zh = "诊疗项目超周期限定频次"
title_en = "Service item billed more often than its period allows"
category = "overcharge"
severity = "medium"
requires = ["setl", "fee"]
basis = ["知识库 item_limit_period（周期超频次）"]
what = """Flags items of kb_item_limit_period (e.g. 糖化血红蛋白测定 at most once in 15 days) billed more
than max_cnt times for one person within any period_days consecutive days, across settlements and
facilities. For each day the item is billed, the units of that day and of the period_days − 1
days before are summed; the units above max_cnt that fall on that day are in excess: with a limit
of once in 14 days, tests 14 days apart are lawful, 13 days apart the later one is flagged. Items
sharing a limit_group (default: each code on its own) count together under the group's strictest
limit (fewest units, longest period).
Refund lines are netted; lines fully paid by the patient do not count. The amount at risk is the
excess units' share of the day's fund-paid amount."""
why = """The sheet's periods follow clinical guidelines (HbA1c reflects 2-3 months of glycaemia, a
rehabilitation assessment needs two weeks of therapy to change): repeating the test sooner adds cost
without information, and repeated identical tests are a common padding pattern."""
example = """Person P1 has 糖化血红蛋白测定 (002503020030000, 1 per 15 days) on 2024-03-01 at facility A and on
2024-03-10 at facility B: the second test, 10 days later, is flagged on its settlement."""
*/
-- Conventions as in RST001 (stands = setl_valid; refunds netted; fund part = inscp_scp_amt, else
-- total - fulamt_ownpay_amt; 丙类 and zero-fund lines neither flagged nor counted).
--
-- The window: a RANGE frame needs a constant offset, but period_days varies by item. Ordering by
-- x = 2·day / (2·period_days − 1) turns "day' >= day − period_days + 1" (the period_days − 1 days
-- before, and the day itself) into "x' >= x − 1" for whole days, so one frame
-- RANGE BETWEEN 1 PRECEDING AND CURRENT ROW serves every item (period_days is constant within a
-- partition). The half-day margin keeps the comparison far from floating-point rounding.
WITH kb_rows AS (
    SELECT DISTINCT med_list_codg, med_list_name, CAST(max_cnt AS INT) AS max_cnt,
           CAST(period_days AS INT) AS period_days, COALESCE(limit_group, med_list_codg) AS limit_group
    FROM kb_item_limit_period
    WHERE max_cnt IS NOT NULL AND CAST(period_days AS INT) >= 1
),
-- items of one limit_group share its strictest limit (fewest units, longest period)
kb AS (
    SELECT r.med_list_codg, r.med_list_name AS kb_name, g.max_cnt, g.period_days, r.limit_group
    FROM (SELECT limit_group, MIN(max_cnt) AS max_cnt, MAX(period_days) AS period_days
          FROM kb_rows GROUP BY limit_group) g
    JOIN kb_rows r ON r.limit_group = g.limit_group
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
           kb.kb_name, kb.max_cnt, kb.period_days, kb.limit_group,
           CAST(f.cnt + COALESCE(r.refund_cnt, 0) AS DECIMAL(20, 4)) AS cnt,
           CAST(COALESCE(f.inscp_scp_amt, f.det_item_fee_sumamt - COALESCE(f.fulamt_ownpay_amt, 0))
                + COALESCE(r.refund_fund, 0) AS DECIMAL(20, 2)) AS fund
    FROM refund r
    RIGHT JOIN (kb JOIN fee f ON f.med_list_codg = kb.med_list_codg) ON r.init_feedetl_sn = f.feedetl_sn
    WHERE COALESCE(f.init_feedetl_sn, '') = ''
      AND f.cnt > 0
      AND COALESCE(f.chrgitm_lv, '') <> '03'
),
-- one row per person, item group, day and settlement
daily AS (
    SELECT s.psn_no, l.limit_group, l.fee_day, l.setl_id,
           MIN(l.kb_name) AS kb_name, MIN(l.med_list_codg) AS med_list_codg,
           MIN(l.max_cnt) AS max_cnt, MIN(l.period_days) AS period_days,
           SUM(l.cnt) AS cnt, SUM(l.fund) AS fund,
           string_agg(l.feedetl_sn, ';' ORDER BY l.feedetl_sn) AS sns
    FROM setl_valid s
    JOIN line l ON l.setl_id = s.setl_id
    WHERE l.cnt > 0 AND l.fund > 0
    GROUP BY s.psn_no, l.limit_group, l.fee_day, l.setl_id
),
win AS (
    SELECT d.*,
           SUM(d.cnt) OVER (PARTITION BY d.psn_no, d.limit_group, d.fee_day) AS day_cnt,
           SUM(d.cnt) OVER (
               PARTITION BY d.psn_no, d.limit_group
               ORDER BY CAST(2 * CAST(d.fee_day AS INT) AS DOUBLE) / CAST(2 * d.period_days - 1 AS DOUBLE)
               RANGE BETWEEN 1 PRECEDING AND CURRENT ROW) AS period_cnt,
           MIN(d.fee_day) OVER (
               PARTITION BY d.psn_no, d.limit_group
               ORDER BY CAST(2 * CAST(d.fee_day AS INT) AS DOUBLE) / CAST(2 * d.period_days - 1 AS DOUBLE)
               RANGE BETWEEN 1 PRECEDING AND CURRENT ROW) AS period_first
    FROM daily d
),
over AS (
    SELECT w.*,
           -- units of this day beyond the limit (the earlier units of the period are the lawful ones)
           CASE WHEN w.period_cnt - w.max_cnt < w.day_cnt THEN w.period_cnt - w.max_cnt ELSE w.day_cnt END
               AS excess
    FROM win w
    WHERE w.period_cnt > w.max_cnt
)
SELECT o.setl_id,
       CAST(round(CAST(CAST(o.fund AS DECIMAL(20, 2)) / CAST(o.day_cnt AS DECIMAL(20, 4)) AS DECIMAL(24, 8))
                  * CAST(o.excess AS DECIMAL(20, 4)), 2) AS DECIMAL(18, 2)) AS amount_at_risk,
       concat(o.kb_name, '(', o.med_list_codg, ')限', CAST(o.period_days AS VARCHAR), '天内',
              CAST(o.max_cnt AS VARCHAR), '次，', CAST(o.period_first AS VARCHAR), '至', CAST(o.fee_day AS VARCHAR),
              '共计费', regexp_replace(regexp_replace(CAST(o.period_cnt AS VARCHAR), '0+$', ''), '\.$', ''),
              '次，本结算当日医保支付部分', CAST(CAST(o.fund AS DECIMAL(18, 2)) AS VARCHAR), '元') AS detail,
       o.sns AS feedetl_sns
FROM over o
