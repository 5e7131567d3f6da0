#!/usr/bin/env bash
# A screenshot of the concept screen in a real Sixel terminal, mlterm, under Xvfb.
#   apt-get install mlterm xvfb xdotool x11-apps imagemagick
#   bash bench/sixel_screenshot.sh [concept] [out.png]
# kb asks the terminal whether it shows graphics (mlterm answers that it speaks Sixel) and draws the
# formulas as images; the picture is saved with xwd. (xterm as a VT340 also speaks Sixel, but draws
# the upper bands of an image in the wrong colours; Debian's kitty is older than the Unicode
# placeholders textual-image needs.)
set -euo pipefail
cd "$(dirname "$0")/.."
CONCEPT="${1:-softmax}"
OUT="${2:-docs/formulas-sixel.png}"
HOME_DIR="$(mktemp -d -p "$PWD" .sixel-home.XXXX)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$HOME_DIR"' EXIT
Xvfb :77 -screen 0 1280x860x24 >/dev/null 2>&1 &
sleep 1
export DISPLAY=:77
mlterm -g 120x40+0+0 --fg '#e0e0e0' --bg '#121212' \
  -e env KB_HOME="$HOME_DIR" KB_LANG=en "$PWD/.venv/bin/kb" >/dev/null 2>&1 &
sleep 8   # start-up and the first sync
xdotool type --delay 60 "/$CONCEPT"
sleep 1
xdotool key Return
sleep 1
xdotool key Return
sleep 4   # the concept, then its images
for _ in $(seq "${SCROLL:-12}"); do xdotool key Down; done
sleep 2
xwd -root -silent | /usr/bin/convert xwd:- -trim "$OUT"
echo "saved $OUT"
