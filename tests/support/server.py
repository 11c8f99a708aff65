"""A real Rapport server (uvicorn, worker inside) that a test can stop and start on the same port
and database, and a plain HTTP server playing a customer's website on another port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from tests.conftest import TEST_SECRET
from tests.support.live import free_port


def wait_until(check, *, timeout: float = 15.0, interval: float = 0.05, what: str = "condition"):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except Exception:
            value = None
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out waiting for {what}")


class RapportServer:
    """`rapport serve --with-worker` in a child process, on a fixed port for its whole life."""

    def __init__(self, db_url: str, tmp_path: Path, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://localhost:{self.port}"
        self.log = tmp_path / f"server-{self.port}.log"
        self.env = {
            **os.environ,
            "RAPPORT_ENV": "test",
            "RAPPORT_DATABASE_URL": db_url,
            "RAPPORT_SECRET_KEY": TEST_SECRET,
            "RAPPORT_PUBLIC_URL": self.url,
            "RAPPORT_STORAGE_DIR": str(tmp_path / "files"),
            "RAPPORT_HTTP_ALLOW_PRIVATE": "true",
            "RAPPORT_LOGIN_RATE_LIMIT": "1000/minute",
            "RAPPORT_REDIS_URL": "",
            "RAPPORT_LOG_LEVEL": "WARNING",
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [str(Path(sys.executable).with_name("rapport")), "serve", "--with-worker"]
        command += ["--host", "127.0.0.1", "--port", str(self.port)]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(command, env=self.env, stdout=out, stderr=out)
        wait_until(self._healthy, timeout=30, what=f"Rapport on {self.url} (log: {self.log})")

    def _healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"server exited; see {self.log}:\n{self.log.read_text()[-3000:]}")
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


@contextmanager
def website(
    html: str,
    *,
    headers: dict[str, str] | None = None,
    files: dict[str, tuple[str, bytes]] | None = None,
) -> Iterator[str]:
    """Serve one page at http://localhost:PORT/ (another origin than Rapport), and any `files`
    ({"/team.png": ("image/png", data)}) such as the pictures the site hosts."""
    page = ("text/html; charset=utf-8", html.encode())
    extra_files = files or {}
    extra_headers = headers or {}

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            content_type, body = extra_files.get(self.path.split("?")[0], page)
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in extra_headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def shop_page(rapport_url: str, public_token: str, *, extra: str = "") -> str:
    """A plausible customer website embedding the widget with the documented one tag."""
    page = (Path(__file__).parent / "shop.html").read_text()
    page = page.replace("RAPPORT_URL", rapport_url).replace("PUBLIC_TOKEN", public_token)
    return page.replace("<!--extra-->", extra)
