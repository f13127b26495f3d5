"""``python -m nvmetb.perf`` (``make bench``): the cycle-count benchmark.

    python -m nvmetb.perf                  # the default run: docs/benchmark.md, plots, JSON
    python -m nvmetb.perf --quick          # fewer figures and commands (a couple of minutes)
    python -m nvmetb.perf --sweep          # plus queues 1..64 x depth 1..256 (a 64-queue build)
    python -m nvmetb.perf --check          # fail if a figure is > 2 % worse than the baseline
    python -m nvmetb.perf --write-baseline # make this run (and the guard's) the baseline
    python -m nvmetb.perf --report-only    # rewrite report and plots from docs/bench-results.json
"""

import argparse
import json
import sys
import time
from pathlib import Path

from nvmetb.sim import REPO_ROOT

from .report import LATENCY_COMMANDS, compare, figures, write_report
from .runner import GUARD_CONFIG, GUARD_PLAN, run_plan, run_suite, say, suite

DOCS = REPO_ROOT / "docs"
BASELINE = DOCS / "bench-baseline.json"


def guard_figures():
    """The guard's figures (tb/tests/test_bench_guard.py runs the same plan)."""
    results = run_plan(GUARD_CONFIG, GUARD_PLAN, "guard", quiet=True)
    return figures({"guard": {"results": results}})


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m nvmetb.perf", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer figures, fewer commands")
    ap.add_argument("--sweep", action="store_true",
                    help="also the null-command grid over 1..64 queues and depth 1..256")
    ap.add_argument("--check", action="store_true",
                    help="compare with docs/bench-baseline.json; exit 1 on a regression")
    ap.add_argument("--write-baseline", action="store_true",
                    help="write this run's figures (and the guard's) as the baseline")
    ap.add_argument("--report-only", action="store_true",
                    help="no simulation: the report and plots from docs/bench-results.json")
    ap.add_argument("--jobs", type=int, default=2, help="simulations at a time (default 2)")
    ap.add_argument("--debug-build", action="store_true",
                    help="measure the debug build (test ports) instead of the shipped one")
    ap.add_argument("--docs", type=Path, default=None,
                    help="where the outputs go (default docs/; build/bench/ with --quick)")
    args = ap.parse_args(argv)

    mode = "quick" if args.quick else "sweep" if args.sweep else "bench"
    if args.docs is None:
        args.docs = REPO_ROOT / "build" / "bench" if args.quick else DOCS
    failed = []
    if args.report_only:
        saved = json.loads((args.docs / "bench-results.json").read_text())
        results, wall = saved["runs"], saved.get("wall_seconds")
    else:
        started = time.monotonic()
        results, failed = run_suite(
            suite(quick=args.quick, sweep=args.sweep, debug=args.debug_build), jobs=args.jobs)
        wall = time.monotonic() - started
        if failed:
            say(f"failed runs: {', '.join(failed)} (not in the report)")
            if not results:
                return 1
    command = "make bench" + (" QUICK=1" if args.quick else " SWEEP=1" if args.sweep else "")
    for path in write_report(results, args.docs, wall, command):
        say(f"wrote {path}")
    measured = figures(results)

    status = 1 if not args.report_only and failed else 0
    if args.check:
        saved = json.loads(BASELINE.read_text())
        baseline = saved.get(mode, {})
        if not baseline and mode == "quick":
            # A quick run counts fewer commands: its latencies compare with the full
            # run's (they do not depend on counts), its rates do not.
            baseline = {k: v for k, v in saved.get("bench", {}).items()
                        if k.split("/")[1] in LATENCY_COMMANDS}
        runs = set(results)
        wanted = {k: v for k, v in baseline.items() if k.split("/")[0] in runs}
        if not wanted:
            say(f"--check: {BASELINE} has no '{mode}' figures for these runs")
            status = 1
        problems = compare(measured, wanted)
        for line in problems:
            say(f"REGRESSION {line}")
        if problems:
            status = 1
        else:
            say(f"--check: {len(wanted)} figures within 2 % of the baseline")
    if args.write_baseline:
        data = json.loads(BASELINE.read_text()) if BASELINE.is_file() else {}
        data["note"] = ("Figures in clock cycles (latencies, or cycles per command): lower "
                        "is better; a figure more than 2 % above its baseline is a "
                        "regression. Written by `python -m nvmetb.perf --write-baseline`.")
        data[mode] = measured
        say("running the guard's plan for its baseline")
        data["guard"] = guard_figures()
        BASELINE.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
        say(f"wrote {BASELINE}")
    return status


if __name__ == "__main__":
    sys.exit(main())
