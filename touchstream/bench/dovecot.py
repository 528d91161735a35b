"""A throwaway Dovecot IMAP server (tests and the email benchmark), unprivileged, on loopback.

Throwaway configuration per the field guide: maildir under a temp dir,
passwd-file users ``u1`` … ``u40`` (password ``pw``), plaintext auth, no SSL.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from imapclient import IMAPClient

DOVECOT = "/usr/sbin/dovecot"
DOVEADM = "/usr/bin/doveadm"
USERS = 40
PASSWORD = "pw"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Dovecot:
    def __init__(self, *, tls: bool = False) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="ts-dovecot-"))
        self.port = free_port()
        self.tls = tls
        self.tls_port = free_port() if tls else 0
        self.ca_file = self.root / "cert.pem"
        self.conf = self.root / "dovecot.conf"
        self._next_user = 0
        if os.geteuid() == 0:
            self.user, self.group = "nobody", "nogroup"
        else:
            entry = pwd.getpwuid(os.geteuid())
            self.user, self.group = entry.pw_name, _group_name(entry.pw_gid)
        entry = pwd.getpwnam(self.user)
        self.uid, self.gid = entry.pw_uid, entry.pw_gid
        self._write_config()

    def _write_config(self) -> None:
        r = self.root
        for sub in ("run", "state", "mail", "home"):
            (r / sub).mkdir(exist_ok=True)
        ssl = "ssl = no"
        if self.tls:
            self._make_certificate()
            ssl = f"ssl = yes\nssl_cert = <{r}/cert.pem\nssl_key = <{r}/key.pem"
        lines = [f"u{i}:{{PLAIN}}{PASSWORD}:{self.uid}:{self.gid}::{r}/home/u{i}::"
                 for i in range(1, USERS + 1)]
        (r / "passwd").write_text("\n".join(lines) + "\n")
        self.conf.write_text(f"""
protocols = imap
listen = 127.0.0.1
base_dir = {r}/run
state_dir = {r}/state
log_path = {r}/dovecot.log
info_log_path = {r}/dovecot.log
default_internal_user = {self.user}
default_internal_group = {self.group}
default_login_user = {self.user}
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{r}/mail/%u
passdb {{
  driver = passwd-file
  args = {r}/passwd
}}
userdb {{
  driver = passwd-file
  args = {r}/passwd
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.tls_port}
  }}
}}
""")
        os.chmod(r, 0o755)
        if os.geteuid() == 0:
            for path in [r, *r.rglob("*")]:
                os.chown(path, self.uid, self.gid)

    def _make_certificate(self) -> None:
        """A self-signed certificate for 127.0.0.1 (clients trust it as their CA file)."""
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
             "-keyout", str(self.root / "key.pem"), "-out", str(self.ca_file)],
            check=True, capture_output=True, timeout=60,
        )

    # -- process ---------------------------------------------------------------
    def start(self) -> None:
        cmd = [DOVECOT, "-c", str(self.conf)]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=True, timeout=30)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"dovecot did not listen: {(self.root / 'dovecot.log').read_text()}")

    def master_pid(self) -> int | None:
        try:
            return int((self.root / "run" / "master.pid").read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def stop(self) -> None:
        pid = self.master_pid()
        if pid is None:
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.05)
        while time.monotonic() < deadline:  # the listener must be gone before a restart
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    time.sleep(0.05)
            except OSError:
                return

    def restart(self) -> None:
        self.stop()
        self.start()

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    # -- mailboxes ---------------------------------------------------------------
    def new_user(self) -> str:
        self._next_user += 1
        if self._next_user > USERS:
            raise RuntimeError("out of test users")
        return f"u{self._next_user}"

    def client(self, user: str) -> IMAPClient:
        client = IMAPClient("127.0.0.1", port=self.port, ssl=False, timeout=10)
        client.login(user, PASSWORD)
        return client

    def append(self, user: str, *messages: bytes, folder: str = "INBOX") -> None:
        client = self.client(user)
        try:
            if folder != "INBOX" and not client.folder_exists(folder):
                client.create_folder(folder)
            for raw in messages:
                client.append(folder, raw)
        finally:
            client.logout()

    def doveadm(self, *args: str) -> str:
        out = subprocess.run([DOVEADM, "-c", str(self.conf), *args], capture_output=True,
                             text=True, timeout=30, check=True)
        return out.stdout

    def set_uidvalidity(self, user: str, value: int, folder: str = "INBOX") -> None:
        self.doveadm("mailbox", "update", "-u", user, "--uid-validity", str(value), folder)

    def lose_index(self, user: str) -> None:
        """Delete dovecot-uidlist and the indexes: every UID is renumbered on restart."""
        self.stop()
        box = self.root / "mail" / user
        for path in [box / "dovecot-uidlist", *box.glob("dovecot.index*"),
                     *box.glob("dovecot-uidvalidity*")]:
            path.unlink(missing_ok=True)
        self.start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie child of ours counts as gone
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def _group_name(gid: int) -> str:
    import grp

    return grp.getgrgid(gid).gr_name


def available() -> str | None:
    """None if Dovecot can run here, else the reason it cannot."""
    if not (Path(DOVECOT).exists() and Path(DOVEADM).exists()):
        return f"{DOVECOT} is not installed (apt-get install dovecot-imapd; scripts/setup-system does)"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser: cannot start Dovecot unprivileged"
    return None
