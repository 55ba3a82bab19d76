"""Resumable checkpoints without pickle: model and optimizer tensors in safetensors, counters and
hyper-parameters in JSON. Every file is written to a temporary name and renamed, and state.json
(the commit point) is written last."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from vidcolor.atomic import atomic_path, write_text_atomic


def _atomic_save_tensors(tensors: dict[str, torch.Tensor], path: Path, metadata: dict | None = None) -> None:
    with atomic_path(path) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp), metadata=metadata)


def optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Flatten an optimizer's state dict: tensors by 'state.<param>.<key>', the rest as JSON."""
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"state.{pid}.{k}"] = v
            else:
                scalars[f"{pid}.{k}"] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def load_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    state: dict[int, dict] = {}
    for name, v in tensors.items():
        _, pid, k = name.split(".", 2)
        state.setdefault(int(pid), {})[k] = v
    for name, v in meta.get("scalars", {}).items():
        pid, k = name.split(".", 1)
        state.setdefault(int(pid), {})[k] = v
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save_checkpoint(folder: str | Path, modules: dict[str, torch.nn.Module],
                    optimizers: dict[str, torch.optim.Optimizer], state: dict) -> None:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    opt_meta = {}
    for name, m in modules.items():
        _atomic_save_tensors(m.state_dict(), folder / f"{name}.safetensors")
    for name, o in optimizers.items():
        tensors, meta = optimizer_tensors(o)
        _atomic_save_tensors(tensors, folder / f"{name}.safetensors")
        opt_meta[name] = meta
    write_text_atomic(folder / "optimizers.json", json.dumps(opt_meta))
    write_text_atomic(folder / "state.json", json.dumps(state, indent=1))


def load_checkpoint(folder: str | Path, modules: dict[str, torch.nn.Module],
                    optimizers: dict[str, torch.optim.Optimizer], device: str = "cpu") -> dict | None:
    """Restore in place; returns the saved state dict, or None when there is no checkpoint."""
    folder = Path(folder)
    if not (folder / "state.json").exists():
        return None
    state = json.loads((folder / "state.json").read_text())
    for name, m in modules.items():
        m.load_state_dict(load_file(str(folder / f"{name}.safetensors"), device=device))
    opt_meta = json.loads((folder / "optimizers.json").read_text())
    for name, o in optimizers.items():
        if name in opt_meta:
            load_optimizer(o, load_file(str(folder / f"{name}.safetensors"), device=device), opt_meta[name])
    return state
