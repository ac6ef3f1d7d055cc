"""Driving traffic in a twin with the real Linux stack: ping, an HTTP/1.1 exchange over TCP
and a connect() that must be refused.

The TCP helpers are tiny Python programs run inside the pods' namespaces (``ip netns
exec``), so the sockets are the kernel's own.  They signal readiness and completion on
stdout, and the harness waits for those lines and for the sockets' end states (``ss``),
never for a fixed time: a capture must stop only when the last segment of the close has
been sent, and not a moment before.
"""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Protocol

from .commands import LineReader, in_ns

__all__ = ["TRAFFIC_TIMEOUT", "ping", "tcp_exchange", "tcp_refused"]

TRAFFIC_TIMEOUT = 20.0

SERVER = r"""
import socket, sys
port = int(sys.argv[1]); body = sys.argv[2].encode()
bind = sys.argv[3]
ls = socket.socket(socket.AF_INET6 if ":" in bind else socket.AF_INET, socket.SOCK_STREAM)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind((bind, port)); ls.listen(8)
print("ready", flush=True)
c, peer = ls.accept()
req = b""
while b"\r\n\r\n" not in req:
    d = c.recv(65536)
    if not d:
        break
    req += d
resp = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
        + str(len(body)).encode() + b"\r\n\r\n" + body)
c.sendall(resp)
while True:            # wait for the client's FIN (EOF), then close
    d = c.recv(65536)
    if not d:
        break
c.close(); ls.close()
print("done", len(req), flush=True)
"""

CLIENT = r"""
import socket, sys
host = sys.argv[1]; port = int(sys.argv[2]); req = sys.argv[3].encode("latin-1")
s = socket.create_connection((host, port), timeout=10)
s.sendall(req)
buf = b""
while b"\r\n\r\n" not in buf:
    d = s.recv(65536)
    if not d:
        raise SystemExit("EOF in headers")
    buf += d
head, _, body = buf.partition(b"\r\n\r\n")
n = 0
for line in head.split(b"\r\n")[1:]:
    k, _, v = line.partition(b":")
    if k.strip().lower() == b"content-length":
        n = int(v)
while len(body) < n:
    d = s.recv(65536)
    if not d:
        raise SystemExit("EOF in body")
    body += d
s.close()              # client closes first, after the full response
print("done", head.split(b"\r\n")[0].decode(), len(body), flush=True)
"""

CLIENT_REFUSED = r"""
import errno, socket, sys
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET,
                  socket.SOCK_STREAM)
s.settimeout(10)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
except ConnectionRefusedError as e:
    print("refused", errno.errorcode[e.errno], flush=True)
    raise SystemExit(0)
raise SystemExit("connected: expected ECONNREFUSED")
"""


class Drivable(Protocol):
    """What the traffic drivers need from a twin."""

    def ns_of(self, who: str) -> str: ...
    def exec(self, who: str, argv: list[str], *, check: bool = True,
             timeout: float = 10.0) -> str: ...
    def track(self, proc: subprocess.Popen[bytes]) -> None: ...
    def untrack(self, proc: subprocess.Popen[bytes]) -> None: ...


def ping(twin: Drivable, src: str, dst_ip: str, count: int = 1, interval: float = 0.2,
         size: int | None = None) -> str:
    """iputils ping from ``src`` (``-6`` for an IPv6 ``dst_ip``); returns its output (the
    caller checks "N received")."""
    argv = ["ping", *(["-6"] if ":" in dst_ip else []), "-n", "-c", str(count), "-i",
            str(interval), "-W", "5"]
    if size is not None:
        argv += ["-s", str(size)]
    return twin.exec(src, [*argv, dst_ip], timeout=TRAFFIC_TIMEOUT)


def default_request(dst_ip: str, port: int) -> str:
    """The GET the client sends when the caller gives none."""
    host = f"[{dst_ip}]" if ":" in dst_ip else dst_ip  # RFC 9110 7.2: IPv6 in brackets
    return (f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\n"
            "User-Agent: pktsim-kernel/1\r\nAccept: */*\r\n\r\n")


def tcp_exchange(twin: Drivable, client: str, server: str, dst_ip: str, port: int = 8080,
                 body: str = "hello from pktsim\n", request: str | None = None,
                 bind: str = "0.0.0.0", server_port: int | None = None) -> dict[str, str]:
    """HTTP/1.1 GET over TCP; client closes first after the full response, the
    server closes after EOF. Returns when both sockets are fully closed (client in
    TIME-WAIT, no LAST-ACK left on the server).  ``server_port``: where the server
    listens when it differs from the port the client connects to (a Service's
    targetPort behind its port); default ``port``.  An IPv6 ``dst_ip`` makes the
    server listen on ``::`` unless ``bind`` says otherwise."""
    if bind == "0.0.0.0" and ":" in dst_ip:
        bind = "::"
    if request is None:
        request = default_request(dst_ip, port)
    listen = port if server_port is None else server_port
    srv = subprocess.Popen(
        in_ns(twin.ns_of(server), sys.executable, "-c", SERVER, str(listen), body, bind),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    twin.track(srv)
    try:
        assert srv.stdout is not None
        out = LineReader(srv.stdout)
        out.wait_for("ready", 10.0, srv)  # event: server is listening
        cli = twin.exec(client, [sys.executable, "-c", CLIENT, dst_ip, str(port), request],
                        timeout=TRAFFIC_TIMEOUT)
        line = out.wait_for("done", TRAFFIC_TIMEOUT, srv)
        srv.wait(timeout=TRAFFIC_TIMEOUT)
        if srv.returncode != 0:
            err = srv.stderr.read().decode() if srv.stderr else ""
            raise RuntimeError(f"server failed: {err}")
        wait_tcp_closed(twin, client, server, port, listen)
        return {"client": cli.strip(), "server": line}
    finally:
        if srv.poll() is None:
            srv.kill()
            srv.wait(timeout=5)
        twin.untrack(srv)


def tcp_refused(twin: Drivable, client: str, dst_ip: str, port: int) -> str:
    """connect() that must fail with ECONNREFUSED (a RST, or an ICMP port/host/net
    unreachable or admin-prohibited error for the SYN); returns the client's line."""
    out = twin.exec(client, [sys.executable, "-c", CLIENT_REFUSED, dst_ip, str(port)],
                    timeout=TRAFFIC_TIMEOUT)
    return out.strip()


def _sockets(ss_output: str) -> list[list[str]]:
    """``ss -tanH`` rows split into columns (state, recv-q, send-q, local, peer)."""
    return [ln.split() for ln in ss_output.splitlines() if ln.strip()]


def wait_tcp_closed(twin: Drivable, client: str, server: str, port: int,
                    server_port: int | None = None) -> None:
    """Bounded poll until the client's socket towards ``port`` is in TIME-WAIT and no
    server socket on ``server_port`` is anything but TIME-WAIT: only then has the last
    ACK of the close been sent, so the capture holds the whole exchange."""
    listen = port if server_port is None else server_port
    deadline = time.monotonic() + TRAFFIC_TIMEOUT
    while True:
        c = twin.exec(client, ["ss", "-tanH"])
        s = c if server == client else twin.exec(server, ["ss", "-tanH"])
        c_tw = any(row[0] == "TIME-WAIT" and row[4].endswith(f":{port}")
                   for row in _sockets(c))
        s_busy = any(row[0] != "TIME-WAIT" and row[3].endswith(f":{listen}")
                     for row in _sockets(s))
        if c_tw and not s_busy:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"TCP not closed: client={c!r} server={s!r}")
        time.sleep(0.01)
