"""What runs the generator on a CPU: OpenVINO where installed, else torch. Kept free of torch and
OpenVINO imports: the driver asks before it starts local Ray's workers."""

from __future__ import annotations

import importlib.util
import os


def runtime_choice() -> str:
    """VIDCOLOR_RUNTIME: auto (OpenVINO on a CPU where installed), torch or openvino."""
    choice = os.environ.get("VIDCOLOR_RUNTIME", "auto").lower()
    if choice not in ("auto", "torch", "openvino"):
        raise ValueError(f"VIDCOLOR_RUNTIME must be auto, torch or openvino, got {choice}")
    return choice


def int8_wanted() -> bool:
    """VIDCOLOR_INT8: auto (the int8 head decoder where its quantisers ship) or off."""
    choice = os.environ.get("VIDCOLOR_INT8", "auto").lower()
    if choice not in ("auto", "off"):
        raise ValueError(f"VIDCOLOR_INT8 must be auto or off, got {choice}")
    return choice == "auto"


def available() -> bool:
    return importlib.util.find_spec("openvino") is not None


def malloc_preloaded() -> str:
    """The LD_PRELOAD entry that replaces malloc (tcmalloc, jemalloc, mimalloc), or ""."""
    for lib in os.environ.get("LD_PRELOAD", "").replace(":", " ").split():
        if any(name in os.path.basename(lib) for name in ("tcmalloc", "jemalloc", "mimalloc")):
            return lib
    return ""


def will_run_openvino() -> bool:
    """OpenVINO will run the generator on a CPU (asked before any colorizer is loaded: the driver
    decides from it whether local Ray's workers get tcmalloc, which only torch needs)."""
    return runtime_choice() != "torch" and available()
