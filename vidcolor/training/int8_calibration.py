"""Calibrate the bins head decoder's int8 quantisers (vidcolor.models.int8_head) on training
photos and write them beside the weights. Needs NNCF (from PyPI; not a dependency of vidcolor).

    python -m vidcolor.training.int8_calibration <folder of train photos>

``calibration_inputs`` and ``quantise`` are also what benchmarks/int8_probe.py measures with.
"""

from __future__ import annotations

import os
from pathlib import Path

from vidcolor.models.int8_head import NETWORK, quantisers_path, save_quantisers


class InputRecorder:
    """Stands in for a compiled OpenVINO network and keeps what it is called with."""

    def __init__(self, compiled):
        self.compiled, self.outputs, self.seen = compiled, compiled.outputs, []

    def __call__(self, inputs):
        self.seen.append([a.copy() for a in inputs])
        return self.compiled(inputs)


def calibration_inputs(colorizer, attributes: tuple[str, ...], photos: Path, count: int = 200,
                       render_size: int = 256) -> dict[str, list]:
    """The inputs the colorizer's OpenVINO networks named by ``attributes`` (e.g. "_head") are
    called with while ``count`` photos of the folder (shuffled with a fixed seed) are colorized
    as ``vidcolor eval images`` colorizes them."""
    import random

    from vidcolor.evaluation.images import list_images, read_rgb
    from vidcolor.models.gan_colorizer import colorize_rgb_image

    net = colorizer.openvino
    recorders = {name: InputRecorder(getattr(net, name)) for name in attributes}
    for name, recorder in recorders.items():
        setattr(net, name, recorder)
    try:
        files = list_images(Path(photos))
        random.Random(0).shuffle(files)
        for path in files[:count]:
            colorize_rgb_image(colorizer, read_rgb(path), render_size)
    finally:
        for name, recorder in recorders.items():
            setattr(net, name, recorder.compiled)
    return {name: recorder.seen for name, recorder in recorders.items()}


def quantise(model, seen: list):
    """NNCF's post-training quantisation (mixed preset) of an OpenVINO model on recorded inputs."""
    import nncf

    names = [i.get_any_name() for i in model.inputs]
    return nncf.quantize(model, nncf.Dataset(seen, lambda xs: dict(zip(names, xs))), subset_size=len(seen),
                         preset=nncf.QuantizationPreset.MIXED)


def main() -> None:
    """Calibrate the head decoder of the default weights on training photos (never the eval set)
    and write its quantisers beside the weights."""
    import argparse

    import openvino as ov

    from vidcolor.colorizers import load_colorizer
    from vidcolor.models.openvino_runtime import _exported
    from vidcolor.store.base import cache_root

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("photos", help="folder of training photos (never the eval set)")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--render-size", type=int, default=256)
    args = parser.parse_args()

    os.environ["VIDCOLOR_INT8"] = "off"  # the network as exported (quantisers shipped before play no part)
    colorizer = load_colorizer("default", device="cpu")
    if colorizer.openvino is None:
        raise SystemExit("needs OpenVINO running the generator on this CPU")
    seen = calibration_inputs(colorizer, ("_head",), Path(args.photos), args.count, args.render_size)["_head"]
    files = _exported(colorizer.generator, colorizer._identity, cache_root() / "openvino")
    quantised = quantise(ov.Core().read_model(str(files[NETWORK])), seen)
    out = quantisers_path(colorizer.path)
    n = save_quantisers(quantised, out, colorizer._identity)
    print(f"wrote {out} ({n} quantisers, calibrated on {len(seen)} photos from {args.photos})")


if __name__ == "__main__":
    main()
