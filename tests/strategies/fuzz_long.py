"""The long fuzz run behind ``make fuzz`` (not collected by ``make test``: its name is not
test_*; skipped unless ``PKTSIM_FUZZ`` is set).

``PKTSIM_FUZZ=N`` runs N examples of each input-hardening property (malformed and valid
frames into every device, random and mutated YAML into the loader), N/10 generated clusters
with their flows checked against every invariant, and N/100 runs of each state machine (the
static one and the change events' one), all randomized (not the CI profile): each run
explores new inputs.  docs/property-testing.md records what the runs found.
"""

from __future__ import annotations

import copy
import os
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import run_state_machine_as_test

from pktsim import invariants
from pktsim.strategies import clusters, flow_lists, frames, malformed_frames, manifests
from tests.devices import test_robustness as robustness
from tests.hardening import fuzz_targets as hardening
from tests.scenario import test_scenario_fuzz as loader
from tests.strategies.test_stateful import ClusterMachine
from tests.strategies.test_stateful_changes import ChangeMachine

N = int(os.environ.get("PKTSIM_FUZZ", "0") or 0)
pytestmark = pytest.mark.skipif(N <= 0, reason="the long fuzz run: make fuzz (PKTSIM_FUZZ=N)")


def fuzz(examples: int) -> settings:
    return settings(max_examples=max(1, examples), derandomize=False, database=None,
                    deadline=None, print_blob=True, suppress_health_check=list(HealthCheck))


NETWORKS = st.sampled_from(["routes", "vxlan", "ipip", "calico"])
NOW = st.integers(0, 10**12)


@fuzz(N)
@given(NETWORKS, st.integers(0, 50), st.integers(0, 10), malformed_frames(), NOW)
def test_fuzz_malformed_frames_into_every_device(network: str, index: int, port: int,
                                                 data: bytes, now: int) -> None:
    robustness.feed(network, index, port, data, now)


@fuzz(N)
@given(NETWORKS, st.integers(0, 50), st.integers(0, 10), frames(), NOW)
def test_fuzz_valid_frames_into_every_device(network: str, index: int, port: int,
                                             data: bytes, now: int) -> None:
    robustness.feed(network, index, port, data, now)


@fuzz(N)
@given(st.text(max_size=400))
def test_fuzz_random_text_into_the_loader(text: str) -> None:
    loader.attempt(text)


@fuzz(N)
@given(st.lists(loader.documents, min_size=1, max_size=4))
def test_fuzz_random_yaml_documents_into_the_loader(docs: list[dict[str, Any]]) -> None:
    loader.attempt(loader.dump(docs))


@fuzz(N)
@given(st.data())
def test_fuzz_mutated_manifests_into_the_loader(data: st.DataObject) -> None:
    base = data.draw(st.sampled_from(["handwritten", "generated"]), label="base")
    docs = copy.deepcopy(loader.BASE) if base == "handwritten" else data.draw(
        manifests(max_services=4), label="generated")
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        i = data.draw(st.integers(0, len(docs) - 1), label="document")
        path = data.draw(st.sampled_from(loader.paths(docs[i])), label="path")
        junk = data.draw(loader.trees, label="junk")
        docs[i] = loader.mutate(docs[i], path, junk, data.draw(st.booleans(), label="delete"))
    loader.attempt(loader.dump(docs))


@fuzz(N)
@given(st.data())
def test_fuzz_mangled_yaml_text_into_the_loader(data: st.DataObject) -> None:
    docs = data.draw(st.sampled_from([loader.BASE, None]), label="base") or data.draw(
        manifests(), label="generated")
    text = yaml.safe_dump_all(docs)
    for _ in range(data.draw(st.integers(1, 5))):
        at = data.draw(st.integers(0, len(text)))
        cut = data.draw(st.integers(0, 8))
        insert = data.draw(st.sampled_from(["", ":", "- ", "{", "]", "\n", "  ", "&a ", "*a",
                                            "!!binary ", "'", '"', "---\n", "? ", "<<: "]))
        text = text[:at] + insert + text[at + cut:]
    loader.attempt(text)


@fuzz(N // 10)
@given(st.data())
def test_fuzz_generated_clusters_keep_every_invariant(data: st.DataObject) -> None:
    cluster = data.draw(clusters(max_nodes=4, max_pods=10, max_services=5), label="cluster")
    chosen = data.draw(flow_lists(cluster, max_size=6), label="flows")
    invariants.check_all(cluster.run(flows=chosen))


def test_fuzz_the_state_machine() -> None:
    run_state_machine_as_test(ClusterMachine, settings=settings(
        fuzz(N // 100), stateful_step_count=40))


def test_fuzz_the_change_machine() -> None:
    """Issue 17: one live run whose cluster changes, rule by rule (N/100 runs)."""
    run_state_machine_as_test(ChangeMachine, settings=settings(
        fuzz(N // 100), stateful_step_count=40))


# -- issue 16: the loader, the CLI and frame injection (tests/hardening/fuzz_targets.py) --
# PKTSIM_FUZZ manifests into the loader and into `pktsim check` (as bytes in six encodings;
# PKTSIM_FUZZ_CHECK sets that count alone), PKTSIM_FUZZ_LOG names a progress log;
# PKTSIM_FUZZ/20 batches of 8-40 raw frames injected into the demo cluster in each
# network mode (about PKTSIM_FUZZ/2 frames), PKTSIM_FUZZ/200 `pktsim run`s with their output
# folder checked.  The counts are printed at the end (-s).

@fuzz(N)
@given(hardening.manifest_texts())
def test_fuzz_hostile_manifests_into_the_loader(text: str) -> None:
    hardening.loader_target(text)


@fuzz(int(os.environ.get("PKTSIM_FUZZ_CHECK") or N))
@given(hardening.encoded_manifests)
def test_fuzz_hostile_manifests_into_pktsim_check(data: bytes) -> None:
    hardening.cli_check_target(data)


@fuzz(N // 20)
@given(st.sampled_from(hardening.NETWORKS), hardening.frame_batches)
def test_fuzz_raw_frames_injected_in_every_network_mode(
        network: str, batch: list[tuple[int, int, bytes]]) -> None:
    hardening.inject_target(network, batch)


@fuzz(N // 200)
@given(hardening.runnable)
def test_fuzz_pktsim_run_leaves_complete_output_or_none(text: str) -> None:
    hardening.cli_run_target(text)


def test_fuzz_counts() -> None:
    print(f"\nframes injected per network mode: {hardening.INJECTED}")
