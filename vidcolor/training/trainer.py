"""Three-stage training of the colorization GAN (library; ``vidcolor train`` is the command).

Stage 1: generator pretraining, L1 on ab + perceptual loss on MobileNetV2 features of the RGB.
Stage 2: short adversarial fine-tuning against the frame PatchGAN (NoGAN-style).
Stage 3: temporal training on synthetic-motion clips made from stills: the generator runs with its
temporal window; consistency = warp the prediction of frame t with the known affine and compare
with frame t+1's prediction; plus the temporal PatchGAN on clips.

Resumable: checkpoints (safetensors + JSON) every ``ckpt_every`` steps and at each stage's end; the
random stream of each step is derived from (seed, global step), so a resumed run continues as the
uninterrupted one would. Per-epoch metrics (epoch = one pass-equivalent over the ``data`` folder's
photo count, also when an ``extra`` folder is mixed in, so validation keeps its rhythm)
go to ``metrics.jsonl`` in the output folder.
"""

from __future__ import annotations

import copy
import json
import math
import time
import weakref
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vidcolor.color_torch import lab_to_rgb, rgb_to_lab
from vidcolor.models.discriminator import PatchDiscriminator, TemporalPatchDiscriminator, lab_to_disc_input
from vidcolor.models.generator import Generator, GeneratorConfig, annealed_mean
from vidcolor.models.mobilenet_v2 import MobileNetV2, load_mobilenet_v2
from vidcolor.models.precision import use_bf16
from vidcolor.atomic import write_text_atomic
from vidcolor.training.checkpoint import load_checkpoint, save_checkpoint
from vidcolor.training.config import TrainConfig
from vidcolor.training.data import PhotoSources, build_cache, motion_clips, random_crops, warp

STAGES = (1, 2, 3)


def pick_device(device: str | None) -> str:
    if device:
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


class Perceptual(torch.nn.Module):
    """Losses on the frozen MobileNetV2 of two RGB batches in [0, 1]: L1 between features at
    strides 4, 8, 16 (perceptual) and, with ``semantic=True``, KL(original's class distribution ||
    colorized one's), as ChromaGAN's class-distribution loss: colours that keep the photo recognisable."""

    def __init__(self, net: MobileNetV2):
        super().__init__()
        self.net = net.eval()
        for p in self.net.parameters():
            p.requires_grad_(False)

    def forward(self, pred_rgb: torch.Tensor, target_rgb: torch.Tensor,
                semantic: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        target, pred = target_rgb * 2 - 1, pred_rgb * 2 - 1
        if semantic:
            with torch.no_grad():
                ft, lt = self.net.features_and_logits(target)
            fp, lp = self.net.features_and_logits(pred)
            kl = F.kl_div(F.log_softmax(lp, 1), F.log_softmax(lt, 1), log_target=True, reduction="batchmean")
        else:  # stop at stride 16: the rest of the network is not needed
            with torch.no_grad():
                ft = self.net.features(target, upto=12)
            fp = self.net.features(pred, upto=12)
            kl = torch.zeros((), device=pred_rgb.device)
        perc = sum(F.l1_loss(a, b) for a, b in zip(fp[1:4], ft[1:4])) / 3  # strides 4, 8, 16
        return perc, kl


def ab_histogram(images: np.ndarray, centres: torch.Tensor, stride: int = 8) -> torch.Tensor:
    """Share of the images' pixels (every ``stride``-th) nearest to each ab bin centre."""
    from vidcolor.color import rgb_to_lab

    ab = rgb_to_lab(images[:, ::stride, ::stride].astype(np.float32) / 255.0)[..., 1:].reshape(-1, 2)
    ab_t = torch.from_numpy(ab)
    counts = torch.zeros(centres.shape[0])
    for i in range(0, len(ab_t), 200_000):
        counts += torch.bincount(torch.cdist(ab_t[i:i + 200_000], centres).argmin(1), minlength=centres.shape[0]).float()
    return counts / counts.sum()


def rebalancing_weights(images: np.ndarray | PhotoSources, centres: torch.Tensor, power: float, mix: float = 0.5,
                        sigma: float = 5.0, stride: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-bin loss weights from the training images' ab histogram (Zhang et al. 2016):
    w = ((1 - mix) * smoothed prior + mix / Q) ** -power, normalised so E_prior[w] = 1.
    With several sources the histogram is their mix at the sources' shares (what training sees).
    Returns (weights, smoothed prior)."""
    sources = images if isinstance(images, PhotoSources) else PhotoSources([images], [1.0])
    prior = sum(share * ab_histogram(a, centres, stride) for a, share in zip(sources.arrays, sources.shares))
    k = torch.exp(-torch.cdist(centres, centres).pow(2) / (2 * sigma * sigma))
    prior = (k @ prior) / (k @ prior).sum()  # Gaussian-smoothed in ab
    mixed = (1 - mix) * prior + mix / centres.shape[0]
    w = mixed.pow(-power)
    return (w / (w * prior).sum()).float(), prior.float()


def _step_generator(seed: int, global_step: int) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(seed * 1_000_003 + global_step)
    return g


class Trainer:
    def __init__(self, cfg: TrainConfig, log=print):
        self.cfg = cfg
        self.log = log
        self.device = pick_device(cfg.device)
        self.bf16 = use_bf16(self.device, cfg.precision)
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed)
        self.out = Path(cfg.out)
        self.out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.out / "config.json", json.dumps(cfg.to_json(), indent=1))  # what this run was told
        self.ckpt_dir = self.out / "checkpoint"
        backbone = load_mobilenet_v2(cfg.backbone)
        self.gen = Generator(GeneratorConfig(window=cfg.window, head=cfg.head))
        enc_own = self.gen.encoder.state_dict()
        enc_state = {k: v for k, v in backbone.state_dict().items() if k in enc_own}
        self.gen.encoder.load_state_dict(enc_state)
        if cfg.init:
            from safetensors.torch import load_file

            own = self.gen.state_dict()
            init = {k: v.float() for k, v in load_file(cfg.init).items() if k in own and own[k].shape == v.shape}
            self.gen.load_state_dict(init, strict=False)
            self.log(f"initialised {len(init)}/{len(own)} generator tensors from {cfg.init}")
        self.gen.to(self.device)
        # Averaged weights generalise better than the last step's on a small photo set (the training
        # photos are fitted well past the point where held-out photos stop improving).
        self.ema_gen = copy.deepcopy(self.gen).requires_grad_(False).eval() if cfg.ema > 0 else None
        self.perceptual = Perceptual(backbone).to(self.device)
        self.disc = PatchDiscriminator(channels=32).to(self.device)
        self.tdisc = TemporalPatchDiscriminator(channels=16).to(self.device)
        self._freeze_encoder()
        enc_params = [p for n, p in self.gen.named_parameters() if n.startswith("encoder.")]
        dec_params = [p for n, p in self.gen.named_parameters() if not n.startswith("encoder.")]
        self.opt_g = torch.optim.AdamW([{"params": enc_params, "lr": cfg.encoder_lr},
                                        {"params": dec_params, "lr": cfg.lr}], betas=(0.5, 0.99), weight_decay=1e-4)
        self.opt_d = torch.optim.AdamW(list(self.disc.parameters()) + list(self.tdisc.parameters()),
                                       lr=cfg.d_lr, betas=(0.5, 0.99), weight_decay=0)
        self.state = {"stage": 1, "stage_step": 0, "global_step": 0, "images_seen": 0, "stage_wall_s": {},
                      "epoch_logged": 0, "done": False, "seed": cfg.seed}
        restored = load_checkpoint(self.ckpt_dir, self._modules(), self._optimizers(), device=self.device)
        if restored is not None:
            self.state = restored
            self.log(f"resumed from {self.ckpt_dir}: stage {self.state['stage']} step {self.state['stage_step']}")
        self.images = build_cache(cfg.data, cfg.cache_size, cfg.cache_dir, whole=cfg.whole_photos)
        if cfg.extra:  # a second folder with its own share of every batch, however many photos it holds
            extra = build_cache(cfg.extra, cfg.cache_size, cfg.cache_dir, whole=cfg.whole_photos)
            self.sources = PhotoSources([self.images, extra], [1 - cfg.extra_weight, cfg.extra_weight])
            self.log(f"training photos: {len(self.images)} from {cfg.data} ({1 - cfg.extra_weight:.0%} of each batch), "
                     f"{len(extra)} from {cfg.extra} ({cfg.extra_weight:.0%})")
        else:
            self.sources = PhotoSources([self.images], [1.0])
        self.val_images = build_cache(cfg.val, cfg.val_size, cfg.cache_dir) if cfg.val else None
        if cfg.head == "bins":
            weights, prior = rebalancing_weights(self.sources, self.gen.bin_centres.cpu(), cfg.rebalance)
            self.class_weights = weights.to(self.device)
            with torch.no_grad():  # decoding can divide this prior out (GeneratorConfig.prior_correction)
                self.gen.log_prior.copy_(prior.clamp_min(1e-6).log().to(self.device))
        if self.ema_gen is not None:  # buffers are fixed from here on: the average carries them from the start
            with torch.no_grad():
                for e, b in zip(self.ema_gen.buffers(), self.gen.buffers()):
                    e.copy_(b)
        self._running: dict[str, list[float]] = {}

    # -- bookkeeping -------------------------------------------------------------------------
    def _modules(self):
        modules = {"generator": self.gen, "disc": self.disc, "tdisc": self.tdisc}
        if self.ema_gen is not None:
            modules["generator_ema"] = self.ema_gen
        return modules

    @torch.no_grad()
    def _update_ema(self):
        """ema = d * ema + (1 - d) * weights, with d warming up as (1 + n) / (10 + n) over the
        stage's first steps (n = step index within the stage) so a stage's average is its own."""
        if self.ema_gen is None:
            return
        n = self.state["stage_step"]
        d = min(self.cfg.ema, (1 + n) / (10 + n))
        for e, p in zip(self.ema_gen.parameters(), self.gen.parameters()):
            e.lerp_(p, 1 - d)

    @torch.no_grad()
    def _adopt_ema(self):
        """At a stage's end the averaged weights become the model: they are validated, saved, and
        the next stage starts from them."""
        if self.ema_gen is not None:
            self.gen.load_state_dict(self.ema_gen.state_dict())

    def _optimizers(self):
        return {"opt_g": self.opt_g, "opt_d": self.opt_d}

    def _freeze_encoder(self):
        for n, p in self.gen.encoder.named_parameters():
            frozen = n.startswith("conv0") or (n.startswith("blocks.") and int(n.split(".")[1]) < self.cfg.frozen_blocks) \
                or (n.startswith("conv_last") and self.cfg.frozen_blocks >= len(self.gen.encoder.blocks))
            p.requires_grad_(not frozen)

    def save(self):
        save_checkpoint(self.ckpt_dir, self._modules(), self._optimizers(), self.state)

    def _metric_line(self, extra: dict):
        line = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "stage": self.state["stage"],
                "stage_step": self.state["stage_step"], "global_step": self.state["global_step"],
                "epoch": self.state["images_seen"] / len(self.images)}
        line.update({k: float(np.mean(v)) for k, v in self._running.items() if v})
        line.update(extra)
        with open(self.out / "metrics.jsonl", "a") as f:
            f.write(json.dumps(line) + "\n")
        self._running = {}
        self.log(json.dumps(line))

    def _track(self, **losses):
        for k, v in losses.items():
            self._running.setdefault(k, []).append(float(v))

    # -- losses -------------------------------------------------------------------------------
    def _autocast(self):
        return torch.autocast(torch.device(self.device).type, dtype=torch.bfloat16, enabled=self.bf16)

    def _forward(self, L, **kw):
        with self._autocast():
            if self.cfg.head == "bins":
                ab, logits = self.gen(L, return_logits=True, **kw)
                return ab, logits.float()
            return self.gen(L, **kw).float(), None

    def _lab(self, rgb: torch.Tensor):
        lab = rgb_to_lab(rgb)
        return lab[:, :1], lab[:, 1:]

    def _content_loss(self, L, ab_pred, ab_true, rgb_true, logits=None):
        """(cross-entropy or 0, L1, perceptual, semantic). Bins head: rebalanced cross-entropy
        against the soft-encoded target at the head's resolution; L1, perceptual and semantic look at
        the distribution's mean (T = 1). The backbone losses run on the first ``perceptual_crops``
        crops only."""
        zero = torch.zeros((), device=L.device)
        ce = zero
        if logits is not None:
            ce = self._bin_ce(logits, ab_true)
            ab_pred = F.interpolate(annealed_mean(logits, self.gen.bin_centres, 1.0), size=L.shape[-2:],
                                    mode="bilinear", align_corners=False)
        l1 = F.l1_loss(ab_pred, ab_true) / 110.0
        perc = sem = zero
        if self.cfg.perceptual > 0 or self.cfg.semantic > 0:
            k = self.cfg.perceptual_crops or L.shape[0]
            rgb_pred = lab_to_rgb(torch.cat([L[:k], ab_pred[:k]], 1))
            with self._autocast():
                perc, sem = self.perceptual(rgb_pred, rgb_true[:k], semantic=self.cfg.semantic > 0)
            perc, sem = perc.float(), sem.float()
        return ce, l1, perc, sem

    def _bin_ce(self, logits, ab_true, sigma: float = 5.0):
        factor = ab_true.shape[-1] // logits.shape[-1]
        ab = F.avg_pool2d(ab_true, factor) if factor > 1 else ab_true
        ab = ab.permute(0, 2, 3, 1).reshape(-1, 2)
        centres = self.gen.bin_centres
        d2 = torch.cdist(ab, centres).pow(2)
        target = torch.softmax(-d2 / (2 * sigma * sigma), dim=1)
        w = self.class_weights[d2.argmin(1)]
        logp = torch.log_softmax(logits.permute(0, 2, 3, 1).reshape(-1, centres.shape[0]).float(), dim=1)
        return (-(target * logp).sum(1) * w).mean()

    def _d_step(self, real, fake, disc):
        loss = F.relu(1 - disc(real)).mean() + F.relu(1 + disc(fake.detach())).mean()
        return loss

    # -- steps --------------------------------------------------------------------------------
    def _image_step(self, stage: int, gen: torch.Generator):
        cfg = self.cfg
        rgb = random_crops(self.sources, cfg.batch, cfg.crop, gen, min_scale=cfg.crop_min_scale,
                           tone_jitter=cfg.tone_jitter).to(self.device)
        L, ab = self._lab(rgb)
        pred, logits = self._forward(L, clips=L.shape[0], radius=0)
        ce, l1, perc, sem = self._content_loss(L, pred, ab, rgb, logits)
        loss = ce + cfg.l1 * l1 + cfg.perceptual * perc + cfg.semantic * sem
        if stage == 2:
            fake = lab_to_disc_input(L, pred)
            real = lab_to_disc_input(L, ab)
            d_loss = self._d_step(real, fake, self.disc)
            self.opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            self.opt_d.step()
            g_adv = -self.disc(fake).mean()
            loss = loss + cfg.adv * g_adv
            self._track(d=d_loss.item(), g_adv=g_adv.item())
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_g.step()
        self._track(ce=ce.item(), l1=l1.item(), perceptual=perc.item(), semantic=sem.item(), loss=loss.item())
        return rgb.shape[0]

    def _temporal_step(self, gen: torch.Generator):
        cfg = self.cfg
        T, B = cfg.clip_frames, cfg.clips
        rgb, rel = motion_clips(self.sources, B, T, cfg.crop, gen)
        rgb, rel = rgb.to(self.device), rel.to(self.device)
        L, ab = self._lab(rgb)
        pred, logits = self._forward(L, clips=B)  # model's own window
        ce, l1, perc, sem = self._content_loss(L, pred, ab, rgb, logits)
        p = pred.reshape(B, T, 2, *pred.shape[-2:])
        warped, mask = warp(p[:, :-1].reshape(B * (T - 1), 2, *pred.shape[-2:]), rel.reshape(B * (T - 1), 2, 3))
        nxt = p[:, 1:].reshape(B * (T - 1), 2, *pred.shape[-2:])
        cons = ((warped - nxt).abs() * mask).sum() / (mask.sum() * 2 + 1e-6) / 110.0
        fake = lab_to_disc_input(L, pred)
        real = lab_to_disc_input(L, ab)

        def clip(x):
            return x.reshape(B, T, 3, *x.shape[-2:]).transpose(1, 2)

        d_loss = self._d_step(real, fake, self.disc) + self._d_step(clip(real), clip(fake), self.tdisc)
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()
        g_adv = -self.disc(fake).mean()
        g_tadv = -self.tdisc(clip(fake)).mean()
        loss = ce + cfg.l1 * l1 + cfg.perceptual * perc + cfg.semantic * sem + cfg.consistency * cons \
            + cfg.adv * g_adv + cfg.temporal_adv * g_tadv
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_g.step()
        self._track(ce=ce.item(), l1=l1.item(), perceptual=perc.item(), semantic=sem.item(), consistency=cons.item(),
                    d=d_loss.item(), g_adv=g_adv.item(), g_tadv=g_tadv.item(), loss=loss.item())
        return B * T

    # -- validation ---------------------------------------------------------------------------
    @torch.no_grad()
    def validate(self, gain: float = 1.0) -> dict:
        if self.val_images is None:
            return {}
        return validate_generator(self.gen if self.ema_gen is None else self.ema_gen, self.val_images, self.device, gain)

    # -- main loop ----------------------------------------------------------------------------
    def _set_lrs(self, stage: int):
        cfg = self.cfg
        total = cfg.steps[stage - 1]
        frac = self.state["stage_step"] / max(total, 1)
        cap = cfg.minutes[stage - 1] * 60
        if cap:  # a wall-time cap ends the stage early: decay on whichever comes first
            frac = max(frac, self.state["stage_wall_s"].get(str(stage), 0.0) / cap)
        if stage == 1:
            warm = min(1.0, (self.state["stage_step"] + 1) / 30)
            dec = warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0))))
            enc, dlr = cfg.encoder_lr * dec, cfg.lr * dec
        elif stage == 2:
            enc, dlr = cfg.gan_lr * 0.1, cfg.gan_lr
        else:
            enc, dlr = cfg.gan_lr * 0.1, cfg.gan_lr
        self.opt_g.param_groups[0]["lr"] = enc
        self.opt_g.param_groups[1]["lr"] = dlr

    def train(self) -> dict:
        cfg = self.cfg
        steps_this_run = 0
        per_epoch = len(self.images)
        while not self.state["done"]:
            stage = self.state["stage"]
            total = cfg.steps[stage - 1]
            cap = cfg.minutes[stage - 1] * 60
            wall_key = str(stage)
            t_stage = time.time() - self.state["stage_wall_s"].get(wall_key, 0.0)
            self.gen.train()
            while self.state["stage_step"] < total and not (cap and time.time() - t_stage >= cap):
                if cfg.max_steps_this_run and steps_this_run >= cfg.max_steps_this_run:
                    self.state["stage_wall_s"][wall_key] = time.time() - t_stage
                    self.save()
                    return self.state
                self._set_lrs(stage)
                gen = _step_generator(cfg.seed, self.state["global_step"])
                torch.manual_seed(cfg.seed * 7919 + self.state["global_step"])
                n = self._temporal_step(gen) if stage == 3 else self._image_step(stage, gen)
                self._update_ema()
                self.state["stage_step"] += 1
                self.state["global_step"] += 1
                self.state["images_seen"] += n
                steps_this_run += 1
                self.state["stage_wall_s"][wall_key] = time.time() - t_stage
                epoch = self.state["images_seen"] // per_epoch
                if epoch > self.state["epoch_logged"]:
                    self.state["epoch_logged"] = epoch
                    self.gen.eval()
                    self._metric_line({"event": "epoch", **self.validate()})
                    self.gen.train()
                if self.state["stage_step"] % cfg.ckpt_every == 0:
                    self.save()
            # stage finished (steps reached or wall-time cap)
            self._adopt_ema()
            self.gen.eval()
            self._metric_line({"event": f"stage{stage}_end", "stage_wall_s": self.state["stage_wall_s"].get(wall_key, 0.0),
                               **self.validate()})
            self.save_generator(self.out / f"generator_stage{stage}.safetensors")
            if stage == 3:
                self.state["done"] = True
            else:
                self.state["stage"] = stage + 1
                self.state["stage_step"] = 0
            self.save()
        return self.state

    def save_generator(self, path: Path, gain: float = 1.0, dtype=torch.float32, extra_meta: dict | None = None,
                       temperature: float | None = None, prior_correction: float | None = None):
        from vidcolor.models.gan_colorizer import save_generator

        save_generator(self.gen, path, chroma_gain=gain, dtype=dtype, extra_meta=extra_meta, temperature=temperature,
                       prior_correction=prior_correction)


@torch.no_grad()
def predict_val(gen: Generator, val_images: np.ndarray, device: str, batch: int = 16,
                temperature: float | None = None, prior_correction: float | None = None) -> np.ndarray:
    """Lab (N, H, W, 3) float32: the images' own L with the generator's ab (image mode)."""
    was_training = gen.training
    gen.eval()
    out = []
    for i in range(0, len(val_images), batch):
        rgb = torch.from_numpy(val_images[i:i + batch]).permute(0, 3, 1, 2).float().div(255).to(device)
        L = rgb_to_lab(rgb)[:, :1]
        ab = gen(L, clips=L.shape[0], radius=0, temperature=temperature, prior_correction=prior_correction)
        out.append(torch.cat([L, ab], 1).permute(0, 2, 3, 1).float().cpu().numpy())
    if was_training:
        gen.train()
    return np.concatenate(out)


# id(val images) -> (weak reference to that array, references): an id alone could be reused by
# another array once the first is freed, so the entry only counts while its array is alive
_REF_CACHE: dict[int, tuple[weakref.ref, tuple[float, float]]] = {}


def _references(lab: np.ndarray, val_images: np.ndarray) -> tuple[float, float]:
    """(mean grey-baseline PSNR, mean colourfulness of the originals), cached per val set."""
    from vidcolor.evaluation.metrics import colourfulness, psnr
    from vidcolor.models.gan_colorizer import lab_to_rgb_in_gamut

    key = id(val_images)
    cached = _REF_CACHE.get(key)
    if cached is None or cached[0]() is not val_images:
        pg, cr = [], []
        for j in range(lab.shape[0]):
            grey = np.clip(np.rint(lab_to_rgb_in_gamut(lab[j, ..., 0], np.zeros_like(lab[j, ..., 1:])) * 255),
                           0, 255).astype(np.uint8)
            pg.append(psnr(grey, val_images[j]))
            cr.append(colourfulness(val_images[j]))
        _REF_CACHE[key] = (weakref.ref(val_images), (float(np.mean(pg)), float(np.mean(cr))))
    return _REF_CACHE[key][1]


def val_metrics(lab: np.ndarray, val_images: np.ndarray, gain: float = 1.0) -> dict:
    """Val metrics of predicted Lab with ab scaled by ``gain``: RGB PSNR of ours and of the grey
    baseline, colourfulness and its ratio to the originals'."""
    from vidcolor.evaluation.metrics import colourfulness, psnr
    from vidcolor.models.gan_colorizer import lab_to_rgb_in_gamut

    grey_psnr, orig_c = _references(lab, val_images)
    ps, co = [], []
    for j in range(lab.shape[0]):
        ours = np.clip(np.rint(lab_to_rgb_in_gamut(lab[j, ..., 0], lab[j, ..., 1:] * gain) * 255), 0, 255).astype(np.uint8)
        ps.append(psnr(ours, val_images[j]))
        co.append(colourfulness(ours))
    return {"val_psnr": float(np.mean(ps)), "val_psnr_grey": grey_psnr,
            "val_colourfulness": float(np.mean(co)), "val_colourfulness_ratio": float(np.mean(co) / max(orig_c, 1e-6))}


def validate_generator(gen: Generator, val_images: np.ndarray, device: str, gain: float = 1.0,
                       batch: int = 16) -> dict:
    return val_metrics(predict_val(gen, val_images, device, batch), val_images, gain)
