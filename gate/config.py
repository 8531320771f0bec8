"""Settings from the environment, validated at start-up (each with a default and a one-line help)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# name -> (default, help). Tests check that the README documents each of them.
SETTINGS = {
    "GATE_MODE": ("production", "production (Secure cookies, no demo accounts) or local"),
    "GATE_ROOT": (str(PROJECT_ROOT), "project folder holding docs/, mkdocs.yml and site/"),
    "GATE_TARIFFS": ("<root>/tariffs.yml", "tariffs file; replaces the project's tariffs.yml"),
    "GATE_INSTANCE": ("<root>/instance", "folder of the SQLite database, signing key, attachments"),
    "GATE_DATABASE_URL": ("sqlite:///<instance>/gate.sqlite3", "SQLAlchemy URL of the database"),
    "GATE_SECRET_KEY": ("generated into the instance", "JWT signing key (at least 32 bytes)"),
    "GATE_BASE_URL": ("the request's host", "public address used in e-mails, e.g. https://kb.example.ru"),
    "GATE_TRUSTED_PROXIES": ("0", "how many proxies in front may set X-Forwarded-For"),
    "GATE_EDGE": ("0", "1 behind deploy/edge.sh: also issue the edition ticket nginx checks"),
    "GATE_TIMEZONE": ("Europe/Moscow", "time zone of dates, contract ends and SLA clocks"),
    "GATE_SMTP_HOST": ("localhost", "SMTP server for support requests and password resets"),
    "GATE_SMTP_PORT": ("25", "its port"),
    "GATE_SUPPORT_EMAIL": ("support@localhost", "where support requests are delivered"),
    "GATE_MAIL_FROM": ("kb@localhost", "sender address of the gate's e-mails"),
    "GATE_DIGEST_AT": ("mon 09:00", "weekday and time (GATE_TIMEZONE) the weekly digest is sent"),
    "GATE_AUDIT_DAYS": ("365", "days the audit log keeps its rows (older ones are deleted)"),
    "GATE_STAFF_2FA": ("0", "1: staff must use a second factor (TOTP) to sign in"),
    "GATE_USAGE": ("1", "0: count no usage per organisation (views, locked hits, searches, requests)"),
    "GATE_USAGE_DAYS": ("400", "days the usage counts per organisation and day are kept"),
    "GATE_USAGE_FLUSH": ("10", "seconds (0.1-30) between writes of the usage counts to the database"),
    "GATE_USAGE_LOG": ("<EDGE_DIR>/usage.log in edge mode", "nginx's usage log the gate reads (edge mode)"),
}


class ConfigError(ValueError):
    pass


@dataclass
class Config:
    mode: str = "production"
    root: Path = PROJECT_ROOT
    tariffs_path: Path = PROJECT_ROOT / "tariffs.yml"
    instance: Path = PROJECT_ROOT / "instance"
    database_url: str = ""
    secret_key: bytes | None = None
    base_url: str | None = None
    trusted_proxies: int = 0
    edge: bool = False
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Europe/Moscow"))
    smtp_host: str = "localhost"
    smtp_port: int = 25
    support_email: str = "support@localhost"
    mail_from: str = "kb@localhost"
    digest_at: str = "mon 09:00"
    audit_days: int = 365
    staff_2fa: bool = False
    usage: bool = True
    usage_days: int = 400
    usage_flush: float = 10.0
    usage_log: Path | None = None

    @property
    def local(self) -> bool:
        return self.mode == "local"

    @property
    def site_dir(self) -> Path:
        return self.root / "site"

    @property
    def docs_dir(self) -> Path:
        return self.root / "docs"


def from_env(env=None) -> Config:
    """Reads GATE_* variables; any bad value is a ConfigError naming the variable."""
    env = os.environ if env is None else env
    root = Path(env.get("GATE_ROOT") or PROJECT_ROOT).resolve()
    mode = env.get("GATE_MODE", "production")
    if mode not in ("production", "local"):
        raise ConfigError(f"GATE_MODE must be 'production' or 'local', not '{mode}'")
    instance = Path(env.get("GATE_INSTANCE") or root / "instance").resolve()
    try:
        proxies = int(env.get("GATE_TRUSTED_PROXIES", "0"))
        if not 0 <= proxies <= 10:
            raise ValueError
    except ValueError:
        raise ConfigError("GATE_TRUSTED_PROXIES must be a whole number from 0 to 10") from None
    edge = env.get("GATE_EDGE", "0")
    if edge not in ("0", "1"):
        raise ConfigError(f"GATE_EDGE must be 0 or 1, not '{edge}'")
    try:
        tz = ZoneInfo(env.get("GATE_TIMEZONE", "Europe/Moscow"))
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"GATE_TIMEZONE: unknown time zone '{env.get('GATE_TIMEZONE')}'") from None
    try:
        smtp_port = int(env.get("GATE_SMTP_PORT", "25"))
    except ValueError:
        raise ConfigError("GATE_SMTP_PORT must be a port number") from None
    try:
        audit_days = int(env.get("GATE_AUDIT_DAYS", "365"))
        if not 1 <= audit_days <= 36500:
            raise ValueError
    except ValueError:
        raise ConfigError("GATE_AUDIT_DAYS must be a whole number of days from 1 to 36500") from None
    staff_2fa = env.get("GATE_STAFF_2FA", "0")
    if staff_2fa not in ("0", "1"):
        raise ConfigError(f"GATE_STAFF_2FA must be 0 or 1, not '{staff_2fa}'")
    usage = _usage_settings(env)
    secret = env.get("GATE_SECRET_KEY")
    if secret is not None and len(secret.encode()) < 32:
        raise ConfigError("GATE_SECRET_KEY must be at least 32 bytes")
    base_url = (env.get("GATE_BASE_URL") or "").rstrip("/") or None
    digest_at = env.get("GATE_DIGEST_AT") or "mon 09:00"
    if not _weekly_time(digest_at):
        raise ConfigError(f"GATE_DIGEST_AT must be a weekday and a time like 'mon 09:00', not '{digest_at}'")
    if base_url and not base_url.startswith(("http://", "https://")):
        raise ConfigError("GATE_BASE_URL must start with http:// or https://")
    return Config(
        mode=mode,
        root=root,
        tariffs_path=Path(env.get("GATE_TARIFFS") or root / "tariffs.yml").resolve(),
        instance=instance,
        database_url=env.get("GATE_DATABASE_URL") or f"sqlite:///{instance / 'gate.sqlite3'}",
        secret_key=secret.encode() if secret else None,
        base_url=base_url,
        trusted_proxies=proxies,
        edge=edge == "1",
        timezone=tz,
        smtp_host=env.get("GATE_SMTP_HOST", "localhost"),
        smtp_port=smtp_port,
        support_email=env.get("GATE_SUPPORT_EMAIL", "support@localhost"),
        mail_from=env.get("GATE_MAIL_FROM", "kb@localhost"),
        digest_at=digest_at,
        audit_days=audit_days,
        staff_2fa=staff_2fa == "1",
        **usage,
    )


def _usage_settings(env) -> dict:
    on = env.get("GATE_USAGE", "1")
    if on not in ("0", "1"):
        raise ConfigError(f"GATE_USAGE must be 0 or 1, not '{on}'")
    try:
        days = int(env.get("GATE_USAGE_DAYS", "400"))
        if not 1 <= days <= 36500:
            raise ValueError
    except ValueError:
        raise ConfigError("GATE_USAGE_DAYS must be a whole number of days from 1 to 36500") from None
    try:
        flush = float(env.get("GATE_USAGE_FLUSH", "10"))
        if not 0.1 <= flush <= 30:
            raise ValueError
    except ValueError:
        raise ConfigError("GATE_USAGE_FLUSH must be a number of seconds from 0.1 to 30") from None
    log = env.get("GATE_USAGE_LOG") or None
    return {"usage": on == "1", "usage_days": days, "usage_flush": flush,
            "usage_log": Path(log).resolve() if log else None}


def _weekly_time(value: str) -> bool:
    """'mon 09:00': a weekday (mon ... sun) and a time (the weekly digest's schedule)."""
    day, _, clock = value.strip().lower().partition(" ")
    try:
        time.fromisoformat(clock.strip())
    except ValueError:
        return False
    return day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
