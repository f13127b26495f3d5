"""Stateful random differential testing (``nvmetb.stateful``): Hypothesis rule-based
state machines on the Amaranth simulation of the core, the reference model in lock step.
CI runs a small fixed, derandomised example budget (quick tier); ``make soak
EXAMPLES=N`` runs N examples per shard, a shard per pytest-xdist worker, each with its
own random seed (``NVMETB_SHARDS``, default 2), and prints commands per second."""

import os
import time

import pytest
from hypothesis import HealthCheck
from hypothesis.stateful import run_state_machine_as_test

from nvmetb.stateful import EXAMPLES_ENV, DifferentialMachine, SimServer, machine_settings

SHARDS = int(os.environ.get("NVMETB_SHARDS", "2"))


def _run(examples, steps=8, **kwargs):
    server = SimServer()
    start = time.monotonic()
    try:
        DifferentialMachine.server = server
        run_state_machine_as_test(DifferentialMachine, settings=machine_settings(
            examples, steps, suppress_health_check=list(HealthCheck), **kwargs))
    finally:
        DifferentialMachine.server = None
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
def test_differential_soak(shard):
    _run(int(os.environ[EXAMPLES_ENV]))
