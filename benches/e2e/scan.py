#!/usr/bin/env python3
"""The floor: read every column of every input table once, and nothing else.

    scan.py --engine pyarrow --input DIR    decode every column of every row group (pyarrow)
    scan.py --engine duckdb  --input DIR    one aggregate per column per table (DuckDB)

Any audit of the data has to do at least this much. Prints a JSON line: rows per table.
"""

import argparse
import glob
import json
import os
import sys
import time

TABLES = ["setl", "fee", "psn", "medins", "pay"]


def files(input_dir, table):
    """`<table>.parquet`, or the Parquet files of a folder `<table>/`."""
    exact = os.path.join(input_dir, f"{table}.parquet")
    if os.path.isfile(exact):
        return [exact]
    return sorted(glob.glob(os.path.join(input_dir, table, "*.parquet")))


def scan_pyarrow(input_dir, threads):
    import pyarrow
    import pyarrow.parquet as pq

    if threads:
        pyarrow.set_cpu_count(threads)
    rows = {}
    for t in TABLES:
        n = 0
        for f in files(input_dir, t):
            pf = pq.ParquetFile(f)
            for rg in range(pf.metadata.num_row_groups):
                # every column of the row group, decoded to Arrow (in parallel over columns)
                n += pf.read_row_group(rg, use_threads=True).num_rows
        rows[t] = n
    return rows


def scan_duckdb(input_dir, threads):
    import duckdb

    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads = {threads}")
    rows = {}
    for t in TABLES:
        fs = files(input_dir, t)
        if not fs:
            rows[t] = 0
            continue
        src = f"read_parquet({json.dumps(fs)})"
        cols = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()]
        # max() of every column: each value is read and decoded (count(col) could be answered from
        # the null statistics)
        aggs = ", ".join(f'max("{c}")' for c in cols)
        con.execute(f"SELECT COUNT(*), {aggs} FROM {src}")
        rows[t] = con.fetchone()[0]
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engine", choices=["pyarrow", "duckdb"], required=True)
    ap.add_argument("--input", required=True)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    t0 = time.perf_counter()
    rows = (scan_pyarrow if args.engine == "pyarrow" else scan_duckdb)(args.input, args.threads)
    if not rows.get("setl") or not rows.get("fee"):
        sys.exit(f"no setl/fee Parquet files in {args.input}")
    print(json.dumps({"engine": args.engine, "rows": rows, "seconds": round(time.perf_counter() - t0, 3)}))


if __name__ == "__main__":
    main()
