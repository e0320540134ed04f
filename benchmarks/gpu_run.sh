#!/usr/bin/env bash
# One prepared script for a (rarely available, time-limited) GPU machine: times both pipelines on full epochs of
# the 50,000-image synthetic set (issue 4), checks the engine's CUDA path through the command line, prints the
# per-step table, then runs notebook 05's gpu-paper recipe for a few epochs per method (issue 6). Every result
# lands in $OUT; the last lines print a summary. About 8 minutes on an H100.
#
#   OUT=build/gpu benchmarks/gpu_run.sh                 # on the GPU machine, from the repository root
#   DEVICE=cpu TRAIN=512 STEPS=3 OUT=/tmp/g benchmarks/gpu_run.sh   # rehearsal on a CPU
set -u
DEVICE=${DEVICE:-cuda}
TRAIN=${TRAIN:-50000}
STEPS=${STEPS:-200}
WORKERS=${WORKERS:-8}
OUT=${OUT:-build/gpu}
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PY=${PY:-python3}
W="$PY -m wttm_core.cli"
log() { echo "== $(date +%T) $*" | tee -a "$OUT/summary.txt"; }

log "machine: $(nvidia-smi -L 2>/dev/null | head -1); $($PY -c 'import torch; print("torch", torch.__version__)')"
# the GPU image has torch but maybe not tqdm / PyYAML: install them from wheels carried in .whl/ if needed
$PY -c "import tqdm, yaml" 2>/dev/null || $PY -m pip install -q --no-index --find-links .whl tqdm pyyaml >/dev/null 2>&1

# 1. full epochs: reference-style pipeline vs the engine (the issue's GPU measurement)
timeout 300 $PY benchmarks/train_step.py --device "$DEVICE" --epoch-mode --epochs 2 --train-size "$TRAIN" \
  --num-workers "$WORKERS" --steps "$STEPS" --json "$OUT/epochs.json" >"$OUT/epochs.log" 2>&1
log "epoch mode rc=$?"
cat "$OUT/epochs.log" | tee -a "$OUT/summary.txt" | tail -n 20 >/dev/null

# 2. the CUDA path of the engine, through the CLI (tiny sizes)
T="${TMPDIR:-/tmp}/wttm_cli"
rm -rf "$T"
C="--dataset synthetic --train-size 1024 --test-size 512 --batch-size 64 --device $DEVICE --quiet"
timeout 120 $W train-teacher $C --arch resnet20 --epochs 2 --out "$T/t" >"$OUT/cli.log" 2>&1
log "train-teacher rc=$? $(cat "$T/t/summary.json" 2>/dev/null | tr -d '\n ' | cut -c1-200)"
for amp in bf16 fp16 off; do
  timeout 45 $W distill $C --teacher resnet20 --teacher-checkpoint "$T/t/checkpoint.pth" --student resnet8 \
    --method wttm --gamma 0.3 --beta 1.5 --seed 7 --deterministic --epochs 2 --amp "$amp" --out "$T/s_$amp" \
    >>"$OUT/cli.log" 2>&1
  log "distill amp=$amp rc=$? last line: $(tail -1 "$T/s_$amp/metrics.jsonl" 2>/dev/null | cut -c1-400)"
done
timeout 30 $W distill $C --teacher resnet20 --teacher-checkpoint "$T/t/checkpoint.pth" --student resnet8 \
  --method wttm --gamma 0.3 --beta 1.5 --seed 7 --deterministic --epochs 2 --amp bf16 --out "$T/s_bf16" --resume \
  >>"$OUT/cli.log" 2>&1
log "resume of a finished run rc=$?"
timeout 30 $W eval --arch resnet20 --checkpoint "$T/t/checkpoint.pth" --test-size 512 --device "$DEVICE" \
  >>"$OUT/summary.txt" 2>>"$OUT/cli.log"
log "eval rc=$?"

# 3. per-step table (same machine, same run)
timeout 120 $PY benchmarks/train_step.py --device "$DEVICE" --steps "$STEPS" --warmup 20 --train-size 16384 \
  --num-workers "$WORKERS" --json "$OUT/steps.json" >"$OUT/steps.log" 2>&1
log "steps mode rc=$?"
tail -n 8 "$OUT/steps.log" | tee -a "$OUT/summary.txt" >/dev/null

# 4. notebook 05's gpu-paper recipe (issue 6): a resnet56 teacher, then KD / TTM / WTTM resnet20 students
timeout 420 $PY -m wttm_core.experiments.students --profile gpu-paper --dataset synthetic --device "$DEVICE" \
  --teacher train:resnet56 --teacher-epochs "${EPOCHS05:-3}" --epochs "${EPOCHS05:-3}" --seeds 0 \
  --train-size "$TRAIN" --quiet --out "$T/gpu05" --json "$OUT/gpu05_students.json" >"$OUT/gpu05.log" 2>&1
log "notebook 05 gpu-paper rc=$?"
tail -n 8 "$OUT/gpu05.log" | tee -a "$OUT/summary.txt" >/dev/null

cat "$OUT/summary.txt"
