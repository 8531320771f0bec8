"""The account and token commands of the `gate` CLI (org, user, token, requests)."""

from __future__ import annotations

import json
import sys

from gate import accounts, tokens
from gate.cli import CliError
from gate.instance import open_database, signing_key
from gate.tariffs import load_tariffs


def _password_from(args) -> tuple[str, bool]:
    """(password, generated?) from stdin when asked, else a new random one."""
    if getattr(args, "password_stdin", False):
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise CliError("no password on standard input")
        return password, False
    return accounts.generate_password(), True


def run(cfg, args) -> int:
    engine = open_database(cfg)
    try:
        return _run(cfg, engine, args)
    except accounts.AccountError as exc:
        raise CliError(str(exc)) from None
    finally:
        engine.dispose()


def _run(cfg, engine, args) -> int:
    cmd, action = args.command, getattr(args, "action", None)
    if cmd == "org":
        tariffs = load_tariffs(cfg.tariffs_path)
        with engine.begin() as conn:
            if action == "add":
                accounts.add_org(conn, args.name, args.tariff, tariffs, args.until)
                print(f"organisation '{args.name}' added with tariff {args.tariff}"
                      + (f" until {args.until}" if args.until else ""))
            elif action == "set":
                accounts.set_org(conn, args.name, tariffs, args.tariff, args.until)
                print(f"organisation '{args.name}' changed")
            elif action == "end":
                accounts.end_org(conn, args.name)
                print(f"contract of '{args.name}' ended")
            else:
                today = accounts.today(cfg.timezone)
                from gate.access import contract_active
                for o in accounts.list_orgs(conn):
                    state = "active" if contract_active(o.until, o.ended_at, today) else "ended"
                    print(f"{o.name}\t{o.tariff}\t{o.until or '-'}\t{state}")
        return 0
    if cmd == "user":
        with engine.begin() as conn:
            if action == "add":
                password, generated = _password_from(args)
                accounts.add_user(conn, args.email, password, org=args.org, staff=args.staff)
                print(f"user '{accounts.normalize_email(args.email)}' added"
                      + (" (staff)" if args.staff else f" to '{args.org}'"))
                if generated:
                    print(password)
            elif action in ("disable", "enable"):
                accounts.set_disabled(conn, args.email, action == "disable")
                print(f"user '{args.email}' {action}d")
            elif action == "password":
                password, generated = _password_from(args)
                accounts.set_password(conn, accounts.user_id_by_email(conn, args.email), password)
                print(f"password of '{args.email}' changed")
                if generated:
                    print(password)
            else:
                for u in accounts.list_users(conn, args.org):
                    flags = ",".join(f for f, on in (("staff", u.is_staff), ("disabled", u.disabled)) if on)
                    print(f"{u.email}\t{u.org}\t{flags or '-'}")
        return 0
    if cmd == "token":
        if not 1 <= args.ttl <= tokens.MAX_API_TTL:
            raise CliError(f"--ttl must be from 1 to {tokens.MAX_API_TTL} seconds (30 days)")
        tariffs = load_tariffs(cfg.tariffs_path)
        with engine.connect() as conn:
            uid = accounts.user_id_by_email(conn, args.email)
            ident = accounts.identity(conn, uid, tariffs, cfg.timezone)
        if ident is None:
            raise CliError(f"user '{args.email}' is disabled")
        print(tokens.issue(signing_key(cfg), sub=ident.user_id, org=ident.org, tariff=ident.tariff,
                           sections=ident.sections, typ="api", ttl=args.ttl))
        return 0
    if cmd == "requests":
        from gate import requests_store
        rows = requests_store.listing(engine, cfg)
        if args.json:
            print(json.dumps(rows, ensure_ascii=False, indent=2))
        else:
            columns = ("number", "org", "category", "criticality", "created", "register_by",
                       "consult_by", "workaround_by", "delivery")
            print("\t".join(columns))
            for r in rows:
                print("\t".join("-" if r[k] is None else str(r[k]) for k in columns))
        return 0
    if cmd == "search-gaps":
        if not 1 <= args.days <= 3650 or not 1 <= args.limit <= 10000:
            raise CliError("--days must be from 1 to 3650 and --limit from 1 to 10000")
        from gate.search_api import gaps
        rows = gaps(engine, days=args.days, limit=args.limit)
        if args.json:
            print(json.dumps([{**r, "last": r["last"].isoformat(timespec="seconds")} for r in rows],
                             ensure_ascii=False, indent=2))
        elif not rows:
            print(f"no searches without results in the last {args.days} days")
        else:
            for r in rows:
                print(f"{r['count']}\t{r['no_results']}\t{r['then_request']}\t"
                      f"{','.join(r['editions'])}\t{r['query']}")
        return 0
    raise CliError(f"unknown command {cmd}")
