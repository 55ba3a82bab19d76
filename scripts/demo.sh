#!/usr/bin/env bash
# Set up (if needed), make a 10-second black-and-white sample film and colorize it with the
# shipped model on the embedded default: local folder store, local Ray, local Prefect.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p out
.venv/bin/vidcolor sample out/sample.mp4 --seconds 10
.venv/bin/vidcolor colorize out/sample.mp4 -o out/sample-colour.mp4 "$@"
