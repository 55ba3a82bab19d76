"""The colour quality targets, defined once: the evaluation reports against them and the
calibration chooses a decoding by them."""

from __future__ import annotations

PSNR_GAIN_DB = 0.5  # photos: PSNR at least the grey baseline's + this
COLOURFULNESS_RATIO = 0.7  # photos: colourfulness at least this share of the originals'
TOP1_SHARE = 0.5  # photos: top-1 at least this share of the way from grey's to the originals'
REALISM_SHARE = 0.5  # photos: realism distance at most this share of the grey baseline's
VIDEO_PSNR_FLOOR_DB = -0.5  # video: no clip more than this below its grey baseline
VIDEO_PSNR_MEAN_DB = 0.3  # video: on average at least grey + this
VIDEO_COLOURFULNESS_RANGE = (0.6, 1.3)  # video: every clip's colourfulness ratio in this range
