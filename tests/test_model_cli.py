"""``vidcolor image`` end to end through the real CLI process, and ``vidcolor eval images``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

VIDCOLOR = [sys.executable, "-c", "from vidcolor.cli import main; main()"]


def run(*args, cwd=None):
    return subprocess.run([*VIDCOLOR, *map(str, args)], capture_output=True, text=True, timeout=300, cwd=cwd)


def make_png(path: Path, h=70, w=100):
    yy, xx = np.mgrid[0:h, 0:w]
    bgr = np.stack([(xx * 2) % 256, (yy * 3) % 256, (xx + yy) % 256], -1).astype(np.uint8)
    cv2.imwrite(str(path), bgr)


def test_image_single_keeps_size(tmp_path):
    src, dst = tmp_path / "in.png", tmp_path / "out" / "col.png"
    make_png(src)
    r = run("image", src, "-o", dst, "--render-size", "64")
    assert r.returncode == 0, r.stderr
    out = cv2.imread(str(dst))
    assert out.shape == (70, 100, 3)
    assert not [p for p in dst.parent.iterdir() if p.name != "col.png"]  # no temp files left


def test_image_folder(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    make_png(d / "a.png", 64, 64)
    make_png(d / "b.png", 40, 90)
    r = run("image", d, "-o", tmp_path / "out", "--render-size", "64")
    assert r.returncode == 0, r.stderr
    assert cv2.imread(str(tmp_path / "out" / "b.png")).shape == (40, 90, 3)


def _one_error_line(r, name):
    lines = [l for l in r.stderr.strip().splitlines() if l.strip()]
    assert r.returncode != 0
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("vidcolor: error: ") and name in lines[0]  # the same prefix as colorize's errors


def test_image_missing_file(tmp_path):
    dst = tmp_path / "out.png"
    r = run("image", tmp_path / "nope.png", "-o", dst)
    _one_error_line(r, "nope.png")
    assert not dst.exists()


def test_image_text_file(tmp_path):
    src, dst = tmp_path / "notes.png", tmp_path / "out.png"
    src.write_text("this is not an image\n")
    r = run("image", src, "-o", dst)
    _one_error_line(r, "notes.png")
    assert not dst.exists() and list(tmp_path.iterdir()) == [src]


def test_image_folder_with_bad_file_writes_nothing(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    make_png(d / "a.png")
    (d / "z.jpg").write_bytes(b"\x00garbage")
    r = run("image", d, "-o", tmp_path / "out")
    _one_error_line(r, "z.jpg")
    assert not (tmp_path / "out").exists()


def test_eval_images_cli(tmp_path):
    d = tmp_path / "imgs"
    d.mkdir()
    make_png(d / "n01443537_1_goldfish.png", 64, 64)
    make_png(d / "plain.png", 64, 96)
    r = run("eval", "images", d, "-o", tmp_path / "rep", "--render-size", "64")
    assert r.returncode == 0, r.stderr
    rep = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert rep["images"] == 2 and rep["images_with_class"] == 1
    assert set(rep["table"]) == {"grey", "ours", "original"}
    assert rep["table"]["original"]["colourfulness_ratio"] == 1.0
    assert (tmp_path / "rep" / "contact_sheet.png").exists()


@pytest.mark.parametrize("command", ["image", "eval"])
def test_bad_model_one_line(tmp_path, command):
    d = tmp_path / "imgs"
    d.mkdir()
    make_png(d / "a.png", 64, 64)
    args = ["image", d / "a.png", "-o", tmp_path / "out.png"] if command == "image" else \
        ["eval", "images", d, "-o", tmp_path / "rep"]
    r = run(*args, "--model", tmp_path / "missing.safetensors")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vidcolor: error: --model: "), r.stderr
    assert "missing.safetensors: no such weights file" in lines[0], r.stderr
    assert not (tmp_path / "out.png").exists() and not (tmp_path / "rep").exists()
