"""What a kubeadm cluster runs besides the user's objects: CoreDNS behind ``kube-dns``.

Decided here, when the scenario is loaded, so that the loaded ``Scenario`` is the whole
cluster (what ``kubectl get -A`` would list) and later stages only read it: the model and the
builder never call back into the loader, and a ``Scenario`` handed to ``Cluster`` is not
changed by it.  The add-on is kubeadm's ``coredns`` Deployment and ``kube-dns`` Service
(``pktsim/data/coredns.yaml``).

Added unless the stream defines ``kube-system/kube-dns`` itself (a snapshot of a real
cluster does) or ``Cluster.spec.dns`` is ``none``.  The CoreDNS pods come after the user's
pods, so adding DNS never moves a user pod's address.
"""

from __future__ import annotations

import dataclasses
from importlib import resources

from pktsim.model.objects import Scenario

ADDON_SOURCE = "<coredns addon>"


def wants_coredns(scenario: Scenario) -> bool:
    """Whether kubeadm would install CoreDNS into this cluster."""
    return scenario.config.dns == "coredns" and not any(
        s.key == "kube-system/kube-dns" for s in scenario.services)


def with_addons(scenario: Scenario) -> Scenario:
    """``scenario`` with kubeadm's add-ons appended: a new Scenario (the lists copied), or
    ``scenario`` itself when none applies -- the argument is never modified."""
    if not wants_coredns(scenario):
        return scenario
    from pktsim.scenario.loader import load

    text = resources.files("pktsim").joinpath("data/coredns.yaml").read_text(encoding="utf-8")
    addon = load([(ADDON_SOURCE, text)], scenario.config.seed, addons=False)
    return dataclasses.replace(scenario, pods=[*scenario.pods, *addon.pods],
                               services=[*scenario.services, *addon.services],
                               workloads=[*scenario.workloads, *addon.workloads])
