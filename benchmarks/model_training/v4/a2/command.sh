#!/bin/bash
# recipe A2: v3 continued on train/ + imagenette (half of each batch), upper encoder blocks fine-tuned, low LR, step-based
cd "$(git rev-parse --show-toplevel)"
export PYTHONPATH=$PWD OMP_NUM_THREADS=2 MKL_NUM_THREADS=2
exec nice -n 5 .venv/bin/vidcolor train ../shared/data/images/train \
  --extra ../shared/data/images/extra/imagenette --extra-weight 0.5 \
  -o /tmp/v4_runs/a2 --val ../shared/data/images/val \
  --cache-size 160 --crop 160 --ema 0.998 --ckpt-every 100 \
  --steps 2000,100,200 --minutes 0,0,0 \
  --init vidcolor/weights/generator.safetensors --train-encoder-from 7 --encoder-lr 2e-5 --lr 5e-5 \
  --decoding-from vidcolor/weights/generator.safetensors --precision bf16
