"""Quick tier: the queue and admin scenarios in the Amaranth simulator on a small build,
host driver and reference model in lock step, with the slow and bursty host memory (the
Verilog tiers run both host memory presets)."""

import pytest

from nvmecore import CoreConfig
from nvmetb.bench.amaranth_backend import run_host_scenario
from nvmetb.scenarios.queues import QUEUE_SCENARIOS

pytestmark = pytest.mark.quick

CONFIG = CoreConfig(io_queues=4, max_queue_entries=64, data_width=128, debug=True)


@pytest.mark.parametrize("scenario", list(QUEUE_SCENARIOS))
def test_scenario(scenario):
    run_host_scenario(QUEUE_SCENARIOS[scenario], CONFIG, "busy", seed=sum(scenario.encode()))
