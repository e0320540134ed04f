#!/usr/bin/env bash
# One prepared script for a (rarely available, time-limited) GPU machine. In order of importance:
#   1. the CUDA-graph step trains exactly what the eager step trains (tests/test_cuda_graphs.py);
#   2. full epochs on the 50,000-image synthetic set: the reference-style pipeline vs the engine, with and
#      without CUDA graphs (issue 4);
#   3. notebook 05 with its gpu-paper recipe for a few epochs per method, executed with papermill (issue 6);
#   4. the per-step table (reference / engine / ceiling);
#   5. the engine's CUDA path through the command line (train-teacher, distill at each amp, resume, eval).
# Every result lands in $OUT (at most 8 files come back from the device machine); summary.txt ends with the tables.
# About 5 minutes on an H100 (294 s in session 3).
#
#   OUT=build/gpu benchmarks/gpu_run.sh                                   # on the GPU machine, repository root
#   DEVICE=cpu TRAIN=512 STEPS=3 EPOCHS05=1 OUT=/tmp/g benchmarks/gpu_run.sh   # rehearsal on a CPU
set -u
DEVICE=${DEVICE:-cuda}
TRAIN=${TRAIN:-50000}
STEPS=${STEPS:-200}
WORKERS=${WORKERS:-8}
EPOCHS05=${EPOCHS05:-3}
OUT=${OUT:-build/gpu}
OUT=$(mkdir -p "$OUT" && cd "$OUT" && pwd)
T="${TMPDIR:-/tmp}/wttm_gpu"
rm -rf "$T" && mkdir -p "$T"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PY=${PY:-python3}
W="$PY -m wttm_core.cli"
LOG="$OUT/logs.txt"
log() { echo "== $(date +%T) $*" | tee -a "$OUT/summary.txt"; }

log "machine: $(nvidia-smi -L 2>/dev/null | head -1); $($PY -c 'import torch; print("torch", torch.__version__)')"
# the notebook stack (papermill, ipykernel, plotly, ...) travels as wheels in .whl/ (the GPU image lacks it)
if [ -d .whl ] && ! $PY -c "import papermill, ipykernel, plotly, anywidget" 2>/dev/null; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$T/site" .whl/*.whl \
    >>"$LOG" 2>&1
  export PYTHONPATH="$PYTHONPATH:$T/site"
fi

# 1. CUDA graphs = eager, on the GPU (skipped on a CPU)
timeout 150 $PY -m pytest -q -p no:cacheprovider tests/test_cuda_graphs.py >>"$LOG" 2>&1
log "tests/test_cuda_graphs.py rc=$? $(grep -E '(passed|failed|error)' "$LOG" | tail -1)"

# 2. full epochs: reference-style pipeline vs the engine (the issue's GPU measurement)
timeout 200 $PY benchmarks/train_step.py --device "$DEVICE" --epoch-mode --epochs 2 --train-size "$TRAIN" \
  --num-workers "$WORKERS" --json "$OUT/epochs.json" >"$T/epochs.log" 2>&1
log "epoch mode rc=$?"
cat "$T/epochs.log" >>"$LOG"
tail -n 9 "$T/epochs.log" >>"$OUT/summary.txt"

# 3. notebook 05's gpu-paper recipe (issue 6): a resnet56 teacher, then KD / TTM / WTTM resnet20 students
timeout 200 $PY - "$OUT/05_train_students_gpu_paper.ipynb" "$T/nb05" "$DEVICE" "$EPOCHS05" "$TRAIN" \
  >>"$LOG" 2>&1 <<'EOF'
import sys
from wttm_core.notebook_runner import execute_notebook
dst, work, device, epochs, train = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
parameters = dict(interactive=False, profile="gpu-paper", dataset="synthetic", device=device,
                  teacher="train:resnet56", teacher_epochs=epochs, epochs=epochs, seeds=[0],
                  results_dir=f"{work}/results")
if train != 50000:  # rehearsals on a CPU use a smaller set than the notebook's full one
    parameters.update(profile="smoke", teacher="train:resnet20", student="resnet8")
execute_notebook("notebooks/05_train_students.ipynb", dst, parameters, timeout=190)
EOF
log "notebook 05 gpu-paper rc=$?"
$PY - "$T/nb05" "$OUT/notebook05_epochs.json" >>"$OUT/summary.txt" 2>>"$LOG" <<'EOF'
import json, sys
from pathlib import Path
from wttm_core.engine import read_jsonl
work, dst = Path(sys.argv[1]), Path(sys.argv[2])
keys = ("epoch", "train_seconds", "eval_seconds", "images_per_s", "test_acc")
runs = {str(path.parent.relative_to(work)): [{k: row.get(k) for k in keys} for row in read_jsonl(path)]
        for path in sorted(work.rglob("metrics.jsonl"))}
results = work / "results" / "results.json"
record = {"runs": runs, "results": json.loads(results.read_text()) if results.exists() else None}
dst.write_text(json.dumps(record, indent=2))
for name, epochs in runs.items():
    seconds = " ".join(f"{e['train_seconds']:.2f}" for e in epochs)
    print(f"  {name:<60} train s/epoch: {seconds}; last test acc {epochs[-1]['test_acc']:.2f}")
EOF

# 4. per-step table (same machine, same run)
timeout 80 $PY benchmarks/train_step.py --device "$DEVICE" --steps "$STEPS" --warmup 20 --train-size 16384 \
  --num-workers "$WORKERS" --json "$OUT/steps.json" >"$T/steps.log" 2>&1
log "steps mode rc=$?"
cat "$T/steps.log" >>"$LOG"
tail -n 8 "$T/steps.log" >>"$OUT/summary.txt"

# 5. the CUDA path of the engine through the CLI (tiny sizes)
C="--dataset synthetic --train-size 1024 --test-size 512 --batch-size 64 --device $DEVICE --quiet"
timeout 45 $W train-teacher $C --arch resnet20 --epochs 2 --out "$T/t" >>"$LOG" 2>&1
log "train-teacher rc=$? $(tr -d '\n ' <"$T/t/summary.json" 2>/dev/null | cut -c1-160)"
for amp in bf16 fp16 off; do
  timeout 35 $W distill $C --teacher resnet20 --teacher-checkpoint "$T/t/checkpoint.pth" --student resnet8 \
    --method wttm --gamma 0.3 --beta 1.5 --seed 7 --deterministic --epochs 2 --amp "$amp" --out "$T/s_$amp" \
    >>"$LOG" 2>&1
  log "distill amp=$amp rc=$? last: $(tail -1 "$T/s_$amp/metrics.jsonl" 2>/dev/null | cut -c1-300)"
done
timeout 25 $W distill $C --teacher resnet20 --teacher-checkpoint "$T/t/checkpoint.pth" --student resnet8 \
  --method wttm --gamma 0.3 --beta 1.5 --seed 7 --deterministic --epochs 2 --amp bf16 --out "$T/s_bf16" --resume \
  >>"$LOG" 2>&1
log "resume of a finished run rc=$?"
timeout 25 $W eval --arch resnet20 --checkpoint "$T/t/checkpoint.pth" --test-size 512 --device "$DEVICE" \
  >>"$OUT/summary.txt" 2>>"$LOG"
log "eval rc=$?"

cat "$OUT/summary.txt"
