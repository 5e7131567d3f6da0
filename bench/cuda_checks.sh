#!/usr/bin/env bash
# The checks that need an NVIDIA GPU, as one script for a GPU machine with torch installed
# (python3 holds torch; kb's other requirements come as wheels in .whl/). Writes to $OUT:
#   verify-cuda.json   `kb verify --device cuda --compare cpu --json`: every bundled snippet on both
#   cuda-tests.txt     the tests that skip without a GPU
#   doctor.txt         `kb doctor` there
set -u
export PYTHONUNBUFFERED=1 OUT="${OUT:-/tmp/out}"
mkdir -p "$OUT"
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
export KB_HOME=/tmp/kb-cuda-home
# A snapshot of the bundled deck may be carried in .cuda-content/content (the checkout may be mid-edit).
if [ -d .cuda-content/content ]; then export KB_BUNDLED_CONTENT=$PWD/.cuda-content/content; fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
python3 -m kb doctor > "$OUT/doctor.txt" 2>&1; head -20 "$OUT/doctor.txt"
timeout 120 python3 bench/cuda_fork_probe.py
for d in cpu cuda; do  # one snippet on each, with the whole message if it does not pass
  python3 -m kb verify softmax --device $d --jobs 1 --json | python3 -c "import json,sys; r=json.load(sys.stdin)['results'][0]; print(r['device'], r['status'], r['message'])"
done
timeout 330 python3 -m kb verify --device cuda --compare cpu --json --jobs 8 > "$OUT/verify-cuda.json"
echo "parity exit status $?"
python3 - "$OUT/verify-cuda.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(r["environment"], r["entries"], "entries,", r["agree"], "agree")
for row in r["results"]:
    if not row["agrees"] or row["note"]:
        print(row["id"], row["cpu_status"], row["cuda_status"], row["mismatches"][:2], row["note"],
              (row.get("cpu_message") or "")[:300], (row.get("cuda_message") or "")[:300])
PY
timeout 240 python3 -m pytest -c bench/cuda_pytest.ini --rootdir=. -q \
  tests/runner/test_runner_api.py::test_cuda_run_when_a_gpu_is_available tests/kb/service/test_verify.py 2>&1 | tee "$OUT/cuda-tests.txt" | tail -15
