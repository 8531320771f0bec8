"""The instance folder: database, signing key (generated on first use) and attachments."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from gate import db
from gate.engine import make_engine

KEY_FILE = "signing.key"


def signing_key(cfg) -> bytes:
    """GATE_SECRET_KEY, else the instance's key file, created with 32 random bytes if missing."""
    if cfg.secret_key:
        return cfg.secret_key
    path = Path(cfg.instance) / KEY_FILE
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key.hex())
    try:
        os.link(tmp, path)  # first writer wins if two processes start at once
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return bytes.fromhex(path.read_text().strip())


def open_database(cfg):
    Path(cfg.instance).mkdir(parents=True, exist_ok=True)
    engine = make_engine(cfg.database_url)
    db.migrate(engine)
    return engine


def open_counters(cfg):
    """A second engine on the same database for the shared limits' counters (gate.shared_limits):
    its commits do not wait for the disk. The schema comes from open_database."""
    return make_engine(cfg.database_url, durable=False)
