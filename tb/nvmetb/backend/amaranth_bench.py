"""A backend on its own in the Amaranth simulator, for the scenarios of
:mod:`nvmetb.scenarios.backend`: the bench's initiator on its ``port`` and, for an AXI4
backend (a design with an ``axi`` member), :class:`~.axi_rules.AxiMemoryModel` and
:class:`~.axi_rules.AxiRules` on ``axi``.

    bench = AmaranthBackendBench(AxiBackend(config), config, INITIATOR_SETTINGS["busy"],
                                 axi_settings=AXI_MEMORY_SETTINGS["busy"],
                                 errors=[(0x2000, 0x3000, AxiResp.SLVERR)])
    bench.run(random_traffic, count=40)

``errors``: namespace byte ranges ``(start, end, resp)`` whose AXI beats answer
``resp``; the initiator expects READs, WRITEs and ZEROs touching them to fail.
"""

import logging

from amaranth.sim import Simulator

from nvmecore.config import CoreConfig

from .amaranth_axi import AmaranthAxiMemory
from .amaranth_port import AmaranthInitiator, wait_idle
from .axi_rules import AxiMemoryModel, AxiMemorySettings, AxiRules
from .behaviour import BackendInitiator, InitiatorSettings

__all__ = ["AmaranthBackendBench"]


class AmaranthBackendBench:
    def __init__(self, dut, config: CoreConfig, settings: InitiatorSettings | None = None,
                 *, axi_settings: AxiMemorySettings | None = None, errors=(), seed=0):
        self.dut = dut
        self.config = config
        self.log = logging.getLogger("tb")
        self.errors = list(errors)
        self.initiator = BackendInitiator.for_bench(config, settings, errors, type(dut).__name__)
        self.namespace = self.initiator.namespace
        self.sim = Simulator(dut)
        self.sim.add_clock(4e-9)
        self.sim.add_process(AmaranthInitiator(dut.port, self.initiator).process())
        self.model = self.rules = None
        if hasattr(dut, "axi"):
            base = config.axi_base
            self.model = AxiMemoryModel(
                config.data_width, config.namespace_bytes, base, axi_settings,
                errors=[(base + start, base + end, resp) for start, end, resp in errors])
            self.rules = AxiRules(config.data_width, axi_id=config.axi_id,
                                  outstanding=config.axi_outstanding,
                                  window=(base, base + config.namespace_bytes),
                                  record=True)
            self.sim.add_process(AmaranthAxiMemory(dut.axi, self.model, self.rules).process())
        self._ctx = None

    def run(self, scenario, *args, **kwargs):
        """Run ``scenario(self, *args, **kwargs)`` to its end; return what it returns."""
        result = []

        async def testbench(ctx):
            self._ctx = ctx
            result.append(await scenario(self, *args, **kwargs))
        self.sim.add_testbench(testbench)
        self.sim.run()
        return result[0]

    async def ticks(self, n):
        await self._ctx.tick().repeat(n)

    async def wait_idle(self, timeout=30_000):
        await wait_idle(self._ctx, self.initiator, timeout)

    def memory(self):
        if self.model is None:
            return None
        return self.model.read(self.config.axi_base, self.config.namespace_bytes)
