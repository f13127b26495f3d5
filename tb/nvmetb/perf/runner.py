"""Runs benchmark plans: builds the FPGA top under Verilator (``nvmetb.sim.build``,
cached by Verilog text) and runs ``tb/tests/cocotb_perf.py`` on it (``nvmetb.sim.run``),
one simulation per plan. The simulation prints a line per finished job (the progress);
the runner adds one per plan and returns the figures the simulation wrote.
"""

import json
import os
import sys
import tempfile
import time
from pathlib import Path

from nvmecore import CoreConfig
from nvmecore.cli import USP_TOP_NAME
from nvmetb.sim import BUILD_ROOT, CONFIG_ENV, build, config_to_env, run, run_dir, verilog_for

__all__ = ["run_plan", "PLAN_ENV", "say"]

PLAN_ENV = "NVMETB_PERF_PLAN"
SIM = "verilator"


def say(text):
    print(f"[bench] {text}", flush=True)


def run_plan(config: CoreConfig, plan: dict, name: str, *, quiet=False) -> list:
    """Run ``plan`` (see ``cocotb_perf``) on the top built from ``config``; the list of
    jobs with their figures. ``name`` names the run directory."""
    started = time.monotonic()
    verilog = verilog_for(config, USP_TOP_NAME)
    build_dir = build(SIM, verilog, USP_TOP_NAME)
    built = time.monotonic()
    work = run_dir(f"bench-{name}")
    with tempfile.NamedTemporaryFile("w", suffix=".json", dir=BUILD_ROOT, delete=False) as f:
        out = Path(f.name)
    plan = {**plan, "name": name, "out": str(out)}
    if not quiet:
        say(f"{name}: {len(plan['jobs'])} jobs on {USP_TOP_NAME} ({config.data_width} bits, "
            f"{config.io_queues} queues, {config.backend}{', debug' if config.debug else ''}), "
            f"host latency {plan['latency']} cycles, RCB {plan['rcb']} B "
            f"(build {built - started:.0f} s)")
    env = {CONFIG_ENV: config_to_env(config), PLAN_ENV: json.dumps(plan),
           # cocotbext-pcie's deprecation warnings would bury the progress lines.
           "COCOTB_LOG_LEVEL": os.environ.get("COCOTB_LOG_LEVEL", "ERROR"),
           "PYTHONWARNINGS": os.environ.get("PYTHONWARNINGS", "ignore::DeprecationWarning")}
    try:
        run(SIM, build_dir, USP_TOP_NAME, "cocotb_perf", "perf", work, env=env)
        results = json.loads(out.read_text())
    finally:
        out.unlink(missing_ok=True)
    if not quiet:
        say(f"{name}: done in {time.monotonic() - started:.0f} s")
    sys.stdout.flush()
    return results


# -- What is measured ------------------------------------------------------------------------

#: Host memory latencies reported: none (the bench's minimum, one cycle) and 1 µs.
LATENCIES = (0, 250)
SIZES = (512, 4096, 128 * 1024)
#: Queues and depth per queue for the I/O figures: 128 commands offered, more than the
#: core's I/O slots (CoreConfig.io_slots) take.
IO_QUEUES, IO_DEPTH = 4, 32
NULL_QUEUES, NULL_DEPTH = 4, 64
DEPTHS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
SWEEP_QUEUES = (1, 2, 4, 8, 16, 32, 64)
IRQ_MODES = ("each", "coalesced", "off")


def _count(size, quick):
    """(count, warmup) for an I/O figure: about 60-120k cycles of measurement."""
    count = {512: 1000, 4096: 400, 128 * 1024: 16}[size]
    warmup = {512: 64, 4096: 64, 128 * 1024: 8}[size]
    if quick:
        count //= 4
    return count, warmup


def _null(queues, depth, irq, quick=False):
    # The host fills every queue to its depth at once and keeps it there through the
    # window (bench.PerfBench.closed_loop); the warm-up covers the start.
    outstanding = queues * depth
    count = max(64, min(2000, 16 * outstanding))
    if quick:
        count = max(64, count // 4)
    return {"kind": "null", "queues": queues, "depth": depth, "irq": irq,
            "count": count, "warmup": max(16, min(outstanding, 256))}


def _io(op, size, queues=IO_QUEUES, depth=None, quick=False, count=None):
    n, warmup = _count(size, quick)
    if depth is None:
        # 128 KiB commands: 4 x 2 keeps 1 MiB in flight, plenty for the interface, and
        # the queues drain after the window in a few commands' time.
        depth = IO_DEPTH if size < 64 * 1024 else 2
    count = count or n
    if queues * depth < 8:
        count, warmup = max(8, count // 8), 4
    # The interfaces' load (RQ / RC beats per command) beside the ceiling model's.
    return {"kind": "io", "op": op, "size": size, "queues": queues, "depth": depth,
            "count": count, "warmup": warmup, "beats": not quick}


#: A build sized for 1 us of host latency: 16 SQ reads in flight (8 entries each at a
#: 512 B max read request size) and 128 I/O slots, against the defaults' 4 and 32.
DEEP_FETCH = {"sq_fetch_reads": 16, "io_slots": 128}
DEEP_FETCH_RUN = ("w256-lat250-reads16", CoreConfig(**DEEP_FETCH), {
    "latency": 250, "rcb": 64, "io_queues": NULL_QUEUES,
    "jobs": [_null(1, 256, "each"), _null(NULL_QUEUES, NULL_DEPTH, "each"),
             _null(NULL_QUEUES, NULL_DEPTH, "off"),
             _io("read", 512), _io("write", 512), _io("read", 4096)]})


def suite(*, quick=False, sweep=False, debug=False):
    """The runs of a benchmark: [(name, CoreConfig, plan)]. ``debug``: measure the debug
    build instead of the shipped one (same datapath, extra test ports)."""
    def config(**kw):
        extra = {"debug": True} if debug else {}
        return CoreConfig(**kw, **extra)

    runs = []
    sizes = SIZES if not quick else (512, 4096)
    for latency in LATENCIES:
        jobs = [{"kind": "latency", "repeat": 3 if quick else 5}]
        jobs += [_null(1, d, "each", quick) for d in ((1, 4, 16, 64) if quick else DEPTHS)]
        jobs += [_null(NULL_QUEUES, NULL_DEPTH, irq, quick) for irq in IRQ_MODES]
        jobs += [_io("read", 4096, 1, d, quick, count=100) for d in
                 ((1, 8, 32) if quick else (1, 2, 4, 8, 16, 32))]
        jobs += [_io(op, size, quick=quick) for size in sizes for op in ("read", "write")]
        runs.append((f"w256-lat{latency}", config(),
                     {"latency": latency, "rcb": 64, "io_queues": NULL_QUEUES, "jobs": jobs}))
    if not quick:
        for latency in LATENCIES:
            jobs = [{"kind": "latency", "repeat": 3}, _null(NULL_QUEUES, NULL_DEPTH, "each")]
            jobs += [_io(op, size) for size in SIZES for op in ("read", "write")]
            runs.append((f"w512-lat{latency}", config(data_width=512),
                         {"latency": latency, "rcb": 64, "io_queues": NULL_QUEUES,
                          "jobs": jobs}))
        jobs = [_io(op, size) for size in (512, 4096) for op in ("read", "write")]
        runs.append(("w256-lat250-rcb128", config(),
                     {"latency": 250, "rcb": 128, "io_queues": IO_QUEUES, "jobs": jobs}))
        # a 128 B RCB halves a read's completion headers: 512-bit Writes at 1 us are
        # bound by the headers at 64 B (ceiling.py), by RC at 128 B
        runs.append(("w512-lat250-rcb128", config(data_width=512),
                     {"latency": 250, "rcb": 128, "io_queues": IO_QUEUES, "jobs": jobs}))
        # The AXI4 backend: cocotbext-axi's RAM with no wait states behind m_axi_*.
        jobs = [{"kind": "latency", "repeat": 3}]
        jobs += [_io(op, size) for size in (4096, 128 * 1024) for op in ("read", "write")]
        runs.append(("axi-w256-lat250", config(backend="axi"),
                     {"latency": 250, "rcb": 64, "io_queues": IO_QUEUES, "jobs": jobs}))
        runs.append(DEEP_FETCH_RUN if not debug else
                    (DEEP_FETCH_RUN[0], config(**DEEP_FETCH), DEEP_FETCH_RUN[2]))
    if sweep:
        for latency in LATENCIES:
            jobs = [_null(q, d, irq) for irq in IRQ_MODES for q in SWEEP_QUEUES
                    for d in DEPTHS]
            runs.append((f"sweep-q64-lat{latency}", config(io_queues=64),
                         {"latency": latency, "rcb": 64, "io_queues": 64, "jobs": jobs}))
    return runs


#: The regression guard's run (tb/tests/test_bench_guard.py): a few figures on the
#: 256-bit debug build that tests/test_usp_rtl.py builds anyway, under 30 s simulated.
GUARD_CONFIG = CoreConfig(debug=True, completion_timeout=2000)
GUARD_PLAN = {"latency": 0, "rcb": 64, "io_queues": NULL_QUEUES, "jobs": [
    {"kind": "latency", "repeat": 3},
    _null(1, 1, "each"),
    _null(NULL_QUEUES, NULL_DEPTH, "each"),
    {"kind": "io", "op": "read", "size": 4096, "queues": IO_QUEUES, "depth": IO_DEPTH,
     "count": 150, "warmup": 64},
    {"kind": "io", "op": "write", "size": 512, "queues": IO_QUEUES, "depth": IO_DEPTH,
     "count": 600, "warmup": 64},
]}


def run_suite(runs, jobs=2):
    """Run every (name, config, plan): ({name: {"config", "plan", "results"}}, [failed
    run names]). Runs go to ``jobs`` worker processes (each simulation is one process
    anyway); a failed run is reported and the others go on."""
    from concurrent.futures import ProcessPoolExecutor

    say(f"{len(runs)} simulations, {sum(len(p['jobs']) for _, _, p in runs)} measurements, "
        f"{jobs} at a time")
    out, failed = {}, []

    def collect(name, config, plan, result):
        try:
            out[name] = _entry(config, plan, result())
        except Exception as error:          # a failing run must not lose the others
            say(f"{name}: FAILED: {error}")
            failed.append(name)

    if jobs <= 1:
        for name, config, plan in runs:
            collect(name, config, plan, lambda c=config, p=plan, n=name: run_plan(c, p, n))
        return out, failed
    with ProcessPoolExecutor(jobs) as pool:
        # Every build first, ``jobs`` at a time, so that no worker waits on another's
        # build lock while the simulations run.
        for line in pool.map(_build, dict.fromkeys(c for _, c, _ in runs)):
            say(line)
        futures = [(name, config, plan, pool.submit(run_plan, config, plan, name))
                   for name, config, plan in runs]
        for name, config, plan, future in futures:
            collect(name, config, plan, future.result)
    return {name: out[name] for name, _, _ in runs if name in out}, failed


def _build(config):
    started = time.monotonic()
    build(SIM, verilog_for(config, USP_TOP_NAME), USP_TOP_NAME)
    return (f"build of {config.data_width} bits, {config.io_queues} queues, {config.backend}"
            f"{', debug' if config.debug else ''}: {time.monotonic() - started:.0f} s")


def _entry(config, plan, results):
    return {"config": {"data_width": config.data_width, "io_queues": config.io_queues,
                       "io_slots": config.io_slots, "backend": config.backend,
                       "sq_fetch_reads": config.sq_fetch_reads,
                       "debug": config.debug},
            "latency": plan["latency"], "rcb": plan["rcb"], "results": results}
