"""cocotb tests for the queue engine and admin command set: one test per scenario in
``nvmetb.scenarios.queues``, with fast and busy host memory. Run through pytest
(``test_queues_rtl.py``)."""

import logging

import cocotb

from nvmetb.bench.cocotb_backend import run_host_scenario
from nvmetb.dma.behaviour import DMA_SETTINGS
from nvmetb.scenarios.queues import QUEUE_SCENARIOS
from nvmetb.sim import config_from_env

# The per-scenario summary (what was compared, cycles per CPU second) is at INFO.
logging.getLogger("tb").setLevel(logging.INFO)


def _make_test(name, scenario):
    async def test(dut, dma):
        await run_host_scenario(dut, scenario, config_from_env(), dma, seed=sum(name.encode()))
    test.__name__ = test.__qualname__ = name
    test.__doc__ = scenario.__doc__
    return cocotb.test(cocotb.parametrize(dma=list(DMA_SETTINGS))(test))


for _name, _scenario in QUEUE_SCENARIOS.items():
    globals()[_name] = _make_test(_name, _scenario)
