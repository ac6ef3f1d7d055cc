"""The policy model: apimachinery's selector semantics, which policies isolate a pod, how a
named port resolves against the destination pod, and which networks enforce policy."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Network

import pytest

from pktsim.model.objects import Container, ContainerPort, Pod
from pktsim.model.policy import (
    IpBlock,
    LabelSelector,
    NetworkPolicy,
    PolicyPort,
    Requirement,
    enforces_policy,
    policies_selecting,
    resolve_port,
)


@pytest.mark.parametrize(("req", "labels", "expected"), [
    (Requirement("tier", "In", ("web", "db")), {"tier": "db"}, True),
    (Requirement("tier", "In", ("web",)), {"tier": "db"}, False),
    (Requirement("tier", "In", ("web",)), {}, False),
    (Requirement("tier", "NotIn", ("web",)), {"tier": "db"}, True),
    (Requirement("tier", "NotIn", ("web",)), {"tier": "web"}, False),
    (Requirement("tier", "NotIn", ("web",)), {}, True),  # absent key: NotIn holds
    (Requirement("tier", "Exists"), {"tier": ""}, True),
    (Requirement("tier", "Exists"), {}, False),
    (Requirement("tier", "DoesNotExist"), {}, True),
    (Requirement("tier", "DoesNotExist"), {"tier": "x"}, False),
])
def test_requirement(req: Requirement, labels: dict[str, str], expected: bool) -> None:
    assert LabelSelector((), (req,)).matches(labels) is expected


def test_selector_ands_labels_and_expressions() -> None:
    sel = LabelSelector((("app", "web"),), (Requirement("tier", "NotIn", ("db",)),))
    assert sel.matches({"app": "web"})
    assert not sel.matches({"app": "web", "tier": "db"})
    assert not sel.matches({"tier": "front"})
    assert not sel.empty and LabelSelector().empty and LabelSelector().matches({})
    assert sel.text() == "app=web,tier notin (db)"


def test_ip_block_with_except() -> None:
    block = IpBlock(IPv4Network("10.0.0.0/8"), (IPv4Network("10.1.0.0/16"),))
    assert block.contains(IPv4Address("10.2.3.4"))
    assert not block.contains(IPv4Address("10.1.3.4"))
    assert not block.contains(IPv4Address("11.0.0.1"))
    assert not IpBlock(IPv6Network("::/0")).contains(IPv4Address("10.0.0.1"))


EVERYTHING = LabelSelector()


def policy(name: str, types: tuple[str, ...], selector: LabelSelector = EVERYTHING,
           namespace: str = "x") -> NetworkPolicy:
    return NetworkPolicy(namespace, name, selector, types)


def test_policies_selecting_by_namespace_labels_and_direction() -> None:
    everyone = policy("all", ("Ingress",))
    web = policy("web", ("Ingress", "Egress"), LabelSelector((("app", "web"),)))
    elsewhere = policy("other", ("Ingress", "Egress"), namespace="y")
    found = policies_selecting([everyone, web, elsewhere], "x", {"app": "web"}, "Ingress")
    assert [p.key for p in found] == ["x/all", "x/web"]
    assert [p.key for p in policies_selecting([everyone, web], "x", {"app": "web"},
                                              "Egress")] == ["x/web"]
    assert policies_selecting([web], "x", {"app": "db"}, "Ingress") == []


POD = Pod("x", "a", [Container("c80", [ContainerPort(80, "TCP", "http"),
                                       ContainerPort(53, "UDP", "dns")]),
                     Container("c81", [ContainerPort(81, "TCP", "admin")])])


@pytest.mark.parametrize(("port", "expected"), [
    (PolicyPort(), (0, 65535)),
    (PolicyPort("UDP", 53), (53, 53)),
    (PolicyPort("TCP", 1000, 2000), (1000, 2000)),
    (PolicyPort("TCP", "http"), (80, 80)),
    (PolicyPort("TCP", "admin"), (81, 81)),  # any container of the pod
    (PolicyPort("UDP", "http"), None),  # the name is declared for TCP only
    (PolicyPort("TCP", "missing"), None),  # matches nothing on this pod
])
def test_resolve_port(port: PolicyPort, expected: tuple[int, int] | None) -> None:
    assert resolve_port(port, POD) == expected


def test_only_calico_enforces_policy() -> None:
    assert enforces_policy("calico")
    assert not any(enforces_policy(n) for n in ("routes", "vxlan", "ipip"))


def test_model_labels_every_namespace_with_its_name() -> None:
    from pktsim.model.cluster import allocate
    from pktsim.model.objects import Scenario

    scenario = Scenario(namespaces=["default"], namespace_labels={"default": {"team": "a"}},
                        pods=[Pod("solo", "p", [Container("c")])],
                        network_policies=[policy("np", ("Ingress",), namespace="lonely")])
    labels = allocate(scenario).namespace_labels
    assert labels == {"default": {"team": "a", "kubernetes.io/metadata.name": "default"},
                      "lonely": {"kubernetes.io/metadata.name": "lonely"},
                      "solo": {"kubernetes.io/metadata.name": "solo"}}
