"""Discriminators: a spectral-normalised PatchGAN on single frames and a temporal PatchGAN (3-D
convolutions, spectral-normalised) on short clips. Both see Lab scaled to about [-1, 1]:
(L / 50 - 1, a / 110, b / 110)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


def lab_to_disc_input(lightness: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    return torch.cat([lightness / 50 - 1, ab / 110], dim=1)


class PatchDiscriminator(nn.Module):
    """70x70-style PatchGAN: (N, 3, H, W) -> (N, 1, H/8, W/8) real/fake scores."""

    def __init__(self, channels: int = 64, layers: int = 3):
        super().__init__()
        mods: list[nn.Module] = [spectral_norm(nn.Conv2d(3, channels, 4, 2, 1)), nn.LeakyReLU(0.2, True)]
        c = channels
        for i in range(1, layers):
            mods += [spectral_norm(nn.Conv2d(c, c * 2, 4, 2, 1)), nn.LeakyReLU(0.2, True)]
            c *= 2
        mods += [spectral_norm(nn.Conv2d(c, c, 3, 1, 1)), nn.LeakyReLU(0.2, True),
                 spectral_norm(nn.Conv2d(c, 1, 3, 1, 1))]
        self.net = nn.Sequential(*mods)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class TemporalPatchDiscriminator(nn.Module):
    """Clips (B, 3, T, H, W) -> (B, 1, T', H/8, W/8): judges flicker and colour consistency."""

    def __init__(self, channels: int = 32):
        super().__init__()
        c = channels
        self.net = nn.Sequential(
            spectral_norm(nn.Conv3d(3, c, (3, 4, 4), (1, 2, 2), (1, 1, 1))), nn.LeakyReLU(0.2, True),
            spectral_norm(nn.Conv3d(c, c * 2, (3, 4, 4), (1, 2, 2), (1, 1, 1))), nn.LeakyReLU(0.2, True),
            spectral_norm(nn.Conv3d(c * 2, c * 4, (3, 4, 4), (1, 2, 2), (0, 1, 1))), nn.LeakyReLU(0.2, True),
            spectral_norm(nn.Conv3d(c * 4, 1, (1, 3, 3), 1, (0, 1, 1))),
        )

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        return self.net(clip)
