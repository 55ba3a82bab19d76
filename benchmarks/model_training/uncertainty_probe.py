"""Uncertainty signals of the bins head against the truth, per photo and per pixel (analysis for
benchmarks/model_training/v4_decoding.md).

For each photo (render size 256, image mode): the predicted distribution at T = 1 and at the
decoding temperature, its variance E|ab - E ab|^2, entropy, top-bin probability, mass within 15 of
neutral, and the ab-MSE of the annealed mean and of grey against the original's ab at the logits'
resolution; s_opt = the gain that would minimise that MSE. Writes OUT.json (per photo) and
OUT_pix.npy (every 4th pixel: variance, neutral mass, entropy, predicted ab, true ab, photo index).

    .venv/bin/python benchmarks/model_training/uncertainty_probe.py ../shared/data/images/val OUT [WEIGHTS]
"""
import json, sys, numpy as np, torch, cv2
from pathlib import Path
from vidcolor.models.gan_colorizer import DEFAULT_WEIGHTS, read_generator
from vidcolor.render import render_size
from vidcolor.color import rgb_to_lab
from vidcolor.media.still import read_image_rgb
torch.set_num_threads(1)
folder = Path(sys.argv[1]); out = sys.argv[2]
gen, meta = read_generator(sys.argv[3] if len(sys.argv) > 3 else DEFAULT_WEIGHTS)
c = gen.bin_centres.float()
rows = []; pix = []
files = sorted(folder.iterdir())
for i, p in enumerate(files):
    rgb = read_image_rgb(p)
    h, w = rgb.shape[:2]
    rw, rh = render_size(w, h, 256, 32, upscale=True)
    small = cv2.resize(rgb, (rw, rh), interpolation=cv2.INTER_AREA)
    lab = rgb_to_lab(small.astype(np.float32) / 255)
    with torch.inference_mode():
        L = torch.from_numpy(lab[..., 0])[None, None]
        ab, logits = gen(L, radius=0, return_logits=True)
        lg = logits[0].float()  # Q,h,w
        p1 = torch.softmax(lg, 0); pT = torch.softmax(lg / gen.config.temperature, 0)
        m1 = torch.einsum("qhw,qc->chw", p1, c); mT = torch.einsum("qhw,qc->chw", pT, c)
        d2 = ((c[:, :, None, None] - m1[None]) ** 2).sum(1)
        var1 = (p1 * d2).sum(0)
        d2T = ((c[:, :, None, None] - mT[None]) ** 2).sum(1)
        varT = (pT * d2T).sum(0)
        neutral = p1[(c.norm(dim=1) < 15)].sum(0)
        ent = -(p1 * p1.clamp_min(1e-12).log()).sum(0)
        pmax = p1.max(0).values
    hh, ww = lg.shape[-2:]
    gt = cv2.resize(lab[..., 1:], (ww, hh), interpolation=cv2.INTER_AREA).transpose(2, 0, 1)
    mTn = mT.numpy(); m1n = m1.numpy()
    def s_opt(m):
        den = float((m ** 2).sum()); return float((m * gt).sum() / den) if den > 0 else 0.0
    r = {"file": p.name, "gt_chroma": float(np.sqrt((gt ** 2).sum(0)).mean()),
         "predT_chroma": float(np.sqrt((mTn ** 2).sum(0)).mean()), "pred1_chroma": float(np.sqrt((m1n ** 2).sum(0)).mean()),
         "var1": float(var1.mean()), "varT": float(varT.mean()), "neutral": float(neutral.mean()), "ent": float(ent.mean()),
         "pmax": float(pmax.mean()), "s_opt_T": s_opt(mTn), "s_opt_1": s_opt(m1n),
         "mse_T": float(((mTn - gt) ** 2).sum(0).mean()), "mse_grey": float((gt ** 2).sum(0).mean()), "mse_1": float(((m1n - gt) ** 2).sum(0).mean())}
    rows.append(r)
    sub = np.s_[:, ::2, ::2]
    pix.append(np.stack([var1.numpy()[::2, ::2].ravel(), neutral.numpy()[::2, ::2].ravel(), ent.numpy()[::2, ::2].ravel(),
                         mTn[sub][0].ravel(), mTn[sub][1].ravel(), gt[sub][0].ravel(), gt[sub][1].ravel(),
                         np.full(var1.numpy()[::2, ::2].size, i)], 1))
json.dump(rows, open(out + ".json", "w"), indent=0)
np.save(out + "_pix.npy", np.concatenate(pix).astype(np.float32))
print("done", len(rows))
