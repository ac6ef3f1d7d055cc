"""Flow outcomes are typed: ``FlowStatus`` says how a flow ended, ``reason`` keeps the
error's own words, and ICMP errors map to statuses as the kernel maps them to errnos."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import pktsim
from pktsim import FlowStatus
from pktsim.devices.outcome import SocketError

DEMO_EMPTY = """
---
apiVersion: v1
kind: Service
metadata: {name: empty, namespace: shop}
spec: {clusterIP: 10.96.45.99, selector: {app: nobody}, ports: [{port: 80}]}
"""


@pytest.mark.parametrize(("code", "status"), [
    (0, FlowStatus.NET_UNREACHABLE), (1, FlowStatus.NO_ROUTE), (3, FlowStatus.REFUSED),
    (2, FlowStatus.ICMP_ERROR), (4, FlowStatus.ICMP_ERROR), (13, FlowStatus.NO_ROUTE),
    (6, FlowStatus.NET_UNREACHABLE), (7, FlowStatus.ICMP_ERROR)])
def test_destination_unreachable_codes_map_as_icmp_err_convert(code: int,
                                                               status: FlowStatus) -> None:
    err = SocketError.icmp(3, code, "10.244.0.1")
    assert err.status is status
    assert err.text == f"destination unreachable (code {code}) from 10.244.0.1"


@given(st.sampled_from([11, 12]), st.integers(0, 15))
def test_other_icmp_errors_are_reported_as_themselves(icmp_type: int, code: int) -> None:
    assert SocketError.icmp(icmp_type, code, "x").status is FlowStatus.ICMP_ERROR


def test_statuses_of_real_runs() -> None:
    text = pktsim.api.demo_text() + DEMO_EMPTY
    cluster = pktsim.load(text)
    flows = [pktsim.flow("default/client", "10.96.45.99:80", name="refused"),
             pktsim.flow("default/client", "10.244.1.2", name="ttl", protocol="icmp", ttl=1),
             pktsim.flow("default/client", "10.244.1.2:8080", name="tcpttl", ttl=1),
             pktsim.flow("default/client", "http://web.shop/", name="ok"),
             pktsim.flow("default/client", "nothere.shop:80", name="nx"),
             pktsim.flow("default/client", lookup="nothere.shop", name="lookup")]
    result = cluster.run(flows=flows)
    got = {f.flow: f for f in result.flows}
    assert got["refused"].status is FlowStatus.REFUSED and not got["refused"].ok
    assert got["refused"].line().startswith("refused: tcp to 10.96.45.99:80: connection refused")
    assert got["ttl"].status is FlowStatus.ICMP_ERROR
    assert got["ttl"].reason.startswith("time exceeded (code 0) from ")
    # a SYN whose TTL runs out: connect() fails with EHOSTUNREACH (tcp_v4_err, in SYN_SENT
    # every ICMP error is hard; icmp_err_convert maps time exceeded to EHOSTUNREACH); the
    # words name the router that stopped it
    assert got["tcpttl"].status is FlowStatus.NO_ROUTE
    assert got["tcpttl"].reason.startswith("time exceeded (code 0) from ")
    assert got["ok"].ok and got["ok"].reason == ""
    assert got["nx"].status is FlowStatus.UNRESOLVED
    assert got["lookup"].status is FlowStatus.DNS_ERROR
