"""cocotb tests for the core-level bench: one test per scenario in
``nvmetb.scenarios.registers``, each run at full speed and with idle cycles and backpressure.
Run through pytest (``test_core_rtl.py``), which builds the Verilog and picks the test."""

import logging

import cocotb

from nvmetb.bench.cocotb_backend import run_scenario
from nvmetb.bench.harness import PATTERNS
from nvmetb.scenarios.registers import SCENARIOS
from nvmetb.sim import config_from_env

# The per-scenario summary (what was compared, cycles per CPU second) is at INFO.
logging.getLogger("tb").setLevel(logging.INFO)


def _make_test(name, scenario):
    async def test(dut, pattern):
        await run_scenario(dut, scenario, config_from_env(), PATTERNS[pattern],
                           seed=sum(name.encode()))
    test.__name__ = test.__qualname__ = name
    test.__doc__ = scenario.__doc__
    return cocotb.test(cocotb.parametrize(pattern=list(PATTERNS))(test))


for _name, _scenario in SCENARIOS.items():
    globals()[_name] = _make_test(_name, _scenario)
