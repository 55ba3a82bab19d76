"""Deployment files are secure by default (infra/ and k8s/), checked offline on the files.

Each test names one guarantee of docs/reliability.md ("Deployment security"): services bound to
loopback or ClusterIP, Ray token auth on every Ray process and client, the Prefect API behind
basic auth, NetworkPolicies that deny all but vidcolor's paths, a least-privilege IAM policy, no
literal credentials outside the k8s dev overlay. The Kubernetes checks run on the rendered
kustomizations (tests/deploy_helpers.py).
"""

from __future__ import annotations

import json
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.deploy_helpers import (
    INFRA,
    K8S,
    RENDER_TARGETS,
    ROOT,
    connection_allowed,
    containers,
    docs,
    env_of,
    external_ingress_allowed,
    pod_templates,
    rel,
    render,
    selects,
    walk,
)

COMPOSE = INFRA / "compose.yaml"
RAY_LAUNCHER = INFRA / "ray-cluster.yaml"
MAKE_SECRETS = INFRA / "dev" / "make_secrets.py"
IAM_POLICY = INFRA / "iam" / "vidcolor-store-policy.json"
RAYJOB_EXAMPLE = K8S / "base" / "examples" / "rayjob-colorize-film.yaml"
DEV_OVERLAY = K8S / "overlays" / "dev"

RAY_TOKEN_SECRET = ("vidcolor-ray-auth", "auth_token")
PREFECT_AUTH_SECRET = ("vidcolor-prefect-auth", "auth-string")
SECRET_ENV = re.compile(r"(SECRET|PASSWORD|TOKEN|AUTH_STRING|ACCESS_KEY)", re.I)
LOOPBACK = {"127.0.0.1", "::1", "[::1]"}


def _compose() -> dict:
    (cfg,) = docs(COMPOSE)
    return cfg


def _rendered() -> dict[str, list[dict]]:
    return {rel(t): render(t) for t in RENDER_TARGETS}


# --------------------------------------------------------------------------------------------
# Local stack (compose)


def _host_ip(port) -> str | None:
    if isinstance(port, dict):
        return port.get("host_ip")
    parts = str(port).rsplit("/", 1)[0]
    if parts.startswith("["):  # [::1]:8265:8265
        return parts[: parts.index("]") + 1]
    pieces = parts.split(":")
    return pieces[0] if len(pieces) == 3 else None


def test_compose_publishes_on_loopback_only():
    published = 0
    for name, svc in _compose()["services"].items():
        assert svc.get("network_mode") != "host", f"compose service {name} uses the host network"
        for port in svc.get("ports", []):
            published += 1
            assert _host_ip(port) in LOOPBACK, (
                f"compose service {name} publishes {port!r} beyond 127.0.0.1")
    assert published >= 4  # Prefect, Ray dashboard, Ray Client, S3


def _env_files(svc: dict) -> list[str]:
    files = svc.get("env_file", [])
    return [files] if isinstance(files, str) else [f if isinstance(f, str) else f["path"] for f in files]


def test_compose_holds_no_credentials():
    for name, svc in _compose()["services"].items():
        env = svc.get("environment", {}) or {}
        if isinstance(env, list):
            env = dict(item.split("=", 1) for item in env)
        secretish = sorted(k for k in env if SECRET_ENV.search(k))
        assert not secretish, f"compose service {name} sets {secretish} in the file; use .secrets/*.env"
        for f in _env_files(svc):
            assert f.startswith(".secrets/"), f"compose service {name} reads env file {f} outside .secrets/"
    assert not re.search(r"\$\{\w*(SECRET|PASSWORD|TOKEN|KEY)\w*:?-", COMPOSE.read_text()), (
        "compose.yaml gives a credential variable a default value")


def _read_env(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


@pytest.fixture(scope="module")
def made_secrets(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("stack") / ".secrets"
    proc = subprocess.run([sys.executable, str(MAKE_SECRETS), "--dir", str(target)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return target


def _service_env(svc: dict, secrets_dir: Path) -> dict[str, str]:
    env = dict(svc.get("environment", {}) or {})
    for f in _env_files(svc):
        env.update(_read_env(secrets_dir / Path(f).name))
    return env


def _runs_ray(svc: dict) -> bool:
    """A Ray node (entrypoint ray) or a Ray client (RAY_ADDRESS set)."""
    return svc.get("entrypoint") == ["ray"] or "RAY_ADDRESS" in (svc.get("environment") or {})


def test_compose_services_get_exactly_the_secrets_they_need(made_secrets):
    services = _compose()["services"]
    for name, svc in services.items():
        for f in _env_files(svc):
            assert (made_secrets / Path(f).name).is_file(), (
                f"compose service {name} reads {f}, which make_secrets.py does not write")
    env = {name: _service_env(svc, made_secrets) for name, svc in services.items()}

    ray_services = sorted(n for n, s in services.items() if _runs_ray(s))
    assert {"ray-head", "ray-worker", "prefect-worker"} <= set(ray_services)
    tokens = set()
    for name, svc_env in env.items():
        if name in ray_services:
            assert svc_env.get("RAY_AUTH_MODE") == "token", f"{name}: Ray token auth is off"
            assert svc_env.get("RAY_AUTH_TOKEN"), f"{name}: no Ray token"
            tokens.add(svc_env["RAY_AUTH_TOKEN"])
        else:
            assert "RAY_AUTH_TOKEN" not in svc_env, f"{name} is given the Ray token without using Ray"
    assert len(tokens) == 1, "Ray nodes and clients hold different tokens"

    server_auth = env["prefect-server"].get("PREFECT_SERVER_API_AUTH_STRING", "")
    assert re.fullmatch(r"[^:\s]+:\S{16,}", server_auth), "Prefect server API has no basic auth"
    assert env["prefect-worker"].get("PREFECT_API_AUTH_STRING") == server_auth
    holders = {n for n, e in env.items() if "PREFECT_SERVER_API_AUTH_STRING" in e}
    assert holders == {"prefect-server"}

    assert env["postgres"]["POSTGRES_PASSWORD"] == env["prefect-server"]["PREFECT_SERVER_DATABASE_PASSWORD"]
    holders = {n for n, e in env.items() if "POSTGRES_PASSWORD" in e or "PREFECT_SERVER_DATABASE_PASSWORD" in e}
    assert holders == {"postgres", "prefect-server"}

    identity = json.loads((made_secrets / "seaweedfs-s3.json").read_text())["identities"][0]
    keys = identity["credentials"][0]
    mounts = [v for v in services["s3"]["volumes"] if str(v).endswith(":/etc/seaweedfs/s3.json:ro")]
    assert mounts == ["./.secrets/seaweedfs-s3.json:/etc/seaweedfs/s3.json:ro"]
    s3_users = {n for n, e in env.items() if "AWS_SECRET_ACCESS_KEY" in e}
    assert s3_users == {"s3-init", "ray-head", "ray-worker", "prefect-worker"}
    for name in s3_users:
        assert env[name]["AWS_ACCESS_KEY_ID"] == keys["accessKey"]
        assert env[name]["AWS_SECRET_ACCESS_KEY"] == keys["secretKey"]


def test_make_secrets_random_private_and_kept(made_secrets, tmp_path):
    other = tmp_path / ".secrets"
    subprocess.run([sys.executable, str(MAKE_SECRETS), "--dir", str(other)], check=True,
                   capture_output=True, timeout=60)
    for path in made_secrets.iterdir():
        assert path.read_text() != (other / path.name).read_text(), f"{path.name} is not random"
        mode = stat.S_IMODE(path.stat().st_mode)
        if path.suffix == ".env":
            assert mode == 0o600, f"{path.name} is readable by others ({oct(mode)})"
    assert stat.S_IMODE(made_secrets.stat().st_mode) == 0o700

    before = {p.name: p.read_text() for p in other.iterdir()}
    subprocess.run([sys.executable, str(MAKE_SECRETS), "--dir", str(other)], check=True,
                   capture_output=True, timeout=60)
    assert {p.name: p.read_text() for p in other.iterdir()} == before, "a rerun changed the secrets"

    (other / "ray.env").unlink()
    proc = subprocess.run([sys.executable, str(MAKE_SECRETS), "--dir", str(other)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "ray.env" in proc.stderr and proc.stderr.count("\n") == 1


def test_compose_secrets_folder_is_never_committed_or_built():
    ignored = subprocess.run(["git", "check-ignore", "-q", "infra/.secrets/ray.env"], cwd=ROOT)
    assert ignored.returncode == 0, "infra/.secrets/ is not git-ignored"
    dockerignore = (INFRA / "Dockerfile.dockerignore").read_text().split()
    assert "infra/.secrets/" in dockerignore, "infra/.secrets/ would be sent to docker build"


# --------------------------------------------------------------------------------------------
# Ray cluster launcher


def test_launcher_dashboard_on_loopback_and_token_auth():
    (cfg,) = docs(RAY_LAUNCHER)
    head_start = " ".join(cfg["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head_start, "dashboard/job API must listen on loopback"
    commands = cfg["head_start_ray_commands"] + cfg["worker_start_ray_commands"] + cfg["docker"]["run_options"]
    assert not any("0.0.0.0" in c for c in commands), "a launcher command binds 0.0.0.0"
    options = cfg["docker"]["run_options"]
    assert "-e RAY_AUTH_MODE=token" in options
    (token_path,) = [o.split("=", 1)[1] for o in options if o.startswith("-e RAY_AUTH_TOKEN_PATH=")]
    assert not any(o.startswith("-e RAY_AUTH_TOKEN=") for o in options), "token literal in the config"
    assert any(Path(token_path).parent == Path(dst) for dst in cfg["file_mounts"]), (
        f"RAY_AUTH_TOKEN_PATH {token_path} is not inside a synced file mount")
    for name, node in cfg["available_node_types"].items():
        nc = node["node_config"]
        assert nc.get("SecurityGroupIds"), (
            f"{name}: without SecurityGroupIds Ray creates a group open to SSH from 0.0.0.0/0")
        assert "IamInstanceProfile" in nc, f"{name}: S3 access must come from an instance profile"
    assert not re.search(r"AWS_(SECRET_)?ACCESS_KEY", RAY_LAUNCHER.read_text())


# --------------------------------------------------------------------------------------------
# Kubernetes: exposure


@pytest.mark.parametrize("target", RENDER_TARGETS, ids=rel)
def test_k8s_services_are_cluster_ip_and_nothing_is_exposed(target):
    objs = render(target)
    for obj in objs:
        where = f"{rel(target)}: {obj['kind']}/{obj['metadata']['name']}"
        assert obj["kind"] not in ("Ingress", "Gateway", "HTTPRoute", "Route"), f"{where} exposes the stack"
        if obj["kind"] == "Service":
            assert obj["spec"].get("type", "ClusterIP") == "ClusterIP", f"{where} is not ClusterIP"
            assert not obj["spec"].get("externalIPs"), f"{where} has external IPs"
        if obj["kind"] == "RayCluster":
            head = obj["spec"]["headGroupSpec"]
            assert head.get("serviceType", "ClusterIP") == "ClusterIP", f"{where}: head service not ClusterIP"
            assert not head.get("enableIngress"), f"{where}: KubeRay would create an Ingress"
        for _, _, tpl in pod_templates(obj):
            spec = tpl["spec"]
            assert not spec.get("hostNetwork"), f"{where} runs on the host network"
            for c in spec["containers"] + spec.get("initContainers", []):
                for p in c.get("ports", []):
                    assert "hostPort" not in p, f"{where}: container {c['name']} binds a host port"


# --------------------------------------------------------------------------------------------
# Kubernetes: Ray token auth and Prefect API auth


def _from_secret(env: dict, name: str, secret: tuple[str, str]) -> bool:
    ref = env.get(name, {}).get("valueFrom", {}).get("secretKeyRef", {})
    return "value" not in env.get(name, {}) and (ref.get("name"), ref.get("key")) == secret


def _assert_ray_token_env(env: dict, where: str):
    assert env.get("RAY_AUTH_MODE", {}).get("value") == "token", f"{where}: RAY_AUTH_MODE is not token"
    assert _from_secret(env, "RAY_AUTH_TOKEN", RAY_TOKEN_SECRET), (
        f"{where}: RAY_AUTH_TOKEN does not come from Secret {RAY_TOKEN_SECRET}")


@pytest.mark.parametrize("target", RENDER_TARGETS, ids=rel)
def test_ray_token_auth_in_every_ray_container(target):
    objs = render(target)
    (rc,) = [o for o in objs if o["kind"] == "RayCluster"]
    auth = rc["spec"].get("authOptions", {})
    assert auth.get("mode") == "token" and auth.get("secretName") == RAY_TOKEN_SECRET[0], (
        "RayCluster does not ask KubeRay for token auth with the shared Secret")
    ray_pods = 0
    for obj in objs + docs(RAYJOB_EXAMPLE):
        for role, labels, tpl in pod_templates(obj):
            is_ray_node = obj["kind"] == "RayCluster"
            is_client = labels.get("app.kubernetes.io/component") == "ray-client"
            for c in tpl["spec"]["containers"]:
                env = env_of(c)
                uses_ray = is_ray_node or is_client or "RAY_ADDRESS" in env
                if uses_ray:
                    ray_pods += 1
                    _assert_ray_token_env(env, f"{role}/{c['name']}")
                    if not is_ray_node:
                        assert is_client, f"{role} talks to Ray but is not labelled a ray-client"
                else:
                    assert "RAY_AUTH_TOKEN" not in env, f"{role} gets the Ray token without using Ray"
    assert ray_pods >= 4  # head, worker group(s), prefect-worker, RayJob submitter
    if rc["spec"].get("enableInTreeAutoscaling"):
        env = env_of(rc["spec"].get("autoscalerOptions", {}))
        _assert_ray_token_env(env, "autoscaler")


@pytest.mark.parametrize("target", RENDER_TARGETS, ids=rel)
def test_prefect_api_behind_basic_auth(target):
    objs = render(target)
    server = [o for o in objs if o["kind"] == "Deployment" and o["metadata"]["name"] == "prefect-server"][0]
    (c,) = server["spec"]["template"]["spec"]["containers"]
    assert _from_secret(env_of(c), "PREFECT_SERVER_API_AUTH_STRING", PREFECT_AUTH_SECRET)
    clients = 0
    for obj in objs:
        for role, _, tpl in pod_templates(obj):
            for c in tpl["spec"]["containers"]:
                if c.get("command", [None])[0] == "prefect" and "worker" in c["command"]:
                    clients += 1
                    assert _from_secret(env_of(c), "PREFECT_API_AUTH_STRING", PREFECT_AUTH_SECRET), (
                        f"{role}: Prefect client without the API auth string")
    assert clients >= 1


# --------------------------------------------------------------------------------------------
# Kubernetes: NetworkPolicies

OPERATOR = {"app.kubernetes.io/name": "kuberay-operator"}
STRANGER = {"app": "something-else"}


def _pods(objs: list[dict]) -> dict[str, dict]:
    """Pod role -> labels, including the RayJob example's submitter."""
    pods = {}
    for obj in objs + docs(RAYJOB_EXAMPLE):
        for role, labels, _ in pod_templates(obj):
            pods[role] = labels
    return pods


def _policies(objs):
    return [o for o in objs if o["kind"] == "NetworkPolicy"]


@pytest.mark.parametrize("target", RENDER_TARGETS, ids=rel)
def test_network_policies_default_deny_and_select_every_pod(target):
    objs = render(target)
    policies = _policies(objs)
    deny = [p for p in policies if p["spec"]["podSelector"] == {}
            and set(p["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
            and not p["spec"].get("ingress") and not p["spec"].get("egress")]
    assert deny, "no default-deny NetworkPolicy for ingress and egress"
    for role, labels in _pods(objs).items():
        own = [p["metadata"]["name"] for p in policies if p not in deny
               and p["spec"]["podSelector"] != {} and selects(p["spec"]["podSelector"], labels)]
        assert own, f"{role} is selected by no NetworkPolicy of its own"
    for pol in policies:
        for rule in pol["spec"].get("ingress", []) or []:
            assert rule.get("from"), f"NetworkPolicy {pol['metadata']['name']} admits ingress from anywhere"


def _role(pods: dict[str, dict], prefix: str) -> dict:
    (labels,) = [v for k, v in pods.items() if k.startswith(prefix)]
    return labels


@pytest.mark.parametrize("target", RENDER_TARGETS, ids=rel)
def test_network_policies_allow_vidcolors_paths_and_nothing_else(target):
    objs = render(target)
    policies = _policies(objs)
    pods = _pods(objs)
    head = _role(pods, "RayCluster/vidcolor/headgroup")
    workers = [v for k, v in pods.items() if k.startswith("RayCluster/") and "headgroup" not in k]
    worker = workers[0]
    pw, ps = pods["Deployment/prefect-worker"], pods["Deployment/prefect-server"]
    pg, submitter = pods["StatefulSet/postgres"], pods["RayJob/colorize-film-example/submitter"]

    must = [
        (pw, head, 10001, "prefect-worker -> Ray Client"),
        (submitter, head, 8265, "RayJob submitter -> job API"),
        (worker, head, 6379, "Ray worker -> GCS"),
        (head, worker, 40000, "Ray head -> worker"),
        (pw, ps, 4200, "prefect-worker -> Prefect API"),
        (ps, pg, 5432, "Prefect server -> PostgreSQL"),
    ] + [(w, v, 20000, "Ray worker <-> worker") for w in workers for v in workers]
    must_not = [
        (worker, pg, 5432, "Ray worker -> PostgreSQL"),
        (head, pg, 5432, "Ray head -> PostgreSQL"),
        (pw, pg, 5432, "prefect-worker -> PostgreSQL"),
        (worker, ps, 4200, "Ray worker -> Prefect API"),
        (pg, head, 8265, "PostgreSQL -> job API"),
        (ps, head, 8265, "Prefect server -> job API"),
        (ps, head, 10001, "Prefect server -> Ray Client"),
        (pw, worker, 10001, "prefect-worker -> a Ray worker"),
        (pw, head, 6379, "prefect-worker -> GCS"),
        (submitter, ps, 4200, "RayJob submitter -> Prefect API"),
    ]
    if "DaemonSet/seaweedfs" in pods or "Deployment/seaweedfs" in pods:
        s3 = pods["Deployment/seaweedfs"]
        must += [(x, s3, 8333, f"{n} -> dev S3") for x, n in
                 ((worker, "Ray worker"), (head, "Ray head"), (pw, "prefect-worker"),
                  (pods["Job/create-bucket"], "bucket Job"))]
        must_not += [(ps, s3, 8333, "Prefect server -> dev S3"), (pg, s3, 8333, "PostgreSQL -> dev S3")]
    for src, dst, port, what in must:
        assert connection_allowed(policies, src, dst, port), f"{rel(target)}: {what} is blocked"
    for src, dst, port, what in must_not:
        assert not connection_allowed(policies, src, dst, port), f"{rel(target)}: {what} is allowed"

    assert external_ingress_allowed(policies, head, OPERATOR, 8265), "KubeRay operator cannot reach the head"
    for port in (8265, 10001, 6379):
        assert not external_ingress_allowed(policies, head, STRANGER, port), (
            f"a pod of another namespace reaches the Ray head on {port}")
    assert not external_ingress_allowed(policies, ps, STRANGER, 4200)
    assert not external_ingress_allowed(policies, head, OPERATOR, 10001)


# --------------------------------------------------------------------------------------------
# Credentials


def test_no_literal_credentials_outside_the_dev_overlay():
    rendered = _rendered()
    for target, objs in rendered.items():
        secrets = [o for o in objs if o["kind"] == "Secret"]
        if target != rel(DEV_OVERLAY):
            assert not secrets, f"{target} defines Secrets {[s['metadata']['name'] for s in secrets]}"
        for obj in objs:
            for c in containers(obj):
                for name, e in env_of(c).items():
                    if SECRET_ENV.search(name):
                        assert "value" not in e, f"{target}: {obj['metadata']['name']} sets {name} literally"
    placeholders = set()
    for node, _ in walk(docs(DEV_OVERLAY / "kustomization.yaml")):
        if isinstance(node, dict) and "literals" in node:
            placeholders |= {lit.split("=", 1)[1] for lit in node["literals"]}
    assert len(placeholders) >= 5
    for path in sorted(p for d in (INFRA, K8S) for p in d.rglob("*") if p.is_file()):
        if DEV_OVERLAY in path.parents or ".secrets" in path.parts:
            continue
        text = path.read_text(errors="replace")
        leaked = sorted(v for v in placeholders if v in text)
        assert not leaked, f"{rel(path)} contains dev overlay credentials {leaked}"


# --------------------------------------------------------------------------------------------
# IAM

WRITE_ACTIONS = {"s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"}


def _statements() -> list[dict]:
    policy = json.loads(IAM_POLICY.read_text())
    assert policy["Version"] == "2012-10-17"
    return policy["Statement"]


def _as_list(v) -> list:
    return v if isinstance(v, list) else [v]


def _store_and_paths() -> tuple[str, dict[str, str]]:
    """Bucket and prefixes the deployment files use (store, example input and output)."""
    (cm,) = [o for o in render(K8S / "base") if o["kind"] == "ConfigMap"]
    m = re.fullmatch(r"s3://([^/]+)/(.+)", cm["data"]["VIDCOLOR_STORE"])
    (job,) = docs(RAYJOB_EXAMPLE)
    uris = re.findall(r"s3://([^/\s]+)/(\S+)/[^/\s]+", job["spec"]["entrypoint"])
    return m.group(1), {"store": m.group(2), "in": uris[0][1], "out": uris[1][1]}


def test_iam_policy_is_valid_iam():
    from moto.iam.policy_validation import IAMPolicyDocumentValidator

    IAMPolicyDocumentValidator(IAM_POLICY.read_text()).validate()


def test_iam_policy_least_privilege_for_store_and_outputs():
    bucket, prefixes = _store_and_paths()
    arn = f"arn:aws:s3:::{bucket}"
    store, inputs, outputs = (f"{arn}/{prefixes[k]}/*" for k in ("store", "in", "out"))
    grants: dict[str, set[str]] = {}
    listing = None
    for st in _statements():
        actions, resources = _as_list(st["Action"]), _as_list(st["Resource"])
        if st["Effect"] == "Deny":
            continue
        assert "NotAction" not in st and "NotResource" not in st
        for action in actions:
            assert action.startswith("s3:") and "*" not in action, f"broad action {action}"
        for res in resources:
            assert res == arn or res.startswith(arn + "/"), f"grant outside the bucket: {res}"
            grants.setdefault(res, set()).update(actions)
        if "s3:ListBucket" in actions:
            listing = st
    assert set(grants) == {arn, store, inputs, outputs}, f"unexpected resources {sorted(grants)}"
    assert grants[arn] == {"s3:ListBucket"}
    assert grants[inputs] == {"s3:GetObject"}, "inputs must be read-only"
    assert "s3:DeleteObject" not in grants[outputs], "outputs must not be deletable"
    assert {"s3:PutObject", "s3:GetObject"} <= grants[outputs]
    assert {"s3:PutObject", "s3:GetObject", "s3:DeleteObject"} <= grants[store]
    for res, actions in grants.items():
        if actions & WRITE_ACTIONS:
            assert res in (store, outputs), f"write access to {res}"
    prefix_condition = next(iter(listing["Condition"].values()))["s3:prefix"]
    assert sorted(prefix_condition) == sorted(f"{prefixes[k]}/*" for k in ("store", "in", "out"))

    denies = [s for s in _statements() if s["Effect"] == "Deny"]
    assert any(s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false" for s in denies), (
        "plain-HTTP requests are not denied")


def test_launcher_store_matches_iam_policy():
    bucket, prefixes = _store_and_paths()
    (cfg,) = docs(RAY_LAUNCHER)
    (store,) = [o.split("=", 1)[1] for o in cfg["docker"]["run_options"] if o.startswith("-e VIDCOLOR_STORE=")]
    assert store == f"s3://{bucket}/{prefixes['store']}"


def test_iam_policy_object_grants_enforced_by_moto(monkeypatch):
    """Moto's IAM engine (no conditions: it would apply the HTTPS deny unconditionally and ignore
    the listing prefixes, so those statements are checked above) decides the object requests."""
    # in-process moto, not the session's moto_server that other tests point AWS_ENDPOINT_URL at
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    import boto3
    from botocore.exceptions import ClientError
    from moto import mock_aws
    from moto.core import set_initial_no_auth_action_count

    bucket, prefixes = _store_and_paths()
    unconditioned = [s for s in _statements() if "Condition" not in s]
    policy = json.dumps({"Version": "2012-10-17", "Statement": unconditioned})
    store, inputs, outputs = (prefixes[k] for k in ("store", "in", "out"))
    expected = {
        ("put", store): True, ("get", store): True, ("delete", store): True,
        ("put", outputs): True, ("get", outputs): True, ("delete", outputs): False,
        ("put", inputs): False, ("get", inputs): True, ("delete", inputs): False,
        ("put", "elsewhere"): False, ("get", "elsewhere"): False,
    }
    results = {}

    @set_initial_no_auth_action_count(5 + 4)  # the setup calls below run unauthenticated
    @mock_aws
    def run():
        admin = boto3.client("s3", region_name="us-east-1")
        admin.create_bucket(Bucket=bucket)
        for prefix in (store, inputs, outputs, "elsewhere"):
            admin.put_object(Bucket=bucket, Key=f"{prefix}/seed", Body=b"x")
        iam = boto3.client("iam", region_name="us-east-1")
        iam.create_user(UserName="vidcolor")
        arn = iam.create_policy(PolicyName="vidcolor-store", PolicyDocument=policy)["Policy"]["Arn"]
        iam.attach_user_policy(UserName="vidcolor", PolicyArn=arn)
        key = iam.create_access_key(UserName="vidcolor")["AccessKey"]
        s3 = boto3.client("s3", region_name="us-east-1", aws_access_key_id=key["AccessKeyId"],
                          aws_secret_access_key=key["SecretAccessKey"])
        calls = {
            "put": lambda p: s3.put_object(Bucket=bucket, Key=f"{p}/new", Body=b"y"),
            "get": lambda p: s3.get_object(Bucket=bucket, Key=f"{p}/seed"),
            "delete": lambda p: s3.delete_object(Bucket=bucket, Key=f"{p}/seed"),
        }
        for op, prefix in expected:
            try:
                calls[op](prefix)
                results[(op, prefix)] = True
            except ClientError as e:
                assert e.response["Error"]["Code"] == "AccessDenied", e
                results[(op, prefix)] = False

    run()
    wrong = {k: v for k, v in results.items() if v != expected[k]}
    assert not wrong, f"allowed (True) / denied (False) differently than intended: {wrong}"
