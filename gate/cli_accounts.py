"""`gate org`, `gate user` and `gate token`: organisations, people and API tokens."""

from __future__ import annotations

import functools
import sys

import click

from gate import accounts, tokens
from gate import config as config_mod
from gate.access import contract_active
from gate.clock import today
from gate.instance import open_database, signing_key
from gate.tariffs import load_tariffs


def with_engine(command):
    """Runs a command with the settings and an open database (its account errors as one line)."""
    @functools.wraps(command)
    def wrapped(*args, **kwargs):
        cfg = config_mod.from_env()
        engine = open_database(cfg)
        try:
            return command(engine, cfg, *args, **kwargs)
        except accounts.AccountError as exc:
            raise click.ClickException(str(exc)) from None
        finally:
            engine.dispose()
    return wrapped


def _password(from_stdin: bool) -> tuple[str, bool]:
    """(password, generated?) from stdin when asked, else a new random one."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise click.ClickException("no password on standard input")
        return password, False
    return accounts.generate_password(), True


# --- organisations -------------------------------------------------------------------------

@click.group()
def org():
    """Client organisations."""


@org.command("add")
@click.argument("name")
@click.option("--tariff", required=True)
@click.option("--until", help="valid through this day (YYYY-MM-DD, GATE_TIMEZONE)")
@with_engine
def org_add(engine, cfg, name, tariff, until):
    with engine.begin() as conn:
        accounts.add_org(conn, name, tariff, load_tariffs(cfg.tariffs_path), until)
    click.echo(f"organisation '{name}' added with tariff {tariff}"
               + (f" until {until}" if until else ""))


@org.command("set")
@click.argument("name")
@click.option("--tariff")
@click.option("--until")
@with_engine
def org_set(engine, cfg, name, tariff, until):
    with engine.begin() as conn:
        accounts.set_org(conn, name, load_tariffs(cfg.tariffs_path), tariff, until)
    click.echo(f"organisation '{name}' changed")


@org.command("end")
@click.argument("name")
@with_engine
def org_end(engine, cfg, name):
    with engine.begin() as conn:
        accounts.end_org(conn, name)
    click.echo(f"contract of '{name}' ended")


@org.command("list")
@with_engine
def org_list(engine, cfg):
    now = today(cfg.timezone)
    with engine.connect() as conn:
        for o in accounts.list_orgs(conn):
            state = "active" if contract_active(o.until, o.ended_at, now) else "ended"
            click.echo(f"{o.name}\t{o.tariff}\t{o.until or '-'}\t{state}")


# --- people --------------------------------------------------------------------------------

@click.group()
def user():
    """People: a client's engineers and the vendor's staff."""


@user.command("add")
@click.argument("email")
@click.option("--org", "org_name", help="the person's organisation")
@click.option("--staff", is_flag=True, help="a support staff member (sees every section)")
@click.option("--password-stdin", is_flag=True, help="read the password from standard input")
@with_engine
def user_add(engine, cfg, email, org_name, staff, password_stdin):
    if bool(org_name) == staff:
        raise click.UsageError("give either --org NAME or --staff")
    password, generated = _password(password_stdin)
    with engine.begin() as conn:
        accounts.add_user(conn, email, password, org=org_name, staff=staff)
    click.echo(f"user '{accounts.normalize_email(email)}' added"
               + (" (staff)" if staff else f" to '{org_name}'"))
    if generated:
        click.echo(password)


@user.command("disable")
@click.argument("email")
@with_engine
def user_disable(engine, cfg, email):
    with engine.begin() as conn:
        accounts.set_disabled(conn, email, True)
    click.echo(f"user '{email}' disabled")


@user.command("enable")
@click.argument("email")
@with_engine
def user_enable(engine, cfg, email):
    with engine.begin() as conn:
        accounts.set_disabled(conn, email, False)
    click.echo(f"user '{email}' enabled")


@user.command("password")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="read the password from standard input")
@with_engine
def user_password(engine, cfg, email, password_stdin):
    password, generated = _password(password_stdin)
    with engine.begin() as conn:
        accounts.set_password(conn, accounts.user_id_by_email(conn, email), password)
    click.echo(f"password of '{email}' changed")
    if generated:
        click.echo(password)


@user.command("list")
@click.option("--org", "org_name")
@with_engine
def user_list(engine, cfg, org_name):
    with engine.connect() as conn:
        for u in accounts.list_users(conn, org_name):
            flags = ",".join(f for f, on in (("staff", u.is_staff), ("disabled", u.disabled)) if on)
            click.echo(f"{u.email}\t{u.org}\t{flags or '-'}")


# --- API tokens ----------------------------------------------------------------------------

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
    with engine.connect() as conn:
        ident = accounts.identity(conn, accounts.user_id_by_email(conn, email), tariffs,
                                  cfg.timezone)
    if ident is None:
        raise click.ClickException(f"user '{email}' is disabled")
    click.echo(tokens.issue(signing_key(cfg), sub=ident.user_id, org=ident.org,
                            tariff=ident.tariff, sections=ident.sections, typ="api", ttl=ttl))
