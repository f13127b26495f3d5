"""Quick tier: the NVM I/O path's gateware in the Amaranth simulator — a small build with
the RAM disk, host driver and reference model in lock step, the namespace image compared
at the end. Two scenarios only (the Amaranth simulator is slow at moving data); every
I/O scenario runs on the Verilog under Icarus and Verilator (test_io_rtl.py)."""

import pytest

from nvmecore import CoreConfig
from nvmetb.bench.amaranth_backend import run_host_scenario
from nvmetb.scenarios.io import IO_SCENARIOS

pytestmark = pytest.mark.quick

CONFIG = CoreConfig(io_queues=4, max_queue_entries=64, data_width=128, debug=True,
                    namespace_bytes=1 << 20)


def test_io_round_trip():
    run_host_scenario(IO_SCENARIOS["io_round_trip"], CONFIG, "busy", seed=1)


@pytest.mark.slow
def test_abort_of_an_unstarted_read():
    """Three 16 KiB Reads ahead of it keep the to-host mover busy, so the Abort finds the
    fourth not yet started: it completes with Abort Requested, the Abort with DW0 = 0.
    (The simulation is deterministic; on other benches the outcome is timing's.)"""
    results = []

    async def scenario(host, bench):
        results.append(await IO_SCENARIOS["abort_io"](host, bench, blocks=32))
    run_host_scenario(scenario, CONFIG, "busy", seed=2)
    assert results == [True], "the Abort did not find the Read before it started"
