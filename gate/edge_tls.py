"""TLS at the edge: EDGE_TLS_CERT / EDGE_TLS_KEY checked before nginx starts, and nginx's https.

`settings(env, run, hsts)` (called by gate.edge_config) returns the template values for
deploy/nginx.conf.template and, with TLS, writes `tls.conf` (deploy/tls.conf.template filled
in: Mozilla's "intermediate" profile, OCSP stapling when the certificate names a responder, the
plain-http redirect listener of EDGE_HTTP_PORT) into the runtime folder. Without either
setting it returns values that leave the configuration exactly as it was (plain http).

Every problem is a ValueError with one line that names the setting at fault: only one of the
two set, a missing or unreadable file, no PEM certificate or key in it, a key that does not
belong to the certificate, a key protected by a passphrase (nginx would stop to ask for it).
"""

from __future__ import annotations

import ipaddress
import os
import re
import ssl
from pathlib import Path
from urllib.parse import urlsplit

TLS_CONF = "tls.conf"
TRUSTED = "tls-trusted.pem"
SYSTEM_CAS = Path("/etc/ssl/certs/ca-certificates.crt")  # Debian's ca-certificates
_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----\s+[A-Za-z0-9+/=\s]+?-----END CERTIFICATE-----")
# id-ad-ocsp (1.3.6.1.5.5.7.48.1) in an Authority Information Access entry, followed by its
# accessLocation as a URI ([6] IA5String): the certificate names an OCSP responder.
_OCSP_ACCESS = b"\x06\x08\x2b\x06\x01\x05\x05\x07\x30\x01\x86"
# Characters that would end or change a quoted nginx parameter ($ starts a variable there).
_UNSAFE = set('"\\\n\r;{}$')


def _path(env, name: str) -> Path:
    value = env[name]
    if any(c in _UNSAFE for c in value):
        raise ValueError(f"{name} has a character nginx cannot take in a path: {value!r}")
    path = Path(value).expanduser().resolve()
    if not path.exists():
        raise ValueError(f"{name}: {value} does not exist")
    if not path.is_file():
        raise ValueError(f"{name}: {value} is not a file")
    try:
        path.read_bytes()
    except OSError as exc:
        raise ValueError(f"{name}: {value} cannot be read: {exc.strerror}") from None
    return path


def check_pair(cert: Path, key: Path) -> list[bytes]:
    """The certificate chain of `cert` as DER (leaf first), once `key` is known to fit it."""
    chain = [ssl.PEM_cert_to_DER_cert(m.group().decode()) for m in _PEM_CERT.finditer(cert.read_bytes())]
    if not chain:
        raise ValueError(f"EDGE_TLS_CERT: {cert} holds no PEM certificate")
    if b"PRIVATE KEY-----" not in key.read_bytes():
        raise ValueError(f"EDGE_TLS_KEY: {key} holds no PEM private key")
    asked = []

    def passphrase():
        asked.append(True)
        raise ValueError("no passphrase")

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key, password=passphrase)
    except (ssl.SSLError, ValueError) as exc:
        if asked:
            raise ValueError(f"EDGE_TLS_KEY: {key} is protected by a passphrase; "
                             "give nginx the key without one") from None
        # the same kind of key but another one; or a key of another kind (RSA for EC)
        if getattr(exc, "reason", None) in ("KEY_VALUES_MISMATCH", "NO_CERTIFICATE_ASSIGNED"):
            raise ValueError(f"EDGE_TLS_KEY: {key} does not belong to the certificate "
                             f"in EDGE_TLS_CERT ({cert})") from None
        raise ValueError(f"EDGE_TLS_CERT / EDGE_TLS_KEY: {cert} and {key} are not a usable "
                         f"PEM certificate and key ({getattr(exc, 'reason', None) or exc})") from None
    return chain


def ocsp_responder(der: bytes) -> str | None:
    """The OCSP responder's URI named in a DER certificate, if any."""
    at = der.find(_OCSP_ACCESS)
    if at < 0:
        return None
    start = at + len(_OCSP_ACCESS)
    length = der[start]
    if length & 0x80:  # long form: a URI over 127 bytes
        count = length & 0x7F
        length = int.from_bytes(der[start + 1:start + 1 + count], "big")
        start += count
    return der[start + 1:start + 1 + length].decode("ascii", errors="replace")


def _nameservers(env) -> list[str]:
    """For nginx's resolver (OCSP responders by name): EDGE_RESOLVER, else /etc/resolv.conf."""
    if env.get("EDGE_RESOLVER"):
        found = env["EDGE_RESOLVER"].split()
    else:
        try:
            lines = Path("/etc/resolv.conf").read_text().splitlines()
        except OSError:
            lines = []
        found = [line.split()[1] for line in lines if line.startswith("nameserver ") and len(line.split()) > 1]
    servers = []
    for address in found:
        try:
            ip = ipaddress.ip_address(address.split("%")[0])
        except ValueError:
            raise ValueError(f"EDGE_RESOLVER: {address!r} is not an IP address") from None
        servers.append(f"[{ip}]" if ip.version == 6 else str(ip))
    return servers


def _stapling(env, chain: list[bytes], run: Path) -> str:
    """nginx's OCSP stapling lines, when the certificate names a responder; else a comment."""
    responder = ocsp_responder(chain[0])
    if not responder:
        return "# No OCSP stapling: the certificate names no OCSP responder."
    # The issuer (for nginx to ask about and verify the answer): the rest of the chain, then
    # the system's trusted roots.
    trusted = "".join(ssl.DER_cert_to_PEM_cert(der) for der in chain[1:])
    if SYSTEM_CAS.is_file():
        trusted += SYSTEM_CAS.read_text()
    (run / TRUSTED).write_text(trusted)
    lines = ["ssl_stapling on;", "ssl_stapling_verify on;",
             f'ssl_trusted_certificate "{run / TRUSTED}";']
    host = urlsplit(responder).hostname or ""
    try:
        ipaddress.ip_address(host)
    except ValueError:  # a name: nginx resolves it at run time
        servers = _nameservers(env)
        if servers:
            lines += [f"resolver {' '.join(servers)} valid=300s;", "resolver_timeout 5s;"]
    return f"# OCSP stapling: the certificate names a responder, {responder}\n    " + \
        "\n    ".join(lines)


def _redirect(edge_host: str, edge_port: int, http_port: int | None, headers: str) -> str:
    if http_port is None:
        return "# No plain-http listener (EDGE_HTTP_PORT is not set)."
    target = "https://$host" + ("" if edge_port == 443 else f":{edge_port}") + "$request_uri"
    return "\n".join([
        "# EDGE_HTTP_PORT: plain http, answered with the same address on https, nothing else.",
        "    server {",
        f"        listen {edge_host}:{http_port};",
        "        server_name _;",
        *("        " + line for line in headers.splitlines()),
        "        # 308 keeps a form's method and body; 301 for reads, which every client knows.",
        "        if ($request_method !~ ^(GET|HEAD)$) {",
        f"            return 308 {target};",
        "        }",
        f"        return 301 {target};",
        "    }",
    ])


def settings(env, run: Path, deploy: Path, edge_host: str, edge_port: int,
             http_port: int | None, headers: str = "") -> dict:
    """Template values for nginx.conf (LISTEN_TLS, TLS); with TLS, writes tls.conf into `run`.

    `headers`: the security headers' add_header lines (gate.edge_config) for the redirects."""
    given = [name for name in ("EDGE_TLS_CERT", "EDGE_TLS_KEY") if env.get(name)]
    if len(given) == 1:
        missing = ({"EDGE_TLS_CERT", "EDGE_TLS_KEY"} - set(given)).pop()
        raise ValueError(f"{given[0]} is set but {missing} is not: set both (PEM files) or neither")
    if not given:
        if http_port is not None:
            raise ValueError("EDGE_HTTP_PORT redirects to https: it needs EDGE_TLS_CERT and "
                             "EDGE_TLS_KEY")
        return {"LISTEN_TLS": "", "TLS": "# Plain http: no EDGE_TLS_CERT / EDGE_TLS_KEY.",
                "PLAIN_ON_TLS": "# plain http only: no https port to send anyone to"}
    if http_port == edge_port:
        raise ValueError(f"EDGE_HTTP_PORT and EDGE_PORT are both {edge_port}")
    cert, key = _path(env, "EDGE_TLS_CERT"), _path(env, "EDGE_TLS_KEY")
    chain = check_pair(cert, key)
    text = (deploy / "tls.conf.template").read_text()
    for name, value in {"CERT": str(cert), "KEY": str(key),
                        "STAPLING": _stapling(env, chain, run),
                        "HTTP_REDIRECT": _redirect(edge_host, edge_port, http_port, headers)}.items():
        text = text.replace(f"@{name}@", value)
    conf = run / TLS_CONF
    conf.write_text(text)
    os.chmod(conf, 0o600)
    # plain http sent to the https port (nginx's 497): the same address on https, as the
    # EDGE_HTTP_PORT listener answers, instead of nginx's bare 400
    plain = "https://$host" + ("" if edge_port == 443 else f":{edge_port}") + "$request_uri"
    return {"LISTEN_TLS": " ssl http2", "TLS": f'include "{conf}";',
            "PLAIN_ON_TLS": f"error_page 497 =301 {plain};"}


def main() -> int:
    """`python -m gate.edge_tls`: checks EDGE_TLS_CERT / EDGE_TLS_KEY alone (e.g. after renewal,
    before `nginx -s reload`); one line, exit status 0 when nginx may load them."""
    import sys

    try:
        for name in ("EDGE_TLS_CERT", "EDGE_TLS_KEY"):
            if not os.environ.get(name):
                raise ValueError(f"{name} is not set")
        cert, key = _path(os.environ, "EDGE_TLS_CERT"), _path(os.environ, "EDGE_TLS_KEY")
        check_pair(cert, key)
    except ValueError as exc:
        print(f"edge: {exc}", file=sys.stderr)
        return 1
    print(f"edge: {cert} and {key} are a usable certificate and key")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
