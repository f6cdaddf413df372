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
count. The lines of a day are taken in time order (fee_ocur_time, then feedetl_sn): the units past
max_cnt are the excess, and the lines that carry them are flagged, each for the excess share of its
fund-paid part (fund × excess units / cnt).

Plan: a hash aggregate finds the days over the limit, and only their lines are ranked by a window;
a window over every line would partition millions of single-line days, which DataFusion 55's window
operator handles slowly (42 s against 7 s on 20 M fee lines)."""
why = """A day has one bed, one nursing level and one ward round, and 24 hours: more is billing for
care that cannot have been given (重复收费, 超标准收费)."""
example = """On 2024-03-05 settlement S1 carries two lines of 普通病房床位费 (001109000010000, 1 per day) of
1 day each at 30.00 yuan: the later line, 30.00 yuan, is at risk. 心电监测 billed for 30 hours on one day
is 6 hours over."""
*/
-- Conventions as in RST001 (stands = setl_valid; refunds netted; fund part = inscp_scp_amt, else
-- total - fulamt_ownpay_amt; 丙类 and zero-fund lines neither flagged nor counted).
WITH kb AS (
    SELECT med_list_codg, MIN(med_list_name) AS kb_name, MIN(CAST(max_cnt AS INT)) AS max_cnt, MIN(per_unit) AS per_unit
    FROM kb_item_limit_frequency
    WHERE per_unit IN ('day', 'hour') AND max_cnt IS NOT NULL
    GROUP BY med_list_codg
),
refund AS (
    SELECT r.init_feedetl_sn,
           SUM(r.cnt) AS refund_cnt,
           SUM(COALESCE(r.inscp_scp_amt, r.det_item_fee_sumamt - COALESCE(r.fulamt_ownpay_amt, 0))) AS refund_fund
    FROM kb k
    JOIN fee r ON r.med_list_codg = k.med_list_codg
    WHERE r.init_feedetl_sn <> ''
    GROUP BY r.init_feedetl_sn
),
line AS (
    SELECT arrow_cast(f.feedetl_sn, 'Utf8') AS feedetl_sn, arrow_cast(f.setl_id, 'Utf8') AS setl_id,
           f.fee_ocur_time, CAST(f.fee_ocur_time AS DATE) AS fee_day,
           arrow_cast(f.med_list_codg, 'Utf8') AS med_list_codg,
           kb.kb_name, kb.max_cnt, kb.per_unit,
           CAST(f.cnt + COALESCE(r.refund_cnt, 0) AS DECIMAL(20, 4)) AS cnt,
           CAST(COALESCE(f.inscp_scp_amt, f.det_item_fee_sumamt - COALESCE(f.fulamt_ownpay_amt, 0))
                + COALESCE(r.refund_fund, 0) AS DECIMAL(20, 2)) AS fund
    FROM refund r
    RIGHT JOIN (kb JOIN fee f ON f.med_list_codg = kb.med_list_codg) ON r.init_feedetl_sn = f.feedetl_sn
    WHERE COALESCE(f.init_feedetl_sn, '') = ''
      AND f.cnt > 0
      AND COALESCE(f.chrgitm_lv, '') <> '03'
),
-- days over the limit (hash aggregate: cheap), then the lines of those days only
daily AS (
    SELECT l.setl_id, l.med_list_codg, l.fee_day, SUM(l.cnt) AS day_cnt
    FROM line l
    WHERE l.cnt > 0 AND l.fund > 0
    GROUP BY l.setl_id, l.med_list_codg, l.fee_day
    HAVING SUM(l.cnt) > MIN(l.max_cnt)
),
running AS (
    SELECT l.*, d.day_cnt,
           SUM(l.cnt) OVER (PARTITION BY l.setl_id, l.med_list_codg, l.fee_day
                            ORDER BY l.fee_ocur_time, l.feedetl_sn
                            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS upto
    FROM daily d
    JOIN line l ON l.setl_id = d.setl_id AND l.med_list_codg = d.med_list_codg AND l.fee_day = d.fee_day
    WHERE l.cnt > 0 AND l.fund > 0
),
over AS (
    SELECT r.*,
           -- the part of this line's units beyond max_cnt
           CASE WHEN r.upto - r.cnt >= r.max_cnt THEN r.cnt ELSE r.upto - r.max_cnt END AS excess
    FROM running r
    WHERE r.upto > r.max_cnt
)
SELECT o.setl_id,
       CAST(CASE WHEN o.excess = o.cnt THEN o.fund
                 ELSE round(CAST(CAST(o.fund AS DECIMAL(20, 2)) / CAST(o.cnt AS DECIMAL(20, 4)) AS DECIMAL(24, 8))
                            * CAST(o.excess AS DECIMAL(20, 4)), 2)
            END AS DECIMAL(18, 2)) AS amount_at_risk,
       concat(o.kb_name, '(', o.med_list_codg, ')', CAST(o.fee_day AS VARCHAR), '共计费',
              regexp_replace(regexp_replace(CAST(o.day_cnt AS VARCHAR), '0+$', ''), '\.$', ''),
              CASE o.per_unit WHEN 'hour' THEN '小时' ELSE '次' END, '，每日限',
              CAST(o.max_cnt AS VARCHAR), CASE o.per_unit WHEN 'hour' THEN '小时' ELSE '次' END,
              '，明细', o.feedetl_sn, '超出',
              regexp_replace(regexp_replace(CAST(o.excess AS VARCHAR), '0+$', ''), '\.$', ''),
              CASE o.per_unit WHEN 'hour' THEN '小时' ELSE '次' END,
              '，该明细医保支付部分', CAST(CAST(o.fund AS DECIMAL(18, 2)) AS VARCHAR), '元') AS detail,
       o.feedetl_sn AS feedetl_sns
FROM over o
JOIN setl_valid s ON s.setl_id = o.setl_id
