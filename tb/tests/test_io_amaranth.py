"""Quick tier: the NVM I/O scenarios (``nvmetb.scenarios.io``) on the gateware in the
Amaranth simulator — a small build with the RAM disk, host driver and reference model in
lock step, the namespace image compared at the end."""

import pytest

from nvmecore import CoreConfig
from nvmetb.bench.amaranth_backend import run_host_scenario
from nvmetb.scenarios.io import IO_SCENARIOS

pytestmark = pytest.mark.quick

CONFIG = CoreConfig(io_queues=4, max_queue_entries=64, data_width=128, debug=True,
                    namespace_bytes=1 << 20)


@pytest.mark.parametrize("scenario", list(IO_SCENARIOS))
def test_io_scenario(scenario):
    run_host_scenario(IO_SCENARIOS[scenario], CONFIG, "busy", seed=sum(scenario.encode()))
