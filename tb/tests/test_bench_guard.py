"""The benchmark's regression guard: a small fixed set of figures (nvmetb.perf.runner
GUARD_PLAN: latency breakdown, null commands at depth 1 and 4 x 64, 4 KiB reads and
512 B writes) on the 256-bit debug build of the FPGA top, the build test_usp_rtl.py makes
(nvmetb.sim.build reuses it: same Verilog, same settings), against the "guard" figures
of docs/bench-baseline.json. Cycle counts are deterministic: a figure more than 2 % worse
than its baseline fails (rewrite the baseline with `make bench ARGS=--write-baseline`
when a change is meant to move it)."""

import json

import pytest

from nvmetb.perf.__main__ import BASELINE
from nvmetb.perf.report import compare, figures
from nvmetb.perf.runner import GUARD_CONFIG, GUARD_PLAN, run_plan


def test_guard_uses_the_adapter_bench_build():
    """The guard adds no Verilator build: it measures test_usp_rtl.py's 256-bit build."""
    import test_usp_rtl

    assert GUARD_CONFIG == test_usp_rtl.CONFIGS[256]


@pytest.mark.verilator
def test_bench_guard():
    baseline = json.loads(BASELINE.read_text())["guard"]
    assert len(baseline) >= 10, "the guard's baseline has too few figures"
    measured = figures({"guard": {"results": run_plan(GUARD_CONFIG, GUARD_PLAN, "guard")}})
    problems = compare(measured, baseline)
    assert not problems, "benchmark figures regressed:\n  " + "\n  ".join(problems)
