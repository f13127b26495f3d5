"""Interrupt unit: routes a CQ's interrupt to MSI-X or to the INTx pin.

With MSI-X enabled, raising vector v asks the MSI-X table to send it (masking and the
pending bit array are the table's business). With MSI-X disabled, vector v's pending
level is set and INTx is asserted while any pending vector is not masked by INTMS, as
QEMU's nvme_irq_check does [NVMe 1.4 §7.5.1]; withdrawing the request (the CQ became
empty) clears the level. A controller reset clears every pending level.
"""

from amaranth import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..config import CoreConfig
from ..layouts import IrqRequest

__all__ = ["InterruptUnit", "INTX_LEVELS"]

#: INTMS / INTMC have one bit per vector, 32 in all; with pin-based interrupts vector v
#: uses bit v mod 32 (only vector 0 is valid there; a queue keeps its vector when MSI-X
#: is switched off under it).
INTX_LEVELS = 32


class InterruptUnit(wiring.Component):
    def __init__(self, config: CoreConfig):
        self._config = config
        super().__init__({
            "request": In(stream.Signature(IrqRequest)),
            "msix": Out(stream.Signature(config.vector_width)),
            "msix_enable": In(1),
            "intms": In(32),
            "ctrl_reset": In(1),
            "intx": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        req = self.request
        pending = Signal(INTX_LEVELS)
        level = req.p.vector[:5]

        config = self._config
        m.d.comb += self.msix.p.eq(req.p.vector)
        with m.If(req.p.deassert):
            m.d.comb += req.ready.eq(1)
            with m.If(req.valid):
                m.d.sync += pending.bit_select(level, 1).eq(0)
        with m.Elif(self.msix_enable & (req.p.vector >= config.msix_vectors)):
            m.d.comb += req.ready.eq(1)            # no such vector: nothing to send
        with m.Elif(self.msix_enable):
            m.d.comb += [self.msix.valid.eq(req.valid), req.ready.eq(self.msix.ready)]
        with m.Else():
            m.d.comb += req.ready.eq(1)
            with m.If(req.valid):
                m.d.sync += pending.bit_select(level, 1).eq(1)
        with m.If(self.ctrl_reset):
            m.d.sync += pending.eq(0)

        intx = Signal()
        m.d.sync += intx.eq(~self.msix_enable & (pending & ~self.intms).any())
        m.d.comb += self.intx.eq(intx)
        return m
