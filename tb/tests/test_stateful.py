"""Stateful random differential testing (``nvmetb.stateful``): Hypothesis rule-based
state machines on the Amaranth simulation of the core and on the Verilog under
Verilator, the reference model in lock step. CI runs a small fixed, derandomised example
budget on each (the Amaranth one in the quick tier); ``make soak
EXAMPLES=N`` runs N examples per shard, a shard per pytest-xdist worker, each with its
own random seed (``NVMETB_SHARDS``, default 2), and prints commands per second."""

import os
import time

import pytest

from nvmetb.sim import CONFIG_ENV, build, config_to_env, run, run_dir, verilog_for
from nvmetb.stateful import EXAMPLES_ENV, SimServer, run_machine

SHARDS = int(os.environ.get("NVMETB_SHARDS", "2"))


def _run(examples, steps=8, **kwargs):
    server = SimServer()
    start = time.monotonic()
    try:
        run_machine(server, examples, steps, **kwargs)
    finally:
        server.close()
    took = time.monotonic() - start
    print(f"stateful: {server.examples} examples, {server.commands} NVMe commands in "
          f"{took:.1f} s ({server.commands / took * 3600:.0f} per hour)")
    return server


@pytest.mark.quick
def test_differential_quick():
    """A fixed budget, the same sequences every run (derandomised)."""
    server = _run(3, steps=6, derandomize=True, database=None)
    assert server.examples >= 3 and server.commands > 3 * 15


@pytest.mark.skipif(EXAMPLES_ENV not in os.environ, reason="soak: make soak EXAMPLES=N")
@pytest.mark.parametrize("shard", range(SHARDS))
def test_differential_soak_amaranth(shard):
    _run(int(os.environ[EXAMPLES_ENV]))


def _verilator(request, examples, random=False):
    from nvmetb.conformance.targets import CONFIG

    build_dir = build("verilator", verilog_for(CONFIG), "nvmecore")
    env = {CONFIG_ENV: config_to_env(CONFIG), EXAMPLES_ENV: str(examples)}
    if random:
        env["NVMETB_STATEFUL_RANDOM"] = "1"
    start = time.monotonic()
    run("verilator", build_dir, "nvmecore", "cocotb_stateful", None,
        run_dir(request.node.nodeid), env=env)
    print(f"stateful on Verilator: {examples} examples in {time.monotonic() - start:.1f} s "
          f"(commands: the run's log, sim/build/runs/...)")


@pytest.mark.verilator
def test_differential_verilator(request):
    """The same machine on the Verilog under Verilator (the build test_core_rtl makes),
    a fixed derandomised budget (cocotb_stateful.py)."""
    _verilator(request, 4)


@pytest.mark.skipif(EXAMPLES_ENV not in os.environ, reason="soak: make soak EXAMPLES=N")
@pytest.mark.parametrize("shard", range(SHARDS))
def test_differential_soak_verilator(shard, request):
    _verilator(request, int(os.environ[EXAMPLES_ENV]), random=True)
