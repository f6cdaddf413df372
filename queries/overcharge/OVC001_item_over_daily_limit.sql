/*
id = "OVC001"
name = "item-over-daily-limit"
title_zh = "诊疗项目超每日限定频次"
title_en = "Service item billed above its daily limit"
category = "overcharge"
severity = "high"
requires = ["setl", "fee"]
basis = ["知识库 item_limit_frequency（超频次/超住院天数）", "河南大病合同 第十六条"]
what = """Flags, per settlement, calendar day (date of fee_ocur_time) and item of kb_item_limit_frequency, a
quantity above max_cnt: for items limited per day (per 日/天, per_unit = day: bed fees, nursing
levels, daily consultation) the summed cnt is the number of times; for items limited in hours
(per 小时, per_unit = hour: monitoring, ventilation, 24 per day) cnt is hours and at most 24 can fall
on one day. Refund lines are netted onto the line they cancel; lines fully paid by the patient do not
count. The amount at risk is the excess share of the day's fund-paid amount:
fund × (cnt − max_cnt) / cnt."""
why = """A day has one bed, one nursing level and one ward round, and 24 hours: more is billing for
care that cannot have been given (重复收费, 超标准收费)."""
example = """On 2024-03-05 settlement S1 carries two lines of 普通病房床位费 (001109000010000, 1 per day) of
1 day each at 30.00 yuan: the second, 30.00 yuan, is at risk. 心电监测 billed for 30 hours on one day
is 6 hours over."""
*/
-- Conventions as in RST001 (stands = setl_valid; refunds netted; fund part = inscp_scp_amt, else
-- total - fulamt_ownpay_amt; 丙类 and zero-fund lines neither flagged nor counted).
WITH kb AS (
    SELECT DISTINCT med_list_codg, med_list_name AS kb_name, CAST(max_cnt AS INT) AS max_cnt, per_unit
    FROM kb_item_limit_frequency
    WHERE per_unit IN ('day', 'hour') AND max_cnt IS NOT NULL
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
    SELECT f.feedetl_sn, f.setl_id, CAST(f.fee_ocur_time AS DATE) AS fee_day, f.med_list_codg,
           CAST(f.cnt + COALESCE(r.refund_cnt, 0) AS DECIMAL(20, 4)) AS cnt,
           CAST(COALESCE(f.inscp_scp_amt, f.det_item_fee_sumamt - COALESCE(f.fulamt_ownpay_amt, 0))
                + COALESCE(r.refund_fund, 0) AS DECIMAL(20, 2)) AS fund
    FROM refund r
    RIGHT JOIN ((SELECT DISTINCT med_list_codg FROM kb) k JOIN fee f ON f.med_list_codg = k.med_list_codg) ON r.init_feedetl_sn = f.feedetl_sn
    WHERE COALESCE(f.init_feedetl_sn, '') = ''
      AND f.cnt > 0
      AND COALESCE(f.chrgitm_lv, '') <> '03'
),
daily AS (
    SELECT l.setl_id, l.med_list_codg, l.fee_day,
           SUM(l.cnt) AS cnt,
           SUM(l.fund) AS fund,
           string_agg(l.feedetl_sn, ';' ORDER BY l.feedetl_sn) AS sns
    FROM line l
    WHERE l.cnt > 0 AND l.fund > 0
    GROUP BY l.setl_id, l.med_list_codg, l.fee_day
),
over AS (
    SELECT d.*, kb.kb_name, kb.max_cnt, kb.per_unit,
           -- fund-paid amount per unit, then the excess units' share (kept within DECIMAL(38))
           CAST(CAST(d.fund AS DECIMAL(20, 2)) / CAST(d.cnt AS DECIMAL(20, 4)) AS DECIMAL(24, 8)) AS unit_fund
    FROM daily d
    JOIN kb ON kb.med_list_codg = d.med_list_codg
    WHERE d.cnt > kb.max_cnt
)
SELECT o.setl_id,
       CAST(round(o.unit_fund * CAST(o.cnt - o.max_cnt AS DECIMAL(20, 4)), 2) AS DECIMAL(18, 2)) AS amount_at_risk,
       concat(o.kb_name, '(', o.med_list_codg, ')', CAST(o.fee_day AS VARCHAR), '计费',
              regexp_replace(regexp_replace(CAST(o.cnt AS VARCHAR), '0+$', ''), '\.$', ''),
              CASE o.per_unit WHEN 'hour' THEN '小时' ELSE '次' END, '，每日限',
              CAST(o.max_cnt AS VARCHAR), CASE o.per_unit WHEN 'hour' THEN '小时' ELSE '次' END,
              '，当日医保支付部分', CAST(CAST(o.fund AS DECIMAL(18, 2)) AS VARCHAR), '元') AS detail,
       o.sns AS feedetl_sns
FROM over o
JOIN setl_valid s ON s.setl_id = o.setl_id
