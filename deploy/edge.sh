#!/bin/sh
# Edge mode (`make edge`, after `gate build`): the gate on 127.0.0.1:$GATE_PORT behind nginx on
# $EDGE_HOST:$EDGE_PORT; nginx serves the built editions itself, checking the edition ticket the
# gate issues with every session token (gate/edge_tickets.py) with its built-in secure_link
# module. Runs in the foreground; Ctrl-C (or SIGTERM) stops both.
#
# Settings (environment): EDGE_HOST (127.0.0.1), EDGE_PORT (8080), GATE_PORT (8001),
# EDGE_DIR (runtime folder: generated nginx.conf, pid, logs, temp files; default
# <instance>/edge), EDGE_WORKERS (auto), NGINX (nginx),
# EDGE_USER (the nginx worker user when started as root; default root), and every GATE_*
# setting of the gate (GATE_MODE defaults to production; GATE_TRUSTED_PROXIES to 1 here).
# https: EDGE_TLS_CERT and EDGE_TLS_KEY (PEM files: the certificate with its chain, the key
# without a passphrase) make EDGE_PORT speak https and HTTP/2 only; EDGE_HTTP_PORT adds a
# plain-http listener that redirects every request to the same address on https. Both files
# are checked before anything starts. Renewal: replace the files, then
# `nginx -s reload -c $EDGE_DIR/nginx.conf`. EDGE_RESOLVER: DNS servers for nginx to reach an
# OCSP responder named in the certificate (default: those of /etc/resolv.conf).
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
PROJECT=$(dirname "$HERE")
BIN=${VENV_BIN:-$PROJECT/.venv/bin}
PY="$BIN/python"
GATE="$BIN/gate"
NGINX_BIN=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
unset NGINX  # nginx itself reads $NGINX as sockets inherited from a binary upgrade
EDGE_HOST=${EDGE_HOST:-127.0.0.1}
EDGE_PORT=${EDGE_PORT:-8080}
GATE_PORT=${GATE_PORT:-8001}
GATE_TRUSTED_PROXIES=${GATE_TRUSTED_PROXIES:-1}
GATE_EDGE=1  # the gate issues the edition tickets nginx checks
export GATE_TRUSTED_PROXIES GATE_EDGE

die() { echo "edge: $*" >&2; exit 1; }

command -v "$NGINX_BIN" >/dev/null 2>&1 || die "nginx is not installed (apt-get install nginx)"
[ -x "$PY" ] && [ -x "$GATE" ] || die "$BIN has no gate: run make setup"

if [ "$(id -u)" = 0 ]; then
    USER_DIRECTIVE="user ${EDGE_USER:-root};"
else
    USER_DIRECTIVE=""
fi

# The gate's own settings decide the paths and the ticket secret (derived from the signing
# key, created now if missing): gate.edge_config writes nginx.conf and the rules from them.
SETTINGS=$(
    EDGE_HOST="$EDGE_HOST" EDGE_PORT="$EDGE_PORT" GATE_PORT="$GATE_PORT" EDGE_DEPLOY="$HERE" \
    USER_DIRECTIVE="$USER_DIRECTIVE" "$PY" -m gate.edge_config
) || exit 1
eval "$SETTINGS"
# the usage log nginx writes and the gate reads (gate/usage_log.py); empty with GATE_USAGE=0
GATE_USAGE_LOG=${GATE_USAGE_LOG:-$USAGE_LOG}
export GATE_USAGE_LOG
SCHEME=http
[ -n "${EDGE_TLS_CERT:-}" ] && SCHEME=https

"$NGINX_BIN" -q -t -c "$CONF" || die "the generated $CONF does not pass nginx -t"

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

"$NGINX_BIN" -c "$CONF" -g 'daemon off;' &
NGINX_PID=$!
echo "edge mode: $SCHEME://$EDGE_HOST:$EDGE_PORT${EDGE_HTTP_PORT:+ (http://$EDGE_HOST:$EDGE_HTTP_PORT redirects there)} (nginx; the gate on 127.0.0.1:$GATE_PORT; logs in $RUN)"

status=0
wait "$NGINX_PID" || status=$?
NGINX_PID=""
stop
exit "$status"
