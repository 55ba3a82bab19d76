"""End of training: calibrate the chroma decoding on the validation images, export fp16 weights.

Two knobs, chosen on val/ only (the model-selection split): the annealed-mean temperature of the
bins head (lower = closer to the mode = more vivid) and a gain on the predicted ab. Among the
settings whose PSNR stays at least ``min_psnr_margin`` dB (0.6) above the grey baseline, the one with the
best PSNR among those whose colourfulness reaches ``target_ratio`` of the originals'; if none
reaches it, the most colourful one; if none keeps the margin, the untouched defaults.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

GAINS = tuple(float(g) for g in np.round(np.arange(0.8, 2.01, 0.1), 2))
TEMPERATURES = (0.25, 0.38, 0.5, 0.7, 1.0)


def calibrate(gen, val_images, device: str, target_ratio: float = 0.85, min_psnr_margin: float = 0.6,
              gains=GAINS, temperatures=TEMPERATURES) -> tuple[float, float | None, list[dict]]:
    """Returns (gain, temperature or None for a regression head, rows of val metrics)."""
    from vidcolor.training.trainer import predict_val, val_metrics

    rows = []
    temps = temperatures if gen.config.head == "bins" else (None,)
    for t in temps:
        lab = predict_val(gen, val_images, device, temperature=t)
        for g in gains:
            m = val_metrics(lab, val_images, gain=float(g))
            m.update(gain=float(g), temperature=t)
            rows.append(m)
    ok = [r for r in rows if r["val_psnr"] >= r["val_psnr_grey"] + min_psnr_margin]
    hit = [r for r in ok if r["val_colourfulness_ratio"] >= target_ratio]
    if hit:
        best = max(hit, key=lambda r: r["val_psnr"])
    elif ok:
        best = max(ok, key=lambda r: r["val_colourfulness_ratio"])
    else:
        default_t = gen.config.temperature if gen.config.head == "bins" else None
        best = min(rows, key=lambda r: (abs(r["gain"] - 1.0), abs((r["temperature"] or 0) - (default_t or 0))))
    return best["gain"], best["temperature"], rows


def finish_run(trainer, export: Path | None = None) -> Path:
    """Calibrate (when val is given), write OUT/generator_final.safetensors (fp16), copy to export."""
    import torch

    gain, temperature, rows = 1.0, None, []
    if trainer.val_images is not None:
        gain, temperature, rows = calibrate(trainer.gen, trainer.val_images, trainer.device)
        with open(Path(trainer.cfg.out) / "calibration.json", "w") as f:
            json.dump({"chosen_gain": gain, "chosen_temperature": temperature, "rows": rows}, f, indent=1)
        trainer.log(json.dumps({"event": "calibration", "chosen_gain": gain, "chosen_temperature": temperature}))
    meta = {"stage_wall_s": json.dumps({k: trainer.state["stage_wall_s"].get(k) for k in ("1", "2", "3")}),
            "global_step": trainer.state["global_step"], "seed": trainer.cfg.seed}
    final = Path(trainer.cfg.out) / "generator_final.safetensors"
    trainer.save_generator(final, gain=gain, dtype=torch.float16, extra_meta=meta, temperature=temperature)
    if export is not None:
        Path(export).parent.mkdir(parents=True, exist_ok=True)
        trainer.save_generator(Path(export), gain=gain, dtype=torch.float16, extra_meta=meta, temperature=temperature)
    return final
