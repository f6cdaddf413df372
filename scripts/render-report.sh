#!/usr/bin/env bash
# Renders a report folder written by `medaudit report` to PNG with headless Chromium, so that
# a person can look at what the agency will see (Chinese text, charts, tables).
#
#   scripts/render-report.sh REPORT_DIR [HEIGHT]
#
# writes REPORT_DIR/<stem>.png (the page, 1240 px wide, HEIGHT px tall, default 3000) and
# REPORT_DIR/charts/<id>.png for every chart (the chart's own page, sized to the chart).
# Needs Chromium and a CJK font: `apt-get install -y chromium fonts-noto-cjk` (Debian).
set -euo pipefail

dir=${1:?usage: render-report.sh REPORT_DIR [HEIGHT]}
height=${2:-3000}
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [[ -z "$browser" ]]; then
    echo "render-report.sh: Chromium not found (apt-get install -y chromium fonts-noto-cjk)" >&2
    exit 1
fi
if ! fc-list :lang=zh 2>/dev/null | grep -q .; then
    echo "render-report.sh: warning: no CJK font installed (apt-get install -y fonts-noto-cjk)" >&2
fi

shot() { # shot HTML PNG WIDTH HEIGHT
    local profile
    profile=$(mktemp -d)
    "$browser" --headless --no-sandbox --disable-gpu --disable-background-networking --no-first-run \
        --disable-sync --disable-component-update --hide-scrollbars --force-device-scale-factor=1 \
        --user-data-dir="$profile" --screenshot="$2" --window-size="$3,$4" "file://$(realpath "$1")" \
        >/dev/null 2>&1
    rm -rf "$profile"
    [[ -s "$2" ]] || { echo "render-report.sh: no screenshot of $1" >&2; return 1; }
    echo "$2"
}

shopt -s nullglob
for page in "$dir"/*.html; do
    shot "$page" "${page%.html}.png" 1240 "$height"
done
for page in "$dir"/charts/*.html; do
    svg="${page%.html}.svg"
    # the chart's size from its <svg width=".." height="..">, plus the caption and margins
    w=$(grep -o 'width="[0-9.]*"' "$svg" | head -1 | grep -o '[0-9]*' | head -1)
    h=$(grep -o 'height="[0-9.]*"' "$svg" | head -1 | grep -o '[0-9]*' | head -1)
    shot "$page" "${page%.html}.png" $((w + 70)) $((h + 110))
done
