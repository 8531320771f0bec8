#!/bin/sh
# Edge mode (`make edge`, after `gate build`): the gate on 127.0.0.1:$GATE_PORT behind nginx on
# $EDGE_HOST:$EDGE_PORT; nginx serves the built editions itself and checks the session token in
# njs (deploy/kb.js). Runs in the foreground; Ctrl-C (or SIGTERM) stops both.
#
# Settings (environment): EDGE_HOST (127.0.0.1), EDGE_PORT (8080), GATE_PORT (8001),
# EDGE_DIR (runtime folder: generated nginx.conf, pid, logs, temp files; default
# <instance>/edge), EDGE_WORKERS (auto), NGINX (nginx), NGINX_JS_MODULE (Debian's path),
# EDGE_USER (the nginx worker user when started as root; default root), and every GATE_*
# setting of the gate (GATE_MODE defaults to production; GATE_TRUSTED_PROXIES to 1 here).
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
PROJECT=$(dirname "$HERE")
BIN=${VENV_BIN:-$PROJECT/.venv/bin}
PY="$BIN/python"
GATE="$BIN/gate"
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
NGINX_JS_MODULE=${NGINX_JS_MODULE:-/usr/lib/nginx/modules/ngx_http_js_module.so}
EDGE_HOST=${EDGE_HOST:-127.0.0.1}
EDGE_PORT=${EDGE_PORT:-8080}
GATE_PORT=${GATE_PORT:-8001}
GATE_TRUSTED_PROXIES=${GATE_TRUSTED_PROXIES:-1}
export GATE_TRUSTED_PROXIES

die() { echo "edge: $*" >&2; exit 1; }

command -v "$NGINX" >/dev/null 2>&1 || die "nginx is not installed (apt-get install nginx libnginx-mod-http-js)"
[ -e "$NGINX_JS_MODULE" ] || die "nginx's JavaScript module $NGINX_JS_MODULE is missing (apt-get install libnginx-mod-http-js)"
[ -x "$PY" ] && [ -x "$GATE" ] || die "$BIN has no gate: run make setup"

if [ "$(id -u)" = 0 ]; then
    USER_DIRECTIVE="user ${EDGE_USER:-root};"
else
    USER_DIRECTIVE=""
fi

# The gate's own settings decide the paths and the signing key (created now if missing), so
# nginx checks tokens with exactly the key the gate signs them with. The config is written
# here, from the template, with absolute paths.
SETTINGS=$(
    HERE="$HERE" EDGE_HOST="$EDGE_HOST" EDGE_PORT="$EDGE_PORT" GATE_PORT="$GATE_PORT" \
    NGINX_JS_MODULE="$NGINX_JS_MODULE" USER_DIRECTIVE="$USER_DIRECTIVE" \
    "$PY" - <<'EOF'
import os, shlex, sys
from pathlib import Path
try:
    from gate import config, instance
    cfg = config.from_env()
    key = instance.signing_key(cfg)
except Exception as exc:  # a clear line, never a traceback
    print(f"edge: {exc}", file=sys.stderr)
    sys.exit(1)
site = cfg.site_dir.resolve()
if not (site / "manifest.json").is_file():
    print(f"edge: {site}/manifest.json is missing: run `gate build` first", file=sys.stderr)
    sys.exit(1)
import socket
for var in ("GATE_PORT", "EDGE_PORT"):
    host = "127.0.0.1" if var == "GATE_PORT" else os.environ["EDGE_HOST"]
    with socket.socket() as s:
        try:
            s.bind((host, int(os.environ[var])))
        except OSError as exc:
            print(f"edge: {host}:{os.environ[var]} ({var}) is not free: {exc.strerror}", file=sys.stderr)
            sys.exit(1)
run = Path(os.environ.get("EDGE_DIR") or cfg.instance / "edge").resolve()
for sub in ("", "tmp"):
    (run / sub).mkdir(parents=True, exist_ok=True)
values = {
    "JS_MODULE": os.environ["NGINX_JS_MODULE"],
    "USER_DIRECTIVE": os.environ["USER_DIRECTIVE"],
    "WORKERS": os.environ.get("EDGE_WORKERS") or "auto",
    "RUN": str(run),
    "SITE": str(site),
    "DEPLOY": os.environ["HERE"],
    "EDGE_HOST": os.environ["EDGE_HOST"],
    "EDGE_PORT": str(int(os.environ["EDGE_PORT"])),
    "GATE_PORT": str(int(os.environ["GATE_PORT"])),
    "HSTS": "" if cfg.local else
            "add_header Strict-Transport-Security \"max-age=31536000; includeSubDomains\" always;",
}
for name, value in values.items():
    if any(c in value for c in '"\\\n;{}$') and name not in ("HSTS", "USER_DIRECTIVE"):
        print(f"edge: unsupported character in {name}: {value!r}", file=sys.stderr)
        sys.exit(1)
text = (Path(os.environ["HERE"]) / "nginx.conf.template").read_text()
for name, value in values.items():
    text = text.replace(f"@{name}@", value)
conf = run / "nginx.conf"
conf.write_text(text)
print(f"RUN={shlex.quote(str(run))}")
print(f"CONF={shlex.quote(str(conf))}")
print(f"KB_KEY={key.hex()}")
EOF
) || exit 1
eval "$SETTINGS"

KB_KEY="$KB_KEY" "$NGINX" -q -t -c "$CONF" || die "the generated $CONF does not pass nginx -t"

GATE_PID=""
NGINX_PID=""
stop() {
    trap - INT TERM HUP
    [ -n "$NGINX_PID" ] && kill -TERM "$NGINX_PID" 2>/dev/null || true
    [ -n "$GATE_PID" ] && kill -TERM "$GATE_PID" 2>/dev/null || true
    wait 2>/dev/null || true
}
trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM HUP

# The gate: production mode unless GATE_MODE says otherwise.
"$GATE" serve --host 127.0.0.1 --port "$GATE_PORT" &
GATE_PID=$!

i=0
until "$PY" -c "import sys, urllib.request; urllib.request.urlopen('http://127.0.0.1:$GATE_PORT/healthz', timeout=2)" 2>/dev/null; do
    kill -0 "$GATE_PID" 2>/dev/null || { GATE_PID=""; stop; die "the gate did not start (see above)"; }
    i=$((i + 1))
    [ "$i" -lt 120 ] || { stop; die "the gate did not answer /healthz on 127.0.0.1:$GATE_PORT within 60 s"; }
    sleep 0.5
done

KB_KEY="$KB_KEY" "$NGINX" -c "$CONF" -g 'daemon off;' &
NGINX_PID=$!
echo "edge mode: http://$EDGE_HOST:$EDGE_PORT (nginx; the gate on 127.0.0.1:$GATE_PORT; logs in $RUN)"

status=0
wait "$NGINX_PID" || status=$?
NGINX_PID=""
stop
exit "$status"
