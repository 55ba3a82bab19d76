"""Reading the deployment files under infra/ and k8s/ for the offline checks.

`render` builds a kustomization the way `kubectl kustomize` does for the features this repo uses
(resources, namespace, labels, images, Secret/ConfigMap generators without name hashes,
strategic-merge and JSON 6902 patches), in Python, so the checks run where neither kubectl nor
kustomize is installed. tests/test_deploy_config.py compares it with kubectl's output where
kubectl is on PATH, and fails on a kustomization feature it does not know.
"""

from __future__ import annotations

import base64
import copy
import re
from pathlib import Path

import jsonpatch
import yaml

ROOT = Path(__file__).resolve().parents[1]
INFRA = ROOT / "infra"
K8S = ROOT / "k8s"
OVERLAYS = sorted(p.parent for p in (K8S / "overlays").glob("*/kustomization.yaml"))
RENDER_TARGETS = [K8S / "base"] + OVERLAYS

# Kinds whose objects live outside namespaces (the ones this repo could contain).
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
                  "PersistentVolume", "StorageClass", "PriorityClass"}
KNOWN_KUSTOMIZE_KEYS = {"apiVersion", "kind", "resources", "namespace", "labels", "images",
                        "generatorOptions", "secretGenerator", "configMapGenerator", "patches"}


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def docs(path: Path) -> list:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def walk(node, parents=()):
    """Yield (node, parents) for every dict and list in a YAML tree."""
    yield node, parents
    if isinstance(node, dict):
        for v in node.values():
            yield from walk(v, parents + (node,))
    elif isinstance(node, list):
        for v in node:
            yield from walk(v, parents + (node,))


def containers(doc) -> list[dict]:
    """Every container spec anywhere in a manifest or patch (containers / initContainers lists)."""
    found = []
    for node, _ in walk(doc):
        if isinstance(node, dict):
            for key in ("containers", "initContainers"):
                if isinstance(node.get(key), list):
                    found += [c for c in node[key] if isinstance(c, dict)]
    return found


# --------------------------------------------------------------------------------------------
# kustomize


def _strategic_merge(base, patch):
    """Strategic merge for plain objects: maps merge, lists of named maps merge by name."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for k, v in patch.items():
            out[k] = _strategic_merge(base[k], v) if k in base else copy.deepcopy(v)
        return out
    if (isinstance(base, list) and isinstance(patch, list) and patch
            and all(isinstance(i, dict) and "name" in i for i in base + patch)):
        out = [copy.deepcopy(i) for i in base]
        index = {i["name"]: n for n, i in enumerate(out)}
        for item in patch:
            if item["name"] in index:
                out[index[item["name"]]] = _strategic_merge(out[index[item["name"]]], item)
            else:
                out.append(copy.deepcopy(item))
        return out
    return copy.deepcopy(patch)


def _matches(obj: dict, target: dict) -> bool:
    group, _, version = obj["apiVersion"].rpartition("/")
    return all([
        target.get("kind", obj["kind"]) == obj["kind"],
        target.get("name", obj["metadata"]["name"]) == obj["metadata"]["name"],
        target.get("group", group) == group,
        target.get("version", version) == version,
    ])


def _generated(kust: dict, here: Path) -> list[dict]:
    out = []
    has_generators = kust.get("secretGenerator") or kust.get("configMapGenerator")
    if has_generators and not kust.get("generatorOptions", {}).get("disableNameSuffixHash"):
        raise NotImplementedError(f"{rel(here)}: generators with name hashes are not rendered here")
    for kind, key in (("Secret", "secretGenerator"), ("ConfigMap", "configMapGenerator")):
        for gen in kust.get(key, []):
            if set(gen) - {"name", "literals", "files", "envs"}:
                raise NotImplementedError(f"{rel(here)}: {key} options {set(gen)}")
            data = {}
            for literal in gen.get("literals", []):
                k, v = literal.split("=", 1)
                data[k] = v
            for spec in gen.get("files", []):
                k, _, f = spec.rpartition("=")
                path = here / f
                data[k or path.name] = path.read_text()
            for env in gen.get("envs", []):
                for line in (here / env).read_text().splitlines():
                    if line.strip() and not line.startswith("#"):
                        k, v = line.split("=", 1)
                        data[k] = v
            obj = {"apiVersion": "v1", "kind": kind, "metadata": {"name": gen["name"]}}
            if kind == "Secret":
                obj["type"] = "Opaque"
                obj["data"] = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
            else:
                obj["data"] = data
            out.append(obj)
    return out


def render(target: Path) -> list[dict]:
    """Objects of the kustomization in `target` (a folder), as `kubectl kustomize` builds them."""
    (kust,) = docs(target / "kustomization.yaml")
    unknown = set(kust) - KNOWN_KUSTOMIZE_KEYS
    if unknown:
        raise NotImplementedError(f"{rel(target)}: kustomization fields {sorted(unknown)} not rendered here")
    objs: list[dict] = []
    for ref in kust.get("resources", []):
        path = (target / ref).resolve()
        objs += render(path) if path.is_dir() else [copy.deepcopy(d) for d in docs(path)]
    objs += _generated(kust, target)

    for patch in kust.get("patches", []):
        body = docs(target / patch["path"])
        if len(body) == 1 and isinstance(body[0], list):  # JSON 6902
            ops = jsonpatch.JsonPatch(body[0])
            hits = [i for i, o in enumerate(objs) if _matches(o, patch["target"])]
            assert hits, f"{rel(target)}: patch {patch['path']} matches no object"
            for i in hits:
                objs[i] = ops.apply(objs[i])
            continue
        for part in body:
            sel = {"kind": part["kind"], "name": part["metadata"]["name"]}
            hits = [i for i, o in enumerate(objs) if _matches(o, sel)]
            assert hits, f"{rel(target)}: patch {patch['path']} matches no {sel}"
            for i in hits:
                objs[i] = _strategic_merge(objs[i], part)

    for img in kust.get("images", []):
        for obj in objs:
            for c in containers(obj):
                name, _, tag = c["image"].partition(":")
                if name == img["name"]:
                    c["image"] = f"{img.get('newName', name)}:{img.get('newTag', tag)}"

    for label in kust.get("labels", []):
        if label.get("includeSelectors") or label.get("includeTemplates"):
            raise NotImplementedError(f"{rel(target)}: labels on selectors/templates")
        for obj in objs:
            obj["metadata"].setdefault("labels", {}).update(label["pairs"])

    if "namespace" in kust:
        for obj in objs:
            if obj["kind"] not in CLUSTER_SCOPED:
                obj["metadata"]["namespace"] = kust["namespace"]
    return objs


# --------------------------------------------------------------------------------------------
# Pods: what runs, with which labels


def pod_templates(obj: dict) -> list[tuple[str, dict, dict]]:
    """(role, pod labels, pod template) for every pod an object makes.

    For a RayCluster, KubeRay adds ray.io/cluster, ray.io/node-type and ray.io/group to the labels.
    """
    kind, spec = obj["kind"], obj.get("spec", {})
    name = obj["metadata"]["name"]
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        tpl = spec["template"]
        return [(f"{kind}/{name}", dict(tpl.get("metadata", {}).get("labels", {})), tpl)]
    if kind == "RayCluster":
        out = []
        groups = [("head", "headgroup", spec["headGroupSpec"])]
        groups += [("worker", g["groupName"], g) for g in spec.get("workerGroupSpecs", [])]
        for node_type, group, g in groups:
            tpl = g["template"]
            labels = dict(tpl.get("metadata", {}).get("labels", {}))
            labels.update({"ray.io/cluster": name, "ray.io/node-type": node_type, "ray.io/group": group})
            out.append((f"RayCluster/{name}/{group}", labels, tpl))
        return out
    if kind == "RayJob" and "submitterPodTemplate" in spec:
        tpl = spec["submitterPodTemplate"]
        return [(f"RayJob/{name}/submitter", dict(tpl.get("metadata", {}).get("labels", {})), tpl)]
    return []


def env_of(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


# --------------------------------------------------------------------------------------------
# NetworkPolicy evaluation (namespace-local pods, matchLabels / matchExpressions)


def selects(selector: dict, labels: dict) -> bool:
    for k, v in selector.get("matchLabels", {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions", []):
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def _peer_matches(peer: dict, labels: dict, same_namespace: bool) -> bool:
    if "ipBlock" in peer:
        return False  # pod-to-pod paths only
    if "namespaceSelector" in peer:
        # Only `{}` (any namespace) is used here; a pod of this namespace matches it too.
        if peer["namespaceSelector"] != {}:
            return False
    elif not same_namespace:
        return False
    return selects(peer.get("podSelector", {}), labels)


def _port_matches(rule: dict, port: int) -> bool:
    ports = rule.get("ports")
    return not ports or any(p.get("port") == port and p.get("protocol", "TCP") == "TCP" for p in ports)


def _direction_allows(policies, direction, pod_labels, peer_labels, port, same_namespace=True) -> bool:
    key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    governing = [p for p in policies if selects(p["spec"]["podSelector"], pod_labels)
                 and direction in p["spec"].get("policyTypes", ["Ingress"])]
    if not governing:
        return True  # no policy isolates this pod in that direction
    for pol in governing:
        for rule in pol["spec"].get(key, []) or []:
            peers = rule.get(peers_key)
            peer_ok = not peers or any(_peer_matches(p, peer_labels, same_namespace) for p in peers)
            if peer_ok and _port_matches(rule, port):
                return True
    return False


def connection_allowed(policies: list[dict], src: dict, dst: dict, port: int) -> bool:
    """Whether pod `src` (labels) may open TCP `port` on pod `dst` (labels), same namespace."""
    return (_direction_allows(policies, "Egress", src, dst, port)
            and _direction_allows(policies, "Ingress", dst, src, port))


def external_ingress_allowed(policies: list[dict], dst: dict, src_labels: dict, port: int) -> bool:
    """Whether a pod of another namespace with `src_labels` may reach `dst` on `port`."""
    return _direction_allows(policies, "Ingress", dst, src_labels, port, same_namespace=False)
