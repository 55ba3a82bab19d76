"""End of training: calibrate the chroma decoding on the validation images, export fp16 weights.

First the chroma upsampling (bilinear or guided by L), then three knobs, chosen on the validation images only (never on the evaluation split): the bins head's
prior correction (how much of the training images' ab prior is divided out of the predicted
distribution: more = rarer, more saturated colours), its annealed-mean temperature (lower = closer
to the mode = more vivid) and a gain on the predicted ab. The two quality targets pull against each
other (vivid wrong colours cost PSNR), so each setting is scored by the target it meets least well:
``min(PSNR gain over grey / psnr_target, colourfulness ratio / ratio_target)``; the best score wins.

``calibrate_weights`` (``vidcolor calibrate``) recalibrates finished weights: temperature, gain and
the pull towards neutral where the bins head is unsure (``uncertainty_ref/power``), chosen among
the settings that harm no more validation photos than the weights' own decoding (the upsampling
and prior correction are kept as the weights have them).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from vidcolor.atomic import atomic_path, write_text_atomic
from vidcolor.evaluation.targets import COLOURFULNESS_RATIO, PSNR_GAIN_DB

# a coarse grid: each (temperature, correction) pair costs one pass over the val images
GAINS = (1.0, 1.15, 1.3, 1.5)
TEMPERATURES = (0.5, 0.7, 1.0)
CORRECTIONS = (0.0, 0.25)
GUIDED_EPS = (0.0, 1e-3, 1e-2)  # chroma upsampling: 0 = bilinear, else the guided filter's eps


def target_score(row: dict, psnr_target: float = PSNR_GAIN_DB, ratio_target: float = COLOURFULNESS_RATIO) -> float:
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
              psnr_target: float = PSNR_GAIN_DB, ratio_target: float = COLOURFULNESS_RATIO) -> tuple[dict, list[dict]]:
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
        with atomic_path(export) as tmp:
            shutil.copyfile(final, tmp)
    return final


# ---- Decoding that does no harm where the model is unsure ------------------------------------
# The bins head predicts a distribution over ab. Where it is spread (a high predicted variance), the
# annealed mean is a guess between distant colours, and on the selection photos such pixels want
# less chroma than predicted while confident ones want more (benchmarks/model_training/v4_decoding.md).
# So chroma is scaled by min(1, (ref / variance) ** power) per pixel, and a global gain restores
# the colour of the confident pixels. ref is one of these quantiles of the validation photos'
# per-pixel variance; ref, power, gain and temperature are chosen together on the validation photos.
UNCERTAINTY_QUANTILES = (0.25, 0.5, 0.75)
UNCERTAINTY_POWERS = (0.5, 1.0, 2.0)
DECODING_GAINS = (1.0, 1.15, 1.3, 1.5, 1.75, 2.0)
DECODING_TEMPERATURES = (0.5, 0.7)


def val_logits(gen, val_images, device: str, batch: int = 8):
    """(L (N, 1, H, W) float32, bins logits (N, Q, h, w) float16) of the validation photos, image
    mode, on the CPU: computed once, then every decoding setting is a cheap pass over them."""
    import torch

    from vidcolor.color_torch import rgb_to_lab

    was_training = gen.training
    gen.eval()
    Ls, logits = [], []
    with torch.no_grad():
        for i in range(0, len(val_images), batch):
            rgb = torch.from_numpy(val_images[i:i + batch]).permute(0, 3, 1, 2).float().div(255).to(device)
            L = rgb_to_lab(rgb)[:, :1]
            _, lg = gen(L, clips=L.shape[0], radius=0, return_logits=True)
            Ls.append(L.float().cpu())
            logits.append(lg.half().cpu())
    if was_training:
        gen.train()
    return torch.cat(Ls), torch.cat(logits)


def decode_val(gen, L, logits, temperature: float | None, prior_correction: float | None,
               uncertainty: tuple[float, float], batch: int = 16):
    """Lab (N, H, W, 3) float32 of the validation photos under one decoding setting."""
    import numpy as np
    import torch

    out = []
    with torch.no_grad():
        for i in range(0, len(L), batch):
            lg = logits[i:i + batch].float()
            ab = gen.decode_logits(lg.to(gen.bin_centres.device), temperature, prior_correction,
                                   uncertainty=uncertainty).cpu()
            ab = gen.upsample_chroma(ab, L[i:i + batch])
            out.append(torch.cat([L[i:i + batch], ab], 1).permute(0, 2, 3, 1).numpy())
    return np.concatenate(out).astype(np.float32)


def variance_quantiles(gen, logits, quantiles=UNCERTAINTY_QUANTILES, prior_correction: float | None = None) -> list[float]:
    """The given quantiles of the per-pixel predicted variance over the validation photos."""
    import torch

    from vidcolor.models.generator import predicted_variance

    a = gen.config.prior_correction if prior_correction is None else prior_correction
    values = []
    with torch.no_grad():
        for i in range(0, len(logits), 16):
            lg = logits[i:i + 16].float()
            if a:
                lg = lg - a * gen.log_prior.float().cpu()[None, :, None, None]
            values.append(predicted_variance(lg, gen.bin_centres.float().cpu()).flatten())
    v = torch.cat(values)
    v = v[torch.randperm(len(v), generator=torch.Generator().manual_seed(0))[:1_000_000]]  # quantile() has a size limit
    return [float(torch.quantile(v, q)) for q in quantiles]


def per_image_metrics(lab, val_images, gain: float = 1.0) -> dict:
    """Per-photo PSNR of ours and of the grey baseline, colourfulness of ours and of the originals
    (numpy arrays), for Lab predictions with ab scaled by ``gain``."""
    import numpy as np

    from vidcolor.evaluation.metrics import colourfulness, psnr
    from vidcolor.models.gan_colorizer import lab_to_rgb_in_gamut

    def rgb(L, ab):
        return np.clip(np.rint(lab_to_rgb_in_gamut(L, ab) * 255), 0, 255).astype(np.uint8)

    key = id(val_images)
    if _GREY_CACHE.get("key") != key or _GREY_CACHE.get("ref") is not val_images:
        _GREY_CACHE.update(key=key, ref=val_images,
                           grey=np.array([psnr(rgb(lab[j, ..., 0], np.zeros_like(lab[j, ..., 1:])), val_images[j])
                                          for j in range(len(lab))]),
                           orig_c=np.array([colourfulness(im) for im in val_images]))
    ours = [rgb(lab[j, ..., 0], lab[j, ..., 1:] * gain) for j in range(len(lab))]
    return {"psnr": np.array([psnr(o, val_images[j]) for j, o in enumerate(ours)]), "grey_psnr": _GREY_CACHE["grey"],
            "colourfulness": np.array([colourfulness(o) for o in ours]), "original_colourfulness": _GREY_CACHE["orig_c"]}


_GREY_CACHE: dict = {}


def summarize_setting(m: dict) -> dict:
    """Mean figures of one setting (the names calibrate() uses) and how often it does harm."""
    import numpy as np

    gain = m["psnr"] - m["grey_psnr"]
    return {"val_psnr": float(m["psnr"].mean()), "val_psnr_grey": float(m["grey_psnr"].mean()),
            "val_colourfulness": float(m["colourfulness"].mean()),
            "val_colourfulness_ratio": float(m["colourfulness"].mean() / max(m["original_colourfulness"].mean(), 1e-6)),
            "val_worst_decile_gain_db": float(np.sort(gain)[: max(1, len(gain) // 10)].mean()),
            "val_share_below_grey_0.5db": float((gain < -0.5).mean())}


def choose_setting(rows: list[dict], reference: dict) -> dict:
    """The best-scoring row (``target_score``) among those that harm no more validation photos than
    ``reference`` (the weights' own decoding): the share of photos more than 0.5 dB below the grey
    baseline may not rise. Colour bought by colouring more near-neutral photos wrongly is not
    taken; the reference row itself always qualifies."""
    allowed = [r for r in rows if r["val_share_below_grey_0.5db"] <= reference["val_share_below_grey_0.5db"] + 1e-9]
    return max(allowed, key=lambda r: r["score"])


def _is_reference(row: dict, temperature: float, gain: float) -> bool:
    return row["uncertainty_ref"] == 0 and abs(row["temperature"] - temperature) < 1e-9 and abs(row["gain"] - gain) < 1e-9


def calibrate_decoding(gen, val_images, device: str, temperatures=DECODING_TEMPERATURES, gains=DECODING_GAINS,
                       quantiles=UNCERTAINTY_QUANTILES, powers=UNCERTAINTY_POWERS, uncertainty: bool = True,
                       psnr_target: float = 0.5, ratio_target: float = 0.7, reference_gain: float = 1.0,
                       log=lambda m: None) -> tuple[dict, list[dict]]:
    """Choose the bins head's decoding on the validation photos: temperature x gain, and (with
    ``uncertainty``) the pull towards neutral (ref x power); rows without the pull are always in the
    grid, so the pull is only chosen where it does better. The prior correction stays as it is.
    Each row is scored by ``target_score``; ``choose_setting`` picks among the rows that do no more
    harm than the weights' own decoding (their temperature, ``reference_gain``, no pull), which is
    always in the grid. Returns (chosen setting, all rows; the reference row has "reference": True)."""
    if gen.config.head != "bins":
        raise ValueError("only a bins head has a predicted distribution to calibrate")
    temperatures = sorted({float(t) for t in temperatures} | {float(gen.config.temperature)})
    gains = sorted({float(g) for g in gains} | {float(reference_gain)})
    L, logits = val_logits(gen, val_images, device)
    refs = variance_quantiles(gen, logits, quantiles) if uncertainty else []
    pulls = [(0.0, 1.0, None)] + [(r, p, q) for r, q in zip(refs, quantiles) for p in powers]
    rows = []
    prior = gen.config.prior_correction
    for t in temperatures:
        for ref, power, q in pulls:
            lab = decode_val(gen, L, logits, t, prior, (ref, power))
            for g in gains:
                row = {"temperature": float(t), "prior_correction": float(prior), "uncertainty_ref": float(ref),
                       "uncertainty_quantile": q, "uncertainty_power": float(power), "gain": float(g),
                       **summarize_setting(per_image_metrics(lab, val_images, gain=float(g)))}
                row["score"] = target_score(row, psnr_target, ratio_target)
                rows.append(row)
            log(f"T {t} ref {ref:.0f} power {power}: best score {max(r['score'] for r in rows[-len(gains):]):.3f}")
    reference = next(r for r in rows if _is_reference(r, gen.config.temperature, reference_gain))
    reference["reference"] = True
    best = choose_setting(rows, reference)
    chosen = {k: best[k] for k in ("temperature", "prior_correction", "uncertainty_ref", "uncertainty_power", "gain")}
    return chosen, rows


def apply_decoding(gen, chosen: dict) -> None:
    """Write a chosen decoding into the generator's config (the gain is saved separately)."""
    for key in ("temperature", "prior_correction", "uncertainty_ref", "uncertainty_power"):
        if chosen.get(key) is not None:
            setattr(gen.config, key, float(chosen[key]))


def calibrate_weights(weights: str | Path, val_folder: str | Path, out: str | Path, device: str | None = None,
                      uncertainty: bool = True, cache_dir: str | Path = "/tmp/vidcolor_cache",
                      log=print) -> dict:
    """Weights -> decoding calibrated on the validation photos -> new weights file (fp16) with the
    chosen decoding in its metadata, and ``OUT.calibration.json`` with every row. Any generator
    with a bins head. Returns the chosen setting and the rows behind it (chosen, best without the pull,
    best by score alone, the reference)."""
    import torch

    from vidcolor.models.gan_colorizer import read_generator, save_generator
    from vidcolor.training.data import build_cache

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    gen, meta = read_generator(weights, device)
    if gen.config.head != "bins":
        raise ValueError(f"{weights}: a regression-head model has no distribution to calibrate")
    val_images = build_cache(val_folder, 256, cache_dir)
    chosen, rows = calibrate_decoding(gen, val_images, device, uncertainty=uncertainty,
                                      reference_gain=float(meta.get("chroma_gain", "1.0")), log=log)
    best = next(r for r in rows if all(r[k] == v for k, v in chosen.items()))
    without = max((r for r in rows if r["uncertainty_ref"] == 0), key=lambda r: r["score"])
    unconstrained = max(rows, key=lambda r: r["score"])
    reference = next(r for r in rows if r.get("reference"))
    apply_decoding(gen, chosen)
    if not uncertainty:
        gen.config.uncertainty_ref = 0.0
    kept = {k: v for k, v in meta.items() if k not in ("name", "config", "chroma_gain", "calibration")}
    summary = {"val_folder": str(val_folder), "val_photos": int(len(val_images)), "from": Path(weights).name,
               "chosen": chosen, "best": best, "best_without_pull": without,
               "best_by_score_alone": unconstrained, "reference": reference}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_generator(gen.cpu(), out, chroma_gain=chosen["gain"], extra_meta={**kept, "calibration": json.dumps(summary)})
    report = out.with_name(out.name.removesuffix(".safetensors") + ".calibration.json")
    write_text_atomic(report, json.dumps({**summary, "rows": rows}, indent=1))
    return summary
