"""Calibrate a trained run's generator on the selection images and export the shipped weights.

    python benchmarks/model_training/finish.py RUN_DIR SELECT_DIR OUT.safetensors [STAGE]

1. chroma upsampling: bilinear or the L-guided filter (eps 1e-3 / 1e-2), whichever gives the best
   PSNR on the selection images at the default decoding;
2. ``vidcolor.training.calibrate.calibrate``: gain x temperature x prior correction, scored by the
   weaker of the two targets;
3. the stage-1/2/3 generators compared at the chosen decoding (stage 3 is the temporal model);
4. fp16 export with the chosen decoding and the run's provenance in the metadata.
Writes calibration.json beside this script.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch


def main(run: str, select: str, out: str, stage: str = "3") -> None:
    from vidcolor.models.gan_colorizer import read_generator, save_generator
    from vidcolor.training.calibrate import calibrate, choose_upsampling, target_score
    from vidcolor.training.data import build_cache
    from vidcolor.training.trainer import predict_val, val_metrics

    t0 = time.time()
    images = build_cache(select, 256)
    gen, _ = read_generator(Path(run) / f"generator_stage{stage}.safetensors")
    best_eps, upsampling = choose_upsampling(gen, images, "cpu")
    print(json.dumps(upsampling), flush=True)
    chosen, rows = calibrate(gen, images, "cpu")
    best = max(rows, key=lambda r: r["score"])
    print(json.dumps({"chosen": chosen, "guided_eps": best_eps, "best_row": best}), flush=True)
    stages = []
    for s in ("1", "2", "3"):
        path = Path(run) / f"generator_stage{s}.safetensors"
        if not path.exists():
            continue
        g, _ = read_generator(path)
        g.config.guided_eps = best_eps
        lab = predict_val(g, images, "cpu", temperature=chosen["temperature"], prior_correction=chosen["prior_correction"])
        m = val_metrics(lab, images, gain=chosen["gain"])
        m["score"] = target_score(m)
        stages.append({"stage": int(s), **m})
        print(json.dumps(stages[-1]), flush=True)
    run_state = json.loads((Path(run) / "checkpoint" / "state.json").read_text())
    meta = {"stage_wall_s": json.dumps(run_state.get("stage_wall_s", {})), "global_step": run_state["global_step"],
            "seed": run_state.get("seed", 0), "calibrated_on": "val/ + 100 held-out train detection images"}
    save_generator(gen, out, chroma_gain=chosen["gain"], dtype=torch.float16, extra_meta=meta,
                   temperature=chosen["temperature"], prior_correction=chosen["prior_correction"])
    report = {"run": run, "stage": int(stage), "guided_eps": best_eps, "upsampling": upsampling,
              "chosen": chosen, "stages_at_chosen": stages, "rows": rows, "wall_s": time.time() - t0}
    (Path(__file__).parent / "calibration.json").write_text(json.dumps(report, indent=1))
    print(f"wrote {out} in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main(*sys.argv[1:])
