"""DNS message plumbing shared by the cluster zone, the upstream resolver and the stub resolver.

Theory of operation
-------------------
Responses are ``dns.message.Message`` objects whose sections hold **one RR per RRset**, in
the order the server emits them (CoreDNS writes RRs, not RRsets: a CNAME, then the records it
leads to; SRV glue in endpoint order).  ``encode`` turns a response into the bytes a server
puts in its UDP datagram or TCP message, as CoreDNS's ``ScrubWriter`` does
(coredns ``request/request.go`` ``SizeAndDo`` + ``Scrub``):

* the client's OPT record is echoed (version 0, its UDP size, DO kept, options dropped);
* the message is packed **without name compression** when it fits the client's buffer (512
  bytes without EDNS, the advertised size with it, 65535 over TCP) -- the NXDOMAIN of a
  63-byte query is 156 bytes on the wire, as CoreDNS logs show (coredns/coredns#3835);
* otherwise with compression; if that is still too big, RRs are cut from the end of the
  Additional section, then of the Answer section, by CoreDNS's binary search, and TC is set.
  Unlike dnspython's ``to_wire(max_size=...)``, which drops whole RRsets, CoreDNS keeps as
  many single RRs as fit.

``round_robin`` is the ``loadbalance`` plugin (coredns ``plugin/loadbalance/loadbalance.go``):
A/AAAA-only sections are shuffled; mixed ones become CNAMEs, the rest, shuffled addresses,
shuffled MX.  Each swap decision draws a 16-bit id, as ``dns.Id()`` does.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the modules; at run time each loads on first use
    import dns.flags
    import dns.message
    import dns.name
    import dns.rcode
    import dns.rdata
    import dns.rdataclass
    import dns.rdatatype
    import dns.renderer
    import dns.rrset
else:
    from pktsim.dns.dnspython import dns

UDP_MIN = 512
TCP_MAX = 65535
OPT_LEN = 12  # coredns request.go ``optLen``, subtracted from the budget when cutting


if TYPE_CHECKING:
    _Table = dict[dns.name.Name, int]
else:  # a subscripted dict would load dns.name at import (pktsim.dns.dnspython)
    _Table = dict


class _NoCompress(_Table):
    """A compression table that never remembers a name: names go out in full."""

    def __setitem__(self, key: dns.name.Name, value: int) -> None:
        return None


def rr(name: dns.name.Name | str, ttl: int, rdtype: dns.rdatatype.RdataType | str,
       text: str) -> dns.rrset.RRset:
    """One RR as its own RRset (the unit responses are built from)."""
    owner = dns.name.from_text(name) if isinstance(name, str) else name
    rdata = dns.rdata.from_text(dns.rdataclass.IN, rdtype, text)
    out = dns.rrset.RRset(owner, dns.rdataclass.IN, rdata.rdtype)
    out.add(rdata, ttl)
    return out


def flatten(rrsets: Iterable[dns.rrset.RRset]) -> list[dns.rrset.RRset]:
    """Split RRsets into one-RR RRsets, keeping the order."""
    out = []
    for rrset in rrsets:
        for rdata in rrset:
            single = dns.rrset.RRset(rrset.name, rrset.rdclass, rrset.rdtype)
            single.add(rdata, rrset.ttl)
            out.append(single)
    return out


def reply_to(query: dns.message.Message, *, rcode: dns.rcode.Rcode | None = None,
             aa: bool = False, ra: bool = False) -> dns.message.Message:
    """miekg/dns ``SetReply``/``SetRcode``: id, opcode, RD and CD copied, first question;
    ``rcode`` NOERROR unless given (None: no dnspython at import, pktsim.dns.dnspython)."""
    if rcode is None:
        rcode = dns.rcode.NOERROR
    response = dns.message.Message(id=query.id)
    flags = dns.flags.QR | (query.flags & (dns.flags.RD | dns.flags.CD))
    if aa:
        flags |= dns.flags.AA
    if ra:
        flags |= dns.flags.RA
    response.flags = flags
    response.set_opcode(query.opcode())
    response.set_rcode(rcode)
    response.question = list(query.question[:1])
    return response


def _shuffle(records: list[dns.rrset.RRset], rng: random.Random) -> None:
    n = len(records)
    if n == 2:
        if rng.getrandbits(16) % 2 == 0:
            records[0], records[1] = records[1], records[0]
        return
    if n < 3:
        return
    for j in range(n):
        p = j + rng.getrandbits(16) % (n - j)
        if p != j:
            records[j], records[p] = records[p], records[j]


_ADDRESS = (1, 28)  # dns.rdatatype.A, AAAA (RFC 1035, 3596): no dnspython at import


def round_robin(records: list[dns.rrset.RRset], rng: random.Random) -> list[dns.rrset.RRset]:
    """The ``loadbalance`` plugin's ``roundRobin`` for one section."""
    if len(records) <= 1:
        return records
    first = records[0].rdtype
    if first in _ADDRESS and all(r.rdtype == first for r in records):
        out = list(records)
        _shuffle(out, rng)
        return out
    cname = [r for r in records if r.rdtype == dns.rdatatype.CNAME]
    address = [r for r in records if r.rdtype in _ADDRESS]
    mx = [r for r in records if r.rdtype == dns.rdatatype.MX]
    rest = [r for r in records if r.rdtype not in (*_ADDRESS, dns.rdatatype.CNAME,
                                                     dns.rdatatype.MX)]
    _shuffle(address, rng)
    _shuffle(mx, rng)
    return cname + rest + address + mx


def load_balance(response: dns.message.Message, rng: random.Random) -> None:
    """Shuffle every section of a NOERROR response in place (``randomShuffle``)."""
    if response.rcode() != dns.rcode.NOERROR:
        return
    response.answer = round_robin(response.answer, rng)
    response.authority = round_robin(response.authority, rng)
    response.additional = round_robin(response.additional, rng)


def client_size(query: dns.message.Message, tcp: bool) -> int:
    """coredns ``Request.Size`` + ``edns.Size``: what the client can take."""
    if tcp:
        return TCP_MAX
    return max(query.payload, UDP_MIN) if query.edns >= 0 else UDP_MIN


def render(response: dns.message.Message, *, compress: bool,
           answer: Sequence[dns.rrset.RRset] | None = None,
           additional: Sequence[dns.rrset.RRset] | None = None,
           opt: bool = True) -> bytes:
    """Pack ``response`` (optionally with cut sections) as miekg/dns ``Pack`` would."""
    out = dns.renderer.Renderer(response.id, response.flags, TCP_MAX)
    if not compress:
        out.compress = _NoCompress()
    for question in response.question:
        out.add_question(question.name, question.rdtype, question.rdclass)
    for rrset in response.answer if answer is None else answer:
        out.add_rrset(dns.renderer.ANSWER, rrset)
    for rrset in response.authority:
        out.add_rrset(dns.renderer.AUTHORITY, rrset)
    for rrset in response.additional if additional is None else additional:
        out.add_rrset(dns.renderer.ADDITIONAL, rrset)
    if opt and response.opt is not None:
        out.add_opt(response.opt)
    out.write_header()
    return out.get_wire()


def size_and_do(response: dns.message.Message, query: dns.message.Message) -> None:
    """coredns ``SizeAndDo``: echo the client's OPT (version 0, its size, DO, no options)."""
    if query.edns < 0:
        return
    flags = query.ednsflags & dns.flags.DO
    response.use_edns(0, flags, query.payload, options=[])


def _cut(build: Callable[[int], int], count: int, size: int) -> tuple[int, int]:
    """coredns ``Scrub``'s binary search: the longest prefix whose packed length fits."""
    lo, hi, m, length = 0, count, 0, 0
    while lo <= hi:
        m = (lo + hi) // 2
        length = build(m)
        if length < size:
            lo = m + 1
        elif length > size:
            hi = m - 1
        else:
            break
    if length > size and m > 0:
        m -= 1
        length = build(m)
    return m, length


def _copy(response: dns.message.Message) -> dns.message.Message:
    out = dns.message.Message(id=response.id)
    out.flags = response.flags
    out.question = list(response.question)
    out.answer = list(response.answer)
    out.authority = list(response.authority)
    out.additional = list(response.additional)
    if response.edns >= 0:
        out.use_edns(response.edns, response.ednsflags, response.payload,
                     options=list(response.options))
    return out


def encode(response: dns.message.Message, query: dns.message.Message, *, tcp: bool,
           ipv6: bool = False) -> bytes:
    """The bytes CoreDNS writes for ``response`` to ``query`` (``ScrubWriter.WriteMsg``).

    ``response`` is left as it is; TC, when set, is set on the bytes only.
    """
    response = _copy(response)
    size_and_do(response, query)
    size = client_size(query, tcp)
    wire = render(response, compress=False)
    if len(wire) <= size:
        limit = 1220 if ipv6 else 1480  # NSD's fragmentation limits, UDP only
        return render(response, compress=True) if not tcp and len(wire) > limit else wire
    wire = render(response, compress=True)
    if len(wire) <= size:
        return wire
    extra = list(response.additional)
    keep_opt = query.edns < 0
    if query.edns >= 0:
        size -= OPT_LEN  # the OPT sits past the searched range: cutting loses it
    kept, length = _cut(lambda m: len(render(response, compress=True, additional=extra[:m],
                                             opt=keep_opt)), len(extra), size)
    extra = extra[:kept]
    if length <= size:
        return render(response, compress=True, additional=extra, opt=keep_opt)
    answer = list(response.answer)
    kept, _ = _cut(lambda m: len(render(response, compress=True, answer=answer[:m],
                                        additional=extra, opt=keep_opt)), len(answer), size)
    response.flags |= dns.flags.TC
    return render(response, compress=True, answer=answer[:kept], additional=extra,
                  opt=keep_opt)


def query_message(name: dns.name.Name | str, rdtype: dns.rdatatype.RdataType, qid: int, *,
                  edns_payload: int | None = None, ad: bool = False) -> dns.message.Message:
    """A stub query as glibc's ``res_nmkquery`` builds it: RD set, no EDNS unless asked."""
    flags = dns.flags.RD | (dns.flags.AD if ad else 0)
    if edns_payload is None:
        return dns.message.make_query(name, rdtype, use_edns=False, id=qid, flags=flags)
    return dns.message.make_query(name, rdtype, use_edns=0, payload=edns_payload, id=qid,
                                  flags=flags)


def parse(wire: bytes) -> dns.message.Message | None:
    """``from_wire`` that answers None for anything malformed (a resolver drops it)."""
    try:
        return dns.message.from_wire(wire, ignore_trailing=True)
    except Exception:  # dnspython raises many exception types for bad wire data
        return None


def rcode_text(message: dns.message.Message) -> str:
    return dns.rcode.to_text(message.rcode())


def split_tcp(data: bytes) -> list[bytes]:
    """Length-prefixed DNS messages (RFC 1035 4.2.2) -> messages."""
    out = []
    while len(data) >= 2:
        length = int.from_bytes(data[:2], "big")
        out.append(data[2:2 + length])
        data = data[2 + length:]
    return out
