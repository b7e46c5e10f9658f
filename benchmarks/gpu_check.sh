#!/usr/bin/env bash
# The GPU measurements of issue 9 (docs/benchmarks.md, "On a GPU"), as one script for a
# lent GPU machine with little time on it. Each step prints its figures as it ends.
#
#   OFFICIAL=.gpu/stylegan3 REALS=.gpu/emoji64.zip INCEPTION=.gpu/inception.pt \
#       bash benchmarks/gpu_check.sh [STEP ...]
#
# STEP is any of: env ops sg2 fused channels_last sg3 fid (default: all, in that order;
# about 12 minutes on an H100-class GPU, so on a 10-minute call run it as two calls,
# e.g. `env ops sg2 sg3` and `fid fused channels_last`).
#   OFFICIAL   a copy of NVlabs/stylegan3 (for sg2 and sg3; never committed)
#   REALS      any labelled data set zip: FID's real images (fid)
#   INCEPTION  the TF-Inception weights file, if the metrics cannot find it (fid)
#   PEAK_TFLOPS  the GPU's dense bf16/fp16 peak for the utilisation column (default 989,
#              an H100's or H200's)
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
PEAK=${PEAK_TFLOPS:-989}
SG2=(--res 256 --cfg paper256 --batch 32 --device cuda --repeats 5 --peak-tflops "$PEAK")

step() { echo; echo "=== $1 ($(date +%T))"; }
needs() { [ -n "${!1:-}" ] || { echo "gpu_check.sh: step $2 needs $1 (see the top of this script)" >&2; exit 2; }; }

STEPS=${*:-env ops sg2 fused channels_last sg3 fid}
for name in $STEPS; do
  case $name in
    env)
      step "machine"
      nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
      python3 -c "import torch, triton; print('torch', torch.__version__, 'CUDA', torch.version.cuda, 'triton', triton.__version__)" ;;
    ops)
      step "ops on each path: time and largest difference from the reference"
      python3 benchmarks/ops_speed.py --device cuda --batch 32 --channels 256 --size 64 ;;
    sg2)
      needs OFFICIAL sg2
      step "StyleGAN2 256 px, paper256, batch 32: ours vs the official code"
      python3 benchmarks/train_speed.py "${SG2[@]}" --vs-official "$OFFICIAL" ;;
    fused)
      step "StyleGAN2 256 px, CSTYLEGAN_OPS=fused (ours)"
      CSTYLEGAN_OPS=fused python3 benchmarks/train_speed.py "${SG2[@]}" ;;
    channels_last)
      step "StyleGAN2 256 px, --channels-last (ours)"
      python3 benchmarks/train_speed.py "${SG2[@]}" --channels-last ;;
    sg3)
      needs OFFICIAL sg3
      step "StyleGAN3-T 256 px, batch 32: ours vs the official code"
      python3 benchmarks/train_speed.py --res 256 --cfg stylegan3-t --batch 32 --device cuda --repeats 3 \
        --peak-tflops "$PEAK" --vs-official "$OFFICIAL" ;;
    fid)
      needs REALS fid
      step "FID of 50k generated 256 px images"
      python3 benchmarks/metrics_speed.py --data "$REALS" --num-gen 50000 --res 256 --cfg paper256 \
        --device cuda --batch 250 ${INCEPTION:+--inception "$INCEPTION"} ;;
    *)
      echo "gpu_check.sh: unknown step '$name'; choose from env ops sg2 fused channels_last sg3 fid" >&2
      exit 2 ;;
  esac
done
