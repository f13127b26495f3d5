"""cocotb tests on the shipped core (``debug=False``: no test ports, exactly what a user
synthesises), driven only through the interfaces a host has: the register bus, the DMA
ports, ``cfg`` and INTx. The host driver brings it up and runs I/O with the reference
model in lock step; every CQ entry, data write and MSI-X message is compared. With no
probe into the RAM disk, the namespace is checked by reading it back through the
controller (``data_integrity``'s final sweep against the host's shadow). Run through
pytest (``test_shipped_rtl.py``)."""

import logging

import cocotb

from nvmetb.bench.cocotb_backend import run_host_scenario
from nvmetb.scenarios.io import data_integrity, io_round_trip
from nvmetb.sim import config_from_env

logging.getLogger("tb").setLevel(logging.INFO)


def _shipped():
    config = config_from_env()
    assert not config.debug, "this bench drives the shipped build (debug=False)"
    return config


@cocotb.test()
async def shipped_round_trip(dut):
    """Bring-up of every I/O queue pair, a pattern through every queue, read back
    through its neighbour."""
    bench = await run_host_scenario(dut, io_round_trip, _shipped(), "busy", seed=1)
    assert bench.compared["cq entries"] > 0 and bench.compared["data bytes"] > 0


@cocotb.test()
async def shipped_data_integrity(dut):
    """Seeded random traffic (every I/O command, random PRP layouts) on the first 512
    blocks, everything read back at the end."""
    async def scenario(host, bench):
        await data_integrity(host, bench, seed=7, count=48, region_blocks=512)
    scenario.__name__ = "data_integrity"
    bench = await run_host_scenario(dut, scenario, _shipped(), "fast", seed=2)
    assert bench.compared["data bytes"] > 0
