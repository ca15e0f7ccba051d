#!/usr/bin/env bash
# The GPU path checked in one command (issue 11): on a GPU machine, within 8 minutes, offline.
#
#   benchmarks/gpu_check.sh              # results in $OUT when set, else benchmarks/output/gpu_check/
#   benchmarks/gpu_check.sh --dry-run    # the same parts at toy sizes on the CPU (about two minutes)
#
# Parts, in order, each under its own time limit (`timeout`); a part that fails or runs out of time is
# recorded and the next one runs; the whole stays under a deadline (GPU_CHECK_BUDGET_S, default 470 s):
#   env      GPU, driver, torch/CUDA versions, the Python packages the project needs
#   tests    the test suite with CUDA visible (pytest -n 14 -v: per-test outcomes even when cut short)
#   train    training-step table: paper and tiny presets, batch 1..64, plain and channels-last (bf16 autocast),
#            s/step, samples/s, peak GPU memory, GB per sample, the batch that fills the card, TFLOP/s
#   extract  descriptor-extraction table at 256 and 64 px, batch 64: MDUIT z vs NetVLAD VGG-16 (bf16)
#   table1   a step-budgeted Table 1 (mduit-loc table1) on the `small` synthetic benchmark (rendered with
#            --workers 16 while the benchmarks run)
#   compile  the paper preset's training step with --set compile_model=true (inductor), time permitting
# Results: at most 8 files (what the device tool brings back): summary.md (statuses and all tables),
# env.txt, tests.log, bench.log, bench_train.json, bench_extract.json, table1.log, table1.md.
#
# Offline: packages the GPU image lacks (faiss-cpu, pycolmap, numpy-quaternion) are installed from wheels in
# $MDUIT_WHEELS, .whl/ or shared/wheels (pip --no-index --target), when they cannot be imported. On this
# workplace's device tool:   run(command="bash benchmarks/gpu_check.sh", carry=[".whl"], timeout_s=560)
# after, here:  echo /.whl/ >> .git/info/exclude; python3 -m pip download --no-deps --only-binary=:all: \
#   --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
#   --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl \
#   faiss-cpu==1.15.1 pycolmap==4.2.1 numpy-quaternion==2024.0.13        (57 MB; the tree may carry 64 MiB)
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 2
DRY=0
[ "${1:-}" = "--dry-run" ] && DRY=1
RESULTS=${OUT:-$ROOT/benchmarks/output/gpu_check$([ $DRY = 1 ] && echo _dry_run)}
WORK=${GPU_CHECK_WORK:-${TMPDIR:-/tmp}/mduit_gpu_check}
BUDGET=${GPU_CHECK_BUDGET_S:-470}
mkdir -p "$RESULTS" "$WORK" || exit 2
START=$(date +%s)
SUMMARY=$RESULTS/summary.md
STATUS=$WORK/status.md
: > "$STATUS"
rm -f "$WORK"/bench_*.md "$WORK/synth.log"   # tables of an earlier run never pass for this one's
export PYTHONUNBUFFERED=1 OMP_WAIT_POLICY=PASSIVE MPLBACKEND=Agg

if [ -n "${PYTHON:-}" ]; then PY=$PYTHON
elif [ -x "$ROOT/.venv/bin/python" ] && "$ROOT/.venv/bin/python" -c "import torch" 2>/dev/null; then PY=$ROOT/.venv/bin/python
else PY=python3
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

elapsed() { echo $(( $(date +%s) - START )); }

# part NAME LIMIT_S LOG COMMAND...: run under min(LIMIT, time left), log, record the outcome
part() {
    local name=$1 limit=$2 log=$3; shift 3
    local left=$(( BUDGET - $(elapsed) - 5 ))
    [ "$limit" -gt "$left" ] && limit=$left
    if [ "$limit" -lt 15 ]; then
        echo "| $name | skipped: $(elapsed) s of the ${BUDGET} s budget spent | 0 |" >> "$STATUS"
        echo "== $name: skipped (budget spent)"
        return 0
    fi
    echo "== $name (at most ${limit} s) -> $(basename "$log")"
    local began=$(date +%s)
    { echo "\$ $*"; echo; } >> "$log"
    timeout --kill-after=10 "$limit" "$@" >> "$log" 2>&1
    local rc=$? took=$(( $(date +%s) - began )) outcome
    case $rc in
        0) outcome="ok";;
        124|137) outcome="TIMED OUT after ${limit} s";;
        *) outcome="FAILED (exit $rc)";;
    esac
    echo "| $name | $outcome | $took |" >> "$STATUS"
    echo "   $name: $outcome (${took} s)"
    return 0
}

# --- env and offline packages ---------------------------------------------------------------------
ENV_TXT=$RESULTS/env.txt
{
    echo "date: $(date -u +%FT%TZ)   dry run: $DRY   python: $PY"
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    nproc; free -g 2>/dev/null | head -2
} > "$ENV_TXT" 2>&1
if ! "$PY" -c "import faiss, pycolmap, quaternion" 2>/dev/null; then
    for dir in "${MDUIT_WHEELS:-}" "$ROOT/.whl" "$ROOT/shared/wheels"; do
        if [ -n "$dir" ] && ls "$dir"/*.whl >/dev/null 2>&1; then
            echo "installing $(ls "$dir"/*.whl | wc -l) wheel(s) from $dir into $WORK/site" >> "$ENV_TXT"
            "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
                --target "$WORK/site" "$dir"/*.whl >> "$ENV_TXT" 2>&1
            export PYTHONPATH="$PYTHONPATH:$WORK/site"
            break
        fi
    done
fi
"$PY" - >> "$ENV_TXT" 2>&1 <<'EOF'
import importlib, sys
import torch
print("python", sys.version.split()[0], "| torch", torch.__version__, "| CUDA", torch.version.cuda,
      "| cuDNN", torch.backends.cudnn.version(), "| GPU:", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none")
for name in ("numpy", "faiss", "pycolmap", "quaternion", "h5py", "scipy", "skimage", "triton"):
    try:
        module = importlib.import_module(name)
        print(f"  {name} {getattr(module, '__version__', '?')}")
    except Exception as err:
        print(f"  {name} MISSING ({type(err).__name__}: {err})")
EOF
echo "| env | ok | $(elapsed) |" >> "$STATUS"
cat "$ENV_TXT"

if [ $DRY = 1 ]; then
    DEVICE=cpu; WORKERS=2; SYNTH_PRESET=tiny; SYNTH_SIZE=(--size 64 --locations 2)
    STEPS="--mduit-steps 2 --netvlad-steps 2"
    TESTS=(tests/nn tests/translation/test_chunked_step.py tests/retrieval/test_retrieval_inputs_and_translation.py)
    PYTEST_WORKERS=2
    TRAIN_ARGS=(--dry-run --presets tiny paper --variants plain --batches 1 2)
    EXTRACT_ARGS=(--dry-run --variants plain channels_last)
    COMPILE_ARGS=(--dry-run --presets tiny --variants compile --batches 1)
    export MDUIT_COMPILE_BACKEND=${MDUIT_COMPILE_BACKEND:-aot_eager}   # inductor on a CPU: minutes
else
    DEVICE=cuda; WORKERS=16; SYNTH_PRESET=small; SYNTH_SIZE=()
    STEPS="--mduit-steps 200 --netvlad-steps 400"
    TESTS=(tests)
    PYTEST_WORKERS=14
    TRAIN_ARGS=(--presets paper tiny --batches 1 8 32 64 --preset-batches tiny=8,64 --variants plain channels_last
                --seconds 2)
    EXTRACT_ARGS=(--sizes 256 64 --batches 64 --variants plain channels_last --seconds 2.5)
    COMPILE_ARGS=(--presets paper --variants compile --batches 8 --seconds 2.5)
fi

# --- the test suite with CUDA visible ------------------------------------------------------------
part tests 120 "$RESULTS/tests.log" "$PY" -m pytest -v -n "$PYTEST_WORKERS" -p no:cacheprovider --durations=15 \
    "${TESTS[@]}"

# --- the synthetic benchmark renders on the CPU while the GPU benchmarks run ---------------------------
SYN=$WORK/syn_$SYNTH_PRESET$([ $DRY = 1 ] && echo _dry_run)
SYNTH_LOG=$WORK/synth.log
if [ -f "$SYN/synth.json" ]; then
    echo "reusing $SYN" > "$SYNTH_LOG"; SYNTH_PID=""
else
    rm -rf "$SYN"
    timeout 240 "$PY" -m mduit_loc.cli synth --out "$SYN" --preset "$SYNTH_PRESET" "${SYNTH_SIZE[@]}" \
        --workers "$WORKERS" --quiet > "$SYNTH_LOG" 2>&1 &
    SYNTH_PID=$!
fi
SYNTH_BEGAN=$(date +%s)

# --- throughput tables -----------------------------------------------------------------------------
BENCH_LOG=$RESULTS/bench.log
part train 100 "$BENCH_LOG" "$PY" benchmarks/throughput.py train --device "$DEVICE" "${TRAIN_ARGS[@]}" \
    --json "$RESULTS/bench_train.json" --markdown "$WORK/bench_train.md"
part extract 50 "$BENCH_LOG" "$PY" benchmarks/throughput.py extract --device "$DEVICE" "${EXTRACT_ARGS[@]}" \
    --json "$RESULTS/bench_extract.json" --markdown "$WORK/bench_extract.md"

# --- Table 1, step-budgeted, on the small synthetic benchmark ----------------------------------------
if [ -n "$SYNTH_PID" ]; then
    while kill -0 "$SYNTH_PID" 2>/dev/null && [ $(( BUDGET - $(elapsed) )) -gt 30 ]; do sleep 1; done
    kill "$SYNTH_PID" 2>/dev/null   # still rendering with the budget spent: table1 is skipped below
    wait "$SYNTH_PID"; SYNTH_RC=$?
    echo "| synth ($SYNTH_PRESET, --workers $WORKERS, beside the benchmarks) | $([ $SYNTH_RC = 0 ] && echo ok || echo "FAILED (exit $SYNTH_RC)") | $(( $(date +%s) - SYNTH_BEGAN )) |" >> "$STATUS"
fi
rm -rf "$WORK/table1"
if [ -f "$SYN/synth.json" ]; then
    part table1 120 "$RESULTS/table1.log" "$PY" -m mduit_loc.cli table1 --data "$SYN" --out "$WORK/table1" $STEPS \
        --device "$DEVICE" --num-workers "$WORKERS" --no-progress
else
    echo "| table1 | skipped: no rendered benchmark (see the synth row) | 0 |" >> "$STATUS"
fi
[ -f "$WORK/table1/table1.md" ] && cp "$WORK/table1/table1.md" "$RESULTS/table1.md"

# --- torch.compile, with what time is left ----------------------------------------------------------
part compile 100 "$BENCH_LOG" "$PY" benchmarks/throughput.py train --device "$DEVICE" "${COMPILE_ARGS[@]}" \
    --markdown "$WORK/bench_compile.md"

# --- summary ---------------------------------------------------------------------------------------------
{
    echo "# GPU check ($(date -u +%FT%TZ), $(elapsed) s$([ $DRY = 1 ] && echo ', DRY RUN on the CPU'))"
    echo
    echo '```'; cat "$ENV_TXT"; echo '```'
    echo
    echo "| part | outcome | seconds |"; echo "|---|---|---|"; cat "$STATUS"
    echo
    echo "## tests"; echo
    echo '```'
    grep -E "^(FAILED|ERROR) " "$RESULTS/tests.log" 2>/dev/null | head -60
    grep -E "(passed|failed|error)(,| in )" "$RESULTS/tests.log" 2>/dev/null | tail -1
    echo "(outcomes seen: $(grep -cE ' PASSED ' "$RESULTS/tests.log" 2>/dev/null) passed, $(grep -cE ' FAILED ' "$RESULTS/tests.log" 2>/dev/null) failed)"
    echo '```'
    for table in bench_train bench_extract bench_compile; do
        [ -f "$WORK/$table.md" ] && { echo; echo "## $table"; cat "$WORK/$table.md"; }
    done
    echo; echo "## table1 (step-budgeted: $STEPS)"; echo
    if [ -f "$RESULTS/table1.md" ]; then cat "$RESULTS/table1.md"; else echo "no table (see table1.log)"; tail -20 "$RESULTS/table1.log" 2>/dev/null; fi
    echo; echo "## synth log (tail)"; echo '```'; tail -5 "$SYNTH_LOG" 2>/dev/null; echo '```'
} > "$SUMMARY"
echo "== done in $(elapsed) s: $SUMMARY"
cat "$STATUS"
