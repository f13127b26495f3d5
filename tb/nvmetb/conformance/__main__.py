"""``python -m nvmetb.conformance``: run the conformance scenarios on the targets, print
the table, write it to docs/conformance.md; exit 1 if any scenario failed anywhere.

    python -m nvmetb.conformance                      # model, rtl-icarus, pcie-icarus, qemu
    python -m nvmetb.conformance --targets model qemu
    python -m nvmetb.conformance --scenarios bring_up cq_full --no-write
    python -m nvmetb.conformance --pcie all           # every scenario through the PCIe stack

By default the PCIe stack runs the scenarios marked ``ci_slice`` (its simulation is the
slowest); ``--pcie all`` (``make conformance FULL=1``) runs them all there.
"""

import argparse
import logging
import sys
import time
from pathlib import Path

from . import SCENARIOS, TARGETS
from .report import table_markdown, table_text
from .targets import load, run_model, run_qemu, run_rtl, save

DEFAULT_TARGETS = ("model", "rtl-icarus", "pcie-icarus", "qemu")
ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "conformance.md"
RESULTS = ROOT / "sim" / "build" / "runs" / "conformance-results.json"


def run(targets, names=None, pcie="ci"):
    results = []
    for target in targets:
        start = time.monotonic()
        if target == "model":
            got = run_model(names)
        elif target == "qemu":
            got = run_qemu(names)
        else:
            chosen = names or list(SCENARIOS)
            if target.startswith("pcie") and pcie == "ci":
                chosen = [n for n in chosen if SCENARIOS[n].ci_slice]
            got = run_rtl(target, chosen)
        print(f"--- {target}: {len(got)} scenarios in {time.monotonic() - start:.1f} s",
              flush=True)
        results += got
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m nvmetb.conformance",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--targets", nargs="+", choices=TARGETS, default=DEFAULT_TARGETS)
    parser.add_argument("--scenarios", nargs="+", choices=list(SCENARIOS))
    parser.add_argument("--pcie", choices=("ci", "all"), default="ci")
    parser.add_argument("--output", type=Path, default=DOC)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--results", type=Path, default=RESULTS,
                        help="where the results are kept as JSON (default %(default)s)")
    parser.add_argument("--from-results", action="store_true",
                        help="render the table from --results instead of running")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.CRITICAL)
    if args.from_results:
        results = load(args.results)
    else:
        results = run(args.targets, args.scenarios, args.pcie)
        args.results.parent.mkdir(parents=True, exist_ok=True)
        save(results, args.results)
    print(table_text(results))
    if not args.no_write:
        args.output.write_text(table_markdown(results))
        print(f"--- written to {args.output}")
    return 1 if any(r.result == "fail" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
