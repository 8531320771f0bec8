"""The `gate` command. Errors are one clear line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import argparse
import sys

from gate import config as config_mod


class CliError(Exception):
    pass


def _one_line(message) -> str:
    """An error as one printable line: control characters (from user input) are escaped."""
    return "".join(ch if ch >= " " and ch != "\x7f" else repr(ch)[1:-1] for ch in str(message))


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line, like every other error of the command."""

    def error(self, message):
        print(f"{self.prog}: {message} (see '{self.prog} --help')", file=sys.stderr)
        sys.exit(2)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="gate", description="SET Retail 10 knowledge base gate")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    b = sub.add_parser("build", help="build every edition of the site into site/")
    b.add_argument("--jobs", type=int, default=None, help="parallel builds (default: cores)")
    sub.add_parser("check", help="check the articles without building")
    s = sub.add_parser("serve", help="serve with a production WSGI server")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--threads", type=int, default=8)

    org = sub.add_parser("org", help="client organisations").add_subparsers(
        dest="action", required=True, parser_class=_Parser)
    a = org.add_parser("add")
    a.add_argument("name")
    a.add_argument("--tariff", required=True)
    a.add_argument("--until")
    a = org.add_parser("set")
    a.add_argument("name")
    a.add_argument("--tariff")
    a.add_argument("--until")
    org.add_parser("end").add_argument("name")
    org.add_parser("list")

    user = sub.add_parser("user", help="people").add_subparsers(
        dest="action", required=True, parser_class=_Parser)
    a = user.add_parser("add")
    a.add_argument("email")
    who = a.add_mutually_exclusive_group(required=True)
    who.add_argument("--org")
    who.add_argument("--staff", action="store_true")
    a.add_argument("--password-stdin", action="store_true")
    user.add_parser("disable").add_argument("email")
    user.add_parser("enable").add_argument("email")
    user.add_parser("list").add_argument("--org")
    a = user.add_parser("password")
    a.add_argument("email")
    a.add_argument("--password-stdin", action="store_true")

    t = sub.add_parser("token", help="a signed access token for scripts")
    t.add_argument("email")
    t.add_argument("--ttl", type=int, default=3600)
    r = sub.add_parser("requests", help="stored support requests")
    r.add_argument("--json", action="store_true")
    sg = sub.add_parser("search-gaps", help="top search queries without results (or followed by "
                       "a support request): total, no results, then request, editions, query")
    sg.add_argument("--days", type=int, default=30, help="look back this many days (default 30)")
    sg.add_argument("--limit", type=int, default=30, help="at most this many queries (default 30)")
    sg.add_argument("--json", action="store_true")
    return p


def main(argv=None) -> int:
    parser = _parser()
    argv = sys.argv[1:] if argv is None else argv
    for value in argv:  # undecodable bytes arrive as surrogates and would fail much later
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            print("gate: arguments must be UTF-8 text", file=sys.stderr)
            return 2
    args = parser.parse_args(argv)
    try:
        cfg = config_mod.from_env()
        return _dispatch(cfg, args) or 0
    except (CliError, config_mod.ConfigError, ValueError, OSError) as exc:
        print(f"gate: {_one_line(exc)}", file=sys.stderr)
        return 1
    except ImportError as exc:  # e.g. a GATE_DATABASE_URL whose driver is not installed
        print(f"gate: missing module: {_one_line(exc)}", file=sys.stderr)
        return 1
    except Exception as exc:  # database errors and the like: one line, never a traceback
        from sqlalchemy.exc import SQLAlchemyError
        if not isinstance(exc, SQLAlchemyError):
            raise
        print(f"gate: database error: {_one_line(str(exc).splitlines()[0])}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _dispatch(cfg, args) -> int:
    if args.command == "build":
        from gate.build import BuildError, build_all
        try:
            build_all(cfg.root, cfg.tariffs_path, jobs=args.jobs,
                      site_url=cfg.base_url and cfg.base_url + "/")
        except BuildError as exc:
            raise CliError(str(exc)) from None
        return 0
    if args.command == "check":
        from gate.check import check_docs
        problems = check_docs(cfg.root)
        for line in problems:
            print(line, file=sys.stderr)
        if problems:
            raise CliError(f"{len(problems)} problem(s) in docs/")
        print("docs/: no problems found")
        return 0
    if args.command == "serve":
        from gate.serve import serve
        return serve(cfg, args.host, args.port, args.threads)
    from gate import commands
    return commands.run(cfg, args)
