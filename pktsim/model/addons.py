"""What a kubeadm cluster runs besides the user's objects: CoreDNS behind ``kube-dns``.

Added unless the stream defines ``kube-system/kube-dns`` itself (a snapshot of a real
cluster does) or ``Cluster.spec.dns`` is ``none``.  The CoreDNS pods come after the user's
pods, so adding DNS never moves a user pod's address.
"""

from __future__ import annotations

from importlib import resources

from pktsim.model.objects import Pod, Scenario

DNS_LABEL = ("k8s-app", "kube-dns")


def add_coredns(scenario: Scenario) -> None:
    from pktsim.scenario import load_scenario

    if scenario.config.dns != "coredns" or any(
            s.key == "kube-system/kube-dns" for s in scenario.services):
        return
    text = resources.files("pktsim").joinpath("data/coredns.yaml").read_text(encoding="utf-8")
    addon = load_scenario([("<coredns addon>", text)], seed=scenario.config.seed)
    scenario.pods.extend(addon.pods)
    scenario.services.extend(addon.services)


def is_coredns(pod: Pod) -> bool:
    return pod.namespace == "kube-system" and pod.labels.get(DNS_LABEL[0]) == DNS_LABEL[1]
