"""Calibrate the bins head decoder's int8 quantisers (vidcolor.models.int8_head) on training
photos and write them beside the weights. Needs NNCF (from PyPI; not a dependency of vidcolor).

    python -m vidcolor.training.int8_calibration <folder of train photos>
"""

from __future__ import annotations

from pathlib import Path

from vidcolor.models.int8_head import NETWORK, quantisers_path, save_quantisers


def main() -> None:
    """Calibrate the head decoder of the default weights on training photos (never the eval set)
    and write its quantisers beside the weights."""
    import argparse
    import random

    import nncf
    import openvino as ov

    from vidcolor.colorizers import load_colorizer
    from vidcolor.evaluation.images import list_images, read_rgb
    from vidcolor.models.gan_colorizer import colorize_rgb_image
    from vidcolor.models.openvino_runtime import _exported
    from vidcolor.store.base import cache_root

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("photos", help="folder of training photos (never the eval set)")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--render-size", type=int, default=256)
    args = parser.parse_args()

    colorizer = load_colorizer("default", device="cpu")
    net = colorizer.openvino
    if net is None:
        raise SystemExit("needs OpenVINO running the generator on this CPU")
    seen = []
    compiled = net._head

    class Recorder:
        outputs = compiled.outputs

        def __call__(self, inputs):
            seen.append([a.copy() for a in inputs])
            return compiled(inputs)

    net._head = Recorder()
    photos = list_images(Path(args.photos))
    random.Random(0).shuffle(photos)
    for p in photos[: args.count]:
        colorize_rgb_image(colorizer, read_rgb(p), args.render_size)
    net._head = compiled
    files = _exported(colorizer.generator, colorizer._identity, cache_root() / "openvino")
    model = ov.Core().read_model(str(files[NETWORK]))
    names = [i.get_any_name() for i in model.inputs]
    quantised = nncf.quantize(model, nncf.Dataset(seen, lambda xs: dict(zip(names, xs))), subset_size=len(seen),
                              preset=nncf.QuantizationPreset.MIXED)
    out = quantisers_path(colorizer.path)
    n = save_quantisers(quantised, out, colorizer._identity)
    print(f"wrote {out} ({n} quantisers, calibrated on {len(seen)} photos from {args.photos})")


if __name__ == "__main__":
    main()
