#!/usr/bin/env bash
# CPU thread settings of `arcvdm run`, idle and beside one CPU-bound job: `bash runners/threads_bench.sh [STEPS]`.
# Times one short mini problem (tasks_json/fill-border.json, STEPS training steps, default 10, no early stop) per
# candidate: the default (arcvdm/environment.py `use_threads`: the cores other work leaves free), every
# usable core with OpenMP's spinning wait (torch's own default), every core with passive wait, and 1 thread. Then the
# same beside a busy loop this script starts and stops by its pid. Prints wall seconds, the threads each run chose
# (its environment.json) and what the two load signals read. Run it on an otherwise idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-10}
WORK=$(mktemp -d)
busy=""
trap '[ -n "$busy" ] && kill "$busy" 2>/dev/null; rm -rf "$WORK"' EXIT
cores=$(python -c "import os; print(len(os.sched_getaffinity(0)))")

signals() {
  python -c "import os; from arcvdm.environment import busy_cores, usable_cores
print(f'busy cores (0.3 s of /proc/stat) {busy_cores(usable_cores()):.2f}, 1-min load average {os.getloadavg()[0]:.2f}')"
}

one() {  # one() NAME ENV... -- ARGS...: time one run, print its line
  local name=$1; shift
  local envs=()
  while [ "$1" != "--" ]; do envs+=("$1"); shift; done; shift
  local out="$WORK/$name-$RANDOM"
  local start end
  start=$(date +%s.%N)
  env "${envs[@]}" arcvdm run tasks_json --tasks fill-border --preset mini --steps "$STEPS" \
    --eval-every "$(( (STEPS + 1) / 2 ))" --no-early-stop --no-resume --out "$out" "$@" >/dev/null 2>"$out.err" \
    || { echo "$name: failed"; tail -3 "$out.err"; return; }
  end=$(date +%s.%N)
  python - "$name" "$start" "$end" "$out" <<'EOF'
import hashlib, json, sys
name, start, end, out = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
t = json.load(open(f"{out}/environment.json"))["threads"]
attempts = json.load(open(f"{out}/problems/fill-border.json"))["attempts"]
print(f"  {name:<22} {end - start:7.1f} s   threads {t['threads']} ({t['chosen_by']}; wait {t['omp_wait_policy']})"
      f"   attempts sha1 {hashlib.sha1(json.dumps(attempts).encode()).hexdigest()[:10]}")
EOF
}

candidates() {
  one default -u OMP_WAIT_POLICY -u OMP_NUM_THREADS --
  one "all cores, spinning" OMP_WAIT_POLICY=active --  --threads "$cores"
  one "all cores, passive" OMP_WAIT_POLICY=passive -- --threads "$cores"
  one "1 thread" -- --threads 1
}

echo "threads bench: fill-border, mini preset, $STEPS steps, $cores usable cores; $(python -c 'from arcvdm.environment import load_line; print(load_line())')"
echo "idle: $(signals)"
candidates
python -c "while True: pass" &
busy=$!
sleep 2
echo "beside one busy loop (pid $busy): $(signals)"
candidates
kill "$busy"
busy=""
