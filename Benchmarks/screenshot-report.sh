#!/usr/bin/env bash
# Renders a report's HTML page (written by `distill report SPEC --output DIR`) in
# headless Chromium, as a person would see it, to DIR/report-screenshot.png.
#
#   apt-get install -y chromium      # Debian's Chromium
#   Benchmarks/screenshot-report.sh docs/results/phantom-study [WIDTH HEIGHT]
set -euo pipefail
dir=${1:?usage: $0 REPORT_DIR [WIDTH HEIGHT]}
width=${2:-1280}
height=${3:-4000}
browser=$(command -v chromium || command -v chromium-browser || true)
[ -n "$browser" ] || { echo "chromium is not installed: apt-get install -y chromium" >&2; exit 2; }
[ -f "$dir/report.html" ] || { echo "no $dir/report.html: run distill report SPEC --output $dir" >&2; exit 2; }
page="file://$(cd "$dir" && pwd)/report.html"
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --allow-file-access-from-files \
  --window-size="$width,$height" --screenshot="$dir/report-screenshot.png" "$page" 2>/dev/null
echo "wrote $dir/report-screenshot.png"
