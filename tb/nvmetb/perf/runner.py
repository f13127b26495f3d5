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
from nvmecore.cli import USP_TOP_NAME, generate_usp_verilog
from nvmetb.sim import BUILD_ROOT, CONFIG_ENV, build, config_to_env, run, run_dir

__all__ = ["run_plan", "PLAN_ENV", "say"]

PLAN_ENV = "NVMETB_PERF_PLAN"
SIM = "verilator"


def say(text):
    print(f"[bench] {text}", flush=True)


def run_plan(config: CoreConfig, plan: dict, name: str, *, quiet=False) -> list:
    """Run ``plan`` (see ``cocotb_perf``) on the top built from ``config``; the list of
    jobs with their figures. ``name`` names the run directory."""
    started = time.monotonic()
    verilog = generate_usp_verilog(config)
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
           "COCOTB_LOG_LEVEL": os.environ.get("COCOTB_LOG_LEVEL", "WARNING")}
    try:
        run(SIM, build_dir, USP_TOP_NAME, "cocotb_perf", "perf", work, env=env)
        results = json.loads(out.read_text())
    finally:
        out.unlink(missing_ok=True)
    if not quiet:
        say(f"{name}: done in {time.monotonic() - started:.0f} s")
    sys.stdout.flush()
    return results
