#!/usr/bin/env bash
# Regenerates the statement pictures in docs/ from the demo ledger:
#   docs/statement-example.png      the HTML statement, as headless Chromium renders it
#   docs/statement-example-pdf.png  the first page of the PDF statement, by pdftoppm
# Needs: apt-get install -y chromium poppler-utils fonts-wqy-microhei (installed here when missing).
# Run from anywhere: bash docs/statement-pictures.sh
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null || ! command -v pdftoppm >/dev/null || [ ! -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium poppler-utils fonts-wqy-microhei >/dev/null
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cargo build --quiet
ledger="$(cd "${CARGO_TARGET_DIR:-target}/debug" && pwd)/ledger"
(cd "$work" && "$ledger" demo --db demo.db >/dev/null)
# The example configuration, so the pictures show a broker rather than the placeholder.
for format in html pdf; do
    "$ledger" --config ledger.example.toml --db "$work/demo.db" statement --account D0000001 \
        --from 2024-03-01 --to 2024-03-31 --format "$format" --out "$work/statement.$format"
done
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$(mktemp -d)" --hide-scrollbars --window-size=1400,1480 \
    --screenshot="$PWD/docs/statement-example.png" "file://$work/statement.html" 2>/dev/null
pdftoppm -png -r 90 -f 1 -l 1 -singlefile "$work/statement.pdf" docs/statement-example-pdf
echo "wrote docs/statement-example.png and docs/statement-example-pdf.png"
