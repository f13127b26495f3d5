"""A backend on its own as generated Verilog under cocotb, for the scenarios of
:mod:`nvmetb.scenarios.backend`: clock and reset, the bench's initiator on ``port__*``
and, for an AXI4 backend (a design with ``axi__*`` ports), cocotbext-axi's RAM with
back-pressure, error ranges and the AXI4 rule checker (:func:`~.cocotb_axi.attach_axi_ram`).

    bench = await CocotbBackendBench(dut, config, INITIATOR_SETTINGS["busy"], pause=0.3,
                                     errors=[(0x2000, 0x3000, AxiResp.DECERR)]).start()
    await random_traffic(bench, count=40)
    bench.stop()

:meth:`start` zeroes the whole namespace through the backend first (a RAM disk keeps its
contents from one test to the next in the same simulation).

``errors``: namespace byte ranges ``(start, end, resp)`` whose AXI beats answer ``resp``;
the initiator expects READs, WRITEs and ZEROs touching them to fail.
"""

import logging

from cocotb.clock import Clock
from cocotb.triggers import RisingEdge

from nvmecore.config import CoreConfig

from .behaviour import BackendInitiator, InitiatorSettings
from .cocotb_axi import attach_axi_ram
from .cocotb_port import CocotbInitiator

__all__ = ["CocotbBackendBench", "CLOCK_NS"]

CLOCK_NS = 4          # 250 MHz


class CocotbBackendBench:
    def __init__(self, dut, config: CoreConfig, settings: InitiatorSettings | None = None,
                 *, pause=0.0, errors=(), seed=0, prefix="port", axi_prefix="axi_"):
        self.dut = dut
        self.config = config
        self.log = logging.getLogger("tb")
        self.errors = list(errors)
        self.initiator = BackendInitiator.for_bench(config, settings, errors,
                                                    f"{dut._name}.{prefix}")
        self.namespace = self.initiator.namespace
        self._prefix = prefix
        self._axi_prefix = axi_prefix
        self._pause, self._errors, self._seed = pause, errors, seed
        self.axi = self.rules = None
        self.driver = None

    async def start(self):
        dut, config = self.dut, self.config
        Clock(dut.clk, CLOCK_NS, unit="ns").start()
        dut.rst.value = 1
        self.driver = CocotbInitiator(dut, self.initiator, prefix=self._prefix,
                                      addr_width=config.namespace_addr_width,
                                      data_width=config.data_width).start()
        if hasattr(dut, f"{self._axi_prefix}_awvalid"):
            base = config.axi_base
            self.axi = attach_axi_ram(
                dut, self._axi_prefix, dut.clk, dut.rst, pause=self._pause, seed=self._seed,
                errors=[(base + s, base + e, resp) for s, e, resp in self._errors],
                axi_id=config.axi_id, outstanding=config.axi_outstanding,
                window=(base, base + config.namespace_bytes))
            self.rules = self.axi.rules
        for _ in range(4):
            await RisingEdge(dut.clk)
        dut.rst.value = 0
        await RisingEdge(dut.clk)
        # The RAM disk keeps its contents across the tests of one simulation.
        self.initiator.zero(0, config.namespace_bytes)
        await self.wait_idle()
        return self

    def stop(self):
        self.driver.stop()
        if self.axi is not None:
            self.axi.stop()

    async def ticks(self, n):
        for _ in range(n):
            await RisingEdge(self.dut.clk)

    async def wait_idle(self, timeout=100_000):
        await self.driver.wait_idle(timeout)

    def memory(self):
        if self.axi is None:
            return None
        return bytes(self.axi.read(self.config.axi_base, self.config.namespace_bytes))
