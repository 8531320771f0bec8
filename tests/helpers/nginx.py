"""A real nginx for tests, run from a configuration the test writes: `Nginx(run_dir, http)`
wraps the `http { ... }` body given (e.g. deploy/two-gates.conf with its placeholders filled in)
into a main configuration whose pid, logs and temp files stay in `run_dir`, so it runs beside
any system nginx. Where nginx is missing, tests skip with tests.helpers.processes.NGINX_MISSING.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from tests.helpers.ports import port_open, wait_until
from tests.helpers.processes import NGINX

MAIN = """{user}
worker_processes 2;
pid "{run}/nginx.pid";
error_log "{run}/error.log" warn;
events {{ worker_connections 512; }}
http {{
    client_body_temp_path "{run}/tmp/body";
    proxy_temp_path "{run}/tmp/proxy";
    fastcgi_temp_path "{run}/tmp/fastcgi";
    uwsgi_temp_path "{run}/tmp/uwsgi";
    scgi_temp_path "{run}/tmp/scgi";
    log_format upstreams '$request_method $uri $status $upstream_addr';
    access_log "{run}/access.log" upstreams;
{http}
}}
"""


class Nginx:
    def __init__(self, run: Path, http: str):
        self.run = Path(run)
        (self.run / "tmp").mkdir(parents=True, exist_ok=True)
        self.conf = self.run / "nginx.conf"
        user = "user root;" if os.geteuid() == 0 else ""  # workers write the temp files here
        self.conf.write_text(MAIN.format(user=user, run=self.run, http=http))
        self.process: subprocess.Popen | None = None

    def start(self, port: int) -> "Nginx":
        check = subprocess.run([NGINX, "-t", "-q", "-c", str(self.conf)], capture_output=True,
                               text=True)
        assert check.returncode == 0, check.stderr
        self.process = subprocess.Popen([NGINX, "-c", str(self.conf), "-g", "daemon off;"],
                                        stderr=subprocess.PIPE)
        wait_until(lambda: port_open(port), 20, what=f"nginx on port {port}")
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def access_log(self) -> list[str]:
        """The access log's lines (nginx writes them unbuffered here)."""
        time.sleep(0.2)
        path = self.run / "access.log"
        return path.read_text().splitlines() if path.exists() else []
