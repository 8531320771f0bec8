"""`gate org` and `gate user`: organisations and people. Every change goes through
gate.changes, which writes its audit row (actor "cli") in the same transaction."""

from __future__ import annotations

import os
import sys

import click

from gate import accounts, changes
from gate.access import contract_active
from gate.accounts import AccountError
from gate.cli_common import with_engine
from gate.clock import today
from gate.tariffs import load_tariffs

CLI = changes.CLI


def _password(from_stdin: bool) -> tuple[str, bool]:
    """(password, generated?) from stdin when asked, else a new random one."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise click.ClickException("no password on standard input")
        return password, False
    return accounts.generate_password(), True


def invitation_base(cfg) -> str:
    """Where invitation links point: GATE_BASE_URL; in local mode http://127.0.0.1:$PORT."""
    if cfg.base_url:
        return cfg.base_url
    if cfg.local:
        return f"http://127.0.0.1:{os.environ.get('PORT') or 8000}"
    raise AccountError("GATE_BASE_URL is not set: an invitation link needs the public address "
                       "of the knowledge base (e.g. https://kb.example.ru)")


# --- organisations -------------------------------------------------------------------------

@click.group()
def org():
    """Client organisations."""


@org.command("add")
@click.argument("name")
@click.option("--tariff", required=True)
@click.option("--until", help="valid through this day (YYYY-MM-DD, GATE_TIMEZONE)")
@click.option("--external-id", help="the organisation's id in the vendor's client portal")
@with_engine
def org_add(engine, cfg, name, tariff, until, external_id):
    with engine.begin() as conn:
        changes.org_add(conn, CLI, load_tariffs(cfg.tariffs_path), name, tariff, until, external_id)
    click.echo(f"organisation '{name}' added with tariff {tariff}"
               + (f" until {until}" if until else ""))


@org.command("set")
@click.argument("name")
@click.option("--tariff")
@click.option("--until", help="a new end date (YYYY-MM-DD); reopens an ended contract")
@click.option("--external-id", help="the client portal's id ('' removes it)")
@with_engine
def org_set(engine, cfg, name, tariff, until, external_id):
    with engine.begin() as conn:
        changes.org_set(conn, CLI, load_tariffs(cfg.tariffs_path), name, tariff, until, external_id)
    click.echo(f"organisation '{name}' changed")


@org.command("end")
@click.argument("name")
@with_engine
def org_end(engine, cfg, name):
    with engine.begin() as conn:
        changes.org_end(conn, CLI, name)
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


def _one_of(org_name, staff) -> None:
    if bool(org_name) == staff:
        raise click.UsageError("give either --org NAME or --staff")


@user.command("add")
@click.argument("email")
@click.option("--org", "org_name", help="the person's organisation")
@click.option("--staff", is_flag=True, help="a support staff member (sees every section)")
@click.option("--password-stdin", is_flag=True, help="read the password from standard input")
@with_engine
def user_add(engine, cfg, email, org_name, staff, password_stdin):
    _one_of(org_name, staff)
    password, generated = _password(password_stdin)
    with engine.begin() as conn:
        changes.user_add(conn, CLI, email, password, org=org_name, staff=staff)
    click.echo(f"user '{accounts.normalize_email(email)}' added"
               + (" (staff)" if staff else f" to '{org_name}'"))
    if generated:
        click.echo(password)


@user.command("invite")
@click.argument("email")
@click.option("--org", "org_name", help="the person's organisation")
@click.option("--staff", is_flag=True, help="a support staff member (sees every section)")
@click.option("--admin", is_flag=True, help="manages the organisation's people")
@with_engine
def user_invite(engine, cfg, email, org_name, staff, admin):
    """Mail a one-time link (72 h) to set a password; older links stop working."""
    _one_of(org_name, staff)
    base = invitation_base(cfg)
    with engine.begin() as conn:
        done = changes.user_invite(conn, CLI, cfg, base, email, org=org_name, staff=staff,
                                   admin=admin)
    click.echo(f"invitation {'sent' if done.created else 'sent again'} to '{done.email}' "
               f"(link valid 72 h, mailed through the outbox)")


@user.command("disable")
@click.argument("email")
@with_engine
def user_disable(engine, cfg, email):
    with engine.begin() as conn:
        changes.user_disable(conn, CLI, email, True)
    click.echo(f"user '{email}' disabled")


@user.command("enable")
@click.argument("email")
@with_engine
def user_enable(engine, cfg, email):
    with engine.begin() as conn:
        changes.user_disable(conn, CLI, email, False)
    click.echo(f"user '{email}' enabled")


@user.command("admin")
@click.argument("email")
@click.option("--off", is_flag=True, help="no longer an admin")
@with_engine
def user_admin(engine, cfg, email, off):
    """Make a person their organisation's admin (manages its people), or --off."""
    with engine.begin() as conn:
        changes.user_admin(conn, CLI, email, not off)
    click.echo(f"user '{email}' is {'no longer' if off else 'now'} an admin of their organisation")


@user.command("forget")
@click.argument("email")
@with_engine
def user_forget(engine, cfg, email):
    """Erase a person (152-FZ): account, sessions, tokens, invitations; the audit keeps the
    actions under a pseudonym."""
    with engine.begin() as conn:
        name = changes.user_forget(conn, CLI, email)
    click.echo(f"user '{email}' erased; the audit log calls them {name}")


@user.command("totp-reset")
@click.argument("email")
@with_engine
def user_totp_reset(engine, cfg, email):
    """Remove a person's second factor (a lost phone): they sign in with the password alone
    and may enrol again."""
    with engine.begin() as conn:
        changes.totp_reset(conn, CLI, email, via="cli")
    click.echo(f"second factor of '{email}' removed")


@user.command("password")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="read the password from standard input")
@with_engine
def user_password(engine, cfg, email, password_stdin):
    password, generated = _password(password_stdin)
    with engine.begin() as conn:
        changes.user_password(conn, CLI, email, password)
    click.echo(f"password of '{email}' changed")
    if generated:
        click.echo(password)


@user.command("list")
@click.option("--org", "org_name")
@with_engine
def user_list(engine, cfg, org_name):
    with engine.connect() as conn:
        for u in accounts.list_users(conn, org_name):
            flags = ",".join(f for f, on in (("staff", u.is_staff), ("admin", u.is_admin),
                                             ("disabled", u.disabled), ("invited", u.pending))
                             if on)
            click.echo(f"{u.email}\t{u.org}\t{flags or '-'}")


@click.command("usage")
@click.option("--json", "as_json", is_flag=True, help="as JSON")
@click.option("--org", "org_name", help="only this organisation (its exact name)")
@click.option("--days", type=click.IntRange(1, 36500), default=30, show_default=True,
              help="look back this many days (today included); active = signed in within them")
@with_engine
def usage_command(engine, cfg, as_json, org_name, days):
    """How each client organisation uses the knowledge base: people, active people, last
    login, views and locked hits per section, searches, support requests (aggregates per day:
    no person's browsing history). Counts may lag up to a minute."""
    import json

    from gate import usage

    with engine.connect() as conn:
        if org_name is not None:
            accounts.org_by_name(conn, org_name)  # an unknown name is one line, exit status 1
        rows = usage.report(conn, cfg.timezone, org=org_name, days=days)
    if as_json:  # the contract's shape (the console also shows views outside the sections)
        click.echo(json.dumps([{k: r[k] for k in usage.CONTRACT_KEYS} for r in rows],
                              ensure_ascii=False, indent=2))
        return
    click.echo("org\tpeople\tactive\tlast_login\tviews\tlocked_hits\tsearches\trequests")
    for r in rows:
        views = ",".join(f"{k}:{n}" for k, n in r["views"].items()) or "-"
        locked = ",".join(f"{k}:{n}" for k, n in r["locked_hits"].items()) or "-"
        click.echo(f"{r['org']}\t{r['people']}\t{r['active_people']}\t{r['last_login'] or '-'}\t"
                   f"{views}\t{locked}\t{r['searches']}\t{r['requests']}")
