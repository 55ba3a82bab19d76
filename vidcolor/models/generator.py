"""The colorization generator: U-Net on the MobileNetV2 encoder, pixel-shuffle decoder, spatial
self-attention at 1/32 resolution, and temporal attention over a window of neighbouring frames.

Input: Lab L, (N, 1, H, W) in [0, 100], H and W multiples of 32. Output: Lab ab, (N, 2, H, W).
The N frames are consecutive frames of one scene; each frame attends (temporally, per pixel of the
1/32 feature map, in one block) to the frames within ``window // 2`` of it inside the batch, so a
frame's output depends on exactly those neighbours. With window 1 each frame only sees itself:
image mode.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vidcolor.color_torch import lightness_to_gray
from vidcolor.models.mobilenet_v2 import FEATURE_CHANNELS, MobileNetV2

AB_SCALE = 110.0


@dataclass
class GeneratorConfig:
    window: int = 3  # temporal window (odd); 1 = image model
    bottleneck: int = 256
    decoder: tuple[int, ...] = (192, 128, 64, 48, 16)  # channels at 1/16, 1/8, 1/4, 1/2, 1/1
    heads: int = 4
    head: str = "bins"  # "bins": distribution over quantised ab (annealed mean); "regression": ab directly
    bin_step: int = 10  # ab grid step of the bins
    temperature: float = 0.38  # annealed-mean temperature (1 = the mean, -> 0 = the mode)
    bins_stride: int = 4  # resolution of the bins head: 2 (after up2) or 4 (after up4)
    global_context: bool = True  # add the encoder's pooled 1280-d ImageNet features to the bottleneck
    prior_correction: float = 0.0  # decoding subtracts this x log(ab prior) from the logits
    guided_eps: float = 0.0  # > 0: upsample the bins head's chroma with a fast guided filter on L (else bilinear)
    # Doing no harm where the model is unsure: chroma is scaled by min(1, (ref / v) ** power), v = the
    # predicted variance of the bins distribution (E|ab - E ab|^2 at T = 1), per pixel. ref = 0: off.
    # Both are calibrated on the validation photos (vidcolor.training.calibrate), never set by hand.
    uncertainty_ref: float = 0.0
    uncertainty_power: float = 1.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["decoder"] = list(self.decoder)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "GeneratorConfig":
        d = dict(d)
        d["decoder"] = tuple(d.get("decoder", cls.decoder))
        # files written before these options existed have the architecture of that time
        d.setdefault("global_context", False)
        d.setdefault("bins_stride", 2)
        return cls(**d)


def conv_act(cin: int, cout: int, k: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2), nn.GroupNorm(8 if cout % 8 == 0 else 1, cout),
                         nn.SiLU(inplace=True))


class SpatialSelfAttention(nn.Module):
    """Multi-head self-attention over all positions of one feature map (pre-norm, residual)."""

    def __init__(self, channels: int, heads: int):
        super().__init__()
        self.norm = nn.GroupNorm(8, channels)
        self.qkv = nn.Conv2d(channels, channels * 3, 1)
        self.out = nn.Conv2d(channels, channels, 1)
        self.heads = heads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(n, 3, self.heads, c // self.heads, h * w).unbind(1)
        o = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2))
        return x + self.out(o.transpose(-1, -2).reshape(n, c, h, w))


class TemporalAttention(nn.Module):
    """Per-pixel attention across the frames of the batch, banded: frame i sees frames j with
    |i - j| <= radius. Frames are the batch dimension (N consecutive frames of one scene), or
    ``clips`` groups of N/clips frames in training."""

    def __init__(self, channels: int, heads: int):
        super().__init__()
        self.norm = nn.GroupNorm(8, channels)
        self.qkv = nn.Linear(channels, channels * 3)
        self.out = nn.Linear(channels, channels)
        self.heads = heads
        self.frame_embed = nn.Parameter(torch.zeros(1, 1, channels))

    def forward(self, x: torch.Tensor, radius: int, clips: int = 1) -> torch.Tensor:
        n, c, h, w = x.shape
        t = n // clips
        y = self.norm(x).reshape(clips, t, c, h * w).permute(0, 3, 1, 2).reshape(clips * h * w, t, c)
        q, k, v = self.qkv(y).reshape(clips * h * w, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        idx = torch.arange(t, device=x.device)
        mask = (idx[:, None] - idx[None, :]).abs() <= radius
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        o = self.out(o.transpose(1, 2).reshape(clips * h * w, t, c))
        o = o.reshape(clips, h * w, t, c).permute(0, 2, 3, 1).reshape(n, c, h, w)
        return x + o


class UpBlock(nn.Module):
    """Pixel-shuffle x2, concatenate the skip, two convs."""

    def __init__(self, cin: int, cskip: int, cout: int):
        super().__init__()
        self.up = nn.Sequential(nn.Conv2d(cin, cout * 4, 1), nn.PixelShuffle(2), nn.SiLU(inplace=True))
        self.conv = nn.Sequential(conv_act(cout + cskip, cout), conv_act(cout, cout))

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([self.up(x), skip], dim=1))


def ab_bins(step: int = 10) -> torch.Tensor:
    """Centres (Q, 2) of the ab grid cells (step ``step``, |a|, |b| <= 110) that hold a colour
    inside the sRGB gamut for some lightness: the classes of the "bins" head."""
    import numpy as np

    from vidcolor.color import _WHITE, _XYZ_TO_RGB, _f_inv

    g = np.arange(-110, 110 + 1e-6, step, dtype=np.float32)
    a, b = np.meshgrid(g, g, indexing="ij")
    L = np.linspace(2, 98, 97, dtype=np.float32)[:, None]
    fy = (L + 16) / 116
    xyz = np.stack([_f_inv(fy + a.reshape(1, -1) / 500), np.broadcast_to(_f_inv(fy), (len(L), a.size)),
                    _f_inv(fy - b.reshape(1, -1) / 200)], -1) * _WHITE
    lin = xyz @ _XYZ_TO_RGB.T
    ok = ((lin >= 0) & (lin <= 1)).all(-1).any(0)
    return torch.from_numpy(np.stack([a.reshape(-1)[ok], b.reshape(-1)[ok]], -1).copy())


def guided_upsample(guide: torch.Tensor, src: torch.Tensor, eps: float, radius: int = 1) -> torch.Tensor:
    """Fast guided filter upsampling (He and Sun 2015): fit ``src`` (N, C, h, w) locally as a linear
    function of the guide (N, 1, H, W) at low resolution, upsample the coefficients, apply them to
    the full-resolution guide. Chroma edges then follow the film's own luminance edges instead of
    the blur of a bilinear upsampling. ``eps`` in units of the guide squared."""
    low = F.interpolate(guide, size=src.shape[-2:], mode="area")

    def box(x):
        return F.avg_pool2d(x, 2 * radius + 1, stride=1, padding=radius, count_include_pad=False)

    mean_i, mean_p = box(low), box(src)
    cov = box(low * src) - mean_i * mean_p
    var = box(low * low) - mean_i * mean_i
    a = cov / (var + eps)
    b = mean_p - a * mean_i
    size = guide.shape[-2:]
    a_up = F.interpolate(box(a), size=size, mode="bilinear", align_corners=False)
    b_up = F.interpolate(box(b), size=size, mode="bilinear", align_corners=False)
    return a_up * guide + b_up


def predicted_variance(logits: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """(N, Q, H, W) logits -> (N, 1, H, W): the spread of the predicted ab distribution at T = 1,
    E|ab - E[ab]|^2 (ab units squared). Large where the model hesitates between distant colours."""
    p = torch.softmax(logits.float(), dim=1)
    c = centres.to(p.dtype)
    mean = torch.einsum("nqhw,qc->nchw", p, c)
    second = torch.einsum("nqhw,q->nhw", p, (c * c).sum(1))[:, None]
    return (second - (mean * mean).sum(1, keepdim=True)).clamp_min(0)


def confidence_factor(variance: torch.Tensor, ref: float, power: float) -> torch.Tensor:
    """Chroma factor in (0, 1]: 1 where the predicted variance is at most ``ref``, falling as
    (ref / variance) ** power above it (a pull towards neutral in proportion to the uncertainty)."""
    return (ref / variance.clamp_min(1e-6)).pow(power).clamp(max=1.0)


def annealed_mean(logits: torch.Tensor, centres: torch.Tensor, temperature: float) -> torch.Tensor:
    """(N, Q, H, W) logits -> (N, 2, H, W) ab: mean of softmax(logits / T) over the bin centres."""
    p = torch.softmax(logits.float() / temperature, dim=1)
    return torch.einsum("nqhw,qc->nchw", p, centres.to(p.dtype)).to(logits.dtype)


class Generator(nn.Module):
    def __init__(self, config: GeneratorConfig | None = None):
        super().__init__()
        self.config = config = config or GeneratorConfig()
        self.encoder = MobileNetV2()
        del self.encoder.logits  # the classifier's last layer is unused
        if not config.global_context:
            del self.encoder.conv_last
        c16, c8, c4, c2, c1 = config.decoder
        cb = config.bottleneck
        self.bottleneck = conv_act(FEATURE_CHANNELS[4], cb)
        if config.global_context:
            # image-level semantics (what the classifier sees: "goldfish", "school bus") steer the
            # colours of the whole frame, as Iizuka et al.'s global fusion does
            self.global_fuse = nn.Sequential(nn.Linear(1280, cb), nn.SiLU(inplace=True), nn.Linear(cb, cb))
        self.self_attn = SpatialSelfAttention(cb, config.heads)
        self.temporal32 = TemporalAttention(cb, config.heads)
        self.up16 = UpBlock(cb, FEATURE_CHANNELS[3], c16)
        self.up8 = UpBlock(c16, FEATURE_CHANNELS[2], c8)
        self.up4 = UpBlock(c8, FEATURE_CHANNELS[1], c4)
        # the 1/2-resolution level exists for the regression head and a stride-2 bins head
        self.up2 = UpBlock(c4, FEATURE_CHANNELS[0], c2) if config.head != "bins" or config.bins_stride == 2 else None
        if config.head == "bins":
            # chroma is predicted as a distribution over ab bins at 1/bins_stride resolution
            self.register_buffer("bin_centres", ab_bins(config.bin_step), persistent=False)
            # log of the training images' ab prior (set by the trainer): decoding can divide it out
            self.register_buffer("log_prior", torch.zeros(self.bin_centres.shape[0]))
            self.head_bins = nn.Conv2d(c2 if config.bins_stride == 2 else c4, self.bin_centres.shape[0], 1)
        else:
            self.up1 = UpBlock(c2, 1, c1)
            self.head = nn.Conv2d(c1, 2, 3, padding=1)
            with torch.no_grad():  # start near grey: small initial chroma
                self.head.weight.mul_(0.1)
                self.head.bias.zero_()

    @property
    def temporal_radius(self) -> int:
        return (self.config.window - 1) // 2

    def encode(self, lightness: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor | None]:
        """Encoder skip features and the pooled 1280-d global features (None without global
        context). Without gradients when the whole encoder is frozen (training saves its backward)."""
        return self.encode_gray(self.encoder_input(lightness))

    @staticmethod
    def encoder_input(lightness: torch.Tensor) -> torch.Tensor:
        """L in [0, 100] -> the grey level the encoder sees, in [-1, 1] (one channel)."""
        return lightness_to_gray(lightness) * 2 - 1

    def encode_gray(self, gray: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor | None]:
        """``encode`` from the encoder's input (``encoder_input``)."""
        train_encoder = torch.is_grad_enabled() and any(p.requires_grad for p in self.encoder.parameters())
        with torch.set_grad_enabled(train_encoder):
            feats = self.encoder.features(gray.expand(-1, 3, -1, -1))
            pooled = F.relu6(self.encoder.conv_last(feats[-1])).mean(dim=(2, 3)) if self.config.global_context else None
        return feats, pooled

    def decode_logits(self, logits: torch.Tensor, temperature: float | None = None,
                      prior_correction: float | None = None, logit_bias: torch.Tensor | None = None,
                      uncertainty: tuple[float, float] | None = None) -> torch.Tensor:
        """Bins-head logits -> ab at the logits' resolution (annealed mean, prior divided out,
        ``logit_bias`` (Q,) added: an image-level prior such as a reference palette), scaled
        towards neutral where the distribution is spread (``uncertainty`` = (ref, power) overrides
        the config's; ref 0 = off)."""
        t = self.config.temperature if temperature is None else temperature
        a = self.config.prior_correction if prior_correction is None else prior_correction
        ref, power = (self.config.uncertainty_ref, self.config.uncertainty_power) if uncertainty is None else uncertainty
        if a:
            logits = logits - a * self.log_prior.to(logits.dtype)[None, :, None, None]
        if logit_bias is not None:
            logits = logits + logit_bias.to(logits.dtype)[None, :, None, None]
        ab = annealed_mean(logits, self.bin_centres, t)
        if ref > 0:
            ab = ab * confidence_factor(predicted_variance(logits, self.bin_centres), ref, power).to(ab.dtype)
        return ab

    def upsample_chroma(self, ab: torch.Tensor, lightness: torch.Tensor) -> torch.Tensor:
        """Bins-head ab (at 1/bins_stride) -> the size of ``lightness`` (guided by it, or bilinear)."""
        if self.config.guided_eps > 0:
            return guided_upsample(lightness / 100, ab, self.config.guided_eps)
        return F.interpolate(ab, size=lightness.shape[-2:], mode="bilinear", align_corners=False)

    def forward(self, lightness: torch.Tensor, clips: int = 1, radius: int | None = None,
                temperature: float | None = None, return_logits: bool = False,
                prior_correction: float | None = None, logit_bias: torch.Tensor | None = None):
        """L (N, 1, H, W) in [0, 100] -> ab (N, 2, H, W). ``clips``: the batch is that many
        independent sequences of N/clips frames; ``radius`` overrides the temporal window;
        ``temperature`` and ``prior_correction`` override the bins head's decoding, ``logit_bias``
        is added to its logits before decoding. With
        ``return_logits`` (bins head) returns (ab, logits at 1/bins_stride resolution)."""
        r = self.temporal_radius if radius is None else radius
        x, skips = self.per_frame(lightness)
        x = self.temporal32(x, r, clips)
        return self.decode(x, skips, lightness, temperature, return_logits, prior_correction, logit_bias)

    def per_frame(self, lightness: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """Everything before the temporal block, which depends on each frame alone: the 1/32
        features and the encoder skips (f2, f4, f8, f16). Inference computes it once per frame and
        lets the temporal block see neighbours from the batches around (see GanColorizer)."""
        return self.per_frame_gray(self.encoder_input(lightness))

    def per_frame_gray(self, gray: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """``per_frame`` from the encoder's input (``encoder_input``)."""
        (f2, f4, f8, f16, f32), pooled = self.encode_gray(gray)
        x = self.bottleneck(f32)
        if pooled is not None:
            x = x + self.global_fuse(pooled)[:, :, None, None]
        return self.self_attn(x), (f2, f4, f8, f16)

    def decode(self, x: torch.Tensor, skips: tuple[torch.Tensor, ...], lightness: torch.Tensor,
               temperature: float | None = None, return_logits: bool = False,
               prior_correction: float | None = None, logit_bias: torch.Tensor | None = None):
        """Everything after the temporal block (per frame again)."""
        if self.config.head == "bins":
            logits = self.head_logits(x, skips[-len(self.head_skips):])
            ab = self.bins_to_ab(logits, lightness, temperature, prior_correction, logit_bias)
            return (ab, logits) if return_logits else ab
        f2, f4, f8, f16 = skips
        x = self.up2(self.up4(self.up8(self.up16(x, f16), f8), f4), f2)
        x = self.up1(x, lightness / 50 - 1)
        return torch.tanh(self.head(x)) * AB_SCALE

    @property
    def head_skips(self) -> tuple[str, ...]:
        """The encoder skips the bins head's decoder reads (f2 only at bins stride 2)."""
        return ("f4", "f8", "f16") if self.up2 is None else ("f2", "f4", "f8", "f16")

    def head_logits(self, x: torch.Tensor, skips: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """The bins head's decoder: features after the temporal block and the ``head_skips`` ->
        logits at 1/bins_stride resolution."""
        named = dict(zip(self.head_skips, skips))
        x = self.up4(self.up8(self.up16(x, named["f16"]), named["f8"]), named["f4"])
        if self.up2 is not None:
            x = self.up2(x, named["f2"])
        return self.head_bins(x)

    def bins_to_ab(self, logits: torch.Tensor, lightness: torch.Tensor, temperature: float | None = None,
                   prior_correction: float | None = None, logit_bias: torch.Tensor | None = None) -> torch.Tensor:
        """Bins logits -> ab at the size of ``lightness``. The distribution is decoded in the
        logits' own precision, but never in bf16: ab in bf16 would be off by up to half a unit,
        enough to band smooth gradients."""
        with torch.autocast(logits.device.type, enabled=False):
            wide = logits.float() if logits.dtype == torch.bfloat16 else logits
            return self.upsample_chroma(self.decode_logits(wide, temperature, prior_correction, logit_bias),
                                        lightness.to(wide.dtype))
