"""cocotb tests for the NVM I/O path at core level: every scenario of
``nvmetb.scenarios.io`` with the host driver, the reference model in lock step and the
namespace compared at the end — on the RAM disk (read through the debug probe) or on
cocotbext-axi's AxiRam behind the AXI4 backend (random pauses on every channel, AXI rules
checked, media errors injected as SLVERR). Run through pytest (``test_io_rtl.py``)."""

import logging

import cocotb

from nvmecore.backend.axi import AxiResp
from nvmetb.backend.cocotb_axi import backend_axi_ram
from nvmetb.bench.cocotb_backend import run_host_scenario
from nvmetb.scenarios.io import IO_SCENARIOS, MEDIA_SCENARIOS
from nvmetb.sim import config_from_env

logging.getLogger("tb").setLevel(logging.INFO)

#: Host memory preset per scenario: the busy one (latency, gaps, stalls) by default; both
#: for the random volume (which test_io_rtl runs under Verilator only).
DMA = {"data_integrity": ["fast", "busy"]}


async def _run(dut, name, scenario, dma):
    config = config_from_env()
    extra, axi = {}, []
    if config.backend == "axi":
        ram = backend_axi_ram(dut, config, "axi_", dut.clk, dut.rst, pause=0.3,
                              seed=len(name))

        def attach():
            axi.append(ram())

        async def namespace():
            return axi[0].read(config.axi_base, config.namespace_bytes)

        def fail_namespace(start, stop):
            axi[0].errors.append((config.axi_base + start, config.axi_base + stop,
                                  AxiResp.SLVERR))
        extra = {"namespace": namespace, "fail_namespace": fail_namespace, "started": attach}
    try:
        await run_host_scenario(dut, scenario, config, dma, seed=sum(name.encode()), **extra)
    finally:
        for ram in axi:
            ram.stop()


def _make_test(name, scenario):
    async def test(dut, dma):
        await _run(dut, name, scenario, dma)
    test.__name__ = test.__qualname__ = name
    test.__doc__ = scenario.__doc__
    return cocotb.test(cocotb.parametrize(dma=DMA.get(name, ["busy"]))(test))


for _name, _scenario in {**IO_SCENARIOS, **MEDIA_SCENARIOS}.items():
    globals()[_name] = _make_test(_name, _scenario)
