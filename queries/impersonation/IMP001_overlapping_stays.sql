/*
id = "IMP001"
name = "overlapping-stays"
title_zh = "同一人同期在两家机构住院"
title_en = "Overlapping inpatient stays at two facilities"
category = "impersonation"
severity = "high"
requires = ["setl"]
basis = ["河南大病合同 第十六条（冒名顶替）", "漯河大额合同 第二十一条（冒名顶替）"]
what = """Flags every inpatient stay (view `stay`: the pieces of one mdtrt_id are one stay) of a person
that overlaps a stay of the same person at another facility. Two stays overlap when each begins before
the other ends (strictly): a discharge from one hospital and an admission to another on the same day is a
transfer, not an overlap. Stays of one person at the same facility are first merged into islands, so that
only stays at two different facilities are compared. Both stays of an overlapping pair are flagged
(either may be the false one); each settlement (piece) of a flagged stay carries its own fund payments."""
why = """One person cannot lie in two hospitals at once: one of the stays was either invented or used the
person's insurance for someone else (冒名顶替). The contracts tell the insurer to refuse such payments and
recover them in the next month's settlement."""
example = """P1 is in hospital A from 2024-03-01 to 2024-03-10 and is admitted to hospital B on 2024-03-05
(discharged 2024-03-08): both stays are flagged. Had B admitted P1 on 2024-03-10, the day A discharged
P1, it would be a transfer and neither is flagged."""
*/
-- Windows over a person's stays, no range self-join:
--   1. islands: a person's stays at one facility, merged where they overlap (gaps and islands);
--   2. an island overlaps an island of another facility iff the running max of discharge dates of the
--      islands ordered before it (by admission, discharge) is later than its admission, or the running
--      min of admission dates of the islands ordered after it is earlier than its discharge. Islands of
--      the same facility never overlap each other, so a hit is always another facility.
WITH st AS (
    SELECT psn_no, fixmedins_code, mdtrt_id, begndate, enddate
    FROM stay
),
marked AS (
    SELECT st.*,
           CASE WHEN begndate < MAX(enddate) OVER (
                    PARTITION BY psn_no, fixmedins_code ORDER BY begndate, enddate, mdtrt_id
                    ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
                THEN 0 ELSE 1 END AS new_island
    FROM st
),
numbered AS (
    SELECT marked.*,
           SUM(new_island) OVER (
               PARTITION BY psn_no, fixmedins_code ORDER BY begndate, enddate, mdtrt_id
               ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS island
    FROM marked
),
islands AS (
    SELECT psn_no, fixmedins_code, island, MIN(begndate) AS begndate, MAX(enddate) AS enddate
    FROM numbered
    GROUP BY psn_no, fixmedins_code, island
),
checked AS (
    SELECT islands.*,
           MAX(concat(CAST(enddate AS VARCHAR), ' ', fixmedins_code)) OVER (
               PARTITION BY psn_no ORDER BY begndate, enddate, fixmedins_code
               ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before_end,
           MIN(concat(CAST(begndate AS VARCHAR), ' ', fixmedins_code)) OVER (
               PARTITION BY psn_no ORDER BY begndate, enddate, fixmedins_code
               ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING) AS after_begin
    FROM islands
),
hits AS (
    SELECT psn_no, fixmedins_code, island,
           CASE WHEN substr(before_end, 1, 10) > CAST(begndate AS VARCHAR) THEN before_end END AS hit_before,
           CASE WHEN substr(after_begin, 1, 10) < CAST(enddate AS VARCHAR) THEN after_begin END AS hit_after
    FROM checked
    WHERE substr(before_end, 1, 10) > CAST(begndate AS VARCHAR)
       OR substr(after_begin, 1, 10) < CAST(enddate AS VARCHAR)
)
SELECT s.setl_id,
       s.fund_pay AS amount_at_risk,
       concat('本次住院', CAST(n.begndate AS VARCHAR), '至', CAST(n.enddate AS VARCHAR), '（', s.fixmedins_code, '）',
              CASE WHEN h.hit_before IS NOT NULL
                   THEN concat('，入院时仍在', substr(h.hit_before, 12), '住院（至', substr(h.hit_before, 1, 10), '出院）')
                   ELSE '' END,
              CASE WHEN h.hit_after IS NOT NULL
                   THEN concat('，出院前已于', substr(h.hit_after, 1, 10), '在', substr(h.hit_after, 12), '入院')
                   ELSE '' END,
              '：同一人同期在两家机构住院') AS detail
FROM hits h
JOIN numbered n ON n.psn_no = h.psn_no AND n.fixmedins_code = h.fixmedins_code AND n.island = h.island
JOIN setl_valid s ON s.psn_no = n.psn_no AND s.fixmedins_code = n.fixmedins_code AND s.mdtrt_id = n.mdtrt_id
WHERE s.is_inpatient
