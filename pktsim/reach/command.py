"""``pktsim reach``: the subcommand's arguments and what it prints (docs/scenario.md §6).

Kept apart from ``pktsim.cli`` (which only registers it) so the command's help texts and
parsing live with the feature.  Bad input is a ``ScenarioError`` naming the option: the
CLI prints its one line and exits 2, as ``run``, ``check`` and ``trace`` do.
"""

from __future__ import annotations

import argparse
import sys

from pktsim.errors import ScenarioError

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: ``pktsim --help`` registers this command,
if TYPE_CHECKING:  # and typing costs it more than the rest of the CLI's own modules
    from typing import Any

FORMATS = ("text", "json", "csv")


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``reach`` to the subcommands ``sub`` (``add_subparsers()``'s result)."""
    p = sub.add_parser(
        "reach", help="probe every pod from every pod: the NetworkPolicy reachability matrix",
        description="Probe every pod (with its own network namespace) from every other pod, "
        "as upstream's NetworkPolicy e2e does with agnhost connect (TCP connect or UDP echo, "
        "1 s timeout), all in one simulated network, and print cyclonus' matrix: . allowed, "
        "X denied by policy, R refused (allowed, nothing listens), ! failed, with the "
        "deciding policy of each cell read from the trace.")
    p.add_argument("scenario", nargs="+", help="scenario files, or - for standard input")
    p.add_argument("--ports", default="", help="comma-separated ports to probe, e.g. 80,81 "
                   "(default: every port of the protocol the probed pods declare, else 80)")
    p.add_argument("--protocol", choices=("tcp", "udp"), default="tcp",
                   help="TCP connect or UDP datagram and its echo (default tcp)")
    p.add_argument("--namespaces", default="", help="comma-separated namespaces whose pods "
                   "are probed, as sources and destinations (default: every namespace)")
    p.add_argument("--format", choices=FORMATS, default="text", help="text: one matrix per "
                   "port with a legend; json: one object a line per cell; csv: a row per cell")
    p.add_argument("--seed", type=int, help="overrides Cluster.spec.seed, as for run")
    return p


def _ports(text: str) -> list[int]:
    ports = []
    for item in filter(None, (s.strip() for s in text.split(","))):
        if not item.isdigit() or not 1 <= int(item) <= 65535:
            raise ScenarioError("is not a port", field="--ports", value=item,
                                valid="comma-separated ports 1-65535, e.g. 80,81")
        ports.append(int(item))
    return ports


def main(args: argparse.Namespace) -> int:
    """Run ``pktsim reach``: load, probe, print in ``--format``; warnings to stderr."""
    from pktsim.api import load
    from pktsim.render.reach import reach_csv, reach_json, reach_text

    ports = _ports(args.ports)
    namespaces = [s.strip() for s in args.namespaces.split(",") if s.strip()]
    cluster = load(*args.scenario, seed=args.seed)
    for warning in cluster.scenario.warnings:
        print(f"pktsim: warning: {warning}", file=sys.stderr)
    try:
        reach = cluster.reachability(ports=ports or None, protocol=args.protocol,
                                     namespaces=namespaces)
    except ScenarioError as exc:  # name the option, not the Python argument
        raise ScenarioError(exc.message, field=f"--{exc.field}" if exc.field else "",
                            value=exc.value, valid=exc.valid) from None
    render = {"text": reach_text, "json": reach_json, "csv": reach_csv}[args.format]
    sys.stdout.write(render(reach))
    return 0
