#!/usr/bin/env bash
# Set up vidcolor on a Debian machine: system packages (Debian), a virtual environment in .venv,
# the project and its tools (PyPI). Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
# tcmalloc makes CPU inference up to 2.7x faster (the default allocator page-faults heavily)
ldconfig -p 2>/dev/null | grep -q libtcmalloc_minimal.so.4 || missing+=(libtcmalloc-minimal4)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "setup: installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
pip=(.venv/bin/python -m pip install -q --disable-pip-version-check)

# torch first and pinned to one release: with it in place nothing below can pull a multi-GB CUDA
# build onto a CPU machine. VIDCOLOR_TORCH_INDEX may name a wheel index that serves CPU builds.
if ! .venv/bin/python -c 'import torch, sys; sys.exit(torch.__version__.split("+")[0] != "2.13.0")' >/dev/null 2>&1; then
  echo "setup: installing torch 2.13.0"
  if [ -n "${VIDCOLOR_TORCH_INDEX:-}" ]; then
    "${pip[@]}" "torch==2.13.0" --index-url "$VIDCOLOR_TORCH_INDEX"
  else
    "${pip[@]}" "torch==2.13.0"
  fi
fi

echo "setup: installing vidcolor and its dependencies"
"${pip[@]}" -e ".[dev]" 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -c 'import vidcolor, ray, prefect, av, torch, openvino, onnx' # fail loudly if the install did not take
# PySceneDetect asks for the GUI opencv-python, which would overwrite the headless cv2: no deps.
.venv/bin/python -c 'import scenedetect' >/dev/null 2>&1 || "${pip[@]}" --no-deps "scenedetect==0.7.2"
echo "setup: done (.venv/bin/vidcolor)"
