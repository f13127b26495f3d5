"""Quick tier (all but NOT_QUICK): the queue and admin scenarios in the Amaranth
simulator on a small build, host driver and reference model in lock step, with the slow
and bursty host memory (the Verilog tiers run both host memory presets)."""

import pytest

from nvmecore import CoreConfig
from nvmetb.bench.amaranth_backend import run_host_scenario
from nvmetb.scenarios.queues import QUEUE_SCENARIOS

CONFIG = CoreConfig(io_queues=4, max_queue_entries=64, data_width=128, debug=True,
                    dma_read_timeout=2000)
pytestmark = pytest.mark.quick

#: Too long for the quick tier's 2-minute budget (10-20 s each here): in the full run only
#: (``make test``), where the Verilog tiers run them too.
NOT_QUICK = {"delete_sq_beside_busy_sq", "fetch_timeout", "admin_status_paths",
             "more_status_paths", "reset_in_traffic", "io_queue_laps", "fetch_error"}


@pytest.mark.parametrize("scenario", [
    pytest.param(name, marks=pytest.mark.slow if name in NOT_QUICK else ())
    for name in QUEUE_SCENARIOS])
def test_scenario(scenario):
    run_host_scenario(QUEUE_SCENARIOS[scenario], CONFIG, "busy", seed=sum(scenario.encode()))
