#!/usr/bin/env python3
"""End-to-end benchmark driver (called by `benches/e2e.sh`; see benches/README.md).

Times, on the same input folder, each as its own process (wall clock, CPU user + system and
peak resident memory from the kernel's rusage of that process):

    scan (pyarrow), scan (duckdb)   read every column of every table once: the floor
    duckdb                          the hand-written DuckDB audit (duckdb_audit.py)
    medaudit (same rules)           `medaudit run --only <the DuckDB script's rules>`
    medaudit (all checks)           `medaudit run`

then compares the findings of medaudit (same rules) and DuckDB rule by rule (the set of
flagged setl_id, and the amount at risk of each), and prints one table. The input files are
read once before the first timing, so that every contender finds them in the page cache.
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, HERE)
from duckdb_audit import BENEFIT_RULES, RULES  # noqa: E402

SAME_RULES = RULES + BENEFIT_RULES


def measure(name, cmd, log_path, env=None):
    """Runs cmd; returns wall, user+sys CPU and peak RSS of that process (its own rusage)."""
    print(f"[{time.strftime('%H:%M:%S')}] {name}: {' '.join(cmd)}", file=sys.stderr, flush=True)
    with open(log_path, "w") as log:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        tail = open(log_path, errors="replace").read()[-3000:]
        sys.exit(f"{name} failed (exit {p.returncode}); log {log_path}:\n{tail}")
    r = {
        "name": name,
        "wall": wall,
        "user": ru.ru_utime,
        "sys": ru.ru_stime,
        "cpu": ru.ru_utime + ru.ru_stime,
        "rss_mb": ru.ru_maxrss / 1024.0,
        "log": log_path,
    }
    print(
        f"    wall {wall:8.2f} s   cpu {r['cpu']:8.2f} s   peak {r['rss_mb']:8.0f} MB",
        file=sys.stderr,
        flush=True,
    )
    return r


def duckdb_steps(log_path):
    """The per-step seconds the DuckDB script printed (its JSON line)."""
    for line in reversed(open(log_path, errors="replace").read().splitlines()):
        if line.startswith("{"):
            try:
                return json.loads(line).get("steps", {})
            except ValueError:
                return {}
    return {}


def warm(input_dir):
    """Reads every file under the input folder once (page cache)."""
    n = 0
    for root, _, names in os.walk(input_dir):
        for f in sorted(names):
            with open(os.path.join(root, f), "rb") as fh:
                while True:
                    b = fh.read(1 << 24)
                    if not b:
                        break
                    n += len(b)
    return n


def machine():
    cpu = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = 0
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "mem_gib": round(mem, 1),
        "kernel": platform.release(),
        "load": os.getloadavg(),
    }


def findings_by_rule(con, path, rules, medaudit):
    """{rule: {setl_id: amount}} of one findings file."""
    import collections

    out = collections.defaultdict(dict)
    rl = ", ".join(f"'{r}'" for r in rules)
    if medaudit:
        q = (
            f"SELECT rule_id, setl_id, SUM(amount_at_risk) FROM read_parquet('{path}') "
            f"WHERE rule_id IN ({rl}) GROUP BY ALL"
        )
    else:
        q = f"SELECT rule_id, setl_id, SUM(amount) FROM read_parquet('{path}') GROUP BY ALL"
    for rule, setl, amt in con.execute(q).fetchall():
        out[rule][setl] = amt
    return out


def compare(m_path, d_path, full_path):
    import duckdb

    con = duckdb.connect()
    m = findings_by_rule(con, m_path, SAME_RULES, True)
    d = findings_by_rule(con, d_path, SAME_RULES, False)
    f = findings_by_rule(con, full_path, SAME_RULES, True) if full_path else None
    rows = []
    all_ok = True
    for rule in SAME_RULES:
        ms, ds = set(m.get(rule, {})), set(d.get(rule, {}))
        both = ms & ds
        amt_diff = sorted(s for s in both if abs((m[rule][s] or 0) - (d[rule][s] or 0)) > 0.01)
        same_in_full = None if f is None else set(f.get(rule, {})) == ms
        ok = ms == ds
        all_ok &= ok
        rows.append(
            {
                "rule": rule,
                "medaudit": len(ms),
                "duckdb": len(ds),
                "both": len(both),
                "only_medaudit": sorted(ms - ds),
                "only_duckdb": sorted(ds - ms),
                "amount_differs": [(s, str(m[rule][s]), str(d[rule][s])) for s in amt_diff],
                "same_in_full_run": same_in_full,
                "agree": ok,
            }
        )
    return rows, all_ok


def fmt_s(x):
    return f"{x:,.1f}" if x < 1000 else f"{x:,.0f}"


def table(results, base_duck, base_scan):
    lines = [
        "| run | wall s | CPU s (user+sys) | peak RSS MB | wall / DuckDB | wall / scan | CPU / DuckDB | CPU / scan |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['name']} | {fmt_s(r['wall'])} | {fmt_s(r['cpu'])} | {r['rss_mb']:,.0f} | "
            f"{r['wall'] / base_duck['wall']:.2f} | {r['wall'] / base_scan['wall']:.2f} | "
            f"{r['cpu'] / base_duck['cpu']:.2f} | {r['cpu'] / max(base_scan['cpu'], 1e-9):.2f} |"
        )
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", required=True, help="input folder (Parquet)")
    ap.add_argument("--bin", required=True, help="medaudit binary")
    ap.add_argument("--home", required=True, help="repository root (queries/, datasets/)")
    ap.add_argument("--work", required=True, help="folder for outputs and logs")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each; the fastest (wall) is reported")
    ap.add_argument("--duckdb-memory-limit", default="", help="DuckDB memory_limit (default DuckDB's)")
    ap.add_argument("--skip-full", action="store_true", help="do not time the full medaudit audit")
    ap.add_argument("--keep", action="store_true", help="keep medaudit's output folders (data/ copies)")
    args = ap.parse_args()

    work = os.path.abspath(args.work)
    os.makedirs(work, exist_ok=True)
    py = sys.executable
    env = dict(os.environ, MEDAUDIT_HOME=args.home)
    only = ",".join(SAME_RULES)
    d_out = os.path.join(work, "duckdb_findings.parquet")
    m_same = os.path.join(work, "out_same")
    m_full = os.path.join(work, "out_full")

    print(f"warming the page cache: {warm(args.input) / 1e6:,.0f} MB read", file=sys.stderr)
    contenders = [
        ("scan (pyarrow)", [py, os.path.join(HERE, "scan.py"), "--engine", "pyarrow", "--input", args.input]),
        ("scan (duckdb)", [py, os.path.join(HERE, "scan.py"), "--engine", "duckdb", "--input", args.input]),
        (
            "duckdb (same rules)",
            [py, os.path.join(HERE, "duckdb_audit.py"), "--input", args.input, "--home", args.home, "--out", d_out]
            + (["--memory-limit", args.duckdb_memory_limit] if args.duckdb_memory_limit else [])
            + ["--temp-dir", os.path.join(work, "duckdb_tmp")],
        ),
        ("medaudit (same rules)", [args.bin, "run", "--input", args.input, "--out", m_same, "--only", only]),
    ]
    if not args.skip_full:
        contenders.append(("medaudit (all checks)", [args.bin, "run", "--input", args.input, "--out", m_full]))

    best = {}
    for rep in range(args.repeat):
        for name, cmd in contenders:
            log = os.path.join(work, name.split()[0] + ("_" + name.split("(")[1].rstrip(")").replace(" ", "_")) + ".log")
            r = measure(f"{name} #{rep + 1}", cmd, log, env=env)
            r["name"] = name
            if name not in best or r["wall"] < best[name]["wall"]:
                best[name] = r
            if name.startswith("medaudit"):
                out = m_same if "same" in name else m_full
                try:
                    man = json.load(open(os.path.join(out, "manifest.json")))
                    r["stages"] = man.get("timings_seconds")
                    r["rule_ms"] = {e["id"]: e.get("millis") for e in man.get("rules", []) if e.get("millis") is not None}
                except (OSError, ValueError):
                    pass
            if name.startswith("duckdb"):
                r["steps"] = duckdb_steps(log)

    scan = min((best[n] for n in best if n.startswith("scan")), key=lambda r: r["wall"])
    duck = best["duckdb (same rules)"]
    order = [n for n, _ in contenders]
    results = [best[n] for n in order]

    rows, all_ok = compare(
        os.path.join(m_same, "findings.parquet"), d_out, None if args.skip_full else os.path.join(m_full, "findings.parquet")
    )
    manifest = json.load(open(os.path.join(m_same, "manifest.json")))
    quarantined = {t["table"]: t["quarantined"] for t in manifest["input"]["tables"] if t.get("present")}
    rows_in = {t["table"]: t["read"] for t in manifest["input"]["tables"] if t.get("present")}

    if not args.keep:
        for out in (m_same, m_full):
            shutil.rmtree(os.path.join(out, "data"), ignore_errors=True)
        shutil.rmtree(os.path.join(work, "duckdb_tmp"), ignore_errors=True)

    mach = machine()
    now = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    lines = []
    lines.append(f"## medaudit end-to-end benchmark, {now}")
    lines.append("")
    lines.append(
        f"input `{args.input}`: " + ", ".join(f"{t} {n:,}" for t, n in rows_in.items())
        + f" rows; quarantined by medaudit: {sum(quarantined.values()):,}"
    )
    lines.append(
        f"machine: {mach['nproc']} cores ({mach['cpu']}), {mach['mem_gib']} GiB RAM, load average at the end "
        + " / ".join(f"{x:.1f}" for x in mach["load"])
    )
    lines.append(f"repeat: {args.repeat} (fastest wall clock of each reported); floor = the faster scan ({scan['name']})")
    lines.append("")
    lines.append(table(results, duck, scan))
    lines.append("")
    for r in results:
        if "stages" in r:
            st = r["stages"] or {}
            lines.append(
                f"- {r['name']} stages (s): " + ", ".join(f"{k} {v:.1f}" for k, v in st.items() if k != "total")
            )
    ms = best["medaudit (same rules)"].get("rule_ms", {})
    ds = duck.get("steps", {})
    if ms or ds:
        lines.append("")
        lines.append("Per step (wall s; the machine's other load included): medaudit rule (manifest `millis`) | DuckDB step")
        lines.append("")
        lines.append("| step | medaudit | DuckDB |")
        lines.append("|---|---:|---:|")
        st = best["medaudit (same rules)"].get("stages") or {}
        lines.append(f"| ingest (medaudit) / prepare incl. the fee pass (DuckDB) | {st.get('ingest', 0):.2f} | "
                     f"{ds.get('prepare', 0):.2f} |")
        for rule in RULES:
            key = "RST" if rule.startswith("RST") else rule
            dv = ds.get(key)
            note = " (RST001+RST002)" if key == "RST" else ""
            mv = ms.get(rule)
            lines.append(f"| {rule} | {'' if mv is None else f'{mv / 1000:.2f}'} | "
                         f"{'' if dv is None else f'{dv:.2f}'}{note} |")
        lines.append(f"| benefit (BEN001, BEN002; medaudit also PAY001) | {st.get('benefit', 0):.2f} | "
                     f"{ds.get('benefit', 0):.2f} |")
    lines.append("")
    n_amt = sum(len(c["amount_differs"]) for c in rows)
    lines.append(
        f"### Findings, medaudit (same rules) against DuckDB: flagged settlements {'AGREE' if all_ok else 'DIFFER'}, "
        f"amounts at risk {'equal to the cent' if n_amt == 0 else f'differ on {n_amt} settlements'}"
    )
    lines.append("")
    lines.append("| rule | medaudit | DuckDB | both | only medaudit | only DuckDB | amount differs (> 0.01) | same in full run |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|---|")
    for c in rows:
        full = "n/a" if c["same_in_full_run"] is None else ("yes" if c["same_in_full_run"] else "NO")
        lines.append(
            f"| {c['rule']} | {c['medaudit']:,} | {c['duckdb']:,} | {c['both']:,} | {len(c['only_medaudit']):,} | "
            f"{len(c['only_duckdb']):,} | {len(c['amount_differs']):,} | {full} |"
        )
    for c in rows:
        for key, label in (("only_medaudit", "only medaudit"), ("only_duckdb", "only DuckDB")):
            if c[key]:
                lines.append(f"- {c['rule']} {label}: {', '.join(c[key][:8])}{' …' if len(c[key]) > 8 else ''}")
        if c["amount_differs"]:
            ex = "; ".join(f"{s} medaudit {a} DuckDB {b}" for s, a, b in c["amount_differs"][:5])
            lines.append(f"- {c['rule']} amount differs: {ex}{' …' if len(c['amount_differs']) > 5 else ''}")
    report = "\n".join(lines)
    print(report)
    with open(os.path.join(work, "results.md"), "w") as fh:
        fh.write(report + "\n")
    with open(os.path.join(work, "results.json"), "w") as fh:
        json.dump(
            {
                "date": now,
                "input": args.input,
                "rows": rows_in,
                "quarantined": quarantined,
                "machine": mach,
                "repeat": args.repeat,
                "results": results,
                "comparison": rows,
                "agree": all_ok,
            },
            fh,
            indent=1,
            default=str,
        )
    print(f"\n(written to {work}/results.md and results.json)", file=sys.stderr)


if __name__ == "__main__":
    main()
