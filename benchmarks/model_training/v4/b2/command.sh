#!/bin/bash
# recipe B2: v3's decoder, context and head continued on train/ + imagenette (half each), encoder frozen, step-based
cd "$(git rev-parse --show-toplevel)"
export PYTHONPATH=$PWD OMP_NUM_THREADS=2 MKL_NUM_THREADS=2
exec nice -n 5 .venv/bin/vidcolor train ../shared/data/images/train \
  --extra ../shared/data/images/extra/imagenette --extra-weight 0.5 \
  -o /tmp/v4_runs/b2 --val ../shared/data/images/val \
  --cache-size 160 --crop 160 --ema 0.998 --ckpt-every 100 \
  --steps 800,60,120 --minutes 0,0,0 \
  --init vidcolor/weights/generator.safetensors --train-encoder-from 17 --lr 1e-4 \
  --decoding-from vidcolor/weights/generator.safetensors --precision bf16
