"""TLS at the edge: deploy/edge.sh with EDGE_TLS_CERT / EDGE_TLS_KEY (and EDGE_HTTP_PORT), a real
nginx and gate, certificates made here. Production mode over https (Secure cookies, HSTS), the
plain-http redirect listener, the protocol versions and ALPN a client gets, the errors for a bad
certificate or key, and an independent scan by sslyze against Mozilla's "intermediate" profile.
"""

from __future__ import annotations

import base64
import datetime
import http.server
import os
import socket
import ssl
import subprocess
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote

import pytest

from gate.security import security_headers
from tests.helpers.http import HTML, request
from tests.helpers.ports import free_port, port_open
from tests.helpers.processes import (NGINX, NGINX_MISSING, clean_env, edge_config, listening,
                                     running_edge, start)
from tests.helpers.project import PROJECT, marker, page_url

pytestmark = pytest.mark.skipif(NGINX_MISSING is not None, reason=NGINX_MISSING or "")

pytest.importorskip("cryptography")
from cryptography.hazmat.primitives import serialization  # noqa: E402

from tests.helpers.tls import make_certificate  # noqa: E402

HSTS = {}
security_headers(HSTS, production=True)
HSTS = HSTS["Strict-Transport-Security"]  # what the gate sends in production mode


# --- clients ---------------------------------------------------------------------------------

def trusting(cert_path: Path, minimum=ssl.TLSVersion.TLSv1_2, maximum=ssl.TLSVersion.MAXIMUM_SUPPORTED):
    """A client context that trusts only `cert_path` and offers the given protocol versions
    (down to TLS 1.0, which Python's default security level would not even offer)."""
    context = ssl.create_default_context(cafile=str(cert_path))
    if minimum < ssl.TLSVersion.TLSv1_2:
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
    context.minimum_version, context.maximum_version = minimum, maximum
    return context


def handshake(port: int, context: ssl.SSLContext, alpn=None) -> ssl.SSLSocket:
    if alpn:
        context.set_alpn_protocols(alpn)
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        return context.wrap_socket(raw, server_hostname="localhost")
    except BaseException:
        raw.close()
        raise


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("certs")
    return {"self": make_certificate(folder, "self-signed"),
            "other": make_certificate(folder, "other"),
            "rsa": make_certificate(folder, "other-rsa", kind="rsa"),
            "folder": folder}


@pytest.fixture(scope="module")
def tls_edge(built_project, tmp_path_factory, certs):
    """Edge mode with https on EDGE_PORT and the redirect listener; GATE_MODE not set."""
    root, _ = built_project
    cert, key = certs["self"][:2]
    http_port = free_port()
    with running_edge(root, tmp_path_factory.mktemp("edge-tls"), tls=trusting(cert),
                      EDGE_TLS_CERT=str(cert), EDGE_TLS_KEY=str(key),
                      EDGE_HTTP_PORT=str(http_port)) as e:
        e.http_port = http_port
        yield e


def cookie_lines(resp) -> dict:
    return {line.split("=", 1)[0]: line for line in resp.headers.get_all("Set-Cookie") or []}


# --- production mode over https ------------------------------------------------------------------

def test_login_and_a_gated_page_over_https_with_secure_cookies(tls_edge):
    page = tls_edge.get("/login", headers=HTML)
    assert page.status == 200 and "Secure" in cookie_lines(page)["kb_form"]
    sent_back = tls_edge.login("start@client.example")  # asserts the 303 and both cookies
    issued = cookie_lines(tls_edge.login_response)
    for name in ("kb_session", "kb_edge"):
        assert "; Secure" in issued[name] and "HttpOnly" in issued[name], issued[name]
    by_nginx = tls_edge.get(page_url("launches"), headers=HTML, cookies=sent_back)
    assert by_nginx.status == 200 and not by_nginx.by_gate
    assert marker("launches", "body") in by_nginx.text
    by_gate = tls_edge.get("/account/", headers=HTML, cookies=sent_back)
    assert by_gate.status == 200 and by_gate.by_gate and "start@client.example" in by_gate.text
    anonymous = tls_edge.get(page_url("launches"), headers=HTML)
    assert anonymous.status == 303 and marker("launches", "body") not in anonymous.text
    for r in (page, by_nginx, by_gate, anonymous):
        assert r.headers.get_all("Strict-Transport-Security") == [HSTS], r


def test_nginx_starts_without_a_warning_for_a_self_signed_certificate(tls_edge):
    """No OCSP responder, so no stapling and nothing for nginx to warn about."""
    log = (tls_edge.work / "edge.log").read_text() + (tls_edge.work / "run/error.log").read_text()
    assert "[warn]" not in log and "[emerg]" not in log and "stapling" not in log, log[-2000:]
    assert "edge mode: https://" in log


def test_hsts_on_every_answer_nginx_and_gate_and_nginx_errors(tls_edge):
    answers = {
        "nginx page": tls_edge.get("/", headers=HTML),
        "nginx 404 via gate": tls_edge.get("/no-such-page/", headers=HTML),
        "gate": tls_edge.get("/healthz"),
        "nginx 414": tls_edge.get("/" + "a" * 20000),
        "nginx 413": tls_edge.get("/support/new", method="POST", body=b"x",
                                  headers={"Content-Length": str(40 * 1024 * 1024)}),
    }
    asset = next(line for line in answers["nginx page"].text.split('"')
                 if line.startswith("assets/stylesheets/main.") and line.endswith(".min.css"))
    answers["nginx asset"] = tls_edge.get("/" + asset)
    assert answers["nginx 414"].status == 414 and answers["nginx 413"].status == 413
    assert answers["nginx asset"].status == 200 and not answers["nginx asset"].by_gate
    for what, r in answers.items():
        assert r.headers.get_all("Strict-Transport-Security") == [HSTS], (what, r)
        assert r.headers.get("X-Content-Type-Options") == "nosniff", (what, r)


def test_plain_http_listener_redirects_to_the_same_address_on_https(tls_edge):
    target = f"https://127.0.0.1:{tls_edge.port}"
    for method, path, status in (("GET", "/", 301),
                                 ("GET", "/launches/marker-launches-page/?q=a%20b&x=1", 301),
                                 ("HEAD", "/login?next=%2Flaunches%2F", 301),
                                 ("POST", "/login?x=1", 308), ("PUT", "/api/feedback", 308)):
        r = request(tls_edge.http_port, path, method=method, headers=HTML,
                    body=b"" if method in ("POST", "PUT") else None)
        assert r.status == status, (method, path, r)
        assert r.headers["Location"] == target + path, (method, path, r)
        assert r.by_gate is False and marker("launches", "body") not in r.text
        assert "Set-Cookie" not in r.headers
    # plain http sent to the https port itself: never a page, the same address on https
    plain = request(tls_edge.port, "/launches/?a=1", headers=HTML)
    assert plain.status == 301 and "Публичнаястраница" not in plain.text
    assert plain.headers["Location"] == f"https://127.0.0.1:{tls_edge.port}/launches/?a=1"
    assert "Set-Cookie" not in plain.headers


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
def test_tls_1_0_and_1_1_are_refused_1_2_and_1_3_accepted(tls_edge, certs):
    cert = certs["self"][0]
    for version in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
        context = trusting(cert, minimum=version, maximum=version)
        assert offers(context, version, *certs["self"][:2]), "the client offers the old version"
        with pytest.raises(ssl.SSLError) as refused:
            handshake(tls_edge.port, context).close()
        assert "VERSION" in str(refused.value).upper(), refused.value
    for version, name in ((ssl.TLSVersion.TLSv1_2, "TLSv1.2"), (ssl.TLSVersion.TLSv1_3, "TLSv1.3")):
        with handshake(tls_edge.port, trusting(cert, minimum=version, maximum=version)) as s:
            assert s.version() == name
            if version == ssl.TLSVersion.TLSv1_2:  # forward secrecy and AEAD
                cipher = s.cipher()[0]
                assert cipher.startswith("ECDHE-") and ("GCM" in cipher or "CHACHA20" in cipher), cipher


def offers(client: ssl.SSLContext, version: ssl.TLSVersion, cert: Path, key: Path) -> bool:
    """Whether `client` completes a handshake with `version` against a server that allows it
    (Python's own ssl at security level 0): the refusal above is then the edge's doing."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.set_ciphers("DEFAULT:@SECLEVEL=0")
    server.minimum_version = server.maximum_version = version
    server.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    result = {}

    def serve():
        conn, _ = listener.accept()
        try:
            with server.wrap_socket(conn, server_side=True) as s:
                result["version"] = s.version()
        except (ssl.SSLError, OSError) as exc:
            result["error"] = exc

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with client.wrap_socket(socket.create_connection(listener.getsockname(), timeout=10),
                                server_hostname="localhost"):
            pass
    except ssl.SSLError:
        return False
    finally:
        thread.join(10)
        listener.close()
    return result.get("version") == {ssl.TLSVersion.TLSv1: "TLSv1",
                                     ssl.TLSVersion.TLSv1_1: "TLSv1.1"}[version]


def test_http2_is_offered_through_alpn(tls_edge, certs):
    with handshake(tls_edge.port, trusting(certs["self"][0]), alpn=["h2", "http/1.1"]) as s:
        assert s.selected_alpn_protocol() == "h2"
    with handshake(tls_edge.port, trusting(certs["self"][0]), alpn=["http/1.1"]) as s:
        assert s.selected_alpn_protocol() == "http/1.1"


# --- an independent scanner: sslyze against Mozilla's "intermediate" profile ---------------------

AEAD = ("_GCM_", "CHACHA20_POLY1305", "_CCM")


@pytest.mark.filterwarnings("ignore:Parsed a serial number")  # in sslyze's own trust stores
def test_sslyze_finds_nothing_below_tls_1_2_no_weak_cipher_and_hsts(tls_edge):
    sslyze = pytest.importorskip("sslyze")
    from sslyze.mozilla_tls_profile.tls_config_checker import (
        SCAN_COMMANDS_NEEDED_BY_MOZILLA_CHECKER, MozillaTlsConfiguration,
        ServerNotCompliantWithTlsConfiguration, TlsConfigurationEnum,
        check_server_against_tls_configuration)

    location = sslyze.ServerNetworkLocation("localhost", tls_edge.port, ip_address="127.0.0.1")
    scanner = sslyze.Scanner()
    scanner.queue_scans([sslyze.ServerScanRequest(
        server_location=location,
        scan_commands=SCAN_COMMANDS_NEEDED_BY_MOZILLA_CHECKER | {
            sslyze.ScanCommand.HTTP_HEADERS, sslyze.ScanCommand.SESSION_RESUMPTION})])
    (result,) = list(scanner.get_results())
    assert result.scan_status == sslyze.ServerScanStatusEnum.COMPLETED, result.connectivity_error_trace
    scan = result.scan_result
    for old in ("ssl_2_0", "ssl_3_0", "tls_1_0", "tls_1_1"):
        attempt = getattr(scan, f"{old}_cipher_suites")
        assert attempt.status == sslyze.ScanCommandAttemptStatusEnum.COMPLETED, old
        assert attempt.result.accepted_cipher_suites == [], old
    accepted = {v: getattr(scan, f"tls_{v}_cipher_suites").result.accepted_cipher_suites
                for v in ("1_2", "1_3")}
    assert accepted["1_2"] and accepted["1_3"]
    for version, suites in accepted.items():
        for suite in suites:
            name = suite.cipher_suite.name
            assert suite.ephemeral_key is not None, (version, name)  # forward secrecy
            assert any(mark in name for mark in AEAD), (version, name)
    hsts = scan.http_headers.result.strict_transport_security_header
    assert hsts is not None, scan.http_headers.result
    profile = MozillaTlsConfiguration.get(TlsConfigurationEnum.MOZILLA_INTERMEDIATE)
    assert hsts.max_age >= profile.hsts_min_age and hsts.include_subdomains
    resumption = scan.session_resumption.result
    assert resumption.tls_ticket_successful_resumptions_count == 0  # no session tickets
    assert resumption.session_id_successful_resumptions_count > 0  # the session cache works
    try:
        check_server_against_tls_configuration(result, profile)
        issues = {}
    except ServerNotCompliantWithTlsConfiguration as exc:
        issues = exc.issues
    # A certificate made by the test is trusted by no public store; nothing else may differ.
    assert set(issues) <= {"certificate_path_validation"}, issues


# --- the certificate and key are checked before anything starts -------------------------------

@pytest.fixture(scope="module")
def config_env(built_project, tmp_path_factory, certs):
    root, _ = built_project
    work = tmp_path_factory.mktemp("tls-config")
    cert, key = certs["self"][:2]
    return clean_env(GATE_ROOT=str(root), GATE_INSTANCE=str(work / "instance"),
                     EDGE_DIR=str(work / "run"), EDGE_PORT=str(free_port()),
                     GATE_PORT=str(free_port()), EDGE_TLS_CERT=str(cert), EDGE_TLS_KEY=str(key))


def _bad(certs, case: str, tmp: Path) -> dict:
    """The settings of one bad case: (setting -> value or None to leave it out)."""
    cert, key = certs["self"][:2]
    encrypted = tmp / "encrypted.key"
    encrypted.write_bytes(certs["self"][3].private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase")))
    garbage = tmp / "garbage.pem"
    garbage.write_text("not a certificate\n")
    return {
        "only the certificate": {"EDGE_TLS_KEY": None},
        "only the key": {"EDGE_TLS_CERT": None},
        "missing certificate": {"EDGE_TLS_CERT": str(tmp / "nope.pem")},
        "missing key": {"EDGE_TLS_KEY": str(tmp / "nope.key")},
        "certificate is a folder": {"EDGE_TLS_CERT": str(tmp)},
        "no PEM certificate": {"EDGE_TLS_CERT": str(garbage)},
        "key in place of the certificate": {"EDGE_TLS_CERT": str(key)},
        "certificate in place of the key": {"EDGE_TLS_KEY": str(cert)},
        "another key": {"EDGE_TLS_KEY": str(certs["other"][1])},
        "another kind of key": {"EDGE_TLS_KEY": str(certs["rsa"][1])},
        "key with a passphrase": {"EDGE_TLS_KEY": str(encrypted)},
        "redirect without TLS": {"EDGE_TLS_CERT": None, "EDGE_TLS_KEY": None,
                                 "EDGE_HTTP_PORT": str(free_port())},
    }[case]


BAD_CASES = {  # case -> what the one line must name
    "only the certificate": "EDGE_TLS_KEY", "only the key": "EDGE_TLS_CERT",
    "missing certificate": "EDGE_TLS_CERT", "missing key": "EDGE_TLS_KEY",
    "certificate is a folder": "EDGE_TLS_CERT", "no PEM certificate": "EDGE_TLS_CERT",
    "key in place of the certificate": "EDGE_TLS_CERT",
    "certificate in place of the key": "EDGE_TLS_KEY", "another key": "does not belong",
    "another kind of key": "does not belong", "key with a passphrase": "passphrase",
    "redirect without TLS": "EDGE_HTTP_PORT",
}


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_bad_certificate_or_key_is_one_line_naming_it(config_env, certs, case, tmp_path):
    env = dict(config_env)
    for name, value in _bad(certs, case, tmp_path).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    out = edge_config(env)
    assert out.returncode == 1, (case, out)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edge: "), (case, out.stderr)
    assert BAD_CASES[case] in lines[0], (case, lines[0])
    assert "Traceback" not in out.stderr


@pytest.mark.serial
def test_edge_sh_with_a_mismatched_key_starts_nothing(config_env, certs, tmp_path):
    env = {**config_env, "EDGE_TLS_KEY": str(certs["other"][1]), "NGINX": NGINX}
    started = time.monotonic()
    out = subprocess.run(["sh", str(PROJECT / "deploy/edge.sh")], env=env, cwd=PROJECT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and time.monotonic() - started < 30
    assert out.stderr.strip().splitlines() == [
        line for line in out.stderr.strip().splitlines() if line.startswith("edge: ")]
    assert "does not belong" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    for name in ("EDGE_PORT", "GATE_PORT"):
        assert not port_open(int(env[name])), name


def test_a_good_pair_passes_and_without_tls_nothing_changes(config_env):
    run = Path(config_env["EDGE_DIR"])
    out = edge_config(config_env)
    assert out.returncode == 0, out.stderr
    conf = (run / "nginx.conf").read_text()
    tls = (run / "tls.conf").read_text()
    assert f' ssl http2 default_server;' in conf and f'include "{run / "tls.conf"}";' in conf
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in tls and "ssl_session_tickets off;" in tls
    assert "ssl_stapling" not in tls.replace("No OCSP stapling", "")  # self-signed: no responder
    plain = {k: v for k, v in config_env.items() if not k.startswith("EDGE_TLS_")}
    out = edge_config(plain)
    assert out.returncode == 0, out.stderr
    directives = [line for line in (run / "nginx.conf").read_text().splitlines()
                  if line.strip() and not line.strip().startswith("#")]
    assert not [line for line in directives if "ssl" in line.replace("secure_link", "")
                or "http2" in line or "tls.conf" in line]
    assert f"        listen 127.0.0.1:{plain['EDGE_PORT']} default_server;" in directives


# --- OCSP stapling, when the certificate names a responder --------------------------------------

class _Responder(http.server.BaseHTTPRequestHandler):
    """A real OCSP responder (RFC 6960 over http, GET or POST) answering 'good' for the leaf."""
    leaf = ca = ca_key = None
    asked = 0

    def do_GET(self):
        self._answer(base64.b64decode(unquote(self.path.lstrip("/"))))

    def do_POST(self):
        self._answer(self.rfile.read(int(self.headers["Content-Length"])))

    def _answer(self, der: bytes):
        from cryptography.hazmat.primitives import hashes
        from cryptography.x509 import ocsp

        type(self).asked += 1
        asked = ocsp.load_der_ocsp_request(der)
        now = datetime.datetime.now(datetime.timezone.utc)
        body = (ocsp.OCSPResponseBuilder()
                .add_response(cert=self.leaf, issuer=self.ca, algorithm=asked.hash_algorithm,
                              cert_status=ocsp.OCSPCertStatus.GOOD, this_update=now,
                              next_update=now + datetime.timedelta(days=1),
                              revocation_time=None, revocation_reason=None)
                .responder_id(ocsp.OCSPResponderEncoding.HASH, self.ca)
                .sign(self.ca_key, hashes.SHA256())
                .public_bytes(serialization.Encoding.DER))
        self.send_response(200)
        self.send_header("Content-Type", "application/ocsp-response")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def _stapled(port: int):
    """The OCSP response the edge staples to its handshake, as sslyze receives it (or None)."""
    import sslyze

    scanner = sslyze.Scanner()
    scanner.queue_scans([sslyze.ServerScanRequest(
        server_location=sslyze.ServerNetworkLocation("localhost", port, ip_address="127.0.0.1"),
        scan_commands={sslyze.ScanCommand.CERTIFICATE_INFO})])
    (result,) = list(scanner.get_results())
    deployment = result.scan_result.certificate_info.result.certificate_deployments[0]
    return deployment.ocsp_response


@pytest.mark.filterwarnings("ignore:Parsed a serial number")
def test_ocsp_stapling_when_the_certificate_names_a_responder(config_env, tmp_path):
    pytest.importorskip("sslyze")
    ca = make_certificate(tmp_path, "ca", ca=True)
    responder = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Responder)
    url = f"http://127.0.0.1:{responder.server_address[1]}/"
    leaf = make_certificate(tmp_path, "leaf", issuer=ca, ocsp=url)  # leaf + CA in one file
    _Responder.leaf, _Responder.ca, _Responder.ca_key = leaf[2], ca[2], ca[3]
    threading.Thread(target=responder.serve_forever, daemon=True).start()
    try:
        with nginx_alone(config_env, tmp_path / "run", leaf) as (port, run):
            stapled, deadline = None, time.monotonic() + 15
            while stapled is None and time.monotonic() < deadline:  # fetched after a first hello
                stapled = _stapled(port)
                time.sleep(0.2)
            tls = (run / "tls.conf").read_text()
    finally:
        responder.shutdown()
        responder.server_close()
    assert "ssl_stapling on;" in tls and "ssl_stapling_verify on;" in tls and url in tls
    assert stapled is not None and _Responder.asked >= 1
    assert stapled.certificate_status.name == "GOOD" and stapled.serial_number == leaf[2].serial_number
    log = (run / "error.log").read_text()
    assert "[warn]" not in log and "[error]" not in log and "[emerg]" not in log, log


@contextmanager
def nginx_alone(config_env: dict, run: Path, certificate):
    """The edge's nginx with `certificate` (make_certificate's result) and no gate behind it:
    enough for handshakes. Yields (its https port, its runtime folder)."""
    env = {**config_env, "EDGE_DIR": str(run), "EDGE_PORT": str(free_port()),
           "EDGE_TLS_CERT": str(certificate[0]), "EDGE_TLS_KEY": str(certificate[1]),
           "USER_DIRECTIVE": "user root;" if os.getuid() == 0 else ""}
    out = edge_config(env)
    assert out.returncode == 0, out.stderr
    env.pop("NGINX", None)
    port = int(env["EDGE_PORT"])
    nginx = start([NGINX, "-c", str(run / "nginx.conf"), "-g", "daemon off;"], env=env,
                  ready=listening(port), log=run / "nginx.out", seconds=15, what="nginx")
    try:
        yield port, run
    finally:
        nginx.stop(timeout=10)


def _served_serial(port: int) -> int:
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # only looking at it
    with handshake(port, context) as s:
        der = s.getpeercert(binary_form=True)
    from cryptography import x509
    return x509.load_der_x509_certificate(der).serial_number


def test_renewal_is_replacing_the_files_and_nginx_reload(config_env, tmp_path):
    """What an ACME client's deploy hook does: new files in place, `nginx -s reload`."""
    old = make_certificate(tmp_path, "site")
    with nginx_alone(config_env, tmp_path / "run", old) as (port, run):
        assert _served_serial(port) == old[2].serial_number
        new = make_certificate(tmp_path, "site")  # the same two paths, new contents
        assert new[2].serial_number != old[2].serial_number
        reload = subprocess.run([NGINX, "-s", "reload", "-c", str(run / "nginx.conf")],
                                capture_output=True, text=True, timeout=30,
                                env={k: v for k, v in os.environ.items() if k != "NGINX"})
        assert reload.returncode == 0, reload.stderr
        deadline = time.monotonic() + 10
        while _served_serial(port) != new[2].serial_number:
            assert time.monotonic() < deadline, "nginx still serves the old certificate"
            time.sleep(0.2)
