"""A real Dovecot IMAP server for tests, in a temporary folder on a random loopback port.

Follows the recipe in the shared TESTING.md: its own config file, plaintext login with one
static password, maildir storage under the folder, started with `dovecot -c` and stopped by
the pid in its base_dir.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import aioimaplib

from tests.support.live import free_port

PASSWORD = "secret"


def dovecot_binary() -> str | None:
    return shutil.which("dovecot") or (
        "/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None
    )


CONFIG = """\
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
mail_location = maildir:{root}/mail/%u
default_login_user = {user}
default_internal_user = {user}
default_internal_group = {group}
passdb {{
  driver = static
  args = password={password}
}}
userdb {{
  driver = static
  args = uid={user} gid={group} home={root}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
"""


@dataclass
class Dovecot:
    root: Path
    port: int
    process_user: str

    @property
    def host(self) -> str:
        return "127.0.0.1"

    def start(self) -> None:
        for folder in ("run", "state", "mail", "home"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        shutil.chown(self.root / "mail", self.process_user, self.process_user)
        shutil.chown(self.root / "home", self.process_user, self.process_user)
        self.root.chmod(0o755)
        config = self.root / "dovecot.conf"
        config.write_text(
            CONFIG.format(
                root=self.root,
                port=self.port,
                password=PASSWORD,
                user=self.process_user,
                group=self.process_user,
            )
        )
        binary = dovecot_binary()
        assert binary is not None
        # The master forks into the background: inherit no pipes, or run() waits for it forever.
        subprocess.run(
            [binary, "-c", str(config)],
            check=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait_listening()

    def _wait_listening(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        log = (
            (self.root / "dovecot.log").read_text() if (self.root / "dovecot.log").exists() else ""
        )
        raise RuntimeError(f"dovecot did not start on port {self.port}: {log[-2000:]}")

    def stop(self) -> None:
        pid_file = self.root / "run" / "master.pid"
        if not pid_file.exists():
            return
        pid = int(pid_file.read_text().strip())
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)

    async def client(self, user: str) -> aioimaplib.IMAP4:
        imap = aioimaplib.IMAP4(host=self.host, port=self.port, timeout=10)
        await imap.wait_hello_from_server()
        response = await imap.login(user, PASSWORD)
        assert response.result == "OK", response
        return imap

    async def append(self, user: str, raw: bytes, mailbox: str = "INBOX") -> None:
        """Deliver a message the way mail arrives: IMAP APPEND into the user's mailbox."""
        imap = await self.client(user)
        try:
            response = await imap.append(raw, mailbox=mailbox)
            assert response.result == "OK", response
        finally:
            await imap.logout()


def start_dovecot(root: Path) -> Dovecot:
    user = "dovenull"
    server = Dovecot(root=root, port=free_port(), process_user=user)
    server.start()
    return server
