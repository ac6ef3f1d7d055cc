"""kube-proxy's fast rule reader makes exactly the rules ``parse_rule`` makes.

The fast path (``kubeproxy/tables.py``) takes only forms it recognises up front and hands
every other rule to ``parse_rule`` by an explicit branch; nothing is caught, so a bug in it
raises.  These tests check fast == slow on kube-proxy's generated rule text, and that on
mutated words the fast path either declines or agrees (rule, or error) with the slow one.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pktsim.kubeproxy import node_rules
from pktsim.kubeproxy.tables import _Reader
from pktsim.netfilter.rules import Rule
from pktsim.netfilter.save import parse_rule, tokenize
from pktsim.strategies import clusters

_SETTINGS = settings(max_examples=25, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _rule_words(text: str) -> list[list[str]]:
    """The words after ``-A CHAIN`` of every rule line of a restore document."""
    return [tokenize(line)[2:] for line in text.splitlines() if line.startswith("-A ")]


def _same(a: Rule, b: Rule) -> None:
    assert a == b
    assert a.text == b.text
    assert a.target == b.target


def _slow(words: list[str]) -> Rule | str:
    try:
        return parse_rule(list(words))
    except (ValueError, KeyError, IndexError) as err:
        return f"{type(err).__name__}: {err}"


@_SETTINGS
@given(clusters(max_nodes=2, max_pods=4, max_services=3))
def test_fast_is_slow_on_generated_rules(cluster: object) -> None:
    model = cluster.model  # type: ignore[attr-defined]
    for node in model.nodes:
        reader = _Reader()
        lines = _rule_words(node_rules(model, node))
        fast = 0
        for words in lines:
            made = reader._fast(words)
            if made is not None:
                fast += 1
                slow = parse_rule(list(words))
                _same(made, slow)
        assert fast >= len(lines) // 2  # the common forms really are taken fast


_EXTRA = st.sampled_from(["!", "-d", "-s", "-p", "tcp", "udp", "-m", "comment", "--comment",
                          "--dport", "80", "99999", "statistic", "--mode", "random",
                          "--probability", "0.5000000000", "1.5", "10.0.0.1/33",
                          "0.0.0.0/0", "010.1.1.1", "-j", "DNAT", "--to-destination",
                          "KUBE-SEP-X", "MARK", "--or-mark", "-o", "lo", "²"])


@_SETTINGS
@given(st.data())
def test_fast_declines_or_agrees_on_mutated_rules(data: st.DataObject) -> None:
    cluster = data.draw(clusters(max_nodes=1, max_pods=3, max_services=2))
    model = cluster.model  # type: ignore[attr-defined]
    lines = _rule_words(node_rules(model, next(iter(model.nodes))))
    for _ in range(20):
        words = list(data.draw(st.sampled_from(lines)))
        for _ in range(data.draw(st.integers(1, 3))):
            at = data.draw(st.integers(0, len(words)))
            how = data.draw(st.sampled_from(["insert", "delete", "replace"]))
            if how == "insert":
                words.insert(at, data.draw(_EXTRA))
            elif words and at < len(words):
                if how == "delete":
                    del words[at]
                else:
                    words[at] = data.draw(_EXTRA)
        slow = _slow(words)
        try:
            made = _Reader()._fast(words)
        except (ValueError, KeyError, IndexError) as err:  # only a target's own error
            assert slow == f"{type(err).__name__}: {err}", words
            continue
        if made is not None:
            assert isinstance(slow, Rule), (words, slow)
            _same(made, slow)


def test_reader_rule_is_parse_rule_for_what_fast_declines() -> None:
    words = ["-p", "tcp", "--dport", "53", "-j", "ACCEPT"]  # --dport without -m tcp
    reader = _Reader()
    assert reader._fast(words) is None
    _same(reader.rule(words), parse_rule(list(words)))


def test_the_direct_path_failing_where_the_text_reads_is_a_bug() -> None:
    import pytest

    from pktsim.kubeproxy.tables import restore_direct
    from pktsim.netfilter.document import Invalid, TableStart

    good = "*nat\nCOMMIT\n"
    with pytest.raises(RuntimeError, match="made directly fail where their text reads"):
        restore_direct(lambda maker: [TableStart("nat"), Invalid("oops")], lambda: good)
    with pytest.raises(ValueError, match="line 2: unsupported command -X"):  # the text's
        restore_direct(lambda maker: [TableStart("nat"), Invalid("oops")],
                       lambda: "*nat\n-X FOO\nCOMMIT\n")
