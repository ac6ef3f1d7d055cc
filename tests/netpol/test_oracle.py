"""The oracle on what the upstream tables do not reach: absent label keys, addresses outside
the cluster, port ranges, named ports that a destination lacks, ipBlocks and pod IPs."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from pktsim.model.policy import (
    IpBlock,
    LabelSelector,
    NetworkPolicy,
    Peer,
    PolicyPort,
    PolicyRule,
    Requirement,
)
from tests.helpers.netpol_oracle import Endpoint, allowed

NS = {"x": {"kubernetes.io/metadata.name": "x"},
      "y": {"kubernetes.io/metadata.name": "y", "team": "blue"}}
WEB = Endpoint(IPv4Address("10.244.0.2"), "x", {"app": "web"}, [("http", 8080, "TCP")])
DB = Endpoint(IPv4Address("10.244.1.2"), "y", {"app": "db"}, [("sql", 5432, "TCP")])
OUTSIDE = Endpoint(IPv4Address("203.0.113.10"))


def isolate(direction: str, *rules: PolicyRule, namespace: str = "x") -> NetworkPolicy:
    if direction == "Ingress":
        return NetworkPolicy(namespace, "p", LabelSelector(), (direction,), ingress=rules)
    return NetworkPolicy(namespace, "p", LabelSelector(), (direction,), egress=rules)


def test_no_policy_allows_everything() -> None:
    assert allowed([], NS, WEB, DB, 5432, "TCP") and allowed([], NS, OUTSIDE, WEB, 1, "UDP")


def test_not_in_and_does_not_exist_hold_for_an_absent_key() -> None:
    no_team = Peer(namespace_selector=LabelSelector((), (Requirement("team", "NotIn",
                                                                      ("blue",)),)))
    policy = isolate("Ingress", PolicyRule((no_team,)), namespace="y")
    assert allowed([policy], NS, WEB, DB, 5432, "TCP")  # x has no team label
    absent = Peer(pod_selector=LabelSelector((), (Requirement("tier", "DoesNotExist"),)),
                  namespace_selector=LabelSelector())
    assert allowed([isolate("Ingress", PolicyRule((absent,)), namespace="y")], NS, WEB, DB,
                   5432, "TCP")


def test_selectors_never_match_an_outside_address_but_ip_blocks_do() -> None:
    everyone = Peer(pod_selector=LabelSelector(), namespace_selector=LabelSelector())
    assert not allowed([isolate("Ingress", PolicyRule((everyone,)))], NS, OUTSIDE, WEB,
                       8080, "TCP")
    block = Peer(ip_block=IpBlock(IPv4Network("203.0.113.0/24"),
                                  (IPv4Network("203.0.113.8/29"),)))
    assert not allowed([isolate("Ingress", PolicyRule((block,)))], NS, OUTSIDE, WEB, 8080,
                       "TCP")  # .10 is in the except
    wide = Peer(ip_block=IpBlock(IPv4Network("0.0.0.0/0")))
    assert allowed([isolate("Egress", PolicyRule((wide,)))], NS, WEB, OUTSIDE, 443, "TCP")


def test_ip_block_matches_pod_ips_as_calico_does() -> None:
    db_ip = Peer(ip_block=IpBlock(IPv4Network("10.244.1.2/32")))
    assert allowed([isolate("Egress", PolicyRule((db_ip,)))], NS, WEB, DB, 5432, "TCP")


def test_port_ranges_and_named_ports() -> None:
    ranged = isolate("Ingress", PolicyRule(ports=(PolicyPort("TCP", 8000, 8080),)))
    assert allowed([ranged], NS, DB, WEB, 8080, "TCP")
    assert not allowed([ranged], NS, DB, WEB, 8081, "TCP")
    assert not allowed([ranged], NS, DB, WEB, 8080, "UDP")
    named = isolate("Egress", PolicyRule(ports=(PolicyPort("TCP", "sql"),)))
    assert allowed([named], NS, WEB, DB, 5432, "TCP")
    assert not allowed([named], NS, WEB, OUTSIDE, 5432, "TCP")  # no pod, no named port


def test_both_sides_must_allow() -> None:
    deny_egress = isolate("Egress")
    allow_in = isolate("Ingress", PolicyRule(), namespace="y")
    assert not allowed([deny_egress, allow_in], NS, WEB, DB, 5432, "TCP")
    assert allowed([allow_in], NS, WEB, DB, 5432, "TCP")
