"""The fuzz targets of ``fuzz_targets.py``, a few hundred examples each (the long run is
``make fuzz``): the loader, ``pktsim check`` on encoded bytes, ``pktsim run``, and raw
frames injected in every network mode."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.hardening import fuzz_targets as fuzz

SOME = settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))


@SOME
@given(fuzz.manifest_texts())
def test_the_loader_gives_a_cluster_or_a_scenario_error(text: str) -> None:
    fuzz.loader_target(text)


@SOME
@given(fuzz.encoded_manifests)
def test_check_is_exit_0_or_2_with_clean_lines(data: bytes) -> None:
    fuzz.cli_check_target(data)


@settings(SOME, max_examples=25)
@given(fuzz.runnable)
def test_run_leaves_the_complete_output_or_none(text: str) -> None:
    fuzz.cli_run_target(text)


@settings(SOME, max_examples=40)
@given(st.sampled_from(fuzz.NETWORKS), fuzz.frame_batches)
def test_injected_frames_each_get_a_fate(network: str, batch: list[tuple[int, int, bytes]]
                                         ) -> None:
    fuzz.inject_target(network, batch)
