"""The stateful differential machine (``nvmetb.stateful``) on the Verilog: Hypothesis in a
thread, each rule run by this cocotb test in simulated time. The example budget comes
from ``NVMETB_EXAMPLES``; derandomised, so CI runs the same sequences every time, unless
``NVMETB_STATEFUL_RANDOM`` is set (a soak shard). Run through pytest
(``test_stateful.py``)."""

import logging
import os

import cocotb

from nvmetb.sim import config_from_env
from nvmetb.stateful import EXAMPLES_ENV, regressions, run_cocotb_machine

log = logging.getLogger("tb")
logging.getLogger("tb").setLevel(logging.INFO)


#: Set (to anything) for random sequences (a soak shard) instead of CI's fixed ones.
RANDOM_ENV = "NVMETB_STATEFUL_RANDOM"


@cocotb.test()
async def stateful(dut):
    examples = int(os.environ.get(EXAMPLES_ENV, "4"))
    server = await run_cocotb_machine(dut, config_from_env(), examples, steps=8,
                                      derandomize=RANDOM_ENV not in os.environ,
                                      database=None)
    log.info("stateful: %d examples, %d NVMe commands", server.examples, server.commands)
    assert server.examples >= examples


@cocotb.test()
async def stateful_regressions(dut):
    """The shrunk failures found so far, as fixed sequences (nvmetb.stateful.regressions)."""
    server = await run_cocotb_machine(dut, config_from_env(), body=regressions)
    assert server.examples == 3
