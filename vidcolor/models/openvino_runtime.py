"""The generator's networks run by OpenVINO on a CPU.

OpenVINO's CPU plugin runs this generator about 2.4x faster than torch fp32 on the same cores
(docs/performance.md). Four networks are exported: the per-frame network (encoder, bottleneck,
spatial attention: the encoder's grey input -> 1/32 features and the skips the decoder reads), the
temporal block at the weights' own radius, the bins head's decoder (features after the temporal
block + skips -> bins logits) and the decoding of the bins (always fp32). The GanColorizer calls
them where it called torch, so its streaming over a sequence (the temporal block's neighbours
come from the batches around) and its reference palettes (a logit bias, an input of the decoding)
work unchanged; the grey input and the guided upsampling stay in torch.

The networks are exported to ONNX once per weights file (about a second) and cached under
vidcolor's cache folder, with OpenVINO's compiled blobs beside them.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from vidcolor.models.runtime_choice import available, int8_wanted, malloc_preloaded, runtime_choice

log = logging.getLogger(__name__)


def networks_for(gen, identity: str, device: str, bf16: bool,
                 int8_quantisers: Path | None = None) -> "OpenVinoNetworks | None":
    """OpenVINO's networks for a CPU colorizer with a bins head where OpenVINO is installed, else
    None (torch runs it). VIDCOLOR_RUNTIME=torch turns it off; =openvino makes any failure an error,
    where by default a failure to export or compile is logged and torch runs the network.
    ``int8_quantisers``: the head decoder's (vidcolor.models.int8_head), used in bf16 where the file
    exists."""
    choice = runtime_choice()
    if choice == "torch" or not device.startswith("cpu") or gen.config.head != "bins":
        return None
    if choice == "openvino" and not available():
        raise RuntimeError("VIDCOLOR_RUNTIME=openvino but the openvino package is not installed")
    if not available():
        return None
    preloaded = malloc_preloaded()
    if preloaded:
        # OpenVINO's compile aborts the whole process under a preloaded malloc (its TBB binding
        # frees with glibc what the other allocator gave: OpenVINO issue 29025, oneTBB issue 1645)
        if choice == "openvino":
            raise RuntimeError(f"VIDCOLOR_RUNTIME=openvino cannot run with LD_PRELOAD={preloaded}: "
                               "OpenVINO aborts under a replaced malloc; unset LD_PRELOAD")
        log.warning("LD_PRELOAD=%s replaces malloc, under which OpenVINO aborts; torch runs the network", preloaded)
        return None
    try:
        return OpenVinoNetworks(gen, identity, bf16, int8_quantisers=int8_quantisers)
    except Exception as e:  # noqa: BLE001 - any failure: torch is always there to run the network
        if choice == "openvino":
            raise
        log.warning("OpenVINO could not take the generator (%s: %s); torch runs it", type(e).__name__, e)
        return None


class _PerFrame(torch.nn.Module):
    def __init__(self, gen):
        super().__init__()
        self.gen = gen

    def forward(self, gray):
        x, skips = self.gen.per_frame_gray(gray)
        named = dict(zip(("f2", "f4", "f8", "f16"), skips))
        return (x,) + tuple(named[k] for k in self.gen.head_skips)


class _Temporal(torch.nn.Module):
    def __init__(self, gen):
        super().__init__()
        self.gen = gen

    def forward(self, x):
        return self.gen.temporal32(x, self.gen.temporal_radius)


class _DecodeBins(torch.nn.Module):
    def __init__(self, gen):
        super().__init__()
        self.gen = gen

    def forward(self, logits, logit_bias):
        return self.gen.decode_logits(logits, logit_bias=logit_bias)


class _HeadLogits(torch.nn.Module):
    def __init__(self, gen):
        super().__init__()
        self.gen = gen

    def forward(self, x, *skips):
        return self.gen.head_logits(x, skips)


NETWORKS = ("per_frame", "temporal", "head_logits", "decode_bins")
EXPORT_VERSION = 1  # bump when what the files hold changes: a cache of an older layout is not read


def _exported(gen, identity: str, cache: Path) -> dict[str, Path]:
    """The four networks as ONNX files (any batch and size), exported once per weights identity.
    ONNX read by OpenVINO's runtime, rather than OpenVINO's own model converter: the converter sends
    usage telemetry over the network unless told not to, and vidcolor never talks to the network."""
    import warnings

    folder = cache / f"{identity}-torch{torch.__version__.split('+')[0]}-v{EXPORT_VERSION}"
    files = {name: folder / f"{name}.onnx" for name in NETWORKS}
    if all(f.exists() for f in files.values()):
        return files
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=cache))
    try:
        gray = torch.rand(4, 1, 2 * 32, 3 * 32) * 2 - 1
        skips = list(gen.head_skips)
        dims = {name: {0: "n", 2: f"h_{name}", 3: f"w_{name}"} for name in ["gray", "x", "logits"] + skips}
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes on Python ints it folds

            def export(name, module, args, inputs, outputs):
                torch.onnx.export(module, args, str(tmp / files[name].name),
                                  dynamo=False, input_names=inputs, output_names=outputs,
                                  dynamic_axes={k: dims[k] for k in inputs + outputs if k in dims})

            outs = _PerFrame(gen)(gray)
            logits = _HeadLogits(gen)(*outs)
            bias = torch.zeros(gen.bin_centres.shape[0])
            export("per_frame", _PerFrame(gen), (gray,), ["gray"], ["x"] + skips)
            export("temporal", _Temporal(gen), (outs[0],), ["x"], ["y"])
            export("head_logits", _HeadLogits(gen), tuple(outs), ["x"] + skips, ["logits"])
            export("decode_bins", _DecodeBins(gen), (logits, bias), ["logits", "logit_bias"], ["ab"])
        try:
            os.rename(tmp, folder)  # atomic; a process exporting at the same time loses the race harmlessly
        except OSError:  # there already: complete (another process won), or a leftover to replace
            if not all(f.exists() for f in files.values()):
                shutil.rmtree(folder, ignore_errors=True)
                os.rename(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return files


class OpenVinoNetworks:
    """The generator's networks compiled for this CPU; torch tensors in and out (fp32). The bins
    distribution is always decoded in fp32: in bf16 ab would be off by up to half a unit, enough
    to band smooth gradients."""

    def __init__(self, gen, identity: str, bf16: bool, threads: int | None = None, cache: Path | None = None,
                 int8_quantisers: Path | None = None):
        import openvino as ov

        from vidcolor.store.base import cache_root

        try:
            files = _exported(gen, identity, cache or cache_root() / "openvino")
        except OSError:  # a read-only or full cache folder: export for this process alone
            self._scratch = tempfile.TemporaryDirectory(prefix="vidcolor-openvino-")
            files = _exported(gen, identity, Path(self._scratch.name))
        core = ov.Core()
        # compiled networks are cached beside the exported ones: a later load skips the compile
        core.set_property({"CACHE_DIR": str(files["per_frame"].parent / "compiled")})
        config = {"INFERENCE_PRECISION_HINT": "bf16" if bf16 else "f32", "PERFORMANCE_HINT": "LATENCY",
                  "INFERENCE_NUM_THREADS": int(threads or torch.get_num_threads())}
        models = {name: core.read_model(str(path)) for name, path in files.items()}
        wanted = int8_wanted()  # checked whatever the precision: a misspelt setting is an error, not ignored
        self.int8_head = bool(wanted and bf16 and int8_quantisers is not None and int8_quantisers.is_file())
        if self.int8_head:
            from vidcolor.models.int8_head import apply_quantisers

            try:
                apply_quantisers(models["head_logits"], int8_quantisers, identity)
            except (ValueError, OSError) as e:
                log.warning("the head decoder runs in bf16: %s", e)
                self.int8_head = False
        compiled = {name: core.compile_model(model, "CPU",
                                             dict(config, INFERENCE_PRECISION_HINT="f32") if name == "decode_bins" else config)
                    for name, model in models.items()}
        self._per_frame, self._temporal, self._head, self._decode = (compiled[n] for n in NETWORKS)
        self.precision = "bf16" if bf16 else "fp32"
        self.encoder_input = gen.encoder_input
        self.temporal_radius = gen.temporal_radius
        self.no_bias = np.zeros(gen.bin_centres.shape[0], np.float32)

    def per_frame(self, lightness: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        # the grey input in fp32 here: under a bf16 hint OpenVINO would compute the sRGB curve in
        # bf16, which moved the encoder's features 2-3x as far as torch's bf16 does
        out = self._per_frame([_array(self.encoder_input(lightness.float()))])
        x, *skips = (torch.from_numpy(out[i]) for i in range(len(self._per_frame.outputs)))
        return x, tuple(skips)

    def temporal(self, x: torch.Tensor) -> torch.Tensor:
        """The temporal block at the weights' own radius."""
        return torch.from_numpy(self._temporal([_array(x)])[0])

    def head_logits(self, x: torch.Tensor, skips: tuple[torch.Tensor, ...]) -> torch.Tensor:
        out = self._head([_array(x)] + [_array(s) for s in skips])
        return torch.from_numpy(out[0])

    def decode_bins(self, logits: torch.Tensor, logit_bias: torch.Tensor | None) -> torch.Tensor:
        """Logits -> ab at their resolution (Generator.decode_logits with the config's decoding)."""
        bias = self.no_bias if logit_bias is None else _array(logit_bias)
        return torch.from_numpy(self._decode([_array(logits), bias])[0])


def _array(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().float().cpu().numpy())
