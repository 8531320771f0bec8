"""The `gate` command (click, as Flask's own CLI). Errors are one clear line on stderr and a
non-zero exit, never a traceback: commands raise click.ClickException (or the errors of the
modules below, which `main` turns into one line)."""

from __future__ import annotations

import json
import sys

import click

from gate import config as config_mod
from gate.cli_accounts import org, usage_command, user
from gate.cli_common import with_engine
from gate.cli_tokens import audit_command, token


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli():
    """SET Retail 10 knowledge base gate."""


@cli.command()
@click.option("--jobs", type=int, default=None, help="parallel builds (default: cores)")
def build(jobs):
    """Build every edition of the site into site/."""
    from gate.build import BuildError, build_all
    cfg = config_mod.from_env()
    try:
        build_all(cfg.root, cfg.tariffs_path, jobs=jobs, site_url=cfg.base_url and cfg.base_url + "/")
    except BuildError as exc:
        raise click.ClickException(str(exc)) from None


@cli.command()
def check():
    """Check the articles without building."""
    from gate.check import check_docs
    problems = check_docs(config_mod.from_env().root)
    for line in problems:
        click.echo(line, err=True)
    if problems:
        raise click.ClickException(f"{len(problems)} problem(s) in docs/")
    click.echo("docs/: no problems found")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8000, show_default=True)
@click.option("--workers", type=click.IntRange(1, 256), default=None,
              help="worker processes (default: the number of cores)")
@click.option("--threads", type=click.IntRange(1, 256), default=4, show_default=True,
              help="threads per worker process")
def serve(host, port, workers, threads):
    """Serve with a production WSGI server (granian) and the mail outbox worker."""
    from gate.build import BuildError
    from gate.serve import serve as run
    try:
        run(config_mod.from_env(), host, port, workers, threads)
    except BuildError as exc:
        raise click.ClickException(str(exc)) from None


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="as JSON")
@with_engine
def requests(engine, cfg, as_json):
    """Stored support requests."""
    from gate import requests_store
    rows = requests_store.listing(engine, cfg)
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    columns = ("number", "org", "category", "criticality", "created", "register_by",
               "consult_by", "workaround_by", "delivery")
    click.echo("\t".join(columns))
    for r in rows:
        click.echo("\t".join("-" if r[k] is None else str(r[k]) for k in columns))


@cli.command("search-gaps")
@click.option("--days", type=click.IntRange(1, 3650), default=30, show_default=True,
              help="look back this many days")
@click.option("--limit", type=click.IntRange(1, 10000), default=30, show_default=True,
              help="at most this many queries")
@click.option("--json", "as_json", is_flag=True, help="as JSON")
@with_engine
def search_gaps(engine, cfg, days, limit, as_json):
    """Top search queries without results (or followed by a support request): total, no
    results, then request, editions, query."""
    from gate.views.search import gaps
    rows = gaps(engine, days=days, limit=limit)
    if as_json:
        click.echo(json.dumps([{**r, "last": r["last"].isoformat(timespec="seconds")}
                               for r in rows], ensure_ascii=False, indent=2))
    elif not rows:
        click.echo(f"no searches without results in the last {days} days")
    else:
        for r in rows:
            click.echo(f"{r['count']}\t{r['no_results']}\t{r['then_request']}\t"
                       f"{','.join(r['editions'])}\t{r['query']}")


@cli.command("feedback")
@click.option("--days", type=click.IntRange(1, 3650), default=30, show_default=True,
              help="look back this many days")
@click.option("--json", "as_json", is_flag=True, help="as JSON")
@with_engine
def feedback_report(engine, cfg, days, as_json):
    """Readers' votes per article: yes, no, reasons, comments, support requests filed after a
    "no"; the largest share of "no" first (`--days 7`: the week's articles that fail)."""
    from gate import change_notes, feedback
    rows = feedback.report(engine, days=days, titles=change_notes.titles(
        change_notes.load_articles(cfg.site_dir)))
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not rows:
        click.echo(f"no feedback in the last {days} days")
        return
    click.echo("no%\tyes\tno\trequests\treasons\tpage\ttitle")
    for r in rows:
        reasons = ",".join(f"{k}:{n}" for k, n in sorted(r["reasons"].items())) or "-"
        click.echo(f"{round(r['share_no'] * 100)}\t{r['yes']}\t{r['no']}\t{r['requests']}\t"
                   f"{reasons}\t{r['page']}\t{r['title']}")
    for r in rows:
        for c in r["comments"]:
            click.echo(f"comment\t{r['page']}\t{c['date']}\t{c['vote']}\t{c['reason'] or '-'}\t"
                       + " ".join(c["text"].split()))


@cli.command("digest")
@click.option("--dry-run", "email", required=True, metavar="EMAIL",
              help="print what this person would get now (the first line: whether subscribed)")
@with_engine
def digest_command(engine, cfg, email):
    """The weekly digest of changes (sent by `gate serve`): what one person would get now."""
    from gate import digest
    from gate.instance import signing_key
    from gate.tariffs import load_tariffs
    base_url = cfg.base_url or "http://127.0.0.1:8000"
    for line in digest.dry_run(engine, cfg, load_tariffs(cfg.tariffs_path),
                               digest.secret(signing_key(cfg)), email, base_url):
        click.echo(line)


for group in (org, user, token, audit_command, usage_command):
    cli.add_command(group)


def one_line(message) -> str:
    """An error as one printable line: control characters (from user input) are escaped."""
    text = " ".join(str(message).splitlines()) if "\n" in str(message) else str(message)
    return "".join(ch if ch >= " " and ch != "\x7f" else repr(ch)[1:-1] for ch in text)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    for value in argv:  # undecodable bytes arrive as surrogates and would fail much later
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            click.echo("gate: arguments must be UTF-8 text", err=True)
            return 2
    try:
        cli.main(args=argv, prog_name="gate", standalone_mode=False)
        return 0
    except click.exceptions.NoArgsIsHelpError as exc:  # `gate` or `gate user` alone
        click.echo(exc.ctx.get_help(), err=True)
        return 2
    except click.UsageError as exc:
        click.echo(f"gate: {one_line(exc.format_message())} (see 'gate --help')", err=True)
        return 2
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.Abort:
        return 130
    except click.ClickException as exc:
        click.echo(f"gate: {one_line(exc.format_message())}", err=True)
        return exc.exit_code
    except (config_mod.ConfigError, ValueError, OSError) as exc:
        click.echo(f"gate: {one_line(exc)}", err=True)
        return 1
    except ImportError as exc:  # e.g. a GATE_DATABASE_URL whose driver is not installed
        click.echo(f"gate: missing module: {one_line(exc)}", err=True)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # database errors and the like: one line, never a traceback
        from sqlalchemy.exc import SQLAlchemyError
        if not isinstance(exc, SQLAlchemyError):
            raise
        click.echo(f"gate: database error: {one_line(str(exc).splitlines()[0])}", err=True)
        return 1

