"""Run pktsim's benchmarks: ``python -m benchmarks.run [--quick] [--only NAME]`` (``make bench``).

Each benchmark prints its progress, then its figures and its ratio as the last lines, and
records them under its name in ``benchmarks/results/latest.json`` (other keys are kept).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from benchmarks import cli, failing, hop_rate, memory, policy, properties, scale
from benchmarks.common import RESULTS, Outcome, python_line, write_results


def _hop_rate(args: argparse.Namespace) -> Outcome:
    return hop_rate.run(hop_rate.configure(
        args.quick, scenario=args.scenario, segments=args.segments, repeats=args.repeats,
        sample=args.sample, profile=args.profile or None,
        workdir=Path(args.workdir) if args.workdir else None))


def _properties(args: argparse.Namespace) -> Outcome:
    return properties.run(properties.configure(
        args.quick, examples=args.examples, repeats=args.repeats,
        profile=args.profile or None))


def _memory(args: argparse.Namespace) -> Outcome:
    return memory.run(memory.configure(
        args.quick, workload=args.mem_workload, small=args.mem_small, large=args.mem_large,
        diagnose=args.mem_diagnose or None,
        workdir=Path(args.workdir) if args.workdir else None))


def _scale(args: argparse.Namespace) -> Outcome:
    return scale.run(scale.configure(
        args.quick, nodes=args.nodes, nat_repeats=args.nat_repeats,
        profile=args.profile or None, workdir=Path(args.workdir) if args.workdir else None))


def _policy(args: argparse.Namespace) -> Outcome:
    return policy.run(policy.configure(args.quick, repeats=args.policy_repeats))


def _failing(args: argparse.Namespace) -> Outcome:
    return failing.run(failing.configure(args.quick))


def _cli(args: argparse.Namespace) -> Outcome:
    return cli.run(cli.configure(args.quick, rounds=args.cli_rounds))


BENCHMARKS: dict[str, Callable[[argparse.Namespace], Outcome]] = {
    hop_rate.NAME: _hop_rate,
    properties.NAME: _properties,
    memory.NAME: _memory,
    scale.NAME: _scale,
    policy.NAME: _policy,
    failing.NAME: _failing,
    cli.NAME: _cli,
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="smaller workloads, one run each (a smoke test, not a figure)")
    p.add_argument("--only", action="append", choices=sorted(BENCHMARKS), metavar="NAME",
                   help=f"run only this benchmark (repeatable): {', '.join(BENCHMARKS)}")
    p.add_argument("--results", type=Path, default=RESULTS,
                   help="the JSON file the figures are merged into (default: %(default)s)")
    p.add_argument("--workdir", help="where temporary output folders go (default: $TMPDIR)")
    hr = p.add_argument_group("hop_rate")
    hr.add_argument("--scenario", choices=sorted(hop_rate.SCENARIOS),
                    help=f"the workload (default: {hop_rate.DEFAULT_SCENARIO})")
    hr.add_argument("--segments", type=int, help="payload in MSS-sized segments, each way "
                    "(default: 20000; 2000 with --quick)")
    hr.add_argument("--repeats", type=int, help="timed runs, the median is reported "
                    "(default: 3; 1 with --quick)")
    hr.add_argument("--sample", type=int, help="frames the scapy reference handles per run "
                    "(default: 2000; 500 with --quick)")
    hr.add_argument("--profile", action="store_true",
                    help="also profile one run (cProfile, top 15 by own time)")
    pr = p.add_argument_group("properties (also takes --repeats and --profile)")
    pr.add_argument("--examples", type=int, help="hypothesis examples: random 3-node clusters "
                    "with 5 flows each (default: 100; 10 with --quick)")
    me = p.add_argument_group("memory")
    me.add_argument("--mem-workload", choices=sorted(memory.WORKLOADS),
                    help=f"the workload (default: {memory.DEFAULT_WORKLOAD})")
    me.add_argument("--mem-small", type=int, help="packets of the short run "
                    "(default: 10000; 1000 with --quick)")
    me.add_argument("--mem-large", type=int, help="packets of the long run "
                    "(default: 100000; 10000 with --quick)")
    me.add_argument("--mem-diagnose", action="store_true", help="also compare tracemalloc "
                    "snapshots of both runs when the ratio is within target")
    sc = p.add_argument_group("scale (also takes --profile: the largest size's load + build)")
    sc.add_argument("--nodes", type=int, nargs="+", help="cluster sizes in nodes, each in a "
                    "fresh process (default: 100 1000 5000; 10 30 with --quick)")
    sc.add_argument("--nat-repeats", type=int, help="NAT decisions timed per size "
                    "(default: 2000; 300 with --quick)")
    po = p.add_argument_group("policy")
    po.add_argument("--policy-repeats", type=int, help="filter decisions timed per size "
                    "(default: 2000; 200 with --quick)")
    cl = p.add_argument_group("cli")
    cl.add_argument("--cli-rounds", type=int, help="rounds of the three commands, each in a "
                    "fresh interpreter (default: 30; 3 with --quick)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    for name in ("segments", "repeats", "sample", "examples", "mem_small", "mem_large",
                 "nat_repeats", "policy_repeats", "cli_rounds"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser().error(f"--{name.replace('_', '-')} must be at least 1")
    if args.nodes and min(args.nodes) < 2:
        parser().error("--nodes must be at least 2")
    names = args.only or list(BENCHMARKS)
    print(f"benchmarks: {', '.join(names)}{' (quick)' if args.quick else ''}; {python_line()}",
          flush=True)
    outcomes = [BENCHMARKS[name](args) for name in names]
    write_results(outcomes, args.results)
    print(f"benchmarks: results merged into {args.results}")
    for outcome in outcomes:
        for line in outcome.lines:
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
