"""Run pktsim's benchmarks: ``python -m benchmarks.run [--quick] [--only NAME]`` (``make bench``).

Each benchmark prints its progress, then its figures and its ratio as the last lines, and
records them under its name in ``benchmarks/results/latest.json`` (other keys are kept).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from benchmarks import hop_rate
from benchmarks.common import RESULTS, Outcome, python_line, write_results


def _hop_rate(args: argparse.Namespace) -> Outcome:
    return hop_rate.run(hop_rate.configure(
        args.quick, scenario=args.scenario, segments=args.segments, repeats=args.repeats,
        sample=args.sample, profile=args.profile or None,
        workdir=Path(args.workdir) if args.workdir else None))


BENCHMARKS: dict[str, Callable[[argparse.Namespace], Outcome]] = {
    hop_rate.NAME: _hop_rate,
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
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    for name in ("segments", "repeats", "sample"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser().error(f"--{name} must be at least 1")
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
