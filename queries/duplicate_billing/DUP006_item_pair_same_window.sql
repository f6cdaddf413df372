/*
id = "DUP006"
name = "item-pair-same-window"
title_zh = "主项目已含子项目仍重复收费"
title_en = "Sub-item billed together with a main item that already includes it"
category = "duplicate_billing"
severity = "medium"
requires = ["setl", "fee"]
basis = ["知识库 item_duplicate_pairs（重复收费：主项目包含子项目）", "河南大病合同 第十六条", "漯河大额合同 第二十一条"]
what = """Flags fee lines of a sub item billed together with a main item that, by the pricing rules,
already includes it (kb_item_duplicate_pairs, 900 pairs), within the pair's window: window_code
day (单日) = the same settlement and calendar day; visit (单次就诊) = the same visit or stay
(mdtrt_id, across the pieces of a long stay); 1h (同一小时) = the same clock hour of the same stay;
other Nh (6小时) = within N hours of each other (fee_ocur_time) in the same stay. The amount at risk
is the sub item's fund-paid part. Refund lines are netted (a refunded main item no longer
includes anything); sub lines fully paid by the patient are not flagged, whoever paid the main one."""
why = """A main item's price covers its content (急诊监护费 含监护、床位、诊查、护理; 单胎顺产接生 含胎心监测):
billing a part again is 重复收费, the most frequent finding of the national fund inspections."""
example = """Settlement S1 carries 急诊监护费 (001103000010000) and 普通病房床位费 (001109000010000, 30.00 yuan) on
2024-03-05 (window 单日): the bed fee is flagged. 胎心监测 billed 3 hours after 单胎顺产接生 (window
6小时) is flagged; 10 hours after it is not."""
*/
-- Conventions as in RST001 (stands = setl_valid; refunds netted; fund part = inscp_scp_amt, else
-- total - fulamt_ownpay_amt; 丙类 and zero-fund sub lines not flagged).
WITH pairs AS (
    SELECT DISTINCT main_codg, main_name, sub_codg, "window" AS window_zh, window_code,
           CAST(window_hours AS INT) AS window_hours
    FROM kb_item_duplicate_pairs
    WHERE window_code IN ('day', 'visit', '1h') OR CAST(window_hours AS INT) >= 1
),
-- every code of a pair, with its roles
codes AS (
    SELECT med_list_codg, MAX(is_main) AS is_main, MAX(is_sub) AS is_sub
    FROM (SELECT main_codg AS med_list_codg, 1 AS is_main, 0 AS is_sub FROM pairs
          UNION ALL
          SELECT sub_codg AS med_list_codg, 0 AS is_main, 1 AS is_sub FROM pairs) x
    GROUP BY med_list_codg
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
           f.fee_ocur_time, arrow_cast(f.med_list_codg, 'Utf8') AS med_list_codg,
           arrow_cast(f.med_list_name, 'Utf8') AS med_list_name,
           COALESCE(f.chrgitm_lv, '') <> '03' AS fund_item, k.is_main, k.is_sub,
           CAST(f.cnt + COALESCE(r.refund_cnt, 0) AS DECIMAL(20, 4)) AS cnt,
           CAST(COALESCE(f.inscp_scp_amt, f.det_item_fee_sumamt - COALESCE(f.fulamt_ownpay_amt, 0))
                + COALESCE(r.refund_fund, 0) AS DECIMAL(20, 2)) AS fund
    FROM refund r
    RIGHT JOIN (codes k JOIN fee f ON f.med_list_codg = k.med_list_codg) ON r.init_feedetl_sn = f.feedetl_sn
    WHERE COALESCE(f.init_feedetl_sn, '') = ''
      AND f.cnt > 0
),
-- main-item lines, with their stay (column names distinct from subs': DataFusion 55 may remap a
-- pushed-down filter between same-named columns of a join's two sides)
mains AS (
    SELECT l.setl_id AS main_setl_id, s.mdtrt_id AS main_mdtrt_id, s.psn_no AS main_psn_no,
           l.fee_ocur_time AS main_time, l.feedetl_sn AS main_sn,
           p.main_codg, p.main_name, p.sub_codg, p.window_zh, p.window_code, p.window_hours
    FROM pairs p
    JOIN line l ON l.med_list_codg = p.main_codg
    JOIN setl_valid s ON s.setl_id = l.setl_id
    WHERE l.is_main = 1 AND l.cnt > 0
),
-- sub-item lines that cost the fund, with their stay
subs AS (
    SELECT l.*, s.mdtrt_id, s.psn_no
    FROM setl_valid s
    JOIN line l ON l.setl_id = s.setl_id
    WHERE l.is_sub = 1 AND l.cnt > 0 AND l.fund > 0 AND l.fund_item
),
hits AS (
    SELECT b.feedetl_sn,
           MIN(b.setl_id) AS setl_id, MIN(b.fee_ocur_time) AS fee_ocur_time, MIN(b.med_list_codg) AS sub_codg,
           MIN(b.med_list_name) AS sub_name, MIN(b.fund) AS fund,
           MIN(concat(m.main_name, '(', m.main_codg, ')，窗口', m.window_zh, '，主项目明细', m.main_sn)) AS main_desc
    FROM mains m
    JOIN subs b ON b.med_list_codg = m.sub_codg AND b.mdtrt_id = m.main_mdtrt_id AND b.psn_no = m.main_psn_no
    WHERE CASE m.window_code
              WHEN 'day' THEN m.main_setl_id = b.setl_id
                              AND CAST(m.main_time AS DATE) = CAST(b.fee_ocur_time AS DATE)
              WHEN 'visit' THEN TRUE
              WHEN '1h' THEN date_trunc('hour', m.main_time) = date_trunc('hour', b.fee_ocur_time)
              ELSE abs(CAST(m.main_time AS BIGINT) - CAST(b.fee_ocur_time AS BIGINT)) <= 3600 * m.window_hours
          END
    GROUP BY b.feedetl_sn
)
SELECT h.setl_id,
       CAST(h.fund AS DECIMAL(18, 2)) AS amount_at_risk,
       concat(h.sub_name, '(', h.sub_codg, ')', to_char(h.fee_ocur_time, '%Y-%m-%d %H:%M'), '已包含于主项目', h.main_desc,
              '，重复收费，医保支付部分', CAST(CAST(h.fund AS DECIMAL(18, 2)) AS VARCHAR), '元') AS detail,
       h.feedetl_sn AS feedetl_sns
FROM hits h
