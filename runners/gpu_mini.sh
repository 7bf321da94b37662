#!/usr/bin/env bash
# The mini's GPU session in one call (issue 23; docs/mini.md, "The GPU session in one call"): build the GPU recipe,
# then run `mini-bench` on it under the LoRA protocol of the 80x80 candidates (600 steps on a cosine, evaluated every
# 100, fp32; BASELINE=1 runs the shipped CPU build beside it, at about twice the GPU time), and pack into DEST what the
# device tool brings back: at most 8 files of at most 15 MiB, none in a folder. DEST/session.log has each phase's exit
# and seconds and the scores; bench-gpu.json (bench-cpu.json) the bench; runs.tar.gz the logs and per-problem records;
# the built folder comes back as DEST/mini-gpu.tar.part-NN (`cat mini-gpu.tar.part-* | tar -x -C DIR`).
#   python runners/device_wheels.py && bash runners/gpu_mini.sh "$OUT"   # there, with .whl carried
#   TOY=1 bash runners/gpu_mini.sh DEST       # the same chain at toy size on the CPU (tests/test_gpu_mini_script.py)
# BUILD_S (400) and BENCH_S (150) cap the two phases in seconds; TASKS (20), SEED (1), WORKERS_PER_GPU (8) set the
# bench; PYTHON (python3) the interpreter; WHL (.whl) the wheels installed first when that folder exists.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=${1:?usage: bash runners/gpu_mini.sh DEST}
mkdir -p "$DEST"
DEST=$(cd "$DEST" && pwd)
PYTHON=${PYTHON:-python3}
WORK=$(mktemp -d)
LOG=$DEST/session.log

# The device image has PyTorch but not diffusers or pydantic; nothing can be fetched there.
WHL=${WHL:-.whl}
if [ -d "$WHL" ]; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$WORK/site" "$WHL"/*.whl
  export PYTHONPATH="$PWD:$WORK/site${PYTHONPATH:+:$PYTHONPATH}"
fi

if [ "${TOY:-0}" = 1 ]; then
  BUILD=(--device cpu --workers 2 --toy)
  LORA=(--set train.steps=4 --set train.eval_every=2 --set sample.steps=2)
  TASKS=${TASKS:-2} WORKERS_PER_GPU=${WORKERS_PER_GPU:-1}
else
  BUILD=(--device cuda --workers 15)
  LORA=(--set train.steps=600 --set train.eval_every=100)
  TASKS=${TASKS:-20} WORKERS_PER_GPU=${WORKERS_PER_GPU:-8}
fi
LORA+=(--set train.lr_schedule=cosine --set dtype=fp32 --set workers_per_gpu="$WORKERS_PER_GPU")
GEOMETRY_80=(--set video.height=80 --set video.width=80 --set codec.layout=token-aligned)

{ date -u; nvidia-smi -L 2>/dev/null || echo "no nvidia-smi"
  "$PYTHON" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"; } >"$LOG" 2>&1

phase() {  # NAME SECONDS ARGS...: one arcvdm command under a hard stop, its output in WORK/NAME.log
  local name=$1 limit=$2 start=$SECONDS code=0
  shift 2
  timeout --kill-after=10 "$limit" "$PYTHON" -m arcvdm "$@" >"$WORK/$name.log" 2>&1 || code=$?
  echo "$name: exit $code after $((SECONDS - start)) s (cap $limit s; 124 = stopped at the cap)" >>"$LOG"
}

phase build "${BUILD_S:-400}" backbone pretrain-mini --out "$WORK/mini-gpu" --recipe gpu "${BUILD[@]}"
if [ "${BASELINE:-0}" = 1 ]; then
  phase bench-cpu "${BENCH_S:-150}" mini-bench --out "$WORK/bench-cpu" --tasks "$TASKS" --seed "${SEED:-1}" \
    --preset mini "${LORA[@]}" &
fi
if [ -f "$WORK/mini-gpu/model_card.json" ]; then
  phase bench-gpu "${BENCH_S:-150}" mini-bench --out "$WORK/bench-gpu" --tasks "$TASKS" --seed "${SEED:-1}" \
    --preset mini --backbone "$WORK/mini-gpu" "${GEOMETRY_80[@]}" "${LORA[@]}" &
fi
wait

for name in bench-cpu bench-gpu; do
  [ -d "$WORK/$name/run" ] || continue
  # a bench stopped at its cap has no bench.json: score the problems it finished
  echo "== $name" >>"$LOG"
  "$PYTHON" -m arcvdm score "$WORK/$name/run" --dataset "$WORK/$name/tasks" --json >>"$LOG" 2>&1 || true
  [ -f "$WORK/$name/bench.json" ] && cp "$WORK/$name/bench.json" "$DEST/$name.json"
done
tar -C "$WORK" -czf "$DEST/runs.tar.gz" --exclude=site --exclude=mini-gpu --exclude='*.png' --exclude='*.gif' \
  --exclude='*.pkl' --exclude='*.safetensors' .
if [ -f "$WORK/mini-gpu/model_card.json" ]; then
  tar -C "$WORK" -cf - mini-gpu | split -b 15M -d - "$DEST/mini-gpu.tar.part-"
fi
rm -rf "$WORK"
cat "$LOG"
