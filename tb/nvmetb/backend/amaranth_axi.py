"""An AXI4 memory (:class:`~.axi_rules.AxiMemoryModel`) and the AXI4 rule checker
(:class:`~.axi_rules.AxiRules`) on an AXI4 master port in the Amaranth simulator.

    model = AxiMemoryModel(config.data_width, config.namespace_bytes, config.axi_base,
                           AXI_MEMORY_SETTINGS["busy"])
    rules = AxiRules(config.data_width, axi_id=config.axi_id,
                     outstanding=config.axi_outstanding)
    sim.add_process(AmaranthAxiMemory(dut.axi, model, rules).process())

``axi`` is an :class:`~nvmecore.backend.axi.Axi4Signature` master interface (the
backend's ``axi`` member). The process samples every signal at each clock edge, feeds
the checker, then drives the memory's outputs for the next cycle.
"""

from enum import Enum

from .axi_rules import MASTER_SIGNALS, SLAVE_SIGNALS, AxiMemoryModel, AxiRules

__all__ = ["AmaranthAxiMemory"]


class AmaranthAxiMemory:
    def __init__(self, axi, model: AxiMemoryModel, rules: AxiRules | None = None):
        self.axi = axi
        self.model = model
        self.rules = rules

    def process(self):
        axi, model, rules = self.axi, self.model, self.rules
        names = MASTER_SIGNALS + SLAVE_SIGNALS
        signals = [getattr(axi, n) for n in names]

        async def axi_memory(ctx):
            for name in SLAVE_SIGNALS:
                ctx.set(getattr(axi, name), 0)
            async for _, _, *values in ctx.tick().sample(*signals):
                s = {n: v.value if isinstance(v, Enum) else int(v)
                     for n, v in zip(names, values, strict=True)}
                if rules is not None:
                    rules.step(s)
                for name, value in model.step(s).items():
                    ctx.set(getattr(axi, name), value)
        return axi_memory
