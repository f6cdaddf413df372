#!/usr/bin/env python3
"""The same checks as medaudit's rules, written by hand for DuckDB, as a skilled analyst would.

This is the competitor of `benches/e2e.sh`: it reads the input Parquet files directly (no
validation, no typed copy), runs the checks below and writes one row per flagged
(rule, settlement) with its amount at risk to `--out` (Parquet):

    DUP001 repeated settlement            IMP001 overlapping stays at two facilities
    DUP005 outpatient during a stay       SPL001 readmission within 15 days (Z51.0/Z51.1 out)
    DUP004 bed-days beyond the stay       OVC001 item above its daily limit (item_limit_frequency)
    RST001 item for the other sex         RST002 drug for the other sex
    OOA001 unfiled out-of-area stay       BEN001 / BEN002 benefit recalculation (POLICY.md)

Semantics follow `queries/*/<ID>_*.sql` (rule parameters are read from the rule headers, the
benefit parameters from `datasets/policy/*.toml`, knowledge-base sheets and the code table from
`datasets/`), but the SQL is DuckDB's own: self-joins on the person where DuckDB's range joins
make them cheap, window functions where a sequence is needed, one pass over the fee table.

Usage: duckdb_audit.py --input DIR --home REPO --out FILE [--threads N] [--memory-limit 4GB]
Prints one line per step with its time (stderr) and a JSON summary (stdout).
"""

import argparse
import glob
import json
import os
import re
import sys
import time
import tomllib
from fractions import Fraction

import duckdb

RULES = ["DUP001", "IMP001", "DUP005", "SPL001", "DUP004", "OVC001", "RST001", "RST002", "OOA001"]
BENEFIT_RULES = ["BEN001", "BEN002"]


def rule_header(home, rule_id):
    """The TOML header of a rule file: its parameters' defaults."""
    paths = glob.glob(os.path.join(home, "queries", "*", f"{rule_id}_*.sql"))
    if len(paths) != 1:
        sys.exit(f"rule {rule_id}: expected one file under queries/, found {paths}")
    text = open(paths[0], encoding="utf-8").read()
    m = re.match(r"\s*/\*(.*?)\*/", text, re.S)
    if not m:
        sys.exit(f"{paths[0]}: no header")
    return tomllib.loads(m.group(1))


def param(home, rule_id, name):
    return rule_header(home, rule_id)["params"][name]["default"]


def sql_str(s):
    return "'" + str(s).replace("'", "''") + "'"


def sql_list(xs):
    return "(" + ", ".join(sql_str(x) for x in xs) + ")" if xs else "(NULL)"


def cents(p, q):
    """Exact money from integers: p / q cents (q > 0), rounded half away from zero, as a decimal
    yuan. DuckDB's `/` on decimals returns DOUBLE, which would round 0.005 the wrong way."""
    return (
        f"(CAST(sign({p}) * ((2 * abs({p}) + ({q})) // (2 * ({q}))) AS DECIMAL(36, 0)) "
        f"* CAST(0.01 AS DECIMAL(3, 2)))"
    )


def starts_any(col, prefixes):
    """`col` starts with one of the prefixes (as the rule's left(col, n) IN list, n = 1..7)."""
    ps = [p for p in prefixes if 1 <= len(p) <= 7]
    if not ps:
        return "FALSE"
    return "(" + " OR ".join(f"starts_with({col}, {sql_str(p)})" for p in ps) + ")"


def table_glob(input_dir, table):
    """The Parquet files of a table: `<table>.parquet`, or the files of a folder `<table>/` (as
    medaudit's ingest finds them; the generator writes folders of parts at large scales)."""
    exact = os.path.join(input_dir, f"{table}.parquet")
    if os.path.isfile(exact):
        return exact
    parts = sorted(glob.glob(os.path.join(input_dir, table, "*.parquet")))
    return parts or None


class Timer:
    def __init__(self):
        self.steps = {}

    def run(self, con, name, sql):
        t = time.perf_counter()
        con.execute(sql)
        dt = time.perf_counter() - t
        self.steps[name] = self.steps.get(name, 0.0) + dt
        print(f"  duckdb {name:<10} {dt:8.2f} s", file=sys.stderr, flush=True)


def policies(home):
    """Policy versions per fund, with the year range each serves (POLICY.md: a version serves
    its years, the latest version also the years after it; years before the first are not
    checked)."""
    out = []
    for path in sorted(glob.glob(os.path.join(home, "datasets", "policy", "*.toml"))):
        with open(path, "rb") as f:
            p = tomllib.load(f)
        out.append(p)
    return out


def decimal_frac(s):
    return Fraction(str(s))


def benefit_sql(home):
    """SQL building `b_find` (rule_id, setl_id, amount) from `setl` and `med_class`."""
    pols = policies(home)
    rows = []
    for p in pols:
        fund = p["fund"]
        f = p["formula"]
        res = p.get("resident", {})
        emp = p.get("employee", {})
        o = res.get("ordinary", {})
        pr = res.get("preferential", {})
        share = decimal_frac(emp.get("share", "0"))

        def dec(x, default="NULL"):
            return f"CAST({sql_str(x)} AS DECIMAL(18,4))" if x is not None else default

        rows.append(
            "SELECT "
            + ", ".join(
                [
                    f"{sql_str(p['id'])} AS pol_id",
                    f"{sql_str(fund)} AS fund",
                    f"{sql_str(f)} AS formula",
                    f"{int(p['from_year'])} AS from_year",
                    f"{int(p['to_year']) if 'to_year' in p else 'NULL'} AS to_year",
                    f"[{', '.join(sql_str(x) for x in p['insutypes'])}] AS insutypes",
                    f"[{', '.join(sql_str(x) for x in p['covered_classes'])}] AS covered",
                    f"CAST({sql_str(p.get('tolerance', '0.01'))} AS DECIMAL(18,2)) AS tol",
                    f"[{', '.join(sql_str(x) for x in res.get('preferential_idet_types', []))}] AS pref_types",
                    f"{dec(o.get('deductible'))} AS o_d",
                    f"{dec(o.get('tier_bound'))} AS o_tb",
                    f"{dec(o.get('share_up_to_bound'))} AS o_r1",
                    f"{dec(o.get('share_above_bound'))} AS o_r2",
                    f"{dec(o.get('cap'))} AS o_cap",
                    f"{dec(pr.get('deductible'))} AS p_d",
                    f"{dec(pr.get('tier_bound'))} AS p_tb",
                    f"{dec(pr.get('share_up_to_bound'))} AS p_r1",
                    f"{dec(pr.get('share_above_bound'))} AS p_r2",
                    f"{dec(pr.get('cap'))} AS p_cap",
                    f"{dec(emp.get('pool_cap'))} AS pool_cap",
                    f"{dec(emp.get('cap'))} AS e_cap",
                    f"CAST({share.numerator} AS HUGEINT) AS share_num",
                    f"CAST({share.denominator} AS HUGEINT) AS share_den",
                ]
            )
        )
    pol = "\nUNION ALL ".join(rows)
    # round(F(x)) of the resident curve, with the curve's columns prefixed by c
    return f"""
CREATE OR REPLACE TEMP TABLE pol AS {pol};

-- every settlement, with its original where it is a reversal
CREATE OR REPLACE TEMP TABLE b_rows AS
SELECT setl_id, psn_no, setl_time, year(enddate) AS year,
       trim(COALESCE(refd_setl_flag, '')) = '1' AS rev,
       trim(COALESCE(init_setl_id, '')) AS init,
       trim(COALESCE(insutype, '')) AS insutype,
       trim(COALESCE(psn_idet_type, '')) AS idet,
       trim(COALESCE(med_type, '')) AS med_type,
       inscp_scp_amt, act_pay_dedc, hifp_pay, pool_prop_selfpay, hifmi_pay, hifob_pay
FROM setl;

CREATE OR REPLACE TEMP TABLE b_orig AS
WITH wanted AS (SELECT DISTINCT init FROM b_rows WHERE rev AND init <> ''),
o AS (SELECT r.setl_id, r.psn_no, r.year, r.rev, r.insutype, r.med_type, COUNT(*) OVER (PARTITION BY r.setl_id) AS n
      FROM b_rows r SEMI JOIN wanted w ON w.init = r.setl_id)
SELECT * FROM o;

-- (settlement, fund) entries with their role (recalc.rs make_entries)
CREATE OR REPLACE TEMP TABLE b_ent AS
WITH e0 AS (
    SELECT r.*,
           (o.setl_id IS NOT NULL AND o.n = 1 AND o.setl_id <> r.setl_id AND o.psn_no = r.psn_no AND NOT o.rev)
               AS has_orig,
           o.n AS orig_n
    FROM b_rows r
    LEFT JOIN b_orig o ON r.rev AND r.init <> '' AND o.setl_id = r.init
),
e1 AS (
    SELECT e0.*,
           CASE WHEN has_orig THEN o.insutype ELSE e0.insutype END AS b_insutype,
           CASE WHEN has_orig THEN o.med_type ELSE e0.med_type END AS b_med_type,
           CASE WHEN has_orig THEN o.year ELSE e0.year END AS b_year
    FROM e0 LEFT JOIN b_orig o ON e0.has_orig AND o.setl_id = e0.init
),
funds AS (SELECT DISTINCT fund, unnest(insutypes) AS insutype FROM pol),
e2 AS (
    SELECT e1.*, f.fund,
           own.fund IS NOT NULL AS own,
           COALESCE(CASE f.fund WHEN 'hifmi' THEN e1.hifmi_pay ELSE e1.hifob_pay END, 0) <> 0 AS paid,
           c.class AS b_class
    FROM e1
    CROSS JOIN (SELECT DISTINCT fund FROM pol) f
    LEFT JOIN funds own ON own.insutype = e1.b_insutype AND own.fund = f.fund
    LEFT JOIN med_class c ON c.code = e1.b_med_type
),
e3 AS (SELECT * FROM e2 WHERE own OR paid),
-- the policy serving (fund, year): in force, else the latest earlier version
py_pol AS (
    SELECT y.fund, y.b_year, p.pol_id
    FROM (SELECT DISTINCT fund, b_year FROM e3) y
    JOIN pol p ON p.fund = y.fund AND p.from_year <= y.b_year
    QUALIFY row_number() OVER (PARTITION BY y.fund, y.b_year
                               ORDER BY (p.to_year IS NULL OR y.b_year <= p.to_year) DESC, p.from_year DESC) = 1
),
e4 AS (
    SELECT e3.*, pp.pol_id,
           own AND list_contains(p.covered, b_class) AS covered
    FROM e3 JOIN py_pol pp ON pp.fund = e3.fund AND pp.b_year = e3.b_year
    JOIN pol p ON p.pol_id = pp.pol_id
),
e5 AS (
    SELECT e4.*,
           CASE WHEN own AND b_class IS NULL THEN 'unknown'
                WHEN rev THEN CASE WHEN has_orig AND covered THEN 'reversal'
                                   WHEN has_orig THEN 'notcovered'
                                   WHEN covered OR paid THEN 'orphan' END
                WHEN covered THEN 'covered'
                ELSE 'notcovered' END AS role
    FROM e4
)
SELECT psn_no, fund, b_year AS year, pol_id, setl_id, setl_time, rev, init, role, idet,
       inscp_scp_amt, act_pay_dedc, hifp_pay, pool_prop_selfpay,
       CASE fund WHEN 'hifmi' THEN hifmi_pay ELSE hifob_pay END AS recorded,
       row_number() OVER (PARTITION BY psn_no, fund, b_year ORDER BY setl_time, setl_id) AS k
FROM e5
WHERE role IS NOT NULL AND NOT (role = 'notcovered' AND NOT paid);

-- reversal targets: position of the original in the person-year (it must be a covered row)
CREATE OR REPLACE TEMP TABLE b_rev AS
SELECT r.psn_no, r.fund, r.year, r.k, o.k AS j,
       o.k IS NULL OR o.k >= r.k OR COUNT(*) OVER (PARTITION BY r.psn_no, r.fund, r.year, o.k) > 1 AS bad
FROM b_ent r
LEFT JOIN b_ent o ON o.psn_no = r.psn_no AND o.fund = r.fund AND o.year = r.year AND o.setl_id = r.init
                 AND o.role = 'covered'
WHERE r.role = 'reversal';

-- person-years: incomplete (no finding) or with reversals (sequential) or simple (windows)
CREATE OR REPLACE TEMP TABLE b_py AS
SELECT e.psn_no, e.fund, e.year,
       bool_or(e.role IN ('orphan', 'unknown')) OR COALESCE(bool_or(r.bad), FALSE)
           OR bool_or(d.psn_no IS NOT NULL) AS incomplete,
       bool_or(e.role = 'reversal') AS has_rev
FROM b_ent e
LEFT JOIN b_rev r ON r.psn_no = e.psn_no AND r.fund = e.fund AND r.year = e.year AND r.k = e.k
LEFT JOIN (SELECT DISTINCT r.psn_no, r.year FROM b_rows r JOIN b_orig o ON o.setl_id = r.setl_id AND o.n > 1) d
       ON d.psn_no = e.psn_no AND d.year = e.year
GROUP BY ALL;

-- per-row inputs of the formulas
CREATE OR REPLACE TEMP TABLE b_in AS
SELECT e.psn_no, e.fund, e.year, e.k, e.setl_id, e.rev, e.role, e.recorded, p.formula, p.tol,
       py.incomplete, py.has_rev, r.j,
       -- resident: the row's curve and base
       list_contains(p.pref_types, e.idet) AS pref,
       CASE WHEN list_contains(p.pref_types, e.idet) THEN p.p_d ELSE p.o_d END AS c_d,
       CASE WHEN list_contains(p.pref_types, e.idet) THEN p.p_tb ELSE p.o_tb END AS c_tb,
       CASE WHEN list_contains(p.pref_types, e.idet) THEN p.p_r1 ELSE p.o_r1 END AS c_r1,
       CASE WHEN list_contains(p.pref_types, e.idet) THEN p.p_r2 ELSE p.o_r2 END AS c_r2,
       CASE WHEN list_contains(p.pref_types, e.idet) THEN p.p_cap ELSE p.o_cap END AS c_cap,
       CAST(CASE WHEN e.role <> 'covered' THEN 0
                 WHEN p.formula = 'resident' THEN greatest(e.inscp_scp_amt - e.act_pay_dedc - e.hifp_pay, 0)
                 ELSE e.hifp_pay END AS DECIMAL(38, 2)) AS contrib,
       -- employee: round(share × max(0, (inscp − dedc) − hifp / r)) in exact integer cents
       p.pool_cap, p.e_cap,
       e.pool_prop_selfpay < 0 OR e.pool_prop_selfpay > 1 AS bad_ratio,
       CAST(CASE
            WHEN p.formula <> 'employee' OR e.role <> 'covered' THEN 0
            WHEN e.pool_prop_selfpay < 0 OR e.pool_prop_selfpay > 1 THEN 0
            WHEN e.pool_prop_selfpay = 0 THEN
                 (2 * p.share_num * greatest(CAST((e.inscp_scp_amt - e.act_pay_dedc) * 100 AS HUGEINT), 0)
                  + p.share_den) // (2 * p.share_den)
            WHEN CAST((e.inscp_scp_amt - e.act_pay_dedc) * 100 AS HUGEINT) * CAST(e.pool_prop_selfpay * 10000 AS HUGEINT)
                 - CAST(e.hifp_pay * 100 AS HUGEINT) * 10000 <= 0 THEN 0
            ELSE (2 * p.share_num * (CAST((e.inscp_scp_amt - e.act_pay_dedc) * 100 AS HUGEINT)
                                     * CAST(e.pool_prop_selfpay * 10000 AS HUGEINT)
                                     - CAST(e.hifp_pay * 100 AS HUGEINT) * 10000)
                  + p.share_den * CAST(e.pool_prop_selfpay * 10000 AS HUGEINT))
                 // (2 * p.share_den * CAST(e.pool_prop_selfpay * 10000 AS HUGEINT))
            END AS DECIMAL(36, 0)) * CAST(0.01 AS DECIMAL(3, 2)) AS e_paid
FROM b_ent e
JOIN b_py py USING (psn_no, fund, year)
JOIN pol p USING (pol_id)
LEFT JOIN b_rev r USING (psn_no, fund, year, k)
WHERE NOT py.incomplete;

-- simple person-years (no reversal): closed forms over running sums
--   resident: E(k) = max(0, max_{{j<=k}} round(F(B(j)))), expected = E(k) − E(k−1)
--   employee: E(k) = min(cap, Σ paid_j over rows with H(j) >= pool_cap), expected = E(k) − E(k−1)
CREATE OR REPLACE TEMP TABLE b_simple AS
WITH s1 AS (
    SELECT b.*, SUM(contrib) OVER w AS acc
    FROM b_in b WHERE NOT has_rev
    WINDOW w AS (PARTITION BY psn_no, fund, year ORDER BY k ROWS UNBOUNDED PRECEDING)
),
s2 AS (
    SELECT s1.*,
           CASE WHEN role <> 'covered' THEN NULL
                WHEN formula = 'resident' THEN
                     round(CASE WHEN acc <= c_d THEN 0
                                WHEN c_cap IS NULL
                                     THEN c_r1 * greatest(least(acc, c_tb) - c_d, 0) + c_r2 * greatest(acc - c_tb, 0)
                                ELSE least(c_r1 * greatest(least(acc, c_tb) - c_d, 0) + c_r2 * greatest(acc - c_tb, 0),
                                           c_cap) END, 2)
                WHEN acc < pool_cap THEN 0
                ELSE e_paid END AS v,
           formula = 'employee' AND role = 'covered' AND acc >= pool_cap AND bad_ratio AS broken
    FROM s1
),
s3 AS (
    SELECT s2.*,
           CASE WHEN formula = 'resident' THEN greatest(COALESCE(MAX(v) OVER w, 0), 0)
                ELSE least(COALESCE(SUM(v) OVER w, 0), e_cap) END AS e_now,
           CASE WHEN formula = 'resident' THEN greatest(COALESCE(MAX(v) OVER wp, 0), 0)
                ELSE least(COALESCE(SUM(v) OVER wp, 0), e_cap) END AS e_prev,
           bool_or(broken) OVER (PARTITION BY psn_no, fund, year) AS py_broken
    FROM s2
    WINDOW w AS (PARTITION BY psn_no, fund, year ORDER BY k ROWS UNBOUNDED PRECEDING),
           wp AS (PARTITION BY psn_no, fund, year ORDER BY k ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
)
SELECT psn_no, fund, year, k, setl_id, rev, recorded, tol, formula,
       CASE WHEN role = 'covered' THEN e_now - e_prev ELSE 0 END AS expected, py_broken
FROM s3;

-- person-years with reversals: the sequence itself (a reversal takes back its original's base
-- and expected payment, so no closed form), as a recursive query over the few such person-years
CREATE OR REPLACE TEMP TABLE b_seq AS
WITH RECURSIVE rec(psn_no, fund, year, k, acc, e, exps, contribs, expected, broken) AS (
    SELECT DISTINCT psn_no, fund, year, CAST(0 AS BIGINT), CAST(0 AS DECIMAL(38, 2)), CAST(0 AS DECIMAL(38, 2)),
           CAST([] AS DECIMAL(38, 2)[]), CAST([] AS DECIMAL(38, 2)[]), CAST(0 AS DECIMAL(38, 2)), FALSE
    FROM b_in WHERE has_rev
    UNION ALL
    SELECT psn_no, fund, year, k, acc + contrib, e + expected,
           list_append(exps, expected), list_append(contribs, contrib), expected, broken
    FROM (
        SELECT r.psn_no, r.fund, r.year, c.k, r.acc, r.e, r.exps, r.contribs,
               CAST(CASE c.role WHEN 'covered' THEN c.contrib WHEN 'reversal' THEN -r.contribs[c.j] ELSE 0 END
                    AS DECIMAL(38, 2)) AS contrib,
               CAST(CASE c.role
                    WHEN 'reversal' THEN -r.exps[c.j]
                    WHEN 'covered' THEN
                         CASE WHEN c.formula = 'resident' THEN
                                   greatest(round(CASE WHEN r.acc + c.contrib <= c.c_d THEN 0
                                                  WHEN c.c_cap IS NULL
                                                  THEN c.c_r1 * greatest(least(r.acc + c.contrib, c.c_tb) - c.c_d, 0)
                                                       + c.c_r2 * greatest(r.acc + c.contrib - c.c_tb, 0)
                                                  ELSE least(c.c_r1 * greatest(least(r.acc + c.contrib, c.c_tb) - c.c_d, 0)
                                                             + c.c_r2 * greatest(r.acc + c.contrib - c.c_tb, 0),
                                                             c.c_cap) END, 2) - r.e, 0)
                              WHEN r.acc + c.contrib < c.pool_cap THEN 0
                              ELSE greatest(least(c.e_paid, c.e_cap - r.e), 0) END
                    ELSE 0 END AS DECIMAL(38, 2)) AS expected,
               c.formula = 'employee' AND c.role = 'covered' AND r.acc + c.contrib >= c.pool_cap AND c.bad_ratio
                   AS broken
        FROM rec r
        JOIN b_in c ON c.psn_no = r.psn_no AND c.fund = r.fund AND c.year = r.year AND c.k = r.k + 1
    )
)
SELECT b.psn_no, b.fund, b.year, b.k, b.setl_id, b.rev, b.recorded, b.tol, b.formula, r.expected,
       bool_or(r.broken) OVER (PARTITION BY b.psn_no, b.fund, b.year) AS py_broken
FROM rec r JOIN b_in b USING (psn_no, fund, year, k)
WHERE r.k > 0;

CREATE OR REPLACE TEMP TABLE b_find AS
SELECT CASE formula WHEN 'resident' THEN 'BEN001' ELSE 'BEN002' END AS rule_id, setl_id,
       CAST(abs(recorded - expected) AS DECIMAL(18, 2)) AS amount
FROM (SELECT * FROM b_simple UNION ALL SELECT * FROM b_seq)
WHERE NOT py_broken AND NOT rev AND abs(recorded - expected) > tol;
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", required=True, help="input folder (setl, fee Parquet files)")
    ap.add_argument("--home", required=True, help="medaudit repository (queries/, datasets/)")
    ap.add_argument("--out", required=True, help="findings Parquet file to write")
    ap.add_argument("--threads", type=int, default=0, help="DuckDB threads (default: all cores)")
    ap.add_argument("--memory-limit", default="", help="DuckDB memory_limit (default: DuckDB's, 80 %% of RAM)")
    ap.add_argument("--temp-dir", default="", help="DuckDB spill folder")
    args = ap.parse_args()

    t0 = time.perf_counter()
    home = args.home
    kb = os.path.join(home, "datasets", "kb")
    codes = os.path.join(home, "datasets", "codes", "codes.csv")
    con = duckdb.connect()
    if args.threads:
        con.execute(f"SET threads = {args.threads}")
    if args.memory_limit:
        con.execute(f"SET memory_limit = {sql_str(args.memory_limit)}")
    if args.temp_dir:
        con.execute(f"SET temp_directory = {sql_str(args.temp_dir)}")
    con.execute("SET preserve_insertion_order = false")

    for t in ("setl", "fee"):
        src = table_glob(args.input, t)
        if src is None:
            sys.exit(f"no {t}.parquet in {args.input}")
        con.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet({json.dumps(src)})")

    def kb_sheet(name):
        return f"read_csv({sql_str(os.path.join(kb, name + '.csv'))}, all_varchar = true, header = true)"

    # rule parameters, from the rule files' headers
    outpatient_classes = param(home, "DUP005", "outpatient_classes")
    days = int(param(home, "SPL001", "days"))
    scheduled = param(home, "SPL001", "scheduled_prefixes")
    bed_types = param(home, "DUP004", "bed_types")
    bed_prefix = param(home, "DUP004", "bed_code_prefix")
    filed = param(home, "OOA001", "filed_med_types")
    bed_pred = f"(med_chrgitm_type IN {sql_list(bed_types)}" + (
        f" OR starts_with(med_list_codg, {sql_str(bed_prefix)}))" if bed_prefix else ")"
    )

    tm = Timer()
    tm.run(
        con,
        "prepare",
        f"""
CREATE TEMP TABLE med_class AS
SELECT code, MIN(class) AS class FROM read_csv({sql_str(codes)}, all_varchar = true, header = true)
WHERE field = 'med_type' GROUP BY code;

-- settlements that stand: no reversal row, none cancelled by a reversal
CREATE TEMP TABLE sv AS
SELECT s.setl_id, s.mdtrt_id, s.psn_no, s.gend, s.insu_admdvs, s.fix_blng_admdvs, s.fixmedins_code,
       s.med_type, s.begndate, s.enddate, s.setl_time, s.dise_codg, s.refl_flag, s.setl_mode,
       s.medfee_sumamt, s.hifp_pay + s.hifmi_pay + s.hifob_pay AS fund_pay, c.class AS med_class,
       COALESCE(c.class = 'inpatient' OR s.med_type = '52', FALSE) AS is_inpatient
FROM setl s LEFT JOIN med_class c ON c.code = s.med_type
WHERE COALESCE(s.refd_setl_flag, '0') <> '1'
  AND s.setl_id NOT IN (SELECT init_setl_id FROM setl WHERE refd_setl_flag = '1' AND init_setl_id IS NOT NULL);

-- inpatient stays: the pieces of one mdtrt_id are one stay
CREATE TEMP TABLE stay AS
SELECT psn_no, fixmedins_code, mdtrt_id, MIN(begndate) AS b, MAX(enddate) AS e, COUNT(*) AS pieces,
       first(dise_codg ORDER BY enddate DESC, setl_time DESC, setl_id DESC) AS dise_codg
FROM sv WHERE is_inpatient GROUP BY ALL;

-- knowledge base
CREATE TEMP TABLE kb_freq AS
SELECT med_list_codg, MIN(CAST(max_cnt AS INTEGER)) AS max_cnt
FROM {kb_sheet('item_limit_frequency')}
WHERE per_unit IN ('day', 'hour') AND max_cnt IS NOT NULL GROUP BY med_list_codg;
CREATE TEMP TABLE kb_gend AS
SELECT DISTINCT 'RST001' AS rule_id, med_list_codg, med_list_name, limit_gender, gend
FROM {kb_sheet('item_limit_gender')} WHERE gend IN ('1', '2')
UNION ALL
SELECT DISTINCT 'RST002', med_list_codg, med_list_name, limit_gender, gend
FROM {kb_sheet('drug_limit_gender')} WHERE gend IN ('1', '2');
CREATE TEMP TABLE kb_codes AS
SELECT med_list_codg FROM kb_freq UNION SELECT med_list_codg FROM kb_gend;

-- one pass over the fee lines: the bed lines and the lines of knowledge-base items
CREATE TEMP TABLE fee_sel AS
SELECT feedetl_sn, setl_id, fee_ocur_time, med_list_codg, cnt, chrgitm_lv, init_feedetl_sn,
       COALESCE(inscp_scp_amt, det_item_fee_sumamt - COALESCE(fulamt_ownpay_amt, 0)) AS fund,
       {bed_pred} AS is_bed,
       med_list_codg IN (SELECT med_list_codg FROM kb_codes) AS is_kb
FROM fee
WHERE {bed_pred} OR med_list_codg IN (SELECT med_list_codg FROM kb_codes);

-- knowledge-base lines net of their refunds (a refund line names the line it cancels)
CREATE TEMP TABLE kb_line AS
WITH refund AS (
    SELECT init_feedetl_sn, SUM(cnt) AS r_cnt, SUM(fund) AS r_fund
    FROM fee_sel WHERE is_kb AND init_feedetl_sn <> '' GROUP BY init_feedetl_sn
)
SELECT f.feedetl_sn, f.setl_id, f.fee_ocur_time, f.med_list_codg,
       f.cnt + COALESCE(r.r_cnt, 0) AS cnt, f.fund + COALESCE(r.r_fund, 0) AS fund
FROM fee_sel f LEFT JOIN refund r ON r.init_feedetl_sn = f.feedetl_sn
WHERE f.is_kb AND COALESCE(f.init_feedetl_sn, '') = '' AND f.cnt > 0 AND COALESCE(f.chrgitm_lv, '') <> '03';

CREATE TEMP TABLE found (rule_id VARCHAR, setl_id VARCHAR, amount DECIMAL(18, 2));
""",
    )

    tm.run(
        con,
        "DUP001",
        """
INSERT INTO found
SELECT 'DUP001', setl_id, CASE WHEN rn = 1 THEN 0 ELSE fund_pay END
FROM (SELECT setl_id, fund_pay, COUNT(*) OVER w AS n,
             row_number() OVER (w ORDER BY setl_time, setl_id) AS rn
      FROM sv
      WINDOW w AS (PARTITION BY psn_no, fixmedins_code, begndate, enddate, med_type, dise_codg, setl_mode,
                                medfee_sumamt))
WHERE n > 1;
""",
    )

    tm.run(
        con,
        "IMP001",
        """
INSERT INTO found
WITH m AS (
    SELECT psn_no, fixmedins_code, mdtrt_id, b, e,
           CASE WHEN b < MAX(e) OVER (PARTITION BY psn_no, fixmedins_code ORDER BY b, e, mdtrt_id
                                      ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
                THEN 0 ELSE 1 END AS new_island
    FROM stay
),
n AS (
    SELECT m.*, SUM(new_island) OVER (PARTITION BY psn_no, fixmedins_code ORDER BY b, e, mdtrt_id
                                      ROWS UNBOUNDED PRECEDING) AS island
    FROM m
),
isl AS (SELECT psn_no, fixmedins_code, island, MIN(b) AS ib, MAX(e) AS ie FROM n GROUP BY ALL),
hit AS (
    SELECT DISTINCT a.psn_no, a.fixmedins_code, a.island
    FROM isl a JOIN isl o ON o.psn_no = a.psn_no AND o.fixmedins_code <> a.fixmedins_code
                         AND a.ib < o.ie AND o.ib < a.ie
)
SELECT 'IMP001', s.setl_id, s.fund_pay
FROM hit JOIN n USING (psn_no, fixmedins_code, island)
JOIN sv s ON s.psn_no = n.psn_no AND s.fixmedins_code = n.fixmedins_code AND s.mdtrt_id = n.mdtrt_id
WHERE s.is_inpatient;
""",
    )

    tm.run(
        con,
        "DUP005",
        f"""
INSERT INTO found
SELECT 'DUP005', o.setl_id, any_value(o.fund_pay)
FROM sv o JOIN stay st ON st.psn_no = o.psn_no AND st.fixmedins_code = o.fixmedins_code
                      AND st.b < o.begndate AND o.begndate < st.e
WHERE NOT o.is_inpatient AND o.med_class IN {sql_list(outpatient_classes)}
GROUP BY o.setl_id;
""",
    )

    tm.run(
        con,
        "SPL001",
        f"""
INSERT INTO found
WITH st AS (SELECT psn_no, fixmedins_code, mdtrt_id, b, e, upper(trim(dise_codg)) AS dx FROM stay),
seq AS (
    SELECT st.*, lag(e) OVER w AS pe, lag(dx) OVER w AS pdx
    FROM st WINDOW w AS (PARTITION BY psn_no, fixmedins_code ORDER BY b, e, mdtrt_id)
),
fl AS (
    SELECT * FROM seq
    WHERE pe IS NOT NULL AND b - pe BETWEEN 0 AND {days} AND left(dx, 3) = left(pdx, 3)
      AND NOT COALESCE({starts_any('dx', scheduled)}, FALSE)
      AND NOT COALESCE({starts_any('pdx', scheduled)}, FALSE)
)
SELECT 'SPL001', s.setl_id, s.fund_pay
FROM fl JOIN sv s ON s.psn_no = fl.psn_no AND s.fixmedins_code = fl.fixmedins_code AND s.mdtrt_id = fl.mdtrt_id
WHERE s.is_inpatient;
""",
    )

    tm.run(
        con,
        "DUP004",
        f"""
INSERT INTO found
WITH bed AS (
    SELECT setl_id, SUM(cnt) AS cnt,
           SUM(CASE WHEN chrgitm_lv = '03' THEN 0 ELSE fund END) AS fund
    FROM fee_sel WHERE is_bed GROUP BY setl_id
),
piece AS (
    SELECT s.setl_id, s.psn_no, s.fixmedins_code, s.mdtrt_id, b.cnt, b.fund,
           row_number() OVER (PARTITION BY s.psn_no, s.fixmedins_code, s.mdtrt_id
                              ORDER BY s.enddate DESC, s.setl_time DESC, s.setl_id DESC) AS from_last
    FROM sv s LEFT JOIN bed b ON b.setl_id = s.setl_id
    WHERE s.is_inpatient
),
per_stay AS (
    SELECT psn_no, fixmedins_code, mdtrt_id, SUM(COALESCE(cnt, 0)) AS bed_cnt, SUM(COALESCE(fund, 0)) AS bed_fund
    FROM piece GROUP BY ALL
),
ex AS (
    SELECT t.*, greatest(st.e - st.b, 1) AS days
    FROM per_stay t JOIN stay st USING (psn_no, fixmedins_code, mdtrt_id)
    WHERE t.bed_cnt > greatest(st.e - st.b, 1)
)
SELECT 'DUP004', p.setl_id,
       CASE WHEN p.from_last = 1
            THEN {cents('CAST((ex.bed_cnt - ex.days) * 10000 AS HUGEINT) * CAST(ex.bed_fund * 100 AS HUGEINT)',
                        'CAST(ex.bed_cnt * 10000 AS HUGEINT)')}
            ELSE 0 END
FROM ex JOIN piece p USING (psn_no, fixmedins_code, mdtrt_id);
""",
    )

    tm.run(
        con,
        "OVC001",
        f"""
INSERT INTO found
WITH line AS (
    SELECT l.*, k.max_cnt, l.fee_ocur_time // 86400 AS fee_day
    FROM kb_line l JOIN kb_freq k USING (med_list_codg)
    WHERE l.cnt > 0 AND l.fund > 0
),
over_day AS (
    SELECT setl_id, med_list_codg, fee_day, SUM(cnt) AS day_cnt
    FROM line GROUP BY ALL HAVING SUM(cnt) > MIN(max_cnt)
),
running AS (
    SELECT l.*, SUM(l.cnt) OVER (PARTITION BY l.setl_id, l.med_list_codg, l.fee_day
                                 ORDER BY l.fee_ocur_time, l.feedetl_sn ROWS UNBOUNDED PRECEDING) AS upto
    FROM line l SEMI JOIN over_day d
         ON d.setl_id = l.setl_id AND d.med_list_codg = l.med_list_codg AND d.fee_day = l.fee_day
)
SELECT 'OVC001', r.setl_id,
       SUM(CASE WHEN r.upto - r.cnt >= r.max_cnt THEN r.fund
                ELSE {cents('CAST(r.fund * 100 AS HUGEINT) * CAST((r.upto - r.max_cnt) * 10000 AS HUGEINT)',
                            'CAST(r.cnt * 10000 AS HUGEINT)')} END)
FROM running r SEMI JOIN sv ON sv.setl_id = r.setl_id
WHERE r.upto > r.max_cnt
GROUP BY r.setl_id;
""",
    )

    tm.run(
        con,
        "RST",
        """
INSERT INTO found
SELECT k.rule_id, l.setl_id, SUM(l.fund)
FROM kb_gend k JOIN kb_line l USING (med_list_codg)
JOIN sv s ON s.setl_id = l.setl_id
WHERE l.cnt > 0 AND l.fund > 0 AND s.gend IN ('1', '2') AND s.gend <> k.gend
GROUP BY ALL;
""",
    )

    tm.run(
        con,
        "OOA001",
        f"""
INSERT INTO found
SELECT 'OOA001', setl_id, fund_pay
FROM sv
WHERE is_inpatient AND substr(insu_admdvs, 1, 4) <> substr(fix_blng_admdvs, 1, 4)
  AND COALESCE(refl_flag, '0') = '0' AND NOT COALESCE(med_type IN {sql_list(filed)}, FALSE);
""",
    )

    tm.run(con, "benefit", benefit_sql(home) + "\nINSERT INTO found SELECT * FROM b_find;")
    # money stays decimal: a DOUBLE anywhere in the arithmetic rounds half-cents the wrong way
    for table, col in (("b_in", "e_paid"), ("b_in", "contrib"), ("b_simple", "expected"), ("b_seq", "expected")):
        ty = con.execute(f"SELECT data_type FROM duckdb_columns() WHERE table_name = '{table}' AND column_name = '{col}'")
        ty = ty.fetchone()
        if not ty or not ty[0].startswith("DECIMAL"):
            sys.exit(f"{table}.{col} is {ty}, not DECIMAL")

    tm.run(
        con,
        "write",
        f"COPY (SELECT rule_id, setl_id, SUM(amount) AS amount FROM found GROUP BY ALL ORDER BY rule_id, setl_id) "
        f"TO {sql_str(args.out)} (FORMAT parquet)",
    )
    counts = dict(con.execute("SELECT rule_id, COUNT(DISTINCT setl_id) FROM found GROUP BY 1 ORDER BY 1").fetchall())
    print(
        json.dumps(
            {
                "rules": RULES + BENEFIT_RULES,
                "counts": counts,
                "steps": {k: round(v, 3) for k, v in tm.steps.items()},
                "seconds": round(time.perf_counter() - t0, 3),
                "duckdb": duckdb.__version__,
            }
        )
    )


if __name__ == "__main__":
    main()
