"""The names felix gives things: chains, rule hashes, IP sets, profiles, marks.

Every function here is a transcription of the calico source it cites (projectcalico/calico
at 87c1590, Aug 2026: felix's iptables backend), so the tables pktsim writes read like a real
Calico node's ``iptables-save``.  One difference is known and deliberate: felix names a
selector's IP set after the hash of the selector as its parser prints it back
(``selector.UniqueID``); pktsim hashes the selector as Calico's Kubernetes conversion writes
it (``k8sSelectorToCalico``), without the parser's canonical re-printing, so a set's name
differs from a live node's while its members and its use are the same.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

CHAIN_MAX = 28  # felix/iptables MaxChainNameLength
IPSET_MAX = 31  # felix/ipsets MaxIPSetNameLength
HASH_LENGTH = 16  # felix/generictables HashLength
HASH_BYTES = HASH_LENGTH * 3 // 4  # the digest bytes its base64 characters encode
_URLSAFE = bytes.maketrans(b"+/", b"-_")  # base64.urlsafe_b64encode's alphabet
IPSET_PREFIX = "cali40"  # "cali" + IP version "4" + main-set token "0" (ipset_defs.go)

# Mark bits, allocated in felix/dataplane/driver.go from IptablesMarkMask 0xffff0000 in this
# order: accept, pass, drop, scratch-0, scratch-1 (markbits.NextSingleBitMark).
MARK_ACCEPT = 0x10000
MARK_PASS = 0x20000
MARK_DROP = 0x40000
MARK_SCRATCH0 = 0x80000
MARK_SCRATCH1 = 0x100000
ALL_MARK_BITS = MARK_ACCEPT | MARK_PASS | MARK_SCRATCH0 | MARK_SCRATCH1  # allCalicoMarkBits

KIND_K8S_POLICY = "KubernetesNetworkPolicy"  # libcalico-go model.KindKubernetesNetworkPolicy
DEFAULT_TIER = "default"


def _b64(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def length_limited(prefix: str, suffix: str, max_length: int = CHAIN_MAX) -> str:
    """libcalico-go ``lib/hash/unique_id.go`` GetLengthLimitedID: the prefix and the suffix,
    or, when that is too long, ``_`` and the start of the suffix's SHA-256."""
    suffix = suffix or "_"
    total = len(prefix) + len(suffix)
    if total > max_length or (total == max_length and suffix[0] == "_"):
        digest = _b64(hashlib.sha256(suffix.encode()).digest())
        return prefix + "_" + digest[: max_length - 1 - len(prefix)]
    return prefix + suffix


def unique_id(prefix: str, content: str) -> str:
    """libcalico-go ``MakeUniqueID``: ``prefix:`` and the SHA-224 of ``prefix:content``."""
    return f"{prefix}:{_b64(hashlib.sha224(f'{prefix}:{content}'.encode()).digest())}"


def ipset_name(set_id: str) -> str:
    """felix ``NameForMainIPSet``: the versioned prefix and the ID, cut to 31 characters."""
    return (IPSET_PREFIX + set_id)[:IPSET_MAX]


def selector_set(selector: str) -> str:
    """The IP set of the endpoints a selector matches (``IPSetData.UniqueID``)."""
    return ipset_name(unique_id("s", selector))


def named_port_set(selector: str, protocol: str, port: str) -> str:
    """The ``hash:ip,port`` set of a named port on the endpoints a selector matches."""
    return ipset_name(unique_id("n", f"{unique_id('s', selector)},{protocol},{port}"))


def policy_id(namespace: str, name: str) -> str:
    """felix ``types.PolicyID.ID``: ``knp/NAMESPACE/NAME`` for a Kubernetes policy."""
    return f"knp/{namespace}/{name}"


def policy_chain(direction: str, namespace: str, name: str) -> str:
    """``cali-pi-…`` (ingress) or ``cali-po-…`` (egress): felix rules ``PolicyChainName``."""
    prefix = "cali-pi-" if direction == "Ingress" else "cali-po-"
    return length_limited(prefix, policy_id(namespace, name))


def profile_chain(direction: str, profile: str) -> str:
    """``cali-pri-kns.NS`` / ``cali-pro-ksa.NS.SA`` (``ProfileChainName``)."""
    prefix = "cali-pri-" if direction == "Ingress" else "cali-pro-"
    return length_limited(prefix, profile)


def endpoint_chain(prefix: str, iface: str) -> str:
    """``cali-tw-caliXXXX`` (to the workload) or ``cali-fw-caliXXXX`` (from it)."""
    return length_limited(prefix, iface)


def group_chain(direction: str, selector: str, policies: list[tuple[str, str]]) -> str:
    """A policy group's chain (``PolicyGroup.ChainName``, felix rules/endpoints.go): SHA3-224
    over the selector, the direction, the count and each policy's ``String()``."""
    h = hashlib.sha3_224()
    for part in [selector, "inbound" if direction == "Ingress" else "outbound",
                 str(len(policies))] + [
            f"{{Name: {name}, Namespace: {ns}, Kind: {KIND_K8S_POLICY}}}"
            for ns, name in policies]:
        h.update(part.encode() + b"\n")
    prefix = "cali-gi-" if direction == "Ingress" else "cali-go-"
    return prefix + _b64(h.digest())[: CHAIN_MAX - len(prefix)]


def rule_hashes(chain: str, rendered: list[str]) -> list[str]:
    """felix ``generictables.RuleHashes``: each rule's hash chains in the previous one, from
    the SHA-224 of the chain's name; ``rendered`` is each rule as ``RenderAppend`` writes it
    with ``HASH`` in place of the hash comment."""
    digest = hashlib.sha224(chain.encode()).digest()
    out = []
    for text in rendered:
        digest = hashlib.sha224(digest + text.encode()).digest()
        out.append(_b64(digest)[:HASH_LENGTH])
    return out


def rule_hashes_of_tails(chain: str, tails: list[bytes]) -> list[str]:
    """``rule_hashes(chain, [f"-A {chain} " + tail ...])`` (``FRule.hash_tail``, encoded),
    without making each line: every pod's two chains hash ten rules or so, 3 million
    hashes at 150,000 pods.  The first 12 bytes of a digest are its first 16 base64
    characters (``HASH_LENGTH``: 12 bytes are 4 whole groups of 3)."""
    digest = hashlib.sha224(chain.encode()).digest()
    prefix = f"-A {chain} ".encode()
    sha224, encode = hashlib.sha224, binascii.b2a_base64
    out = []
    for tail in tails:
        digest = sha224(digest + prefix + tail).digest()
        out.append(encode(digest[:HASH_BYTES], newline=False).translate(_URLSAFE).decode())
    return out
