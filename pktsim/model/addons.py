"""How the model recognises kubeadm's CoreDNS add-on among the pods.

The add-on itself is decided when the scenario is loaded (``pktsim.scenario.addons``): the
loaded ``Scenario`` already holds the ``coredns`` pods and the ``kube-dns`` Service, so the
model only has to tell those pods apart (they run CoreDNS instead of the user's apps) and
never calls back into the loader.
"""

from __future__ import annotations

from pktsim.model.objects import Pod

DNS_LABEL = ("k8s-app", "kube-dns")


def is_coredns(pod: Pod) -> bool:
    """A pod of the cluster DNS: in ``kube-system`` with ``k8s-app: kube-dns``."""
    return pod.namespace == "kube-system" and pod.labels.get(DNS_LABEL[0]) == DNS_LABEL[1]
