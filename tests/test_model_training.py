"""A tiny resumable training run (real trainer, real checkpoints)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from vidcolor.training.data import motion_clips, random_crops, warp
from vidcolor.training.trainer import TrainConfig, Trainer


@pytest.fixture()
def photo_dir(tmp_path):
    d = tmp_path / "photos"
    d.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        img = cv2.GaussianBlur(rng.integers(0, 256, (72, 80, 3), dtype=np.uint8), (9, 9), 3)
        cv2.imwrite(str(d / f"p{i}.png"), img)
    return d


def config(photo_dir, tmp_path, **kw):
    base = dict(data=str(photo_dir), out=str(tmp_path / "run"), steps=(2, 1, 1), batch=2, crop=32,
                cache_size=40, clips=1, clip_frames=3, ckpt_every=1, cache_dir=str(tmp_path / "cache"),
                device="cpu")
    base.update(kw)
    return TrainConfig(**base)


def test_resume_continues_and_matches_uninterrupted(photo_dir, tmp_path):
    quiet = dict(log=lambda m: None)
    a = Trainer(config(photo_dir, tmp_path / "a", max_steps_this_run=1), **quiet)
    st = a.train()  # "killed" after one step (checkpoint written)
    assert st["global_step"] == 1 and not st["done"]
    saved = json.loads((tmp_path / "a" / "run" / "checkpoint" / "state.json").read_text())
    assert saved["global_step"] == 1
    a = Trainer(config(photo_dir, tmp_path / "a", max_steps_this_run=1), **quiet)  # fresh process-equivalent
    assert a.state["global_step"] == 1 and a.opt_g.state  # step counter and optimizer state restored
    assert a.train()["global_step"] == 2
    b = Trainer(config(photo_dir, tmp_path / "b", max_steps_this_run=2), **quiet)  # uninterrupted
    assert b.train()["global_step"] == 2
    for (k, va), vb in zip(a.gen.state_dict().items(), b.gen.state_dict().values()):
        assert np.allclose(va.numpy(), vb.numpy(), atol=1e-5), k
    a = Trainer(config(photo_dir, tmp_path / "a"), **quiet)
    st = a.train()
    assert st["done"] and st["global_step"] == 4
    lines = [json.loads(l) for l in (tmp_path / "a" / "run" / "metrics.jsonl").read_text().splitlines()]
    assert {l.get("event") for l in lines} >= {"stage1_end", "stage2_end", "stage3_end"}


def test_motion_clip_consistency_is_exact_for_the_known_affine():
    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur(rng.integers(0, 256, (96, 96, 3), dtype=np.uint8), (15, 15), 5)
    rgb, rel = motion_clips(img[None], 1, 3, 64, torch.Generator().manual_seed(0))
    warped, mask = warp(rgb[:2], rel[0])
    err = ((warped - rgb[1:]).abs() * mask).sum() / (mask.sum() * 3)
    assert mask.mean() > 0.5 and err < 0.02


def test_calibration_picks_the_setting_that_best_meets_both_targets(photo_dir, tmp_path):
    from vidcolor.training.calibrate import calibrate, target_score

    assert target_score({"val_psnr": 23.5, "val_psnr_grey": 23.0, "val_colourfulness_ratio": 0.7}) == 1.0
    assert target_score({"val_psnr": 24.0, "val_psnr_grey": 23.0, "val_colourfulness_ratio": 0.35}) == 0.5
    t = Trainer(config(photo_dir, tmp_path, val=str(photo_dir), val_size=64), log=lambda m: None)
    chosen, rows = calibrate(t.gen, t.val_images, "cpu", gains=(1.0, 2.0), temperatures=(0.3, 1.0),
                             corrections=(0.0, 0.5))
    assert len(rows) == 8
    best = max(rows, key=lambda r: r["score"])
    assert chosen == {"gain": best["gain"], "temperature": best["temperature"],
                      "prior_correction": best["prior_correction"]}
    assert all(r["score"] == target_score(r) for r in rows)


def test_semantic_loss_is_zero_for_the_original_and_its_gradient_restores_recognisability():
    """The class-distribution loss: KL(original || colorized) through the real backbone. Zero when
    the colours are the original's, positive for the grey version, and a gradient step on the
    grey version's colours lowers it (so it can teach the generator)."""
    from vidcolor.models.mobilenet_v2 import load_mobilenet_v2
    from vidcolor.training.trainer import Perceptual

    net = load_mobilenet_v2()
    torch.manual_seed(0)
    original = torch.nn.functional.interpolate(torch.rand(2, 3, 6, 6), size=(96, 96), mode="bilinear")
    grey = original.mean(1, keepdim=True).expand(-1, 3, -1, -1).clone().requires_grad_(True)
    loss = Perceptual(net)
    feats, logits = net.features_and_logits(original * 2 - 1)
    assert torch.allclose(logits, net(original * 2 - 1)) and len(feats) == 5
    assert all(torch.equal(a, b) for a, b in zip(feats[1:4], net.features(original * 2 - 1, upto=12)[1:]))
    perc_same, kl_same = loss(original, original, semantic=True)
    assert float(perc_same) == 0.0 and abs(float(kl_same)) < 1e-5
    _, kl_off = loss(grey, original)
    assert float(kl_off) == 0.0  # semantic=False does not run the classifier head
    perc_grey, kl_grey = loss(grey, original, semantic=True)
    assert kl_grey.item() > 1e-3 and perc_grey.item() > 0
    kl_grey.backward()
    with torch.no_grad():
        stepped = (grey - 0.05 * grey.grad / grey.grad.abs().max()).clamp(0, 1)
    assert loss(stepped, original, semantic=True)[1].item() < kl_grey.item()


def test_semantic_weight_reaches_the_training_loss(photo_dir, tmp_path):
    """--semantic > 0: the metrics log carries a positive semantic term (off: exactly zero)."""
    for weight, name in ((0.0, "off"), (0.5, "on")):
        cfg = config(photo_dir, tmp_path, out=str(tmp_path / name), steps=(2, 0, 0), semantic=weight,
                     perceptual_crops=2)
        Trainer(cfg, log=lambda m: None).train()
        lines = [json.loads(x) for x in open(tmp_path / name / "metrics.jsonl")]
        sem = next(x["semantic"] for x in lines if "semantic" in x)
        assert (sem > 0) if weight else (sem == 0.0)


def test_train_encoder_from_fine_tunes_only_the_upper_blocks(photo_dir, tmp_path):
    """frozen_blocks = 14 (CLI --train-encoder-from 14): blocks 14-16 and conv_last move after a
    stage-1 step, conv0 and blocks 0-13 stay bit-identical; 17 keeps the whole encoder fixed."""
    for start, name in ((14, "upper"), (17, "frozen")):
        trainer = Trainer(config(photo_dir, tmp_path, out=str(tmp_path / name), steps=(1, 0, 0), frozen_blocks=start,
                                 encoder_lr=1e-2), log=lambda m: None)
        before = {k: v.clone() for k, v in trainer.gen.encoder.state_dict().items()}
        trainer.train()
        after = trainer.gen.encoder.state_dict()
        moved = {k for k in before if not torch.equal(before[k], after[k])}
        upper = {k for k in before if k.startswith("conv_last") or (k.startswith("blocks.") and int(k.split(".")[1]) >= 14)}
        assert moved == (upper if start == 14 else set()), sorted(moved ^ upper)[:5]


def test_weight_average_is_the_warmed_up_ema_survives_resume_and_is_handed_on(photo_dir, tmp_path):
    """--ema 0.9: after stage step n the average is d*avg + (1-d)*weights with d = min(0.9, (1+n)/(10+n));
    a resumed run restores the average from the checkpoint; each stage's end adopts the average,
    so the saved stage weights and the final model are the averaged ones."""
    from safetensors.torch import load_file

    quiet = dict(log=lambda m: None)

    def params(module):
        return {k: v.detach().clone() for k, v in module.named_parameters()}

    trainer = Trainer(config(photo_dir, tmp_path, steps=(3, 1, 1), ema=0.9, lr=1e-2, max_steps_this_run=1), **quiet)
    average = params(trainer.gen)
    for n in range(2):
        if n:  # a fresh process-equivalent: the average must come back from the checkpoint
            trainer = Trainer(config(photo_dir, tmp_path, steps=(3, 1, 1), ema=0.9, lr=1e-2, max_steps_this_run=1), **quiet)
        trainer.train()
        d = min(0.9, (1 + n) / (10 + n))
        weights, got = params(trainer.gen), params(trainer.ema_gen)
        average = {k: d * average[k] + (1 - d) * weights[k] for k in average}
        moved = [k for k in got if not torch.equal(weights[k], average[k])]
        assert moved, "the decoder should have moved under lr 1e-2"
        for k in got:
            assert torch.allclose(got[k], average[k], atol=1e-6), (n, k)
    trainer = Trainer(config(photo_dir, tmp_path, steps=(3, 1, 1), ema=0.9, lr=1e-2), **quiet)
    assert trainer.train()["done"]
    final = params(trainer.gen)
    for k, v in params(trainer.ema_gen).items():
        assert torch.equal(v, final[k]), k
    saved = load_file(str(tmp_path / "run" / "generator_stage3.safetensors"))
    assert all(torch.equal(saved[k], final[k]) for k in final)


def test_tone_jitter_is_a_per_crop_gamma_and_off_leaves_the_random_stream_alone():
    rng = np.random.default_rng(1)
    images = cv2.GaussianBlur(rng.integers(20, 236, (96, 48, 3), dtype=np.uint8), (7, 7), 2).reshape(2, 48, 48, 3)
    plain = random_crops(images, 3, 32, torch.Generator().manual_seed(5), min_scale=0.7)
    assert torch.equal(plain, random_crops(images, 3, 32, torch.Generator().manual_seed(5), min_scale=0.7,
                                           tone_jitter=0.0))
    jittered = random_crops(images, 1, 32, torch.Generator().manual_seed(5), min_scale=0.7, tone_jitter=0.3)
    base = random_crops(images, 1, 32, torch.Generator().manual_seed(5), min_scale=0.7).clamp(1e-3, 1)
    gamma = (jittered.clamp(1e-3, 1).log() / base.log())
    assert 0.74 <= float(gamma.median()) <= 1.35 and abs(float(gamma.median()) - 1) > 1e-3
    assert torch.allclose(jittered, base ** gamma.median(), atol=2e-3)  # one gamma for every pixel and channel


def test_cli_and_flow_take_their_defaults_from_train_config():
    """One set of defaults: every vidcolor train option and every train_model flow parameter that
    names a TrainConfig field defaults to that field's value."""
    import inspect

    import typer.main

    from flows.train_model import train_model
    from vidcolor.cli import app
    from vidcolor.training.config import TrainConfig

    renamed = {"train_encoder_from": "frozen_blocks", "max_steps": "max_steps_this_run"}
    command = typer.main.get_command(app).commands["train"]
    checked = 0
    for param in command.params:
        field = renamed.get(param.name, param.name)
        if field not in TrainConfig.__dataclass_fields__ or field in ("data", "out"):
            continue
        expected = TrainConfig.default(field)
        got = param.default
        if field in ("steps", "minutes"):
            got = tuple(float(x) for x in got.split(","))
            expected = tuple(float(x) for x in expected)
        assert got == expected, (param.name, got, expected)
        checked += 1
    assert checked >= 20
    flow_params = inspect.signature(train_model.fn).parameters
    for name in ("steps", "minutes", "batch", "crop", "window", "seed"):
        assert flow_params[name].default == TrainConfig.default(name), name


def test_train_flow_passes_options_through_and_names_an_unknown_one(photo_dir, tmp_path, prefect_harness):
    """The Prefect flow can run any recipe vidcolor train can (options = further TrainConfig fields);
    the run's config.json records what it was told; an unknown option is one error naming it,
    raised before anything is written."""
    from flows.train_model import train_model

    out = tmp_path / "run"
    options = {"cache_size": 40, "clips": 1, "ckpt_every": 1, "cache_dir": str(tmp_path / "cache"),
               "frozen_blocks": 14, "ema": 0.5, "tone_jitter": 0.2}
    result = train_model(str(photo_dir), str(out), steps=(1, 1, 1), batch=2, crop=32, device="cpu", options=options)
    assert result["state"]["done"] and result["state"]["global_step"] == 3
    recorded = json.loads((out / "config.json").read_text())
    assert {k: recorded[k] for k in options} == options and recorded["steps"] == [1, 1, 1]
    assert (out / "generator_final.safetensors").exists()

    bad = tmp_path / "bad"
    with pytest.raises(Exception, match="unknown training option.*frozen_block\\b"):
        train_model(str(photo_dir), str(bad), steps=(1, 1, 1), options={"frozen_block": 7})
    assert not bad.exists()


def test_whole_photo_cache_keeps_both_ends_of_the_long_side(tmp_path):
    """--whole-photos: a landscape photo gives its left and right squares, a portrait its top and
    bottom ones, a square photo one; the default keeps the centre squares (and its cache key)."""
    from vidcolor.training.data import build_cache

    rng = np.random.default_rng(2)
    folder = tmp_path / "photos"
    folder.mkdir()
    shapes = {"a_landscape.png": (64, 128), "b_square.png": (100, 100), "c_portrait.png": (120, 60)}
    for name, (h, w) in shapes.items():
        cv2.imwrite(str(folder / name), rng.integers(0, 256, (h, w, 3), dtype=np.uint8))

    def resized(name):
        bgr = cv2.imread(str(folder / name))
        h, w = bgr.shape[:2]
        s = 32 / min(h, w)
        bgr = cv2.resize(bgr, (max(32, round(w * s)), max(32, round(h * s))), interpolation=cv2.INTER_AREA)
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    land, square, portrait = (resized(n) for n in shapes)
    whole = build_cache(folder, 32, tmp_path / "cache", whole=True)
    expected = [land[:, :32], land[:, -32:], square, portrait[:32], portrait[-32:]]
    assert whole.shape == (5, 32, 32, 3)
    for got, want in zip(whole, expected):
        assert np.array_equal(got, want)
    centre = build_cache(folder, 32, tmp_path / "cache")
    assert centre.shape == (3, 32, 32, 3)
    assert np.array_equal(centre[0], land[:, 16:48]) and np.array_equal(centre[2], portrait[16:48])
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 2  # one cache per mode


def solid(rgb, n, size=24):
    return np.broadcast_to(np.array(rgb, np.uint8), (n, size, size, 3)).copy()


def test_photo_sources_give_each_source_its_share_of_every_batch_whatever_its_size():
    """Two folders of 3 and 60 photos: at share 0.5 every batch of 16 holds exactly 8 of each; at 0.3
    each batch holds 4 or 5 of the large one, 4.8 on average over many batches; both sources are
    spread over the batch (the perceptual loss sees only its first crops) and every photo is used."""
    from vidcolor.training.data import PhotoSources

    small, large = solid((200, 30, 30), 3), solid((30, 30, 200), 60)
    even = PhotoSources([small, large], [1.0, 1.0])
    gen = torch.Generator().manual_seed(0)
    firsts, seen = [], {0: set(), 1: set()}
    for _ in range(300):
        picks = even.pick(16, gen)
        assert sum(s == 1 for s, _ in picks) == 8
        firsts.append(picks[0][0])
        for s, i in picks:
            assert 0 <= i < (3, 60)[s]
            seen[s].add(i)
    assert 0.35 < np.mean(firsts) < 0.65
    assert seen == {0: {0, 1, 2}, 1: set(range(60))}

    skewed = PhotoSources([small, large], [0.7, 0.3])
    counts = [sum(s == 1 for s, _ in skewed.pick(16, gen)) for _ in range(2000)]
    assert set(counts) == {4, 5}
    assert abs(np.mean(counts) - 16 * 0.3) < 0.05


def test_mixed_crops_come_from_both_sources_in_the_given_ratio():
    """random_crops over PhotoSources: red photos (data) and ten times as many blue ones (extra) at
    extra share 0.25 give a quarter blue crops over many draws, not the 10/11 their counts would;
    a single source draws exactly as the plain array does (single-folder runs keep their stream)."""
    from vidcolor.training.data import PhotoSources

    red, blue = solid((220, 20, 20), 2), solid((20, 20, 220), 20)
    sources = PhotoSources([red, blue], [0.75, 0.25])
    crops = torch.cat([random_crops(sources, 8, 16, torch.Generator().manual_seed(k)) for k in range(100)])
    is_blue = crops[:, 2].mean((1, 2)) > crops[:, 0].mean((1, 2))
    assert abs(float(is_blue.float().mean()) - 0.25) < 0.02
    alone = random_crops(PhotoSources([red], [1.0]), 5, 16, torch.Generator().manual_seed(3), min_scale=0.7)
    assert torch.equal(alone, random_crops(red, 5, 16, torch.Generator().manual_seed(3), min_scale=0.7))


def test_rebalancing_prior_follows_the_shares_not_the_photo_counts():
    from vidcolor.models.generator import Generator, GeneratorConfig
    from vidcolor.training.data import PhotoSources
    from vidcolor.training.trainer import rebalancing_weights

    centres = Generator(GeneratorConfig(window=1)).bin_centres.cpu()
    red, blue = solid((220, 20, 20), 1), solid((20, 20, 220), 9)

    def mass_ratio(images):
        _, prior = rebalancing_weights(images, centres, 0.5)
        lab = [torch.from_numpy(rgb_lab(x[0, 0, 0]))[1:] for x in (red, blue)]
        near = [torch.cdist(ab[None], centres)[0] < 25 for ab in lab]
        return float(prior[near[1]].sum() / prior[near[0]].sum())

    assert mass_ratio(np.concatenate([red, blue])) > 5  # by photo count: blue dominates
    assert 0.5 < mass_ratio(PhotoSources([red, blue], [0.5, 0.5])) < 2  # by share: even


def rgb_lab(rgb):
    from vidcolor.color import rgb_to_lab

    return rgb_to_lab(np.asarray(rgb, np.float32)[None, None] / 255.0)[0, 0]


def test_trainer_mixes_the_extra_folder_at_its_weight(photo_dir, tmp_path):
    extra = tmp_path / "extra"
    extra.mkdir()
    for i in range(10):
        cv2.imwrite(str(extra / f"e{i}.png"), solid((20, 20, 220), 1, 60)[0])
    logs = []
    trainer = Trainer(config(photo_dir, tmp_path, extra=str(extra), extra_weight=0.25, max_steps_this_run=1),
                      log=logs.append)
    assert [len(a) for a in trainer.sources.arrays] == [4, 10] and trainer.sources.shares == [0.75, 0.25]
    assert any("10 from" in m and "(25%)" in m for m in logs)
    assert trainer.train()["global_step"] == 1
    with pytest.raises(ValueError, match="extra_weight must be between 0 and 1, got 1.5"):
        config(photo_dir, tmp_path, extra=str(extra), extra_weight=1.5)


def _parse_train(args):
    import typer.main

    from vidcolor.cli import app

    command = typer.main.get_command(app).commands["train"]
    return command, command.make_context("train", list(args)).params


def test_train_cli_has_one_option_per_config_field_with_its_default():
    """vidcolor train is generated from TrainConfig: every field is a parameter of the same name,
    and a command line with only DATA and -o gives exactly TrainConfig's defaults."""
    import dataclasses

    from vidcolor.cli.train_cmd import config_from_cli
    from vidcolor.training.config import TrainConfig

    command, params = _parse_train(["photos", "-o", "run"])
    names = {p.name for p in command.params}
    assert names == {f.name for f in dataclasses.fields(TrainConfig)} | {"export"}
    assert all(p.help for p in command.params)
    assert params.pop("export") is None
    assert config_from_cli(params) == TrainConfig(data="photos", out="run")


def test_train_cli_passes_every_field_through():
    """A non-default value on the command line for every field reaches the TrainConfig (the option
    names the CLI had before generation keep working: --train-encoder-from, --max-steps,
    --whole-photos, comma-separated --steps / --minutes)."""
    import dataclasses

    from vidcolor.cli.train_cmd import config_from_cli
    from vidcolor.training.config import TrainConfig

    special = {"steps": ("--steps", "5,6,7", (5, 6, 7)), "minutes": ("--minutes", "1.5,0,2", (1.5, 0.0, 2.0)),
               "whole_photos": ("--whole-photos", None, True), "frozen_blocks": ("--train-encoder-from", "7", 7),
               "max_steps_this_run": ("--max-steps", "9", 9), "head": ("--head", "regression", "regression"),
               "device": ("--device", "cpu", "cpu"), "extra_weight": ("--extra-weight", "0.25", 0.25),
               "precision": ("--precision", "fp32", "fp32")}
    args, expected = ["photos", "-o", "run"], {"data": "photos", "out": "run"}
    for f in dataclasses.fields(TrainConfig):
        if f.name in ("data", "out"):
            continue
        if f.name in special:
            flag, text, value = special[f.name]
        elif isinstance(f.default, (int, float)) and not isinstance(f.default, bool):
            value = type(f.default)(f.default + 3)
            flag, text = "--" + f.name.replace("_", "-"), str(value)
        else:  # paths / text
            value = f"/x/{f.name}"
            flag, text = "--" + f.name.replace("_", "-"), value
        args += [flag] + ([text] if text is not None else [])
        expected[f.name] = value
    _, params = _parse_train(args)
    params.pop("export")
    config = config_from_cli(params)
    assert dataclasses.asdict(config) == dataclasses.asdict(TrainConfig(**expected))
    assert config != TrainConfig(data="photos", out="run")


def test_train_flow_parameters_are_the_config_fields():
    import dataclasses
    import inspect

    from flows.train_model import train_model
    from vidcolor.training.config import TrainConfig

    params = inspect.signature(train_model.fn).parameters
    for f in dataclasses.fields(TrainConfig):
        want = inspect.Parameter.empty if f.default is dataclasses.MISSING else f.default
        assert params[f.name].default == want, f.name
    assert set(params) == {f.name for f in dataclasses.fields(TrainConfig)} | {"export", "options"}


def test_decoding_from_takes_another_models_decoding_instead_of_calibrating(photo_dir, tmp_path):
    from vidcolor.models.gan_colorizer import read_generator
    from vidcolor.training.calibrate import finish_run

    source = Trainer(config(photo_dir, tmp_path / "src", max_steps_this_run=1), log=lambda m: None)
    source.gen.config.guided_eps = 0.01
    source.save_generator(tmp_path / "decoding.safetensors", gain=1.2, temperature=0.6, prior_correction=0.25)
    trainer = Trainer(config(photo_dir, tmp_path, steps=(1, 1, 1), val=str(photo_dir),
                             decoding_from=str(tmp_path / "decoding.safetensors")), log=lambda m: None)
    assert trainer.train()["done"]
    gen, meta = read_generator(finish_run(trainer))
    assert (gen.config.temperature, gen.config.prior_correction, gen.config.guided_eps) == (0.6, 0.25, 0.01)
    assert float(meta["chroma_gain"]) == 1.2
    calibration = json.loads((tmp_path / "run" / "calibration.json").read_text())
    assert "rows" not in calibration and calibration["decoding_from"].endswith("decoding.safetensors")
