"""Settings from the environment, validated at start-up (each with a default and a one-line help)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

PROJECT_ROOT = Path(__file__).resolve().parent.parent

OIDC_NAME = "корпоративную учётную запись"
OIDC_SETTINGS = ("GATE_OIDC_ISSUER", "GATE_OIDC_CLIENT_ID", "GATE_OIDC_CLIENT_SECRET")

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
    "GATE_SSO_SECRET": ("none", "HS256 key shared with the client portal (at least 32 bytes)"),
    "GATE_SSO_JWKS_FILE": ("none", "the portal's public keys (JWKS), re-read when the file changes"),
    "GATE_SSO_JWKS_URL": ("none", "the portal's public keys (JWKS) fetched over https and cached"),
    "GATE_SSO_ISSUER": ("none", "the `iss` the portal's tokens must carry (needed with SSO keys)"),
    "GATE_SSO_AUDIENCE": ("GATE_BASE_URL", "the `aud` the portal's tokens must carry"),
    "GATE_SSO_CREATE": ("1", "0: the portal signs in only people who exist here already"),
    "GATE_OIDC_ISSUER": ("", "staff sign-in through OIDC: the identity provider's issuer URL"),
    "GATE_OIDC_CLIENT_ID": ("", "the gate's client id at that provider"),
    "GATE_OIDC_CLIENT_SECRET": ("", "its client secret"),
    "GATE_OIDC_NAME": (OIDC_NAME, "the provider's name on the login button: «Войти через …»"),
    "GATE_USAGE": ("1", "0: count no usage per organisation (views, locked hits, searches, requests)"),
    "GATE_USAGE_DAYS": ("400", "days the usage counts per organisation and day are kept"),
    "GATE_USAGE_FLUSH": ("10", "seconds (0.1-30) between writes of the usage counts to the database"),
    "GATE_USAGE_LOG": ("<EDGE_DIR>/usage.log in edge mode", "nginx's usage log the gate reads (edge mode)"),
}


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class SsoSettings:
    """Sign-in from the vendor's client portal (gate.sso): its keys and the claims it must send."""
    issuer: str
    audience: str
    secret: bytes | None = None
    jwks_file: Path | None = None
    jwks_url: str | None = None
    create: bool = True


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
    sso: SsoSettings | None = None  # None: no SSO key configured, /sso/jwt answers 404
    oidc_issuer: str | None = None  # staff sign-in through OIDC: all three set, or none
    oidc_client_id: str = ""
    oidc_client_secret: str = ""
    oidc_name: str = OIDC_NAME

    @property
    def oidc(self) -> bool:
        return bool(self.oidc_issuer)
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
    oidc = {name: (env.get(name) or "").strip() for name in OIDC_SETTINGS}
    if any(oidc.values()) and not all(oidc.values()):
        missing = ", ".join(name for name, value in oidc.items() if not value)
        raise ConfigError(f"staff sign-in through OIDC needs all of {', '.join(OIDC_SETTINGS)}; "
                          f"missing: {missing}")
    issuer = oidc["GATE_OIDC_ISSUER"].rstrip("/") or None
    if issuer and not issuer.startswith(("https://", "http://")):
        raise ConfigError("GATE_OIDC_ISSUER must start with https:// (http:// only in local mode)")
    if issuer and mode != "local" and not issuer.startswith("https://"):
        raise ConfigError("GATE_OIDC_ISSUER must start with https:// in production mode")
    if issuer and mode != "local" and not base_url:
        raise ConfigError("GATE_OIDC_ISSUER needs GATE_BASE_URL in production mode (the "
                          "redirect URI registered at the provider is built from it)")
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
        sso=_sso(env, base_url),
        oidc_issuer=issuer,
        oidc_client_id=oidc["GATE_OIDC_CLIENT_ID"],
        oidc_client_secret=oidc["GATE_OIDC_CLIENT_SECRET"],
        oidc_name=(env.get("GATE_OIDC_NAME") or "").strip()[:60] or OIDC_NAME,
        **usage,
    )


def _sso(env, base_url: str | None) -> SsoSettings | None:
    """The portal's settings, or None when no key is configured (the feature is off)."""
    secret = env.get("GATE_SSO_SECRET") or None
    jwks_file = env.get("GATE_SSO_JWKS_FILE") or None
    jwks_url = env.get("GATE_SSO_JWKS_URL") or None
    create = env.get("GATE_SSO_CREATE", "1")
    if create not in ("0", "1"):
        raise ConfigError(f"GATE_SSO_CREATE must be 0 or 1, not '{create}'")
    if not (secret or jwks_file or jwks_url):
        return None
    if secret is not None and len(secret.encode()) < 32:
        raise ConfigError("GATE_SSO_SECRET must be at least 32 bytes (HS256)")
    if jwks_file and jwks_url:
        raise ConfigError("set GATE_SSO_JWKS_FILE or GATE_SSO_JWKS_URL, not both")
    if jwks_file and not Path(jwks_file).is_file():
        raise ConfigError(f"GATE_SSO_JWKS_FILE: no such file '{jwks_file}'")
    if jwks_url and not _key_url(jwks_url):
        raise ConfigError("GATE_SSO_JWKS_URL must be an https:// address (http:// only to this host)")
    issuer = (env.get("GATE_SSO_ISSUER") or "").strip()
    if not issuer:
        raise ConfigError("GATE_SSO_ISSUER is needed with SSO keys: the `iss` the portal sends")
    # never the request's host: a token minted for another site must not fit this one
    audience = (env.get("GATE_SSO_AUDIENCE") or "").strip() or base_url
    if not audience:
        raise ConfigError("GATE_SSO_AUDIENCE (or GATE_BASE_URL) is needed with SSO keys")
    return SsoSettings(issuer=issuer, audience=audience, secret=secret.encode() if secret else None,
                       jwks_file=Path(jwks_file).resolve() if jwks_file else None,
                       jwks_url=jwks_url, create=create == "1")


def _key_url(url: str) -> bool:
    """https, or plain http to this very host (a sidecar, the tests)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return True
    return parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")


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
