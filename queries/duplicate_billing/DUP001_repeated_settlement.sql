/*
id = "DUP001"
name = "repeated-settlement"
title_zh = "重复结算"
title_en = "Settlement repeated under another setl_id"
category = "duplicate_billing"
severity = "high"
requires = ["setl"]
basis = ["河南大病合同 第十六条（不符合政策规定纳入支付范围）", "漯河大额合同 第二十一条、第二十二条（虚假申报）"]
what = """Groups the settlements that stand (view `setl_valid`: no reversal rows, none cancelled by a
reversal, so a reversal and its re-settlement are never a duplicate) by person, facility, begndate,
enddate, medical type, main diagnosis, settlement mode and medfee_sumamt. Every member of a group of two
or more is flagged. Pieces of one long stay (中途结算) cover different periods and never group together.
The earliest settlement of a group (by setl_time, then setl_id) is taken as the original: its
amount_at_risk is 0; each later copy carries its own fund payments. A copy settled manually while the
original was direct is DUP002's case."""
why = """The same care settled twice makes the fund pay twice (重复结算)."""
example = """S1 and S2: P1 at hospital A, 2024-03-01 to 2024-03-10, 普通住院, I63.900, total 12,345.67, both
direct, S2 settled three days after S1: both flagged, S2 with its fund payments as amount at risk."""
*/
-- Cost at 2 M settlements: a window partitioned by eight columns has one partition per settlement, and
-- DataFusion's streaming window pays per partition; so the candidate groups are found first by a hash
-- aggregate over one 64-bit key of the eight columns (medaudit_hash64), and only their members (a few
-- thousand rows, the build side of the join) are numbered by the windows, partitioned by the real columns,
-- so that a hash collision can only add a candidate, never flag one.
WITH k AS (
    SELECT setl_id, fund_pay, setl_time, psn_no, fixmedins_code, begndate, enddate, med_type, dise_codg,
           setl_mode, medfee_sumamt,
           medaudit_hash64(psn_no, fixmedins_code, begndate, enddate, med_type, dise_codg, setl_mode,
                           medfee_sumamt) AS h
    FROM setl_valid
),
dup AS (
    SELECT h FROM k GROUP BY h HAVING COUNT(*) > 1
),
cand AS (
    SELECT k.*
    FROM dup
    JOIN k ON k.h = dup.h
),
g AS (
    SELECT setl_id, fund_pay, setl_time,
           COUNT(*) OVER w AS n,
           ROW_NUMBER() OVER (PARTITION BY psn_no, fixmedins_code, begndate, enddate, med_type, dise_codg,
                                           setl_mode, medfee_sumamt
                              ORDER BY setl_time, setl_id) AS rn,
           first_value(setl_id) OVER (PARTITION BY psn_no, fixmedins_code, begndate, enddate, med_type, dise_codg,
                                                   setl_mode, medfee_sumamt
                                      ORDER BY setl_time, setl_id) AS first_id,
           begndate, enddate, medfee_sumamt
    FROM cand
    WINDOW w AS (PARTITION BY psn_no, fixmedins_code, begndate, enddate, med_type, dise_codg, setl_mode,
                              medfee_sumamt)
)
SELECT setl_id,
       CASE WHEN rn = 1 THEN CAST(0 AS DECIMAL(18, 2)) ELSE fund_pay END AS amount_at_risk,
       CASE WHEN rn = 1
            THEN concat('同一人员、机构、', CAST(begndate AS VARCHAR), '至', CAST(enddate AS VARCHAR),
                        '、医疗费总额', CAST(medfee_sumamt AS VARCHAR), '元的结算共', CAST(n AS VARCHAR),
                        '笔，本笔为最早结算')
            ELSE concat('与结算', first_id, '的人员、机构、起止日期（', CAST(begndate AS VARCHAR), '至',
                        CAST(enddate AS VARCHAR), '）和医疗费总额（', CAST(medfee_sumamt AS VARCHAR),
                        '元）相同，重复结算')
       END AS detail
FROM g
WHERE n > 1
