"""The ``pktsim`` command: demo, run, check, trace (docs/scenario.md §6).

Exit status: 0 done, 2 bad input (one line per problem, no traceback), 1 internal error.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from pktsim import __version__
from pktsim.errors import ScenarioError, ScenarioErrors

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: typing costs more than the CLI (--help)

if TYPE_CHECKING:
    from typing import Any

    from pktsim.api import Result
    from pktsim.build.budget import Budget

NETWORKS = ("routes", "vxlan", "ipip", "calico")
# `run` without flows writes a folder with an empty capture: say why, once (exit status 0)
NOTHING_SENT = ("pktsim: nothing was sent: no `kind: Traffic` document with flows was given "
                "(containers' `command`s are not run; docs/scenario.md §4)")


DOC = "docs/scenario.md"
SCENARIO_HELP = ("scenario file(s): Kubernetes YAML or JSON (Pods, Deployments, Services, "
                 "EndpointSlices, ...), pktsim's `kind: Cluster` and `kind: Traffic`; "
                 "'-' reads standard input; several are read in order as one stream")
SEED_HELP = "seed of every generated name, address and random choice (default: the Cluster's)"
FORCE_HELP = "replace the output folder when it exists and is not empty"
STRICT_HELP = ("every warning (an unknown field, a field pktsim does not model, a kind "
               "skipped) is an error: exit status 2")


def _columns() -> int:
    """The width ``shutil.get_terminal_size()`` gives (``$COLUMNS``, else the terminal's,
    else 80), found without importing shutil, which imports three compression modules: for
    ``pktsim --help`` that was a tenth of its time beyond the interpreter's."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
        columns = columns or 80
    return columns


class _Formatter(argparse.HelpFormatter):
    """argparse's own help layout, its width from ``_columns``: argparse makes one of these
    for every argument added (to check its metavar), and its own imports shutil."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        super().__init__(prog, indent_increment, max_help_position,
                         _columns() - 2 if width is None else width)


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser laid out by ``_Formatter``; its subcommands' parsers are too
    (``add_subparsers`` makes them of the parser's own class)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)


def _sub(sub: argparse._SubParsersAction, name: str, summary: str,
         section: str, description: str) -> argparse.ArgumentParser:
    """A subcommand whose --help says what it does and where the reference is."""
    return sub.add_parser(name, help=summary, description=f"{summary}. {description}",
                          epilog=f"Reference: {DOC} ({section}).")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="pktsim", description="Packet-level emulator of Kubernetes networking: "
                "real frames, Wireshark captures.",
                epilog=f"The scenario format, commands and output folder: {DOC}.")
    p.add_argument("--version", action="version", version=f"pktsim {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    demo = _sub(sub, "demo", "run the built-in cluster through the guide's paths", "§6",
                "Prints each path as a story and writes the output folder.")
    demo.add_argument("--out", default="captures/demo", metavar="DIR",
                      help="output folder (default: %(default)s)")
    demo.add_argument("--network", choices=NETWORKS, default="routes",
                      help="how nodes reach each other's pods (default: %(default)s)")
    demo.add_argument("--ip-families", default="IPv4", metavar="FAMILIES",
                      help="the cluster's ipFamilies, comma-separated: IPv4 (default) or "
                      "IPv4,IPv6 (dual-stack, with the IPv6 paths; network routes)")
    demo.add_argument("--quiet", action="store_true", help="print nothing, no progress")
    demo.add_argument("--force", action="store_true", help=FORCE_HELP)
    run = _sub(sub, "run", "run every flow of the scenario files", "§4, §6, §7",
               "Flows are the `kind: Traffic` documents' spec.flows; containers' "
               "`command`s are not run. Prints one line per flow.")
    run.add_argument("scenario", nargs="+", metavar="SCENARIO", help=SCENARIO_HELP)
    run.add_argument("--out", default="out", metavar="DIR",
                     help="output folder (default: %(default)s)")
    run.add_argument("--seed", type=int, metavar="N", help=SEED_HELP)
    run.add_argument("--strict", action="store_true", help=STRICT_HELP)
    run.add_argument("--force", action="store_true", help=FORCE_HELP)
    run.add_argument("--quiet", action="store_true", help="print no flow lines, no progress")
    _budget_arguments(run)
    run.add_argument("--snapshot-at", action="append", default=[], metavar="TIME",
                     help="also write the node tables at this virtual time (a duration like "
                     "2s or 1500ms) into nodes/NODE/at-TIME/; repeatable")
    check = _sub(sub, "check", "validate the input and print the cluster", "§1-§6",
                 "Builds the cluster without running anything: nodes, pods, services, "
                 "routes, resolv.conf, flows.")
    check.add_argument("scenario", nargs="+", metavar="SCENARIO", help=SCENARIO_HELP)
    check.add_argument("--seed", type=int, metavar="N", help=SEED_HELP)
    check.add_argument("--strict", action="store_true", help=STRICT_HELP)
    trace = _sub(sub, "trace", "one flow, hop by hop", "§4 Sources and Targets, §6",
                 "Runs only this flow (not the scenario's Traffic) and prints every packet "
                 "device by device.")
    trace.add_argument("scenario", nargs="+", metavar="SCENARIO", help=SCENARIO_HELP)
    trace.add_argument("--from", dest="src", required=True, metavar="SRC",
                       help="source: NAMESPACE/POD[/CONTAINER], node:NAME, external[:NAME]")
    trace.add_argument("--to", dest="dst", required=True, metavar="DST",
                       help="target: A.B.C.D, NAMESPACE/POD, node:NAME, external[:NAME], a DNS "
                       "name or http://HOST[:PORT]/PATH; with or without :PORT")
    trace.add_argument("--protocol", choices=("tcp", "udp", "icmp", "sctp"), default="tcp",
                       help="(default: %(default)s; sctp is refused: SCTP traffic is not "
                       "modelled)")
    trace.add_argument("--port", type=int, metavar="N", help="destination port (tcp, udp)")
    trace.add_argument("--ttl", type=int, metavar="N",
                       help="IP TTL of the packets sent (default 64)")
    trace.add_argument("--count", type=int, default=1, metavar="N",
                       help="connections, datagrams or echo requests (default: %(default)s)")
    trace.add_argument("--interval", metavar="DURATION",
                       help="the gap between them, a duration such as 250ms (default: 1 ms "
                       "between connections, 1 s between datagrams or echo requests)")
    trace.add_argument("--out", default="", metavar="DIR",
                       help="also write the output folder (default: nothing written)")
    trace.add_argument("--seed", type=int, metavar="N", help=SEED_HELP)
    trace.add_argument("--strict", action="store_true", help=STRICT_HELP)
    trace.add_argument("--format", choices=("text", "json"), default="text",
                       help="json: the trace events as trace.jsonl (default: %(default)s)")
    _budget_arguments(trace)
    from pktsim.reach.command import add_parser as add_reach

    add_reach(sub)
    return p


def _budget_arguments(p: argparse.ArgumentParser) -> None:
    """--horizon and --max-events: the run's budget (pktsim.build.budget)."""
    p.add_argument("--horizon", default="24h", help="stop at this virtual time (a duration "
                   "such as 24h or 90s; 0: no limit)")
    p.add_argument("--max-events", type=int, default=20_000_000,
                   help="stop after this many events (0: no limit)")


def _budget(args: argparse.Namespace) -> Budget:
    from pktsim.build.budget import Budget
    from pktsim.scenario.syntax import parse_duration

    horizon = parse_duration(args.horizon)
    if horizon is None:
        raise ScenarioError("is not a duration", field="--horizon", value=args.horizon,
                            valid="a duration such as 24h, 90s or 1m30s; 0 for no limit")
    if args.max_events < 0:
        raise ScenarioError("is negative", field="--max-events", value=args.max_events,
                            valid="a number of events; 0 for no limit")
    return Budget(horizon or None, args.max_events or None)


def _stopped(result: Result) -> int:
    """Exit status 3 and the diagnosis when the budget stopped the run, else 0."""
    if not result.stopped:
        return 0
    print(f"pktsim: {result.stopped}", file=sys.stderr)
    return 3


class Progress:
    """A progress line on a terminal (stderr) for runs longer than a second; silent when
    stderr is not a terminal.  The one wall-clock read in pktsim: it times the user's wait,
    never the simulation (whose only clock is the driver's virtual time)."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.count = 0
        self.shown = False
        self.tty = sys.stderr.isatty()

    def __call__(self, event: object) -> None:
        self.count += 1
        if not self.tty or self.count % 2000:
            return
        elapsed = time.monotonic() - self.started
        if elapsed >= 1.0:
            t = getattr(event, "t", 0) / 1e9
            sys.stderr.write(f"\rpktsim: {self.count} events, virtual time {t:.3f} s, "
                             f"{elapsed:.1f} s elapsed")
            sys.stderr.flush()
            self.shown = True

    def done(self) -> None:
        if self.shown:
            sys.stderr.write("\n")


def main(argv: Sequence[str] | None = None) -> int:
    from pktsim.interrupts import exit_status, terminate_as_interrupt

    try:
        with terminate_as_interrupt():  # SIGTERM and SIGHUP unwind as Ctrl-C does
            return _main(argv)
    except KeyboardInterrupt as exc:  # one that came just before or after _main's own
        return exit_status(exc)


def _main(argv: Sequence[str] | None) -> int:
    from pktsim.interrupts import describe, exit_status, within

    try:
        return _dispatch(_parser().parse_args(argv))
    except ScenarioErrors as exc:
        for line in exc.lines():
            print(f"pktsim: {line}", file=sys.stderr)
        return 2
    except ScenarioError as exc:
        print(f"pktsim: {exc.line()}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # Ctrl-C, and SIGTERM/SIGHUP (pktsim.interrupts)
        print(f"pktsim: {describe(exc)}", file=sys.stderr)
        return exit_status(exc)
    except BrokenPipeError:  # `pktsim demo | head`: the reader left; so do we, quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # an internal error: say so plainly, traceback on request
        interrupt = within(exc)
        if interrupt is not None:  # a signal wrapped by the interpreter (interrupts.within)
            print(f"pktsim: {describe(interrupt)}", file=sys.stderr)
            return exit_status(interrupt)
        if os.environ.get("PKTSIM_DEBUG"):
            raise
        print(f"pktsim: internal error: {type(exc).__name__}: {exc} "
              "(set PKTSIM_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "demo":
        return _demo(args)
    if args.command == "run":
        return _run(args)
    if args.command == "check":
        return _check(args)
    if args.command == "reach":
        from pktsim.reach.command import main as reach

        return reach(args)
    return _trace(args)


def _demo(args: argparse.Namespace) -> int:
    from pktsim.api import demo_cluster
    from pktsim.render.explain import print_stories

    families = tuple(f.strip() for f in args.ip_families.split(",") if f.strip())
    cluster = demo_cluster(args.network, families)
    progress = None if args.quiet else Progress()
    result = cluster.run(args.out, force=args.force, keep=True, progress=progress)
    if progress is not None:
        progress.done()
    if not args.quiet:
        print_stories(result, Path(args.out))
        print(f"wrote {args.out}/ ({result.topology.driver.stats.frames} frames)")
    _demo_changes(args)
    return 0


def _demo_changes(args: argparse.Namespace) -> None:
    """The demo's change story (``pktsim.api.demo_changes``), with kube-proxy's conntrack
    cleanup and without it, into ``OUT/changes/cleanup`` and ``OUT/changes/no-cleanup``."""
    from pktsim.api import demo_changes
    from pktsim.render.explain import change_story

    for cleanup in (True, False):
        cluster, change = demo_changes(args.network, cleanup=cleanup)
        out = Path(args.out) / "changes" / ("cleanup" if cleanup else "no-cleanup")
        result = cluster.run(out, force=True, keep=True)
        if not args.quiet:
            print(change_story(result, change, cleanup, out))


def _warnings(warnings: list[str], strict: bool) -> bool:
    """Print the loader's warnings; under ``--strict`` they are errors: False then."""
    for warning in warnings:
        print(f"pktsim: {'' if strict else 'warning: '}{warning}", file=sys.stderr)
    return not (strict and warnings)


def _snapshot_times(texts: list[str]) -> dict[str, int]:
    """``--snapshot-at`` values as label -> virtual nanoseconds (Go durations)."""
    from pktsim.scenario.syntax import DURATION_VALID, parse_duration

    out: dict[str, int] = {}
    for text in texts:
        ns = parse_duration(text)
        if ns is None or "/" in text:
            raise ScenarioError("is not a duration", field="--snapshot-at", value=text,
                                valid=DURATION_VALID.partition(" or ")[0])
        out[text] = ns
    return out


def _run(args: argparse.Namespace) -> int:
    from pktsim.api import load

    cluster = load(*args.scenario, seed=args.seed)
    if not _warnings(cluster.scenario.warnings, args.strict):
        return 2
    if not cluster.flows:
        print(NOTHING_SENT, file=sys.stderr)
    progress = None if args.quiet else Progress()
    result = cluster.run(args.out, force=args.force, progress=progress, budget=_budget(args),
                         snapshot_at=_snapshot_times(args.snapshot_at))
    if progress is not None:
        progress.done()
    if not args.quiet:
        sys.stdout.write(result.summary())
        print(f"wrote {args.out}/ ({result.topology.driver.stats.frames} frames)")
    return _stopped(result)


def _check(args: argparse.Namespace) -> int:
    """Load, build and print, with the cyclic collector off throughout: a command that
    makes a cluster and exits leaves no garbage worth a pass, and importing pktsim's
    modules alone (classes, functions, dataclasses' generated code) ran ~50 passes, a
    tenth of the command (load and build pause it anyway: ``pktsim.model.bulk``)."""
    from pktsim.model.bulk import gc_paused

    with gc_paused():
        return _check_paused(args)


def _check_paused(args: argparse.Namespace) -> int:
    from pktsim.api import load
    from pktsim.render.check import cluster_report

    cluster = load(*args.scenario, seed=args.seed)
    if not _warnings(cluster.scenario.warnings, args.strict):
        return 2
    sys.stdout.write(cluster_report(cluster))
    return 0


def _trace(args: argparse.Namespace) -> int:
    from pktsim.api import load
    from pktsim.render.lines import jsonl
    from pktsim.scenario.traffic import make_flow

    cluster = load(*args.scenario, seed=args.seed)
    if not _warnings(cluster.scenario.warnings, args.strict):
        return 2
    target = args.dst if args.port is None else f"{args.dst}:{args.port}"
    spec = {"name": "trace", "from": args.src, "to": target, "protocol": args.protocol,
            "count": args.count, "ttl": args.ttl, "interval": args.interval}
    flow = make_flow(spec, fields={"from": "--from", "to": "--to", "protocol": "--protocol",
                                   "count": "--count", "ttl": "--ttl",
                                   "interval": "--interval"})
    result = cluster.run(args.out or None, flows=[flow], keep=True, budget=_budget(args))
    if args.format == "json":
        sys.stdout.write(jsonl(result.events))
    else:
        sys.stdout.write(result.explain())
    return _stopped(result)


if __name__ == "__main__":
    sys.exit(main())
