"""cocotb tests for the adapter-level bench: the FPGA top (``UspTop``) driven on the hard
IP's own interfaces by ``nvmetb.bench.usp_backend`` and ``nvmetb.dma.usp_ports``, the
reference model in lock step. Run through pytest (``test_usp_rtl.py``), which builds the
Verilog and picks a group of tests by name prefix:

- ``reg_*``: every register scenario (``nvmetb.scenarios.registers.SCENARIOS``), fast and
  busy;
- ``host_*``: every host-driver scenario (``nvmetb.scenarios.queues.QUEUE_SCENARIOS``) with
  fast and busy host memory behind RQ / RC (busy alone under Icarus);
- ``usp_*``: the adapter's own scenarios (``nvmetb.scenarios.usp``).
"""

import functools
import logging

import cocotb

from nvmetb.bench.harness import PATTERNS
from nvmetb.bench.usp_backend import run_usp_host_scenario, run_usp_scenario
from nvmetb.dma.usp_ports import FAULT_KINDS, USP_DMA_SETTINGS, UspDmaSettings
from nvmetb.scenarios.io import IO_SCENARIOS
from nvmetb.scenarios.queues import QUEUE_SCENARIOS
from nvmetb.scenarios.registers import SCENARIOS
from nvmetb.scenarios.usp import (
    REGISTER_SCENARIOS,
    extended_tags,
    fetch_fault,
    flr_in_traffic,
    interleaved_fetches,
)
from nvmetb.sim import config_from_env

# Each test logs what it compared and what RQ / RC carried (tags, splits, faults).
logging.getLogger("tb").setLevel(logging.INFO)

#: RC answering with every completion split at the RCB, interleaved and straddled.
STRESS = UspDmaSettings(latency=8, split="rcb", interleave=True, rc_segments=None,
                        seed=5)


def _seed(name):
    return sum(name.encode())


def _named(name, doc, test):
    test.__name__ = test.__qualname__ = name
    test.__doc__ = doc
    return test


def _register_test(name, scenario):
    async def test(dut, pattern):
        await run_usp_scenario(dut, scenario, config_from_env(), PATTERNS[pattern],
                               seed=_seed(name))
    return cocotb.test(cocotb.parametrize(pattern=list(PATTERNS))(
        _named(name, scenario.__doc__, test)))


#: Host memory for the host-driver scenarios: both presets under Verilator; under Icarus
#: (3-5x slower) the busy one alone, which also splits, interleaves and delays.
HOST_DMA = (["busy"] if "icarus" in (getattr(cocotb, "SIM_NAME", None) or "").lower()
            else list(USP_DMA_SETTINGS))


def _host_test(name, scenario):
    async def test(dut, dma):
        await run_usp_host_scenario(dut, scenario, config_from_env(), dma, seed=_seed(name))
    return cocotb.test(cocotb.parametrize(dma=HOST_DMA)(
        _named(name, scenario.__doc__, test)))


for _name, _scenario in SCENARIOS.items():
    globals()[f"reg_{_name}"] = _register_test(f"reg_{_name}", _scenario)
for _name, _scenario in REGISTER_SCENARIOS.items():
    globals()[f"usp_{_name}"] = _register_test(f"usp_{_name}", _scenario)
for _name, _scenario in QUEUE_SCENARIOS.items():
    globals()[f"host_{_name}"] = _host_test(f"host_{_name}", _scenario)


def _io_test(name, scenario):
    """An NVM I/O scenario through the adapter: completions split at the RCB, interleaved
    and straddled, backpressure on RQ; max payload 256 B, max read request 512 B."""
    async def test(dut):
        await run_usp_host_scenario(dut, scenario, config_from_env(), "busy",
                                    seed=_seed(name), max_payload_size=1,
                                    limit_us=IO_LIMIT_US)
    return cocotb.test()(_named(name, scenario.__doc__, test))


#: A simulated bound for an I/O scenario (megabytes at a few GB/s, with faults).
IO_LIMIT_US = 20_000
for _name, _scenario in IO_SCENARIOS.items():
    globals()[f"io_{_name}"] = _io_test(f"io_{_name}", _scenario)


@cocotb.test()
@cocotb.parametrize(kind=list(FAULT_KINDS))
async def usp_fetch_fault(dut, kind):
    """An SQ fetch answered with UR, CA, poisoned data or nothing (completion time-out).
    Without extended tags, so that round robin soon comes back to a timed-out tag."""
    await run_usp_host_scenario(dut, functools.partial(fetch_fault, kind=kind),
                                config_from_env(), settings=STRESS, seed=_seed(kind),
                                ext_tag=False)


@cocotb.test()
async def usp_interleaved_fetches(dut):
    """Multi-entry fetches in flight together: completions split, interleaved, straddled."""
    await run_usp_host_scenario(dut, interleaved_fetches, config_from_env(), settings=STRESS)


@cocotb.test()
@cocotb.parametrize(dma=list(USP_DMA_SETTINGS))
async def usp_flr_in_traffic(dut, dma):
    """Function-level reset with I/O and an Identify transfer in flight, then bring-up."""
    await run_usp_host_scenario(dut, flr_in_traffic, config_from_env(), dma)


@cocotb.test()
@cocotb.parametrize(enabled=[True, False])
async def usp_extended_tags(dut, enabled):
    """Tags below 32 without extended tags, 32 and above with them."""
    await run_usp_host_scenario(dut, functools.partial(extended_tags, enabled=enabled),
                                config_from_env(), "busy", ext_tag=enabled)
