"""A felix rule as felix writes it, and a chain rendered with felix's hash comments.

felix builds rules from match and action fragments (calico ``felix/iptables/match_builder.go``,
``actions.go``) and writes each with a ``-m comment --comment "cali:<hash>"`` first
(``renderer.go`` ``renderInner``), the hash chaining every earlier rule of the chain
(``generictables.RuleHashes``).  ``FRule`` keeps the fragments in felix's own spelling
(``--source``, ``--jump``, ``-m mark --mark 0/0x20000``) because that text is what the hash
is computed over; ``iptables-save`` prints the normalised form once pktsim's netfilter has
read the rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pktsim.felix.names import rule_hashes


@dataclass(frozen=True, slots=True)
class FRule:
    """Match fragments, one action fragment (may be empty) and extra comments."""

    match: tuple[str, ...] = ()
    action: str = ""
    comments: tuple[str, ...] = ()

    def render(self, chain: str, hash_text: str) -> str:
        """``RenderAppend``: ``-A CHAIN <hash comment> <comments> <match> <action>``."""
        return " ".join(["-A", chain, *self._parts(hash_text)])

    def hash_tail(self) -> str:
        """``render(chain, "HASH")`` after its ``-A CHAIN ``: the same for every chain, so
        a rule's hash input is made once per build, not once per chain that holds it."""
        return " ".join(self._parts("HASH"))

    def _parts(self, hash_text: str) -> list[str]:
        parts = []
        if hash_text == "HASH":
            parts.append("HASH")
        elif hash_text:
            parts.append(f'-m comment --comment "cali:{hash_text}"')
        parts += [f'-m comment --comment "{escape_comment(c)[:256]}"' for c in self.comments]
        parts += [m for m in self.match if m]
        if self.action:
            parts.append(self.action)
        return parts

    def with_comment(self, *comments: str) -> FRule:
        return FRule(self.match, self.action, self.comments + comments)

    def tokens(self) -> list[str]:
        """The rule's options as iptables-restore reads them from ``render``'s line, without
        the hash comment (only comments are quoted there; a match or action fragment holds
        no quotes, so its words are its blank-separated parts)."""
        words: list[str] = []
        for c in self.comments:
            words += ["-m", "comment", "--comment", escape_comment(c)[:256]]
        for m in self.match:
            words += m.split()
        return words + self.action.split()


@dataclass(frozen=True, slots=True)
class FChain:
    name: str
    rules: tuple[FRule, ...]

    def lines(self, hash_name: str = "") -> list[str]:
        """The chain's rules as felix writes them to iptables-restore.  ``hash_name`` is
        the name the hashes are computed under: felix hashes the rules it appends to a
        kernel chain as ``CHAIN*appends*`` (iptables/table.go
        ``expectedHashesForInsertAppendChain``)."""
        return [r.render(self.name, h)
                for r, h in zip(self.rules, self.hashes(hash_name), strict=True)]

    def hashes(self, hash_name: str = "") -> list[str]:
        """Each rule's ``cali:`` hash (``lines`` for ``hash_name``)."""
        key = hash_name or self.name
        return rule_hashes(key, [r.render(key, "HASH") for r in self.rules])


_UNSAFE = re.compile(r"[^\w @%+=:,./-]")


def escape_comment(text: str) -> str:
    """felix ``escapeComment`` (iptables/renderer.go): every character a shell would need
    quoted becomes ``_``; the comment is then cut to 256 (``maxIptablesCommentLength``)."""
    return _UNSAFE.sub("_", text)


# -- the fragments felix's builders write ---------------------------------------------------
def jump(chain: str) -> str:
    return f"--jump {chain}"


def goto(chain: str) -> str:
    return f"--goto {chain}"


ACCEPT, DROP, RETURN = "--jump ACCEPT", "--jump DROP", "--jump RETURN"


def set_mark(bits: int) -> str:
    """``SetMarkAction``: set ``bits`` under a mask of the same bits."""
    return f"--jump MARK --set-mark {bits:#x}/{bits:#x}"


def clear_mark(bits: int) -> str:
    return f"--jump MARK --set-mark 0/{bits:#x}"


def masked_mark(bits: int, mask: int) -> str:
    return f"--jump MARK --set-mark {bits:#x}/{mask:#x}"


def mark_set(bit: int) -> str:
    """``MarkSingleBitSet``."""
    return f"-m mark --mark {bit:#x}/{bit:#x}"


def mark_clear(bits: int) -> str:
    """``MarkClear``."""
    return f"-m mark --mark 0/{bits:#x}"


def ports(ranges: list[tuple[int, int]], *, negate: bool = False) -> str:
    """``DestPortRanges``: ``-m multiport --destination-ports 80,81:90``."""
    listed = ",".join(str(a) if a == b else f"{a}:{b}" for a, b in ranges)
    return f"-m multiport {'! ' if negate else ''}--destination-ports {listed}"


def match_set(name: str, flags: str, *, negate: bool = False) -> str:
    return f"-m set {'! ' if negate else ''}--match-set {name} {flags}"
