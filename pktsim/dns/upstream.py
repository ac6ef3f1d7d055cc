"""The recursive resolver on the external network: what CoreDNS's ``forward`` talks to.

Theory of operation
-------------------
``Cluster.spec.upstream`` maps names to IPv4 addresses; everything else does not exist.
``UpstreamResolver.answer`` behaves like a validating-free recursive resolver (unbound,
BIND) seen from a client:

* QR, RD echoed, **RA=1**, AA=0 (answers come from its cache, not an authority);
* a known name: ``A`` (and ``ANY``) gets the address with ``ttl`` (300 s);
  other types are NODATA with the SOA of the name's parent zone in Authority (a plausible
  ``<zone> 300 IN SOA ns1.<zone> hostmaster.<zone> <serial> 7200 3600 1209600 300``, the
  zone taken as the last two labels);
* any other name (reverse names included) is NXDOMAIN with the root zone's SOA, as a resolver
  relays it from the root: ``. 86400 IN SOA a.root-servers.net. nstld.verisign-grs.com.
  2026010100 1800 900 604800 86400``;
* EDNS is echoed with a 1232-byte buffer (the DNS Flag Day 2020 default of unbound/BIND);
  the bytes on the wire are always name-compressed, truncated at RRset boundaries when they do
  not fit (``encode``).
"""

from __future__ import annotations

from collections.abc import Mapping
from ipaddress import IPv4Address
from typing import TYPE_CHECKING

from pktsim.dns.wire import client_size, reply_to, rr

if TYPE_CHECKING:  # the modules; at run time each loads on first use
    import dns.flags
    import dns.message
    import dns.name
    import dns.rcode
    import dns.rdatatype
    import dns.rrset
else:
    from pktsim.dns.dnspython import dns

ROOT_SOA = ". 86400 IN SOA a.root-servers.net. nstld.verisign-grs.com. " \
    "2026010100 1800 900 604800 86400"
EDNS_BUFFER = 1232


def _root_soa() -> dns.rrset.RRset:
    owner, ttl, _cls, kind, *rest = ROOT_SOA.split()
    return rr(owner, int(ttl), kind, " ".join(rest))


class UpstreamResolver:
    def __init__(self, names: Mapping[str, IPv4Address], *, ttl: int = 300,
                 serial: int = 2026010100) -> None:
        self.ttl, self.serial = ttl, serial
        self.names = {dns.name.from_text(name).canonicalize(): ip for name, ip in names.items()}

    def lookup(self, name: dns.name.Name) -> IPv4Address | None:
        return self.names.get(name.canonicalize())

    def answer(self, query: dns.message.Message) -> dns.message.Message:
        response = reply_to(query, ra=True)
        if not query.question:
            response.set_rcode(dns.rcode.FORMERR)
            return response
        question = query.question[0]
        address = self.lookup(question.name)
        if address is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
            response.authority = [_root_soa()]
        elif question.rdtype in (dns.rdatatype.A, dns.rdatatype.ANY):
            response.answer = [rr(question.name, self.ttl, "A", str(address))]
        else:
            response.authority = [self._zone_soa(question.name)]
        if query.edns >= 0:
            response.use_edns(0, query.ednsflags & dns.flags.DO, EDNS_BUFFER, options=[])
        return response

    def _zone_soa(self, name: dns.name.Name) -> dns.rrset.RRset:
        zone = dns.name.Name(name.labels[-3:]) if len(name.labels) > 3 else name
        text = zone.to_text()
        return rr(zone, 300, "SOA", f"ns1.{text} hostmaster.{text} {self.serial} "
                  "7200 3600 1209600 300")

    def encode(self, response: dns.message.Message, query: dns.message.Message, *,
               tcp: bool) -> bytes:
        """The resolver's bytes: compressed, whole RRsets dropped with TC when too big."""
        return response.to_wire(max_size=client_size(query, tcp), prefer_truncation=True)
