#!/usr/bin/env bash
# Every GPU check of crossframe in one command, for a session that is lent a GPU machine:
#
#   bash benchmarks/gpu_check.sh [--out DIR] [--data-dir DIR] [--device gpu|cpu] [--dry-run]
#
# runs, one after the other, each under a time limit so the whole stays under 8 minutes:
#   1. pytest -m gpu                                              (the tests that need a GPU)
#   2. crossframe parity --device gpu --tf32 off                  (every backend against the float64 reference)
#   3. crossframe parity --device gpu --tf32 default              (the frameworks' own TF32 defaults)
#   4. crossframe bench --device gpu --backends torch,jax --models mlp,cnn --batch-sizes 64
# and writes everything under one results folder (default benchmarks/results/gpu-check-<date>): each
# command's output (<n>-<name>.txt), parity's JSON, bench's bench.json and bench.md, and summary.txt
# (each command, its exit code and seconds). A command that fails does not stop the others; the script
# exits 1 if any failed.
#
# --dry-run runs the same commands at toy sizes (one model, 2 steps, 512 images, no references), so
# that with --device cpu the script is exercised on a machine without a GPU (tests/test_gpu_check.py).
# --data-dir: where the Fashion-MNIST files are (a GPU machine has no network: copy them along).
set -uo pipefail
cd "$(dirname "$0")/.."

device=gpu
dry_run=0
out=""
data_dir=()
while [ $# -gt 0 ]; do
    case "$1" in
        --device) device="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --data-dir) data_dir=(--data-dir "$2"); shift 2 ;;
        --dry-run) dry_run=1; shift ;;
        -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "gpu_check.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
case "$device" in gpu|cpu) ;; *) echo "gpu_check.sh: --device must be gpu or cpu, got $device" >&2; exit 2 ;; esac
out="${out:-benchmarks/results/gpu-check-$(date -u +%Y%m%d-%H%M)}"
mkdir -p "$out" || exit 2

if [ "$dry_run" = 1 ]; then
    parity_size=(--models softmax --steps 2 --backends torch)
    bench_size=(--models mlp --limit-train 512 --references none)
    limit=120
else
    parity_size=()
    bench_size=(--models mlp,cnn)
    limit=150
fi

python=${PYTHON:-python3}
summary="$out/summary.txt"
: > "$summary"
failed=0
step=0

run() {  # run NAME SECONDS COMMAND...: its output to $out/<n>-NAME.txt, a line in summary.txt
    local name=$1 seconds=$2
    shift 2
    step=$((step + 1))
    local log="$out/$step-$name.txt" start=$SECONDS code
    echo "== $step. $*" | tee "$log"
    timeout "$seconds" "$@" >>"$log" 2>&1
    code=$?
    tail -n 3 "$log"
    [ "$code" = 0 ] || failed=1
    printf '%s\texit %s\t%s s\t%s\n' "$name" "$code" "$((SECONDS - start))" "$*" | tee -a "$summary"
}

{ echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ), device $device$([ "$dry_run" = 1 ] && echo ', dry run')"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
} >>"$summary"

run pytest-gpu "$limit" "$python" -m pytest -m gpu -q -p no:cacheprovider
run parity-tf32-off "$limit" "$python" -m crossframe parity --device "$device" --tf32 off "${parity_size[@]}" \
    "${data_dir[@]}" --no-download --json "$out/parity-tf32-off.json"
run parity-tf32-default "$limit" "$python" -m crossframe parity --device "$device" --tf32 default "${parity_size[@]}" \
    "${data_dir[@]}" --no-download --json "$out/parity-tf32-default.json"
run bench "$((limit * 2))" "$python" -m crossframe bench --device "$device" --backends torch,jax --batch-sizes 64 \
    "${bench_size[@]}" "${data_dir[@]}" --no-download --out "$out/bench"

echo "results in $out"
exit "$failed"
