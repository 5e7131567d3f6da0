#!/usr/bin/env bash
# A screenshot of the concept screen in a real Sixel terminal: xterm as a VT340 under Xvfb.
#   apt-get install xterm xvfb xdotool x11-apps;  bash bench/xterm_formulas.sh [concept] [out.png]
# kb asks the terminal whether it shows graphics (xterm answers that it speaks Sixel) and draws the
# formulas as images; the picture is saved with xwd.
set -euo pipefail
cd "$(dirname "$0")/.."
CONCEPT="${1:-softmax}"
OUT="${2:-docs/formulas-xterm.png}"
HOME_DIR="$(mktemp -d -p "$PWD" .xterm-home.XXXX)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$HOME_DIR"' EXIT
Xvfb :77 -screen 0 1280x860x24 >/dev/null 2>&1 &
sleep 1
export DISPLAY=:77
xterm -ti vt340 -xrm 'XTerm*decTerminalID: vt340' -xrm 'XTerm*numColorRegisters: 256' \
-fa 'DejaVu Sans Mono' -fs 11 -geometry 128x44+0+0 \
  -bg '#1e1e1e' -fg '#e0e0e0' \
  -e env KB_HOME="$HOME_DIR" KB_LANG=both "$PWD/.venv/bin/kb" &
sleep 8   # start-up and the first sync
xdotool type --delay 60 "/$CONCEPT"
sleep 1
xdotool key Return
sleep 1
xdotool key Return
sleep 4   # the concept, then its images
# The formulas lie below the definition: scroll the concept to them.
xdotool key Down Down Down Down Down Down Down Down Down Down Down Down
sleep 2
xwd -root -silent | /usr/bin/convert xwd:- "$OUT"
echo "saved $OUT"
