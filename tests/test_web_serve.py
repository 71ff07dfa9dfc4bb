"""``debsync web`` as a subprocess: it serves the console through the daemon's serving path
(debsync.server.serve), so a slow client is cut off by the same read timeout."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

from test_inbound_security import read_all
from test_server import get


def test_debsync_web_answers_and_cuts_off_a_slow_client(tmp_path: Path) -> None:
    (tmp_path / "connectors.toml").write_text(
        f"""
[store]
url = "sqlite:///{tmp_path / "debsync.db"}"

[creditor]
name = "Voorbeeld B.V."
iban = "NL91ABNA0417164300"
""",
        encoding="utf-8",
    )
    command = [sys.executable, "-m", "debsync", "-c", str(tmp_path / "connectors.toml")]
    with subprocess.Popen(
        [*command, "web", "--port", "0"], stdout=subprocess.PIPE, text=True
    ) as child:
        try:
            assert child.stdout is not None
            line = child.stdout.readline()
            found = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
            assert found, line
            port = int(found.group(1))
            code, headers, _ = get(f"http://127.0.0.1:{port}/login")
            assert code == 200
            assert "frame-ancestors 'none'" in headers["content-security-policy"]
            with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
                sock.sendall(b"GET /login HTT")  # a request line that never ends
                assert read_all(sock) == b""  # closed by the server's read timeout
            child.send_signal(signal.SIGTERM)
            assert child.wait(timeout=30) == 0
        finally:
            child.kill()
