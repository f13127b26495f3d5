"""Quick tier (all but NOT_QUICK): the queue and admin scenarios in the Amaranth
simulator on a small build, host driver and reference model in lock step, with the slow
and bursty host memory (the Verilog tiers run both host memory presets)."""

import pytest

from nvmecore import CoreConfig
from nvmetb.bench.amaranth_backend import run_host_scenario
from nvmetb.scenarios.queues import QUEUE_SCENARIOS

CONFIG = CoreConfig(io_queues=4, max_queue_entries=64, data_width=128, debug=True,
                    dma_read_timeout=2000)
#: Too long for the quick tier's budget (10-20 s each here): in the full run only, where
#: the Verilog tiers run it too.
NOT_QUICK = {"delete_sq_beside_busy_sq", "fetch_timeout"}


@pytest.mark.parametrize("scenario", [
    pytest.param(name, marks=() if name in NOT_QUICK else pytest.mark.quick)
    for name in QUEUE_SCENARIOS])
def test_scenario(scenario):
    run_host_scenario(QUEUE_SCENARIOS[scenario], CONFIG, "busy", seed=sum(scenario.encode()))
