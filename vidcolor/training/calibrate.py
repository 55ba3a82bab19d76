"""End of training: calibrate the chroma decoding on the validation images, export fp16 weights.

First the chroma upsampling (bilinear or guided by L), then three knobs, chosen on the validation images only (never on the evaluation split): the bins head's
prior correction (how much of the training images' ab prior is divided out of the predicted
distribution: more = rarer, more saturated colours), its annealed-mean temperature (lower = closer
to the mode = more vivid) and a gain on the predicted ab. The two quality targets pull against each
other (vivid wrong colours cost PSNR), so each setting is scored by the target it meets least well:
``min(PSNR gain over grey / psnr_target, colourfulness ratio / ratio_target)``; the best score wins.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

# a coarse grid: each (temperature, correction) pair costs one pass over the val images
GAINS = (1.0, 1.15, 1.3, 1.5)
TEMPERATURES = (0.5, 0.7, 1.0)
CORRECTIONS = (0.0, 0.25)
GUIDED_EPS = (0.0, 1e-3, 1e-2)  # chroma upsampling: 0 = bilinear, else the guided filter's eps


def target_score(row: dict, psnr_target: float = 0.5, ratio_target: float = 0.7) -> float:
    """How well a row meets both targets: 1.0 = both exactly met; the weaker one decides."""
    return min((row["val_psnr"] - row["val_psnr_grey"]) / psnr_target,
               row["val_colourfulness_ratio"] / ratio_target)


def choose_upsampling(gen, val_images, device: str, options=GUIDED_EPS) -> tuple[float, list[dict]]:
    """Bins head: bilinear (0) or L-guided chroma upsampling (eps), whichever gives the best val
    PSNR at the default decoding. Sets ``gen.config.guided_eps``; returns (eps, rows)."""
    from vidcolor.training.trainer import predict_val, val_metrics

    if gen.config.head != "bins":
        return 0.0, []
    rows = []
    for eps in options:
        gen.config.guided_eps = float(eps)
        rows.append({"guided_eps": float(eps), **val_metrics(predict_val(gen, val_images, device), val_images)})
    gen.config.guided_eps = max(rows, key=lambda r: r["val_psnr"])["guided_eps"]
    return gen.config.guided_eps, rows


def calibrate(gen, val_images, device: str, gains=GAINS, temperatures=TEMPERATURES, corrections=CORRECTIONS,
              psnr_target: float = 0.5, ratio_target: float = 0.7) -> tuple[dict, list[dict]]:
    """Returns (the chosen {gain, temperature, prior_correction}, all rows of val metrics).
    A regression head only has the gain (temperature and prior_correction are None)."""
    from vidcolor.training.trainer import predict_val, val_metrics

    bins = gen.config.head == "bins"
    rows = []
    for a in (corrections if bins else (None,)):
        for t in (temperatures if bins else (None,)):
            lab = predict_val(gen, val_images, device, temperature=t, prior_correction=a)
            for g in gains:
                m = val_metrics(lab, val_images, gain=float(g))
                m.update(gain=float(g), temperature=t, prior_correction=a)
                m["score"] = target_score(m, psnr_target, ratio_target)
                rows.append(m)
    best = max(rows, key=lambda r: r["score"])
    return {"gain": best["gain"], "temperature": best["temperature"], "prior_correction": best["prior_correction"]}, rows


def finish_run(trainer, export: Path | None = None) -> Path:
    """Calibrate (when val is given; or take the decoding of ``decoding_from``), write
    OUT/generator_final.safetensors (fp16), copy to export."""
    import torch

    chosen = {"gain": 1.0, "temperature": None, "prior_correction": None}
    if trainer.cfg.decoding_from:  # a decoding chosen before (e.g. the shipped model's): no calibration passes
        from vidcolor.models.gan_colorizer import read_generator

        source, meta = read_generator(trainer.cfg.decoding_from)
        trainer.gen.config.guided_eps = source.config.guided_eps
        chosen = {"gain": float(meta.get("chroma_gain", "1.0")), "temperature": source.config.temperature,
                  "prior_correction": source.config.prior_correction}
        with open(Path(trainer.cfg.out) / "calibration.json", "w") as f:
            json.dump({"chosen": chosen, "guided_eps": source.config.guided_eps,
                       "decoding_from": trainer.cfg.decoding_from}, f, indent=1)
        trainer.log(json.dumps({"event": "decoding_from", **chosen}))
    elif trainer.val_images is not None:
        eps, upsampling = choose_upsampling(trainer.gen, trainer.val_images, trainer.device)
        chosen, rows = calibrate(trainer.gen, trainer.val_images, trainer.device)
        with open(Path(trainer.cfg.out) / "calibration.json", "w") as f:
            json.dump({"chosen": chosen, "guided_eps": eps, "upsampling": upsampling, "rows": rows}, f, indent=1)
        trainer.log(json.dumps({"event": "calibration", **chosen}))
    meta = {"stage_wall_s": json.dumps({k: trainer.state["stage_wall_s"].get(k) for k in ("1", "2", "3")}),
            "global_step": trainer.state["global_step"], "seed": trainer.cfg.seed}
    final = Path(trainer.cfg.out) / "generator_final.safetensors"
    decoding = dict(gain=chosen["gain"], temperature=chosen["temperature"], prior_correction=chosen["prior_correction"])
    trainer.save_generator(final, dtype=torch.float16, extra_meta=meta, **decoding)
    if export is not None:
        Path(export).parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(export).with_name(Path(export).name + ".tmp")
        shutil.copyfile(final, tmp)
        tmp.replace(export)
    return final
