"""What the `gate` commands share: settings and an open database, account errors as one line."""

from __future__ import annotations

import functools

import click

from gate import accounts
from gate import config as config_mod
from gate.instance import open_database


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
