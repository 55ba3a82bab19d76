"""Generate the local compose stack's credentials into infra/.secrets/ (git-ignored).

    python infra/dev/make_secrets.py

Every value is random and new for each developer, so the stack never runs on a known default.
Each service of infra/compose.yaml reads only the env files it needs:

    postgres.env            POSTGRES_PASSWORD                        postgres
    prefect-server-db.env   PREFECT_SERVER_DATABASE_PASSWORD         prefect-server
    prefect-server.env      PREFECT_SERVER_API_AUTH_STRING           prefect-server
    prefect-client.env      PREFECT_API_AUTH_STRING                  prefect-worker, your shell
    s3.env                  AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY  Ray nodes, prefect-worker, s3-init
    ray.env                 RAY_AUTH_TOKEN                           Ray nodes, prefect-worker, your shell
    seaweedfs-s3.json       the S3 server's identity (same keys as s3.env)

An existing complete folder is left as it is; a partial one is refused (delete it and rerun).
The folder is written beside and renamed into place, so it is complete or absent.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import tempfile
from pathlib import Path

DEFAULT_DIR = Path(__file__).resolve().parents[1] / ".secrets"
PREFECT_USER = "vidcolor"


def secret_files() -> dict[str, str]:
    """File name -> content, with fresh random values."""
    postgres_password = secrets.token_urlsafe(24)
    prefect_auth = f"{PREFECT_USER}:{secrets.token_urlsafe(24)}"
    access_key = "vidcolor-" + secrets.token_hex(8)
    secret_key = secrets.token_urlsafe(32)
    return {
        "postgres.env": f"POSTGRES_PASSWORD={postgres_password}\n",
        "prefect-server-db.env": f"PREFECT_SERVER_DATABASE_PASSWORD={postgres_password}\n",
        "prefect-server.env": f"PREFECT_SERVER_API_AUTH_STRING={prefect_auth}\n",
        "prefect-client.env": f"PREFECT_API_AUTH_STRING={prefect_auth}\n",
        "s3.env": f"AWS_ACCESS_KEY_ID={access_key}\nAWS_SECRET_ACCESS_KEY={secret_key}\n",
        "ray.env": f"RAY_AUTH_TOKEN={secrets.token_hex(32)}\n",
        "seaweedfs-s3.json": json.dumps(
            {
                "identities": [
                    {
                        "name": "vidcolor-dev",
                        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            },
            indent=2,
        )
        + "\n",
    }


def make_secrets(target: Path) -> bool:
    """Create `target` with every file; False when it already holds them all."""
    names = set(secret_files())
    if target.exists():
        present = {p.name for p in target.iterdir()}
        missing = sorted(names - present)
        if missing:
            raise FileExistsError(f"{target}: incomplete, lacks {', '.join(missing)}; delete it and rerun")
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".secrets-", dir=target.parent))
    for name, text in secret_files().items():
        path = staging / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
    # The S3 server reads its identity file through a bind mount as its own user; the folder
    # (0700) still keeps other local users out.
    (staging / "seaweedfs-s3.json").chmod(0o644)
    staging.chmod(0o700)
    staging.rename(target)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help=f"target folder (default {DEFAULT_DIR})")
    args = parser.parse_args(argv)
    try:
        created = make_secrets(args.dir)
    except FileExistsError as e:
        print(f"make_secrets: {e}", file=sys.stderr)
        return 2
    print(f"make_secrets: {'created' if created else 'kept existing'} {args.dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
