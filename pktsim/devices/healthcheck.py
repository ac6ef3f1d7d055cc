"""kube-proxy's health-check servers, answering as ``pkg/proxy/healthcheck`` answers.

* ``healthCheckNodePort`` of a LoadBalancer Service with ``externalTrafficPolicy: Local``
  (``service_health.go``, ``hcHandler.ServeHTTP``): 200 when this node has a ready endpoint
  of the Service, else 503, with the count of its distinct local ready endpoint IPs
  (``LocalReadyEndpoints``: terminating ones do not count) in the body and in
  ``X-Load-Balancing-Endpoint-Weight``; a cloud load balancer sends traffic only to the
  nodes that answer 200.
* ``:10256/healthz`` (``proxy_health.go``, ``healthzHandler.ServeHTTP``): 200 with
  ``lastUpdated``, ``currentTime`` and ``nodeEligible``; kube-proxy here is always healthy
  (its rules are in place from the start).

The response is framed as Go's net/http writes it (``server.go`` ``chunkWriter.writeHeader``:
the handler's headers sorted, then ``Date`` and ``Content-Length``); times are the Unix epoch
plus virtual time (Go's ``Time.String`` without the monotonic ``m=`` reading).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pktsim.core.frame import Reaction
from pktsim.devices.apps import ListeningApp
from pktsim.devices.l4 import TcpSocket, Transport

PROXY_HEALTHZ_PORT = 10256  # --healthz-bind-address 0.0.0.0:10256
NS = 1_000_000_000
Response = tuple[int, list[tuple[str, str]], bytes]
_REASONS = {200: "OK", 503: "Service Unavailable"}


def http_response(now: int, status: int, headers: list[tuple[str, str]], body: bytes) -> bytes:
    """Go net/http's bytes for a handler's status, headers and body."""
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now // NS))
    lines = [f"HTTP/1.1 {status} {_REASONS[status]}", *(f"{k}: {v}" for k, v in
                                                          sorted(headers)),
             f"Date: {date}", f"Content-Length: {len(body)}", "", ""]
    return "\r\n".join(lines).encode() + body


def service_health(namespace: str, name: str, count: int) -> Response:
    """``hcHandler.ServeHTTP``'s answer for ``count`` local ready endpoints."""
    body = (f'{{\n\t"service": {{\n\t\t"namespace": "{namespace}",\n\t\t"name": "{name}"'
            f'\n\t}},\n\t"localEndpoints": {count},\n\t"serviceProxyHealthy": true\n}}')
    headers = [("Content-Type", "application/json"), ("X-Content-Type-Options", "nosniff"),
               ("X-Load-Balancing-Endpoint-Weight", str(count))]
    return (200 if count else 503), headers, body.encode()


def go_time(now: int) -> str:
    """Go's ``Time.String()`` in UTC: ``1970-01-01 00:00:05.25 +0000 UTC``."""
    seconds, nanos = divmod(now, NS)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds))
    frac = f".{nanos:09d}".rstrip("0") if nanos else ""
    return f"{stamp}{frac} +0000 UTC"


def proxy_healthz(now: int) -> Response:
    """``healthzHandler.ServeHTTP``: healthy, so ``lastUpdated`` is ``currentTime``."""
    stamp = go_time(now)
    body = f'{{"lastUpdated": "{stamp}","currentTime": "{stamp}", "nodeEligible": true}}'
    headers = [("Content-Type", "application/json"), ("X-Content-Type-Options", "nosniff")]
    return 200, headers, body.encode()


class HealthServerApp(ListeningApp):
    """A node's listening health-check port: any HTTP request gets ``respond(now)``."""

    def __init__(self, port: int, respond: Callable[[int], Response]) -> None:
        super().__init__(port)
        self.respond = respond

    def answer(self, now: int, t: Transport, r: Reaction, sock: TcpSocket,
               buf: bytearray) -> None:
        if b"\r\n\r\n" in buf:
            buf.clear()
            sock.send(now, t, r, http_response(now, *self.respond(now)))
