"""Generator, discriminators, Lab in torch, safetensors round trip (fast, no shared data)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidcolor import color
from vidcolor import color_torch as ct
from vidcolor.models.discriminator import PatchDiscriminator, TemporalPatchDiscriminator
from vidcolor.models.gan_colorizer import GanColorizer, read_generator, save_generator
from vidcolor.models.generator import AB_SCALE, Generator, GeneratorConfig


@pytest.fixture(scope="module")
def gen3():
    torch.manual_seed(0)
    return Generator(GeneratorConfig(window=3)).eval()


def test_color_torch_matches_numpy():
    rgb = np.random.default_rng(0).random((6, 7, 3), dtype=np.float32)
    lab_np = color.rgb_to_lab(rgb)
    lab_t = ct.rgb_to_lab(torch.from_numpy(rgb).permute(2, 0, 1)).permute(1, 2, 0).numpy()
    assert np.abs(lab_np - lab_t).max() < 1e-3
    back = ct.lab_to_rgb(torch.from_numpy(lab_np).permute(2, 0, 1)).permute(1, 2, 0).numpy()
    assert np.abs(back - color.lab_to_rgb(lab_np)).max() < 1e-5
    g = np.linspace(0, 1, 50, dtype=np.float32)
    assert np.abs(ct.lightness_to_gray(torch.from_numpy(color.gray_to_lightness(g))).numpy() - g).max() < 1e-5


@pytest.mark.parametrize("window", [1, 3])
def test_generator_shape_and_range(window):
    torch.manual_seed(0)
    g = Generator(GeneratorConfig(window=window)).eval()
    L = torch.rand(4, 1, 64, 96) * 100
    with torch.no_grad():
        ab = g(L)
    assert ab.shape == (4, 2, 64, 96)
    assert torch.isfinite(ab).all() and ab.abs().max() <= AB_SCALE


def test_temporal_attention_mixes_neighbours_only(gen3):
    torch.manual_seed(1)
    L = torch.rand(4, 1, 64, 64) * 100
    L2 = L.clone()
    L2[0] = torch.rand(1, 64, 64) * 100  # change frame 0
    with torch.no_grad():
        a, b = gen3(L), gen3(L2)
        a1, b1 = gen3(L, radius=0), gen3(L2, radius=0)
    diff = (a - b).abs().flatten(1).max(1).values
    assert diff[0] > 1e-3
    assert diff[1] > 1e-6  # frame 1 sees frame 0 (window 3)
    assert diff[2] <= 1e-8 and diff[3] <= 1e-8  # frames 2, 3 do not
    diff1 = (a1 - b1).abs().flatten(1).max(1).values
    assert diff1[1:].max() <= 1e-8  # window 1: no mixing


def test_clips_are_independent(gen3):
    L = torch.rand(6, 1, 64, 64) * 100
    L2 = L.clone()
    L2[2] = 50.0  # last frame of clip 0
    with torch.no_grad():
        a, b = gen3(L, clips=2), gen3(L2, clips=2)
    assert (a[3:] - b[3:]).abs().max() < 1e-5


def test_discriminators_shapes():
    assert PatchDiscriminator(channels=16)(torch.randn(2, 3, 64, 64)).shape == (2, 1, 8, 8)
    assert TemporalPatchDiscriminator(channels=8)(torch.randn(2, 3, 3, 64, 64)).shape[:2] == (2, 1)


def test_safetensors_round_trip(tmp_path, gen3):
    path = tmp_path / "g.safetensors"
    save_generator(gen3, path, chroma_gain=1.3, dtype=torch.float32)
    g2, meta = read_generator(path)
    assert float(meta["chroma_gain"]) == 1.3 and g2.config.window == 3
    for (k, v), (k2, v2) in zip(gen3.state_dict().items(), g2.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)
    c = GanColorizer(path, device="cpu")
    assert c.temporal_context == 1 and c.size_multiple == 32
    assert c.identity.startswith("vidcolor-gan-mnv2-")
    ab = c.predict_ab(np.full((3, 64, 64), 50, np.float32))
    assert ab.shape == (3, 64, 64, 2) and ab.dtype == np.float32
    with pytest.raises(ValueError):
        c.predict_ab(np.zeros((1, 50, 64), np.float32))


def test_bins_head_annealed_mean():
    from vidcolor.models.generator import ab_bins, annealed_mean

    centres = ab_bins(10)
    assert 150 < centres.shape[0] < 400 and centres.abs().max() <= 110
    logits = torch.zeros(1, centres.shape[0], 2, 2)
    logits[0, 5] = 4.0
    mean = annealed_mean(logits, centres, 1.0)
    mode = annealed_mean(logits, centres, 0.05)
    assert torch.allclose(mode[0, :, 0, 0], centres[5], atol=1e-3)
    assert (mean[0, :, 0, 0] - centres[5]).norm() > (mode[0, :, 0, 0] - centres[5]).norm()


def test_temperature_stored_with_weights(tmp_path, gen3):
    path = tmp_path / "t.safetensors"
    save_generator(gen3, path, chroma_gain=1.0, temperature=0.5)
    g2, meta = read_generator(path)
    assert g2.config.temperature == 0.5 and g2.config.head == "bins"


def test_prior_correction_divides_out_the_prior(gen3):
    from vidcolor.models.generator import annealed_mean

    q = gen3.bin_centres.shape[0]
    prior = torch.softmax(torch.randn(q, generator=torch.Generator().manual_seed(3)) * 2, 0)
    g = Generator(GeneratorConfig(window=1)).eval()
    g.log_prior.copy_(prior.log())
    logits = prior.log()[None, :, None, None].expand(1, q, 2, 2).clone()  # "the model only knows the prior"
    flat = annealed_mean(torch.zeros_like(logits), g.bin_centres, 0.4)
    assert torch.allclose(g.decode_logits(logits, 0.4, prior_correction=1.0), flat, atol=1e-4)
    assert not torch.allclose(g.decode_logits(logits, 0.4, prior_correction=0.0), flat, atol=1e-2)
    half = g.decode_logits(logits, 0.4, prior_correction=0.5)
    full, none = g.decode_logits(logits, 0.4, 1.0), g.decode_logits(logits, 0.4, 0.0)
    assert (half - full).norm() < (none - full).norm()  # monotone in between


def test_bins_head_resolution_and_old_configs():
    g = Generator(GeneratorConfig(window=1)).eval()
    with torch.no_grad():
        ab, logits = g(torch.rand(2, 1, 64, 96) * 100, return_logits=True)
    assert ab.shape == (2, 2, 64, 96) and logits.shape[-2:] == (16, 24)  # 1/4 resolution by default
    assert hasattr(g, "global_fuse") and hasattr(g.encoder, "conv_last")
    old = GeneratorConfig.from_dict({"window": 3, "head": "bins"})  # a file written before these options
    assert old.global_context is False and old.bins_stride == 2
    g_old = Generator(old).eval()
    assert not hasattr(g_old, "global_fuse") and not hasattr(g_old.encoder, "conv_last")
    with torch.no_grad():
        _, logits_old = g_old(torch.rand(1, 1, 64, 64) * 100, return_logits=True)
    assert logits_old.shape[-2:] == (32, 32)


def test_global_context_is_what_the_classifier_sees():
    """The pooled features the generator adds to its bottleneck are exactly the ImageNet
    classifier's penultimate features of the grey frame: its logits follow from them."""
    from vidcolor.color_torch import lightness_to_gray
    from vidcolor.models.mobilenet_v2 import load_mobilenet_v2

    backbone = load_mobilenet_v2()
    g = Generator(GeneratorConfig(window=1)).eval()
    own = g.encoder.state_dict()
    g.encoder.load_state_dict({k: v for k, v in backbone.state_dict().items() if k in own})
    L = torch.nn.functional.interpolate(torch.rand(2, 1, 8, 8), size=(224, 224), mode="bilinear") * 100
    with torch.no_grad():
        _, pooled = g.encode(L)
        via_generator = backbone.logits(pooled[:, :, None, None]).flatten(1)
        direct = backbone(lightness_to_gray(L).expand(-1, 3, -1, -1) * 2 - 1)
    assert pooled.shape == (2, 1280)
    assert torch.allclose(via_generator, direct, atol=1e-4)


def test_guided_upsampling_follows_luminance_edges():
    import torch.nn.functional as F

    from vidcolor.models.generator import guided_upsample

    L = torch.zeros(1, 1, 64, 64)
    L[..., 29:] = 1.0  # an edge that falls inside a low-resolution cell
    ab = torch.zeros(1, 2, 64, 64)
    ab[:, 0, :, 29:] = 40.0
    low = F.interpolate(ab, size=(16, 16), mode="area")
    bilinear = F.interpolate(low, size=(64, 64), mode="bilinear", align_corners=False)
    guided = guided_upsample(L, low, eps=1e-3)
    assert (guided - ab).abs().mean() < 0.2 * (bilinear - ab).abs().mean()
    flat = torch.full((1, 1, 64, 64), 0.5)  # no luminance structure: plain smooth upsampling
    assert torch.allclose(guided_upsample(flat, low, eps=1e-3).mean(), low.mean(), atol=0.5)
