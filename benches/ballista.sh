#!/usr/bin/env bash
# Embedded versus a standalone Ballista cluster on this machine: the same `medaudit run` on the
# same input, once in-process and once with --cluster against a scheduler and one executor
# started here as separate processes (localhost ports). Prints wall, CPU and peak memory of
# each process, the stage times and the per-query times of both manifests, checks that the
# findings are the same, and writes <work>/ballista.md.
#
#   benches/ballista.sh --input DIR [--work DIR] [--bin PATH] [--vcores N] [--port P]
#
#   --input DIR   input folder (e.g. from `medaudit gen --format parquet --no-malformed`)
#   --work DIR    outputs and logs (default $CARGO_TARGET_DIR/bench-ballista or target/...)
#   --bin PATH    a medaudit built with --features distributed (default: build it, release)
#   --vcores N    the executor's task slots (default: the number of cores)
#   --port P      scheduler port (default 50450; the executor uses P+1 and P+2)
#
# The per-query times are the numbers behind the province-year estimate in
# docs/distributed.md. See benches/README.md.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
IN=""; WORK="$TARGET/bench-ballista"; BIN=""; VCORES="$(nproc)"; PORT=50450
while [ $# -gt 0 ]; do
    case "$1" in
        --input) IN="$2"; shift 2 ;;
        --work) WORK="$2"; shift 2 ;;
        --bin) BIN="$2"; shift 2 ;;
        --vcores) VCORES="$2"; shift 2 ;;
        --port) PORT="$2"; shift 2 ;;
        -h|--help) sed -n 2,17p "$0"; exit 0 ;;
        *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ -n "$IN" ] || { echo "--input DIR is required (see --help)" >&2; exit 2; }
IN="$(cd "$IN" && pwd)"
if [ -z "$BIN" ]; then
    (cd "$ROOT" && cargo build --release --locked --features distributed --bin medaudit)
    BIN="$TARGET/release/medaudit"
fi
mkdir -p "$WORK"
WORK="$(cd "$WORK" && pwd)"
rm -rf "$WORK/out-embedded" "$WORK/out-cluster" "$WORK/executor-work"
TIME="/usr/bin/time"
[ -x "$TIME" ] || { echo "needs GNU time at /usr/bin/time (apt-get install time)" >&2; exit 2; }
FMT="wall %e s, user %U s, sys %S s, peak RSS %M KB"

echo "== embedded"
$TIME -f "embedded: $FMT" -o "$WORK/embedded.time" \
    "$BIN" run --input "$IN" --out "$WORK/out-embedded" > "$WORK/embedded.log" 2>&1
cat "$WORK/embedded.time"

echo "== standalone cluster: scheduler and one executor with $VCORES task slots"
cleanup() { kill "${EPID:-}" "${SPID:-}" 2>/dev/null || true; }
trap cleanup EXIT
$TIME -f "scheduler: $FMT" -o "$WORK/scheduler.time" \
    "$BIN" scheduler --bind-host 127.0.0.1 --port "$PORT" --external-host 127.0.0.1 \
    > "$WORK/scheduler.log" 2>&1 &
SPID=$!
$TIME -f "executor: $FMT" -o "$WORK/executor.time" \
    "$BIN" executor --scheduler "df://127.0.0.1:$PORT" --bind-host 127.0.0.1 --external-host 127.0.0.1 \
    --port $((PORT + 1)) --grpc-port $((PORT + 2)) --vcores "$VCORES" --work-dir "$WORK/executor-work" \
    > "$WORK/executor.log" 2>&1 &
EPID=$!
sleep 3
$TIME -f "client: $FMT" -o "$WORK/client.time" \
    "$BIN" run --input "$IN" --out "$WORK/out-cluster" --cluster "df://127.0.0.1:$PORT" \
    > "$WORK/cluster.log" 2>&1
# SIGTERM to the processes under `time` (background jobs ignore SIGINT), which still reports.
for p in "$EPID" "$SPID"; do
    child="$(ps -o pid= --ppid "$p" | tr -d ' ' || true)"
    if [ -n "$child" ]; then kill -TERM "$child" 2>/dev/null || true; fi
done
wait "$EPID" 2>/dev/null || true
wait "$SPID" 2>/dev/null || true
trap - EXIT
cat "$WORK/client.time" "$WORK/executor.time" "$WORK/scheduler.time" 2>/dev/null || true

python3 - "$WORK" <<'PY'
import json, sys, pathlib
w = pathlib.Path(sys.argv[1])
e = json.loads((w / "out-embedded/manifest.json").read_text())
c = json.loads((w / "out-cluster/manifest.json").read_text())
def times(name):
    f = w / f"{name}.time"
    return f.read_text().strip() if f.exists() else f"{name}: (no figure)"
import csv
def findings(d):
    with open(w / d / "findings.csv", encoding="utf-8-sig", newline="") as f:
        return [{k: v for k, v in r.items() if k != "run_id"} for r in csv.DictReader(f)]
fe, fc = findings("out-embedded"), findings("out-cluster")
same = fe == fc
rows = {t["table"]: t.get("read", 0) for t in e["input"]["tables"]}
lines = ["# Embedded versus standalone Ballista", "",
         f"input: {e['input']['folder']}: {rows.get('setl', 0):,} settlements, "
         f"{rows.get('fee', 0):,} fee lines", ""]
lines += ["```", times("embedded"), times("client"), times("executor"), times("scheduler"), "```", ""]
lines += [f"findings identical (findings.csv row for row, run id aside): **{'yes' if same else 'NO'}** ({len(fe):,} rows)", ""]
lines += ["| stage | embedded s | cluster s |", "|---|---:|---:|"]
for k in ["ingest", "rules", "statistics", "benefit", "write", "total"]:
    lines.append(f"| {k} | {e['timings_seconds'].get(k, 0):.1f} | {c['timings_seconds'].get(k, 0):.1f} |")
lines += ["", "| rule | findings | embedded ms | cluster ms |", "|---|---:|---:|---:|"]
cr = {r["id"]: r for r in c["rules"]}
for r in sorted(e["rules"], key=lambda r: -r.get("millis", 0)):
    o = cr.get(r["id"], {})
    lines.append(f"| {r['id']} | {r.get('findings', '')} | {r.get('millis', '')} | {o.get('millis', '')} |")
out = "\n".join(lines) + "\n"
(w / "ballista.md").write_text(out)
print(out)
PY
