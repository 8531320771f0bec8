"""`gate token` (API tokens for scripts, with ids) and `gate audit` (the audit log)."""

from __future__ import annotations

import datetime as dt
import json

import click
import sqlalchemy as sa

from gate import accounts, api_tokens, audit, changes, tokens
from gate.cli_common import with_engine
from gate.db import users
from gate.instance import signing_key
from gate.tariffs import load_tariffs


def _local(value: dt.datetime | None, tz) -> str:
    """A stored time (naive UTC) in GATE_TIMEZONE, to the second; '-' for none."""
    if value is None:
        return "-"
    return value.replace(tzinfo=dt.timezone.utc).astimezone(tz).isoformat(timespec="seconds")


class _TokenGroup(click.Group):
    """`gate token EMAIL` issues a token; named subcommands do the rest."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["issue", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_TokenGroup)
def token():
    """API tokens for scripts: `gate token EMAIL [--ttl SECONDS]` prints one."""


@token.command("issue")
@click.argument("email")
@click.option("--ttl", type=int, default=3600, show_default=True, help="seconds (at most 30 days)")
@with_engine
def token_issue(engine, cfg, email, ttl):
    if not 1 <= ttl <= tokens.MAX_API_TTL:
        raise click.ClickException(f"--ttl must be from 1 to {tokens.MAX_API_TTL} seconds (30 days)")
    tariffs = load_tariffs(cfg.tariffs_path)
    with engine.begin() as conn:
        user_id = accounts.user_id_by_email(conn, email)
        ident = accounts.identity(conn, user_id, tariffs, cfg.timezone)
        if ident is None:
            raise click.ClickException(f"user '{email}' is disabled")
        org_id = conn.execute(sa.select(users.c.org_id).where(users.c.id == user_id)).scalar()
        _, issued = changes.token_issue(conn, changes.CLI, signing_key(cfg), ident, ttl, org_id)
    click.echo(issued)


@token.command("list")
@click.argument("email")
@with_engine
def token_list(engine, cfg, email):
    """The person's tokens that still work: id, created, expires, last used."""
    with engine.connect() as conn:
        rows = api_tokens.live(conn, accounts.user_id_by_email(conn, email))
    click.echo("id\tcreated\texpires\tlast_used")
    for r in rows:
        click.echo(f"{r.id}\t{_local(r.created_at, cfg.timezone)}\t"
                   f"{_local(r.expires_at, cfg.timezone)}\t{_local(r.last_used_at, cfg.timezone)}")


@token.command("revoke")
@click.argument("token_id", metavar="ID", type=click.IntRange(1, 2**31 - 1))
@with_engine
def token_revoke(engine, cfg, token_id):
    """The token stops working within 60 s."""
    with engine.begin() as conn:
        now = changes.token_revoke(conn, changes.CLI, token_id)
    click.echo(f"token {token_id} revoked" if now else f"token {token_id} was already revoked")


@click.command("audit")
@click.option("--json", "as_json", is_flag=True, help="as JSON")
@click.option("--org", "org_name", help="only what concerns this organisation and its people")
@click.option("--days", type=click.IntRange(1, 36500), help="only the last N days")
@with_engine
def audit_command(engine, cfg, as_json, org_name, days):
    """Every change and sign-in decision, oldest first: time, actor, address, action, target,
    details."""
    try:  # retention also without `gate serve` (which prunes hourly); a read-only database
        audit.prune(engine, cfg.audit_days)  # is still read
    except sa.exc.SQLAlchemyError:
        pass
    with engine.connect() as conn:
        org_id = accounts.org_by_name(conn, org_name).id if org_name else None
        rows, _ = audit.query(conn, org_id=org_id, days=days)
    found = [audit.as_dict(r, cfg.timezone) for r in rows]
    if as_json:
        click.echo(json.dumps(found, ensure_ascii=False, indent=2))
        return
    click.echo("time\tactor\taddress\taction\ttarget\tdetails")
    for r in found:
        details = json.dumps(r["details"], ensure_ascii=False, sort_keys=True) if r["details"] else "-"
        click.echo(f"{r['time']}\t{r['actor']}\t{r['address'] or '-'}\t{r['action']}\t"
                   f"{r['target']}\t{details}")
