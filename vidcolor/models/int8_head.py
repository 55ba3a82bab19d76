"""The bins head's decoder in int8 on a CPU: its quantisers, shipped beside the weights.

Post-training quantisation (NNCF, calibrated on training photos) makes the head decoder's
convolutions int8; measured on the eval photos it changes PSNR by +0.013 dB and speeds the whole
model up 1.16x on 2 cores (the per-frame network in int8 lost 1.6 dB and is left in bf16:
docs/performance.md, benchmarks/int8_probe.py). What NNCF adds to the network is only
FakeQuantize operations: where each sits and its ranges are kept in a small safetensors file
(``<weights>.int8-head.safetensors``), written once by ``python -m vidcolor.training.int8_calibration`` and
put back into the exported network at load time, so running it needs neither NNCF nor a
calibration set, and the weights stay one safetensors file.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

FORMAT = "vidcolor-int8-quantisers/1"
NETWORK = "head_logits"
RANGES = ("input_low", "input_high", "output_low", "output_high")


def quantisers_path(weights: Path) -> Path:
    return weights.with_name(weights.name.removesuffix(".safetensors") + ".int8-head.safetensors")


def save_quantisers(quantised, path: Path, weights_identity: str) -> int:
    """Record every FakeQuantize of an NNCF-quantised OpenVINO model: the output it reads (by the
    producing node's name and port, or for weights the consumer's input), the inputs it feeds, its
    levels and ranges. Returns how many."""
    from safetensors.numpy import save_file

    found = []
    for op in quantised.get_ops():
        if op.get_type_name() != "FakeQuantize":
            continue
        source = op.input(0).get_source_output()
        consumers = sorted([t.get_node().get_friendly_name(), t.get_index()] for t in op.output(0).get_target_inputs())
        producer = source.get_node()
        if producer.get_type_name() == "Constant":  # a weight: found again through its consumer
            entry = {"weight_of": consumers}
        else:
            entry = {"source": [producer.get_friendly_name(), source.get_index()], "consumers": consumers}
        entry["levels"] = int(op.get_attributes()["levels"])
        found.append((entry, [op.input(i).get_source_output().get_node().get_data() for i in range(1, 5)]))
    found.sort(key=lambda item: json.dumps(item[0], sort_keys=True))  # the same file from the same network
    entries, tensors = [entry for entry, _ in found], {}
    for k, (_, values) in enumerate(found):
        for name, value in zip(RANGES, values):
            tensors[f"{k}.{name}"] = np.ascontiguousarray(value, dtype=np.float32)
    meta = {"format": FORMAT, "network": NETWORK, "weights": weights_identity, "quantisers": json.dumps(entries)}
    save_file(tensors, str(path), metadata=meta)
    path.chmod(0o644)  # shipped beside the weights, readable like them
    return len(entries)


def apply_quantisers(model, path: Path, weights_identity: str) -> int:
    """Put the recorded FakeQuantize operations back into ``model`` (the exported head decoder, as
    OpenVINO read it). Raises ValueError, leaving ``model`` untouched, when the file is of another
    format or weights, or names a node the model lacks (another exporter): the caller then runs
    the network unquantised."""
    import openvino.opset13 as ops
    from safetensors import safe_open

    with safe_open(str(path), "np") as f:
        meta = f.metadata() or {}
        if meta.get("format") != FORMAT or meta.get("network") != NETWORK:
            raise ValueError(f"{path}: not a {FORMAT} file for the {NETWORK} network")
        if meta.get("weights") != weights_identity:
            raise ValueError(f"{path}: made for weights {meta.get('weights')}, not {weights_identity}")
        entries = json.loads(meta["quantisers"])
        ranges = [{name: f.get_tensor(f"{k}.{name}") for name in RANGES} for k in range(len(entries))]
    nodes = {op.get_friendly_name(): op for op in model.get_ops()}

    def node(name: str):
        if name not in nodes:
            raise ValueError(f"{path}: the network has no node {name!r} (exported differently)")
        return nodes[name]

    # resolve everything first, so that a mismatch changes nothing
    plans = []
    for entry, r in zip(entries, ranges):
        if "weight_of" in entry:
            targets = [node(n).input(port) for n, port in entry["weight_of"]]
            source = targets[0].get_source_output()
            if source.get_node().get_type_name() not in ("Constant", "Convert"):
                raise ValueError(f"{path}: {entry['weight_of'][0][0]} does not read a constant weight")
        else:
            name, port = entry["source"]
            source = node(name).output(port)
            targets = [node(n).input(p) for n, p in entry["consumers"]]
        plans.append((source, targets, entry["levels"], r))
    for source, targets, levels, r in plans:
        fq = ops.fake_quantize(source, *(ops.constant(r[name]) for name in RANGES), levels)
        for target in targets:
            target.replace_source_output(fq.output(0))
    model.validate_nodes_and_infer_types()
    return len(plans)
