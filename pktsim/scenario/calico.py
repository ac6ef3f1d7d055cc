"""Calico's IP pool: ``spec.calico`` of ``kind: Cluster`` and ``kind: IPPool`` documents.

Both give the fields of ``IPPoolSpec`` that shape the dataplane (calico
``api/pkg/apis/projectcalico/v3/ippool.go``): ``cidr``, ``blockSize``, ``ipipMode``,
``vxlanMode``, ``natOutgoing``.  They are checked as the IPPool CRD's validation rules (the
``+kubebuilder:validation:XValidation`` markers on ``IPPoolSpec``, which replaced
libcalico-go's ``validateIPPoolSpec``) check them:

* ``ipipMode`` and ``vxlanMode`` are ``Always``, ``CrossSubnet`` or ``Never``, and not both
  enabled ("ipipMode and vxlanMode cannot both be enabled");
* ``blockSize`` between 20 and 32 for IPv4, and no longer than the pool's prefix ("IP pool
  size is too small for use with Calico IPAM");
* ``cidr`` strictly masked and not overlapping ``169.254.0.0/16``.

pktsim also needs the pool inside the cluster ``podCIDR`` (what kube-proxy's
``--cluster-cidr`` and the disjointness checks of ``kind: Cluster`` are about).  The other
IPPool fields (``nodeSelector``, ``disabled``, ``allowedUses``, …) are read past with a
warning naming them: one pool for every node is what is modelled.
"""

from __future__ import annotations

from ipaddress import IPv4Network

from pktsim.model.objects import CalicoPool, ClusterConfig
from pktsim.scenario.fields import Obj

FIELDS = ("cidr", "blockSize", "ipipMode", "vxlanMode", "natOutgoing")
MODES = ("Always", "CrossSubnet", "Never")
IPPOOL_GROUPS = ("projectcalico.org", "crd.projectcalico.org")
# IPPoolSpec fields read past: they select nodes/namespaces or uses pktsim has one of
NOT_MODELLED = ("nodeSelector", "namespaceSelector", "disabled", "disableBGPExport",
                "allowedUses", "assignmentMode", "ipip", "nat-outgoing")
LINK_LOCAL = IPv4Network("169.254.0.0/16")


def read_pool(body: Obj, pool: CalicoPool, *, strict: bool) -> CalicoPool:
    """``body``'s pool fields over ``pool``'s; unknown keys are errors when ``strict``
    (``spec.calico`` is pktsim's own), warnings otherwise (an IPPool's other fields)."""
    if strict:
        body.unknown_keys(FIELDS)
    else:
        extra = sorted(k for k in body.data if k not in FIELDS)
        if extra:
            body.ctx.warn(f"IPPool fields {', '.join(extra)} not modelled (one pool for "
                          "every node and namespace)")
    out = CalicoPool(pool.cidr, pool.block_size, pool.ipip_mode, pool.vxlan_mode,
                     pool.nat_outgoing, pool.name)
    if body.has("cidr"):
        out.cidr = body.network("cidr")
    out.block_size = body.integer("blockSize", out.block_size, 20, 32)
    out.ipip_mode = body.choice("ipipMode", MODES, out.ipip_mode)
    out.vxlan_mode = body.choice("vxlanMode", MODES, out.vxlan_mode)
    out.nat_outgoing = body.boolean("natOutgoing", out.nat_outgoing)
    if "Never" not in (out.ipip_mode, out.vxlan_mode):
        where = "vxlanMode" if body.has("vxlanMode") else "ipipMode"
        body.ctx.error(body.at(where), body.raw(where) if body.has(where) else out.ipip_mode,
                       "ipipMode and vxlanMode cannot both be enabled",
                       "Never for one of them")
    return out


def check_pool(body: Obj, pool: CalicoPool, cfg: ClusterConfig) -> None:
    """The checks that need the pool's CIDR with its block size and the cluster's podCIDR."""
    cidr = pool.cidr or cfg.pod_cidr
    key = "cidr" if pool.cidr is not None and body.has("cidr") else "blockSize"
    if cidr.prefixlen > pool.block_size:
        body.ctx.error(body.at(key), str(cidr) if key == "cidr" else pool.block_size,
                       "IP pool size is too small for use with Calico IPAM. It must be equal "
                       "to or greater than the block size.",
                       f"a pool of /{pool.block_size} or larger, or a longer blockSize")
    if cidr.overlaps(LINK_LOCAL):
        body.ctx.error(body.at("cidr"), str(cidr), "IPPool CIDR overlaps with IPv4 link local "
                       "range 169.254.0.0/16", "a pool outside 169.254.0.0/16")
    elif not cidr.subnet_of(cfg.pod_cidr):
        body.ctx.error(body.at("cidr"), str(cidr), f"lies outside the cluster podCIDR "
                       f"{cfg.pod_cidr}", f"a subnet of {cfg.pod_cidr} (or a Cluster podCIDR "
                       "that holds the pool)")
