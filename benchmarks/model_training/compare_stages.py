"""Compare a run's stage-1/2/3 generators on the selection images at the run's calibrated decoding
(what stage 2's adversarial and stage 3's temporal fine-tuning did to image quality).

    python benchmarks/model_training/compare_stages.py RUN_DIR SELECT_DIR OUT.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(run: str, select: str, out: str) -> None:
    from vidcolor.models.gan_colorizer import read_generator
    from vidcolor.training.calibrate import target_score
    from vidcolor.training.data import build_cache
    from vidcolor.training.trainer import predict_val, val_metrics

    images = build_cache(select, 256)
    cal = json.loads((Path(run) / "calibration.json").read_text())
    chosen = cal["chosen"]
    rows = []
    for stage in (1, 2, 3):
        gen, _ = read_generator(Path(run) / f"generator_stage{stage}.safetensors")
        gen.config.guided_eps = cal.get("guided_eps", 0.0)
        lab = predict_val(gen, images, "cpu", temperature=chosen["temperature"],
                          prior_correction=chosen["prior_correction"])
        m = val_metrics(lab, images, gain=chosen["gain"])
        rows.append({"stage": stage, **m, "score": target_score(m)})
        print(json.dumps(rows[-1]), flush=True)
    Path(out).write_text(json.dumps({"run": run, "decoding": chosen, "guided_eps": cal.get("guided_eps"),
                                     "stages": rows}, indent=1))


if __name__ == "__main__":
    main(*sys.argv[1:])
