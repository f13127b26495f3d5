"""One ``done`` stream from two: a backend's read side and write side each finish
commands on their own, and the core sees a single ``done`` stream (docs/backend.md)."""

from amaranth import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .interface import BackendDone

__all__ = ["DoneMerge"]


class DoneMerge(wiring.Component):
    """Merges two ``done`` streams into a registered one, taking turns when both wait.

    ``out`` is a register (valid and payload never change before ``ready``, whichever
    input arrives next), so a done reaches ``out`` one cycle after it is offered;
    ``out.ready`` passes through to the inputs' ``ready`` in the same cycle, so a
    stream of dones moves at one per cycle.
    """

    a:   In(stream.Signature(BackendDone))
    b:   In(stream.Signature(BackendDone))
    out: Out(stream.Signature(BackendDone))

    def elaborate(self, platform):
        m = Module()
        prefer_b = Signal()             # who goes first when both wait
        free = ~self.out.valid | self.out.ready
        take_a = self.a.valid & (~self.b.valid | ~prefer_b)
        take_b = self.b.valid & ~take_a
        m.d.comb += [
            self.a.ready.eq(free & take_a),
            self.b.ready.eq(free & take_b),
        ]
        with m.If(free):
            m.d.sync += self.out.valid.eq(self.a.valid | self.b.valid)
            with m.If(take_a):
                m.d.sync += [self.out.payload.eq(self.a.payload), prefer_b.eq(1)]
            with m.Elif(take_b):
                m.d.sync += [self.out.payload.eq(self.b.payload), prefer_b.eq(0)]
        return m
