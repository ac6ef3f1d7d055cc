"""Calico IPAM: affine blocks per node, the tunnel address, pod addresses; Calico's names.

Theory of operation
-------------------
Calico IPAM (``calico-ipam``, libcalico-go ``lib/ipam``) ignores the node's
``spec.podCIDR``: it cuts the IP pool into blocks of ``blockSize`` and gives each node the
blocks it claims ("affinity").  A node claims a block the first time it needs an address and
has none free:

* which block: ``randomBlockGenerator`` (``lib/ipam/ipam_block_reader_writer.go``) walks the
  pool's blocks from a starting index drawn from a generator seeded with the FNV-1 32-bit hash
  of the host name (``determineSeed``), wrapping around, and takes the first unclaimed one.
  pktsim takes the starting index as that hash modulo the number of blocks — Go's
  ``math/rand`` stream is not reproduced, but the choice depends, as Calico's does, on the
  host name alone (not on pktsim's seed, not on time) and collisions walk on the same way;
* which address in a block: the first free ordinal (``allocationBlock.autoAssign`` in
  ``lib/ipam/ipam_block.go`` takes from the block's ``Unallocated`` list, ordinals in order),
  so the first address of a node's first block goes to the first request.

calico-node asks first, at start-up, for the tunnel device's address when the pool has IPIP
or VXLAN on (``node/pkg/allocateip/allocateip.go``, handle ``ipip-tunnel-addr-<node>`` /
``vxlan-tunnel-addr-<node>``), so that is the block's first address; pods get the next ones
in creation order.  With both modes ``Never`` there is no tunnel address, and a node with no
pod has no block at all.  An address a manifest gives (``status.podIP``) is taken first: its
block becomes the node's (a snapshot's pods say which blocks the nodes hold); an address in a
block another node holds would be Calico's borrowing, which is not modelled (an error).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network

HOST_VETH_MAC = b"\xee" * 6  # cni-plugin pkg/dataplane/linux/dataplane_linux.go hostSideMAC
VETH_PREFIX = "cali"  # FELIX_INTERFACEPREFIX's default


def fnv1_32(data: bytes) -> int:
    """Go's ``hash/fnv`` ``New32`` (FNV-1: multiply, then xor)."""
    h = 0x811C9DC5
    for byte in data:
        h = (h * 0x01000193) & 0xFFFFFFFF
        h ^= byte
    return h


def veth_name(namespace: str, pod: str) -> str:
    """The host side of a pod's veth: ``cali`` + the first 11 hex digits of
    sha1("namespace.pod") (``VethNameForWorkload``, libcalico-go
    ``lib/backend/k8s/conversion/workload_endpoint_default.go``)."""
    return VETH_PREFIX + hashlib.sha1(f"{namespace}.{pod}".encode()).hexdigest()[:11]


def vtep_mac(node: str) -> bytes:
    """``vxlan.calico``'s MAC when the node resource sets none: ``"f"`` then the first five
    bytes of sha1(node name) (felix ``calc/vxlan_resolver.go`` ``vtepMACForHost``)."""
    return b"f" + hashlib.sha1(node.encode()).digest()[:5]


@dataclass(slots=True)
class _Block:
    cidr: IPv4Network
    node: str
    used: set[int] = field(default_factory=set)  # ordinals handed out

    def assign(self) -> IPv4Address | None:
        for ordinal in range(self.cidr.num_addresses):
            if ordinal not in self.used:
                self.used.add(ordinal)
                return self.cidr.network_address + ordinal
        return None


class Ipam:
    """One pool's blocks and who holds them; every decision is a pure function of the calls."""

    def __init__(self, pool: IPv4Network, block_size: int) -> None:
        self.pool = pool
        self.block_size = block_size
        self.count = 1 << (block_size - pool.prefixlen)
        self._by_start: dict[int, _Block] = {}
        self._of_node: dict[str, list[_Block]] = {}

    def blocks_of(self, node: str) -> list[IPv4Network]:
        """The node's affine blocks, in the order it claimed them."""
        return [b.cidr for b in self._of_node.get(node, [])]

    def _block_at(self, index: int) -> IPv4Network:
        start = int(self.pool.network_address) + (index << (32 - self.block_size))
        return IPv4Network((start, self.block_size))

    def claim(self, node: str) -> IPv4Network | None:
        """``claimAffineBlock`` of the first unclaimed block from the host's starting index."""
        first = fnv1_32(node.encode()) % self.count
        for step in range(self.count):
            cidr = self._block_at((first + step) % self.count)
            if int(cidr.network_address) not in self._by_start:
                return self._take(cidr, node).cidr
        return None

    def _take(self, cidr: IPv4Network, node: str) -> _Block:
        block = _Block(cidr, node)
        self._by_start[int(cidr.network_address)] = block
        self._of_node.setdefault(node, []).append(block)
        return block

    def reserve(self, node: str, ip: IPv4Address) -> str:
        """Take ``ip`` (a manifest's ``status.podIP``) for ``node``; ``""`` or the problem."""
        if ip not in self.pool:
            return f"is outside the Calico IP pool {self.pool}"
        start = int(ip) & ~((1 << (32 - self.block_size)) - 1)
        block = self._by_start.get(start)
        if block is None:
            block = self._take(IPv4Network((start, self.block_size)), node)
        elif block.node != node:
            return (f"lies in block {block.cidr}, affine to node {block.node} (Calico IPAM "
                    "borrowing is not modelled)")
        ordinal = int(ip) - start
        if ordinal in block.used:
            return "is already taken"
        block.used.add(ordinal)
        return ""

    def assign(self, node: str) -> IPv4Address | None:
        """``AutoAssign`` of one address: the node's blocks in turn, then a new block."""
        for block in self._of_node.get(node, []):
            ip = block.assign()
            if ip is not None:
                return ip
        if self.claim(node) is None:
            return None
        return self._of_node[node][-1].assign()
