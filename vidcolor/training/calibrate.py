"""End of training: calibrate a chroma gain on the validation images and export fp16 weights.

L1-trained colorizers are desaturated; the gain multiplies the predicted ab. It is chosen on val/
only (the model-selection split): the smallest gain whose colourfulness reaches ``target_ratio`` of
the originals' while PSNR stays at least ``min_psnr_margin`` dB above the grey baseline; if none
does, the most colourful gain that keeps the margin; if none keeps it, 1.0.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

GAINS = tuple(float(g) for g in np.round(np.arange(0.7, 3.01, 0.1), 2))


def calibrate_gain(gen, val_images, device: str, target_ratio: float = 0.85, min_psnr_margin: float = 0.8,
                   gains=GAINS) -> tuple[float, list[dict]]:
    from vidcolor.training.trainer import predict_val, val_metrics

    rows = []
    lab = predict_val(gen, val_images, device)
    for g in gains:
        m = val_metrics(lab, val_images, gain=float(g))
        m["gain"] = float(g)
        rows.append(m)
    ok = [r for r in rows if r["val_psnr"] >= r["val_psnr_grey"] + min_psnr_margin]
    hit = [r for r in ok if r["val_colourfulness_ratio"] >= target_ratio]
    if hit:
        best = min(hit, key=lambda r: r["gain"])
    elif ok:
        best = max(ok, key=lambda r: r["val_colourfulness_ratio"])
    else:
        best = min(rows, key=lambda r: abs(r["gain"] - 1.0))
    return best["gain"], rows


def finish_run(trainer, export: Path | None = None) -> Path:
    """Calibrate (when val is given), write OUT/generator_final.safetensors (fp16), copy to export."""
    import torch

    gain, rows = 1.0, []
    if trainer.val_images is not None:
        gain, rows = calibrate_gain(trainer.gen, trainer.val_images, trainer.device)
        with open(Path(trainer.cfg.out) / "calibration.json", "w") as f:
            json.dump({"chosen_gain": gain, "rows": rows}, f, indent=1)
        trainer.log(json.dumps({"event": "calibration", "chosen_gain": gain}))
    meta = {"trained_steps": json.dumps({k: trainer.state["stage_wall_s"].get(k) for k in ("1", "2", "3")}),
            "global_step": trainer.state["global_step"], "seed": trainer.cfg.seed}
    final = Path(trainer.cfg.out) / "generator_final.safetensors"
    trainer.save_generator(final, gain=gain, dtype=torch.float16, extra_meta=meta)
    if export is not None:
        Path(export).parent.mkdir(parents=True, exist_ok=True)
        trainer.save_generator(Path(export), gain=gain, dtype=torch.float16, extra_meta=meta)
    return final
