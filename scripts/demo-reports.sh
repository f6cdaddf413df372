#!/usr/bin/env bash
# Builds the four reports from the bundled sample, with a case store in which a few cases are
# reviewed, confirmed and deducted, and renders them to PNG (scripts/render-report.sh): the
# pictures of the README (docs/img/) come from here.
#
#   scripts/demo-reports.sh OUT_DIR [MEDAUDIT_BINARY]
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
out=${1:?usage: demo-reports.sh OUT_DIR [MEDAUDIT_BINARY]}
bin=${2:-medaudit}
mkdir -p "$out"
cd "$out"
rm -rf run cases reports
"$bin" run --input "$repo/datasets/sample/input" --out run >/dev/null
export MEDAUDIT_STORE=cases MEDAUDIT_PASSWORD=demo-password-123 MEDAUDIT_NEW_PASSWORD=demo-password-123
"$bin" users init --user admin >/dev/null
"$bin" users add li --role reviewer --user admin >/dev/null
"$bin" users add wang --role reviewer --user admin >/dev/null
"$bin" cases merge run --user admin >/dev/null
mapfile -t ids < <("$bin" cases list --status sampled --type settlement --user li | awk '$1 ~ /^C[0-9]+$/ {print $1}' | head -8)
k=0
for id in "${ids[@]}"; do
    k=$((k + 1))
    "$bin" review start "$id" --user li >/dev/null
    if ((k > 6)); then
        "$bin" review dismiss "$id" --reason "病历核实无误" --user li >/dev/null
        continue
    fi
    # decided in August (deducted from September's payment) or September (from October's)
    if ((k % 2)); then m=08; else m=09; fi
    "$bin" review confirm "$id" --amount "$((k * 137)).50" --note "示例：确认违规" --date "2025-$m-1$k" --user li >/dev/null
    "$bin" review confirmation "$id" --party insurer --reference "保函〔2025〕$k号" --date "2025-$m-2$k" --user wang >/dev/null
    "$bin" review confirmation "$id" --party agency --date "2025-$m-2$k" --user li >/dev/null
    "$bin" review confirmation "$id" --party facility --date "2025-$m-2$k" --user li >/dev/null
done
"$bin" deductions --month 2025-09 --record --user li >/dev/null
"$bin" deductions --month 2025-10 --record --user li >/dev/null
common=(--run run --inputs "$repo/datasets/report/sample" --cases cases)
"$bin" report monthly --month 2025-09 "${common[@]}" --out reports/monthly
"$bin" report quarterly --quarter 2025-Q3 "${common[@]}" --out reports/quarterly
"$bin" report half-year --year 2025 "${common[@]}" --out reports/half-year
"$bin" report annual --year 2025 "${common[@]}" --out reports/annual
for r in reports/*/; do "$repo/scripts/render-report.sh" "$r" "${HEIGHT:-3400}"; done
