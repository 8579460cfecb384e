#!/usr/bin/env bash
# Part B of the speed issue (issue 16) on a lent GPU machine, as one prepared command:
#
#     run(command="bash benchmarks/gpu_part_b.sh", timeout_s=560)
#
# It uses the machine's own python3 (torch, triton, scipy, h5py, scikit-image and pytest
# are there; nothing is installed) with this checkout on PYTHONPATH, and writes one file
# per step to $OUT (./gpu-out off the device tool), each step under its own time limit so
# that a hang in one leaves the others. On a machine without CUDA it runs the same steps
# on small budgets (REPEATS=1): a check of the script, not a measurement.
#
#   gpu.txt          nvidia-smi: the GPU model, memory and driver
#   kernel_tests.txt the kernel tests, CUDA cases included (fused == native)
#   kernels.md       benchmarks/kernels.py --quick: fused (libdevice and fast sin/cos)
#                    vs eager vs torch.compile, bandwidth and sin/cos rate against the
#                    device's measured limits (the fast sin/cos loop's rate beside them)
#   derivatives.md   the training-step table: the jet on the Triton kernels and on the
#                    compiled backend (Inductor) vs reverse-over-reverse, forward-over-
#                    reverse, vmap(hessian) and the whole loss compiled, peak memory
#   wave1d.md        a whole Wave1D training step, SIREN 128x4, batch 8192, per engine
set -u
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PY=${PY:-python3}
if $PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    REPEATS=${REPEATS:-11}
else
    REPEATS=${REPEATS:-1}
    echo "no CUDA device: checking the script on small budgets" | tee "$OUT/gpu.txt"
fi
step() {  # step SECONDS FILE COMMAND...: run COMMAND with a time limit, output to $OUT/FILE
    local limit=$1 file=$2; shift 2
    echo "== $file ($limit s): $*"
    timeout "$limit" "$@" > "$OUT/$file" 2>&1
    echo "   exit $? after $SECONDS s in all"
}
command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm \
    --format=csv > "$OUT/gpu.txt" 2>&1
step 150 kernel_tests.txt $PY -m pytest -q -p no:cacheprovider tests/test_kernels.py
step 170 kernels.md $PY benchmarks/kernels.py --quick
step 120 derivatives.md $PY benchmarks/derivatives.py --repeats "$REPEATS" \
    --engines jet,jet-compiled,autograd,fwdrev,hessian,jet+compile
step 90 wave1d.md $PY benchmarks/derivatives.py --problems --only wave1d --width 128 --depth 4 --points 8192 \
    --repeats "$REPEATS" --engines jet,jet-compiled,autograd,func,jet+compile
tail -n 40 "$OUT"/*.md
