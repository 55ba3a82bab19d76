"""The GAN colorizer behind the ``Colorizer`` interface, and the whole-image helper.

Weights: one safetensors file holding the generator's state dict, with metadata ``name``,
``config`` (GeneratorConfig JSON, including the bins head's decoding: temperature, prior correction) and
``chroma_gain`` (a factor on the predicted ab); temperature and gain are calibrated on the
validation images after training. The shipped default is ``vidcolor/weights/generator.safetensors``
(fp16). Inference runs fp16 on CUDA; on a CPU, OpenVINO runs the heavy networks where it is
installed (vidcolor/models/openvino_runtime.py), in bf16 where the CPU computes it natively.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from vidcolor.atomic import atomic_path
from vidcolor.colorizer import Colorizer, FrameContext
from vidcolor.models import openvino_runtime
from vidcolor.models.generator import Generator, GeneratorConfig
from vidcolor.models.int8_head import quantisers_path
from vidcolor.models.weights_file import (DEFAULT_WEIGHTS, GAN_SIZE_MULTIPLE, MODEL_NAME, check_weights_file,
                                          weights_info)

# share of the training prior mixed into a reference palette: colours the reference lacks stay
# possible (a reference frame rarely shows every object of a film). Chosen by hand on cockatoo.mp4
# with its first frame as the reference: 0.1 left the colourfulness at 0.49 of the original's,
# 0.3 at 0.78. benchmarks/reference_palette.py measures the setting through the whole pipeline.
PALETTE_SMOOTHING = 0.3


def save_generator(gen: Generator, path: str | Path, chroma_gain: float = 1.0, dtype=torch.float16,
                   extra_meta: dict | None = None, temperature: float | None = None,
                   prior_correction: float | None = None) -> None:
    """Weights + metadata (name, config JSON, chroma_gain); ``temperature`` and
    ``prior_correction`` override the bins head's decoding stored in the config."""
    from safetensors.torch import save_file

    path = Path(path)
    config = gen.config.to_dict()
    if temperature is not None:
        config["temperature"] = float(temperature)
    if prior_correction is not None:
        config["prior_correction"] = float(prior_correction)
    meta = {"name": MODEL_NAME, "config": json.dumps(config), "chroma_gain": repr(float(chroma_gain))}
    meta.update({k: str(v) for k, v in (extra_meta or {}).items()})
    state = {k: v.detach().to("cpu", dtype).contiguous() for k, v in gen.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata=meta)


def read_generator(path: str | Path, device: str = "cpu") -> tuple[Generator, dict]:
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    gen = Generator(GeneratorConfig.from_dict(json.loads(meta.get("config", "{}"))))
    state = load_file(str(path))
    gen.load_state_dict({k: v.float() for k, v in state.items()})
    return gen.eval().to(device), meta


class GanColorizer(Colorizer):
    size_multiple = GAN_SIZE_MULTIPLE

    def __init__(self, path: str | Path, device: str | None = None):
        self.path = Path(path)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        gen, meta = read_generator(self.path, "cpu")
        self.name = meta.get("name", MODEL_NAME)
        self.chroma_gain = float(meta.get("chroma_gain", "1.0"))
        self.dtype = torch.float16 if self.device.startswith("cuda") else torch.float32
        self.generator = gen.to(self.device, self.dtype)
        self.generator = self.generator.to(memory_format=torch.channels_last)
        self._bf16 = self.device == "cpu" and cpu_bf16_wanted()
        self.temporal_context = (gen.config.window - 1) // 2
        self._identity = weights_info(self.path, meta).identity
        self.logit_bias: torch.Tensor | None = None
        # the heavy networks compiled by OpenVINO, on a CPU where it is installed
        self.openvino = openvino_runtime.networks_for(self.generator, self._identity, self.device, self._bf16,
                                                      quantisers_path(self.path))

    @property
    def bf16(self) -> bool:
        """The network runs in bf16 (on a CPU that computes it natively, unless told fp32)."""
        return self._bf16

    @bf16.setter
    def bf16(self, on: bool) -> None:
        self._bf16 = bool(on)
        if self.openvino is not None and self.openvino.precision != ("bf16" if on else "fp32"):
            self.openvino = openvino_runtime.OpenVinoNetworks(self.generator, self._identity, self._bf16,
                                                              int8_quantisers=quantisers_path(self.path))

    @property
    def runtime(self) -> str:
        """What runs the network, e.g. "openvino bf16", "openvino bf16, int8 head" or "torch fp32"."""
        if self.openvino is not None:
            return f"openvino {self.openvino.precision}" + (", int8 head" if self.openvino.int8_head else "")
        return f"torch {'bf16' if self.bf16 else str(self.dtype).removeprefix('torch.').replace('float', 'fp')}"

    @property
    def identity(self) -> str:
        return self._identity

    def predict_ab(self, lightness: np.ndarray, context: FrameContext = FrameContext()) -> np.ndarray:
        L = np.asarray(lightness, dtype=np.float32)
        if L.ndim != 3:
            raise ValueError(f"lightness must be (N, H, W), got shape {L.shape}")
        n, h, w = L.shape
        if h % self.size_multiple or w % self.size_multiple:
            raise ValueError(f"render size {w}x{h} is not a multiple of {self.size_multiple}")
        with torch.inference_mode(), self._autocast():
            lightness = self._tensor(L)
            x, skips = self._per_frame(lightness)
            ab = self._decode(self._temporal(x), skips, lightness)
        return ab.float().permute(0, 2, 3, 1).contiguous().cpu().numpy()

    def preferred_batch_size(self) -> int:
        """8 on a CPU (more does not run faster there); on a GPU as many frames as a quarter of
        its free memory holds (about 40 MB a frame at the default render size in fp16), 8 to 64."""
        if not self.device.startswith("cuda"):
            return 8
        free, _ = torch.cuda.mem_get_info(torch.device(self.device))
        return int(min(64, max(8, free // 4 // (40 * 2**20))))

    def set_temporal_attention(self, on: bool) -> None:
        self.temporal_context = self.generator.temporal_radius if on else 0

    def predict_sequence(self, lightness: np.ndarray, batch_size: int,
                         context: FrameContext = FrameContext()):
        """As ``Colorizer.predict_sequence`` (the same numbers), but the per-frame part of the
        network runs once per frame: the neighbours a batch's temporal block needs are kept from
        (or computed ahead for) the batches around it, so temporal attention costs no extra frames."""
        L = np.asarray(lightness, dtype=np.float32)
        n, h, w = L.shape
        if h % self.size_multiple or w % self.size_multiple:
            raise ValueError(f"render size {w}x{h} is not a multiple of {self.size_multiple}")
        r = max(0, int(self.temporal_context))
        gen = self.generator
        feats: dict[int, tuple[torch.Tensor, tuple[torch.Tensor, ...]]] = {}  # frame -> (x, skips)
        with torch.inference_mode(), self._autocast():
            for s in range(0, n, batch_size):
                e = min(n, s + batch_size)
                lo, hi = max(0, s - r), min(n, e + r)
                todo = [k for k in range(lo, hi) if k not in feats]
                if todo:
                    x_new, skips_new = self._per_frame(self._tensor(L[todo[0] : todo[-1] + 1]))
                    for j, k in enumerate(todo):
                        feats[k] = (x_new[j : j + 1], tuple(f[j : j + 1] for f in skips_new))
                x = self._temporal(torch.cat([feats[k][0] for k in range(lo, hi)]))[s - lo : e - lo]
                skips = tuple(torch.cat([feats[k][1][i] for k in range(s, e)]) for i in range(len(feats[s][1])))
                ab = self._decode(x, skips, self._tensor(L[s:e]))
                yield s, ab.float().permute(0, 2, 3, 1).contiguous().cpu().numpy()
                for k in [k for k in feats if k < e - r]:
                    del feats[k]

    def _per_frame(self, lightness: torch.Tensor):
        if self.openvino is not None:
            return self.openvino.per_frame(lightness)
        return self.generator.per_frame(lightness)

    def _temporal(self, x: torch.Tensor) -> torch.Tensor:
        r = max(0, int(self.temporal_context))
        if self.openvino is not None and r == self.openvino.temporal_radius:
            return self.openvino.temporal(x)
        return self.generator.temporal32(x, r)

    def _decode(self, x: torch.Tensor, skips: tuple[torch.Tensor, ...], lightness: torch.Tensor) -> torch.Tensor:
        """Features after the temporal block -> ab at the render size, times the chroma gain."""
        gen = self.generator
        if self.openvino is not None:
            logits = self.openvino.head_logits(x, skips[-len(gen.head_skips):])
            ab = gen.upsample_chroma(self.openvino.decode_bins(logits, self.logit_bias), lightness.float())
        else:
            ab = gen.decode(x, skips, lightness, logit_bias=self.logit_bias)
        return ab * self.chroma_gain

    def _autocast(self):
        """bf16 on a CPU that computes it natively (AMX or AVX-512 BF16): about 4x the fp32 speed
        here, ab within about half a unit on average (docs/performance.md); the bins distribution is
        still decoded in fp32 (Generator.decode)."""
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16)

    def _tensor(self, L: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(L))
        if self.device.startswith("cuda"):  # pinned, so the copy to the GPU runs asynchronously
            x = x.pin_memory().to(self.device, non_blocking=True)
        x = x.to(self.device, self.dtype)[:, None]
        return x.contiguous(memory_format=torch.channels_last)

    def set_palette(self, palette, strength: float = 1.0) -> None:
        """Bayes with an image-level prior: p(ab | pixel, palette) ~ p(ab | pixel) x (h / prior)^strength,
        h = the palette on the model's bins mixed with the training prior (PALETTE_SMOOTHING)."""
        if palette is None or strength == 0:
            self.logit_bias = None
            return
        from vidcolor.palette import head_refusal

        gen = self.generator
        refusal = head_refusal(self.identity, gen.config.head)
        if refusal:
            raise ValueError(refusal)
        prior = torch.softmax(gen.log_prior.detach().float().cpu(), 0)
        reference = torch.from_numpy(palette.weights_at(gen.bin_centres.float().cpu().numpy())).float()
        h = (1 - PALETTE_SMOOTHING) * reference + PALETTE_SMOOTHING * prior
        self.logit_bias = (strength * (h.log() - prior.log())).to(self.device)


def cpu_bf16_wanted() -> bool:
    """CPU inference in bf16 where the CPU computes it natively, unless VIDCOLOR_PRECISION says fp32."""
    import os

    from vidcolor.models.precision import use_bf16

    return use_bf16("cpu", os.environ.get("VIDCOLOR_PRECISION", "auto"))


def load_gan_colorizer(spec: str | None, device: str | None = None) -> GanColorizer:
    """spec None: the shipped default weights; else a local .safetensors path."""
    if spec is None:
        if not DEFAULT_WEIGHTS.exists():
            raise FileNotFoundError(f"{DEFAULT_WEIGHTS}: the shipped default weights are missing")
        return GanColorizer(DEFAULT_WEIGHTS, device)
    check_weights_file(spec)
    return GanColorizer(Path(spec), device)


def colorize_rgb_image(colorizer: Colorizer, rgb: np.ndarray, render_size: int = 256) -> np.ndarray:
    """Colorize one RGB uint8 image (H, W, 3) (its colour is ignored: only Lab L is used) -> RGB
    uint8 of the same size. L stays at full resolution; ab is predicted at the render size and
    bilinearly upsampled."""
    import cv2

    from vidcolor.color import rgb_to_lab
    from vidcolor.render import render_size as render_size_of

    rgb = np.asarray(rgb)
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[..., None], 3, axis=-1)
    h, w = rgb.shape[:2]
    L = rgb_to_lab(rgb[..., :3].astype(np.float32) / 255.0)[..., 0]
    rw, rh = render_size_of(w, h, render_size, colorizer.size_multiple, upscale=True)
    small = cv2.resize(L, (rw, rh), interpolation=cv2.INTER_AREA) if (rh, rw) != (h, w) else L
    ab = colorizer.predict_ab(small[None].astype(np.float32))[0]
    if (rh, rw) != (h, w):
        ab = cv2.resize(ab, (w, h), interpolation=cv2.INTER_LINEAR)
    out = lab_to_rgb_in_gamut(L, ab)
    return np.clip(np.rint(out * 255), 0, 255).astype(np.uint8)


def lab_to_rgb_in_gamut(L: np.ndarray, ab: np.ndarray, rounds: int = 12) -> np.ndarray:
    """sRGB in [0, 1] of Lab (L, ab); where a colour lies outside the sRGB gamut its chroma is
    reduced (L kept) until it fits, instead of clipping RGB (which would change the lightness)."""
    from vidcolor.color import _WHITE, _XYZ_TO_RGB, _f_inv, linear_to_srgb

    ab = np.array(ab, dtype=np.float32, copy=True)
    fy = (L + 16) / 116

    def linear(ab_):
        xyz = np.stack([_f_inv(fy + ab_[..., 0] / 500), _f_inv(fy), _f_inv(fy - ab_[..., 1] / 200)], -1) * _WHITE
        return xyz @ _XYZ_TO_RGB.T

    lin = linear(ab)
    for _ in range(rounds):
        bad = ((lin < -1e-3) | (lin > 1 + 1e-3)).any(-1)
        if not bad.any():
            break
        ab[bad] *= 0.8
        lin = linear(ab)
    bad = ((lin < -1e-3) | (lin > 1 + 1e-3)).any(-1)
    if bad.any():  # what still does not fit becomes grey of the same L
        ab[bad] = 0
        lin = linear(ab)
    return linear_to_srgb(lin).astype(np.float32)
