"""Every flow outcome reads right: the status and its reason agree, and the note after the
dash says something the status did not (an ExternalName without an upstream answer once read
``could not resolve (OK)``, a refused connection ``connection refused — connection refused``).
"""

from __future__ import annotations

import re

import pytest

import pktsim
from pktsim import FlowStatus

EXTRA = """
---
apiVersion: v1
kind: Service
metadata: {name: empty, namespace: shop}
spec: {clusterIP: 10.96.45.99, selector: {app: nobody}, ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: ext, namespace: shop}
spec: {type: ExternalName, externalName: nowhere.example.org}
"""
C = "default/client"
FLOWS = {  # name -> (flow arguments, status, the line's text after the target)
    "refused": (dict(to="10.96.45.99:80"), FlowStatus.REFUSED, "connection refused (0/1"),
    "ttl": (dict(to="10.244.1.2", protocol="icmp", ttl=1), FlowStatus.ICMP_ERROR,
            "time exceeded (code 0) from 10.244.0.1 (0/1"),
    "tcp-ttl": (dict(to="10.244.1.2:8080", ttl=1), FlowStatus.NO_ROUTE,
                "time exceeded (code 0) from 10.244.0.1 (0/1"),
    "ok": (dict(to="http://web.shop/"), FlowStatus.OK, "ok (1/1 answered) — web.shop"),
    "nx": (dict(to="nothere.shop:80"), FlowStatus.UNRESOLVED,
           "could not resolve (HOST_NOT_FOUND)"),
    "external-name": (dict(to="ext.shop:80"), FlowStatus.UNRESOLVED,
                      "could not resolve (NO_DATA: ext.shop.svc.cluster.local. is a CNAME for "
                      "nowhere.example.org., no address)"),
    "lookup-nx": (dict(lookup="nothere.shop"), FlowStatus.DNS_ERROR,
                  "DNS error (HOST_NOT_FOUND) (0/1"),
    "lookup-no-data": (dict(lookup="web.shop.svc.cluster.local", type="TXT"),
                       FlowStatus.DNS_ERROR, "DNS error (NO_DATA: no TXT record) (0/1"),
    "lookup-cname": (dict(lookup="ext.shop.svc.cluster.local"), FlowStatus.OK, "ok (1/1"),
    "udp-closed": (dict(to="10.244.1.2:9999", protocol="udp"), FlowStatus.REFUSED,
                   "destination unreachable (code 3) from 10.244.1.2 (0/1 answered)"),
    "no-route": (dict(to="10.99.0.1:80"), FlowStatus.NET_UNREACHABLE, "network unreachable"),
    "ping-no-route": (dict(to="10.99.0.1", protocol="icmp"), FlowStatus.NET_UNREACHABLE,
                      "destination unreachable (code 0) from 172.18.0.1"),
    "arp-fails": (dict(to="10.244.0.77:80"), FlowStatus.NO_ROUTE, "no route to host (0/1"),
}


@pytest.fixture(scope="module")
def lines() -> dict[str, tuple[FlowStatus, str]]:
    cluster = pktsim.load(pktsim.api.demo_text() + EXTRA)
    flows = [pktsim.flow(C, name=name, **args) for name, (args, _s, _t) in FLOWS.items()]
    return {f.flow: (f.status, f.line()) for f in cluster.run(flows=flows).flows}


@pytest.mark.parametrize("name", list(FLOWS))
def test_the_line_reads_right(name: str, lines: dict[str, tuple[FlowStatus, str]]) -> None:
    _args, status, text = FLOWS[name]
    got_status, line = lines[name]
    assert got_status is status, line
    assert text in line, line
    assert "(OK)" not in line
    said = re.match(r"[^:]+: .+? to \S+: (.*) \(\d+/\d+ answered\)(?: — (.*))?$", line)
    assert said is not None, line
    assert said.group(1) != said.group(2), f"the note repeats the status: {line}"
