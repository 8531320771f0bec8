"""Edge mode's nginx configuration, written from the gate's own rules and settings.

`python -m gate.edge_config` (run by deploy/edge.sh) writes into the runtime folder:
- `kb-rules.conf`: who may see what, as nginx maps. The section of a path, the ticket's parts
  (gate.edge_tickets), and for every built edition the sections it may serve, listed from
  gate.access.may_see itself, so nginx and the gate cannot disagree on a section; tested
  against tests/data/access_truth_table.json with a real nginx.
- `nginx.conf`: deploy/nginx.conf.template with absolute paths and ports filled in.
- `tls.conf` with EDGE_TLS_CERT / EDGE_TLS_KEY: https, see gate.edge_tls.
Both are readable by the owner only: the rules hold the ticket secret. It prints the shell
assignments edge.sh needs (RUN, CONF). Any problem is one line on stderr and exit status 1.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import sys
from pathlib import Path

from gate import edge_tickets, edge_tls, routes, site
from gate.access import may_see
from gate.identities import SESSION_COOKIE
from gate.sections import SECTIONS
from gate.security import security_headers

RULES = "kb-rules.conf"
GATE = "gate"  # $kb_target for "let the gate answer"


def rules(secret: str, editions: dict) -> str:
    """nginx maps deciding, per request, the edition folder to serve from or 'gate'.

    editions: edition name -> the sections it holds (site/manifest.json's "editions").
    """
    if any(c not in "0123456789abcdef" for c in secret) or len(secret) < 32:
        raise ValueError("the ticket secret must be lower-case hex")
    t = edge_tickets
    # Each request nginx serves itself costs these maps; measured with callgrind (instructions
    # per request, against a plain static nginx), they are written to cost little: regexes compiled by
    # PCRE's JIT (pcre_jit in nginx.conf), the ticket read by one regex, the long session
    # cookie looked at only when there is no valid ticket, no map over a map where one will do.
    lines = [
        "# Written by gate.edge_config from the built editions: do not edit.",
        "map_hash_bucket_size 128;  # keys like 'GET:launches+functionality+maintenance:launches'",
        "",
        "# The section of the decoded, normalized path: its first segment, any case; '' for a",
        "# public path; 'gate' when anything is unusual (control characters, backslashes,",
        "# a non-ASCII first segment): the gate decides those.",
        "map $uri $kb_section {",
        '    default "";',
        '    "~[\\x00-\\x1f\\x7f\\\\\\\\]|^/+[^/]*[^\\x21-\\x7e/]" gate;',
    ]
    lines += [f'    "~*^/+{s}(?:/|$)" {s};' for s in SECTIONS]
    lines += [
        "}",
        "",
        f"# The edition ticket ({t.COOKIE}): <expiry>.<edition>.<org>.<mac>, see gate/edge_tickets.py.",
        "# One regex reads all four parts: $kb_te, $kb_ted, $kb_to and $kb_tm are its named captures,",
        "# set when this map is evaluated, which secure_link does first (its MAC argument).",
        f"map $cookie_{t.COOKIE} $kb_ticket_mac {{",
        f'    "~^(?<kb_te>{t.EXP_PATTERN})\\.(?<kb_ted>{t.EDITION_PATTERN})\\.(?<kb_to>{t.ORG_PATTERN})\\.(?<kb_tm>{t.MAC_PATTERN})$" $kb_tm;',
        '    default "";',
        "}",
        "# $secure_link: '1' valid, '0' expired, '' absent or wrong.",
        "secure_link $kb_ticket_mac,$kb_te;",
        f'secure_link_md5 "$kb_te.$kb_ted.$kb_to.{secret}";',
        "",
        "# The edition: a valid ticket's; without one, public for a visitor with neither a session",
        "# nor a ticket, else the gate (it renews the session token and issues a ticket, or",
        "# answers 303/401). The session cookie, long, is read only when the ticket does not do.",
        "map $secure_link $kb_edition {",
        '    "1" $kb_ted;',
        "    default $kb_no_ticket;",
        "}",
        f'map "$cookie_{SESSION_COOKIE}$cookie_{t.COOKIE}" $kb_no_ticket {{',
        '    "" public;',
        f"    default {GATE};",
        "}",
        "",
        "# Only plain reads without an Authorization header are nginx's; the gate checks Bearer",
        "# tokens, forms and every other method itself.",
        'map "$request_method:$http_authorization" $kb_plain {',
        '    "GET:" 1;',
        '    "HEAD:" 1;',
        "    default 0;",
        "}",
        "",
        "# The edition folder a plain read is served from: listed from gate.access.may_see for",
        "# every built edition and section. Anything not listed goes to the gate.",
        'map "$request_method$http_authorization:$kb_edition:$kb_section" $kb_target {',
        f"    default {GATE};",
    ]
    for name in sorted(editions):
        if not re.fullmatch(t.EDITION_PATTERN, name) or name == GATE:  # what a ticket can name
            raise ValueError(f"unusable edition name: {name!r}")
        sections = frozenset(editions[name])
        for method in ("GET", "HEAD"):
            lines.append(f'    "{method}:{name}:" {name};')
            lines += [f'    "{method}:{name}:{s}" {name};' for s in SECTIONS if may_see(sections, s)]
    lines += ["}", ""]
    return "\n".join(lines)


def gate_locations() -> str:
    """nginx locations for the addresses the gate answers itself (gate.routes), so nginx never
    serves a file where the gate should answer."""
    exact = [*routes.EXACT, *routes.INTERNAL_EXACT]
    prefixes = [*routes.PREFIXES, *routes.INTERNAL_PREFIXES]
    lines = [f"location = {p} {{ proxy_pass http://kb_gate; }}" for p in exact]
    lines += [f"location ^~ {p} {{ proxy_pass http://kb_gate; }}" for p in prefixes]
    for path in exact + prefixes:
        if not re.fullmatch(r"/[A-Za-z0-9._/-]*", path):
            raise ValueError(f"unusable gate address for nginx: {path!r}")
    return "\n        ".join(lines)


def media_types() -> str:
    """nginx's `types` block and charset settings from gate.site's table, so a file is sent with
    the same Content-Type by nginx and by the gate."""
    by_type: dict[str, list[str]] = {}
    for ext, kind in site.MEDIA_TYPES.items():
        by_type.setdefault(kind, []).append(ext)
    lines = ["types {"] + [f"        {kind} {' '.join(exts)};" for kind, exts in by_type.items()]
    charset_types = [k for k in by_type if site.has_charset(k) and k != "text/html"]  # implied
    lines += ["    }", f"    default_type {site.DEFAULT_TYPE};", "    charset utf-8;",
              "    charset_types " + " ".join(charset_types) + ";"]
    return "\n".join(lines)


# Values written by this module as nginx directives, not plain words from the settings.
_DIRECTIVES = ("SECURITY_HEADERS", "HIDE_SECURITY_HEADERS", "USER_DIRECTIVE", "TLS",
               "GATE_LOCATIONS", "TYPES", "USAGE_LOG", "PLAIN_ON_TLS")


def usage_log_lines(path: Path | None) -> str:
    """The usage log the gate reads (gate.usage_log): one line per page nginx served itself to
    a valid ticket, `<organisation id> <status> <request URI>`, nothing about the person.
    Buffered: nginx writes it at least every 5 s. None (GATE_USAGE=0): no such log."""
    if path is None:
        return "# usage per organisation is not counted (GATE_USAGE=0)"
    if any(c in str(path) for c in '"\\\n;{}$'):
        raise ValueError(f"unusable path for the usage log: {path}")
    return "\n".join([
        "# Usage per organisation (gate.usage_log): pages nginx served itself (no upstream) to",
        "# a valid edition ticket; assets are left out.",
        'map "$secure_link:$upstream_addr:$uri" $kb_usage_log {',
        '    "~^1::.*(?:/|\\.html)$" 1;',
        "    default 0;",
        "}",
        "log_format kb_usage '$kb_to $status $request_uri';",
        f'access_log "{path}" kb_usage buffer=32k flush=5s if=$kb_usage_log;',
    ])


def usage_log_path(cfg, run: Path) -> Path | None:
    """Where nginx writes the usage log and the gate reads it (GATE_USAGE_LOG)."""
    if not cfg.usage:
        return None
    return cfg.usage_log or run / "usage.log"


def render(template: str, values: dict) -> str:
    """The template with its @NAME@ fields filled in; the lines of a value that start at its
    left margin are indented like the line its field stands on."""
    for name, value in values.items():
        if any(c in value for c in '"\\\n;{}$') and name not in _DIRECTIVES:
            raise ValueError(f"unsupported character in {name}: {value!r}")
        template = re.sub(rf"(?m)^([ \t]*)@{name}@", lambda m: m.group(1) + re.sub(
            r"\n(?=\S)", "\n" + m.group(1), value), template)
        template = template.replace(f"@{name}@", value)
    return template


def security_header_lines(production: bool) -> str:
    """gate.security.security_headers as nginx add_header lines: nginx's answers carry exactly
    the headers the gate sends, the Content-Security-Policy included."""
    headers = {}
    security_headers(headers, production=production)
    for name, value in headers.items():
        if any(c in value for c in '"\\\n{}$'):
            raise ValueError(f"{name} cannot be written into nginx.conf: {value!r}")
    return "\n".join(f'add_header {name} "{value}" always;' for name, value in headers.items())


def hidden_security_headers() -> str:
    """The gate's copies of those headers (production's superset), hidden behind nginx's own."""
    headers = {}
    security_headers(headers, production=True)
    return "\n".join(f"proxy_hide_header {name};" for name in headers)


def _port(env, name: str, default: int) -> int:
    value = env.get(name) or str(default)
    if not (value.isascii() and value.isdigit()) or not 0 < int(value) < 65536:
        raise ValueError(f"{name} must be a port number from 1 to 65535, not {value!r}")
    return int(value)


def _editions(manifest: Path) -> dict:
    """The built editions (name -> sections) from site/manifest.json."""
    if not manifest.is_file():
        raise ValueError(f"{manifest} is missing: run `gate build` first")
    try:
        editions = json.loads(manifest.read_text())["editions"]
        if not isinstance(editions, dict) or not all(isinstance(s, list) for s in editions.values()):
            raise ValueError
    except (ValueError, KeyError, TypeError):
        raise ValueError(f"{manifest} is not a manifest of `gate build`: run it again") from None
    return editions


def _port_free(host: str, port: int, what: str):
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError as exc:
            raise ValueError(f"{host}:{port} ({what}) is not free: {exc.strerror}") from None


def _write_private(path: Path, text: str):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)


def write(env=None) -> tuple[Path, Path]:
    """Writes kb-rules.conf and nginx.conf for the gate's settings; (runtime folder, nginx.conf)."""
    from gate import config, instance

    env = os.environ if env is None else env
    cfg = config.from_env(env)
    edge_host = env.get("EDGE_HOST", "127.0.0.1")
    edge_port, gate_port = _port(env, "EDGE_PORT", 8080), _port(env, "GATE_PORT", 8001)
    site = cfg.site_dir.resolve()
    editions = _editions(site / "manifest.json")
    secret = edge_tickets.ticket_secret(instance.signing_key(cfg))
    _port_free("127.0.0.1", gate_port, "GATE_PORT")
    _port_free(edge_host, edge_port, "EDGE_PORT")
    http_port = _port(env, "EDGE_HTTP_PORT", 0) if env.get("EDGE_HTTP_PORT") else None
    if http_port is not None and http_port != edge_port:
        _port_free(edge_host, http_port, "EDGE_HTTP_PORT")
    run = Path(env.get("EDGE_DIR") or cfg.instance / "edge").resolve()
    (run / "tmp").mkdir(parents=True, exist_ok=True)
    deploy = Path(env.get("EDGE_DEPLOY") or config.PROJECT_ROOT / "deploy").resolve()
    tls = edge_tls.settings(env, run, deploy, edge_host, edge_port, http_port,
                            headers=security_header_lines(production=False))
    values = {
        "USER_DIRECTIVE": env.get("USER_DIRECTIVE", ""),
        "WORKERS": env.get("EDGE_WORKERS") or "auto",
        "RUN": str(run),
        "RULES": str(run / RULES),
        "SITE": str(site),
        "EDGE_HOST": edge_host,
        "EDGE_PORT": str(edge_port),
        "GATE_PORT": str(gate_port),
        "SECURITY_HEADERS": security_header_lines(production=not cfg.local),
        "HIDE_SECURITY_HEADERS": hidden_security_headers(),
        "GATE_LOCATIONS": gate_locations(),
        "TYPES": media_types(),
        "USAGE_LOG": usage_log_lines(usage_log_path(cfg, run)),
        **tls,
    }
    text = render((deploy / "nginx.conf.template").read_text(), values)
    _write_private(run / RULES, rules(secret, editions))
    conf = run / "nginx.conf"
    _write_private(conf, text)
    return run, conf


def main() -> int:
    from gate import config

    try:
        run, conf = write()
    except Exception as exc:  # any problem is one line, never a traceback
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"edge: {message}", file=sys.stderr)
        return 1
    print(f"RUN={shlex.quote(str(run))}")
    print(f"CONF={shlex.quote(str(conf))}")
    usage_log = usage_log_path(config.from_env(), run)
    print(f"USAGE_LOG={shlex.quote(str(usage_log or ''))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
