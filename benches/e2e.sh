#!/usr/bin/env bash
# End-to-end benchmark: medaudit against a hand-written DuckDB audit and against a plain scan
# of the same Parquet files. One command from a fresh clone (needs cargo, python3 with venv):
#
#   benches/e2e.sh [--settlements N] [--seed S] [--data DIR] [--work DIR] [--repeat N]
#                  [--skip-full] [--keep] [--no-build] [--duckdb-memory-limit 4GB]
#
#   --settlements N   scale of the generated data (default 2000000, the city scale)
#   --seed S          generator seed (default 7)
#   --data DIR        use this existing input folder (Parquet: setl, fee, ...) instead of generating
#   --work DIR        outputs, logs, generated data (default $CARGO_TARGET_DIR/bench or target/bench)
#   --repeat N        run each contender N times, report the fastest (default 1)
#   --skip-full       do not time the full medaudit audit (only the like-for-like run)
#   --keep            keep medaudit's output folders (they hold a typed copy of the input)
#   --no-build        use the existing release binary
#   --duckdb-memory-limit L   DuckDB's memory_limit (default: DuckDB's own, 80 % of RAM)
#
# It builds the release binary, installs duckdb and pyarrow from PyPI into a virtualenv
# ($MEDAUDIT_BENCH_VENV, default <work>/venv), generates the data with
# `medaudit gen --format parquet --no-malformed` unless --data is given (and reuses a generated
# folder of the same scale and seed), then runs benches/e2e/run.py, which times every
# contender, compares the findings and prints the table (also written to <work>/results.md).
# See benches/README.md.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
N=2000000
SEED=7
DATA=""
WORK=""
BUILD=1
PASS=()

while [[ $# -gt 0 ]]; do
    case "$1" in
        --settlements) N="$2"; shift 2 ;;
        --seed) SEED="$2"; shift 2 ;;
        --data) DATA="$2"; shift 2 ;;
        --work) WORK="$2"; shift 2 ;;
        --repeat) PASS+=(--repeat "$2"); shift 2 ;;
        --duckdb-memory-limit) PASS+=(--duckdb-memory-limit "$2"); shift 2 ;;
        --skip-full) PASS+=(--skip-full); shift ;;
        --keep) PASS+=(--keep); shift ;;
        --no-build) BUILD=0; shift ;;
        -h|--help) sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "e2e.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

WORK="${WORK:-$TARGET/bench}"
mkdir -p "$WORK"
WORK="$(cd "$WORK" && pwd)"
BIN="$TARGET/release/medaudit"

if [[ $BUILD == 1 ]]; then
    echo "== cargo build --release" >&2
    (cd "$ROOT" && cargo build --release --locked --bin medaudit)
fi
[[ -x "$BIN" ]] || { echo "e2e.sh: no binary at $BIN (drop --no-build)" >&2; exit 1; }

VENV="${MEDAUDIT_BENCH_VENV:-$WORK/venv}"
if ! "$VENV/bin/python" -c "import duckdb, pyarrow" 2>/dev/null; then
    echo "== python venv $VENV with duckdb and pyarrow (PyPI)" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --upgrade pip
    "$VENV/bin/pip" install --quiet duckdb pyarrow
fi
"$VENV/bin/python" -c "import duckdb, pyarrow; print('   duckdb', duckdb.__version__, 'pyarrow', pyarrow.__version__)" >&2

if [[ -z "$DATA" ]]; then
    GEN="$WORK/data-$N-seed$SEED"
    if [[ ! -f "$GEN/labels/summary.json" ]]; then
        echo "== medaudit gen --settlements $N --seed $SEED (Parquet, no malformed rows)" >&2
        rm -rf "$GEN"
        "$BIN" gen --out "$GEN" --settlements "$N" --seed "$SEED" --format parquet --no-malformed >&2
    else
        echo "== reusing $GEN" >&2
    fi
    DATA="$GEN/input"
elif [[ ! -e "$DATA/setl.parquet" && ! -d "$DATA/setl" && -d "$DATA/input" ]]; then
    DATA="$DATA/input"
fi
DATA="$(cd "$DATA" && pwd)"

echo "== benchmark on $DATA" >&2
exec "$VENV/bin/python" "$ROOT/benches/e2e/run.py" --input "$DATA" --bin "$BIN" --home "$ROOT" \
    --work "$WORK" ${PASS[@]+"${PASS[@]}"}
