"""cocotb test on the 511-queue, 256-vector shipped build (``debug=False``): the
Linux-like bring-up of every I/O queue pair (Create I/O CQ and SQ for each, as
nvmetb.host's driver does), then I/O through a sample of the queues spread over the
whole ID range, with the reference model in lock step. Run through pytest
(``test_scale_rtl.py``)."""

import logging

import cocotb

from nvmetb.bench.cocotb_backend import run_host_scenario
from nvmetb.host import PrpLayout, pattern
from nvmetb.scenarios.io import check
from nvmetb.sim import config_from_env

logging.getLogger("tb").setLevel(logging.INFO)

#: Queues the I/O goes through: both ends, both sides of every power of two.
SAMPLE = (1, 2, 63, 64, 65, 255, 256, 257, 510, 511)


@cocotb.test()
async def scale_bring_up(dut):
    config = config_from_env()
    assert not config.debug and config.io_queues == 511

    async def scenario(host, bench):
        pairs = await host.bring_up(io_queues=config.io_queues, queue_entries=4,
                                    vectors=config.msix_vectors)
        check(pairs == config.io_queues, f"{pairs} I/O queue pairs created")
        host.track_namespace()
        size = host.lba_bytes()
        writes = [await host.submit_write(qid, i, pattern(("scale", qid), size),
                                          layout=PrpLayout(offset=4 * i))
                  for i, qid in enumerate(SAMPLE)]
        await host.io_wait_all(writes, check=True)
        # Read each block back through another queue of the sample.
        reads = [await host.submit_read(SAMPLE[-1 - i], i, 1) for i in range(len(SAMPLE))]
        for cmd, write in zip(await host.io_wait_all(reads, check=True), writes,
                              strict=True):
            check(cmd.data == write.payload, f"{cmd}: data differs from {write}")

    scenario.__name__ = "scale_bring_up"
    bench = await run_host_scenario(dut, scenario, config, "fast", seed=3)
    assert bench.compared["cq entries"] >= 2 * config.io_queues
