"""Registered-ready skid buffer for a ``lib.stream``: no forward latency.

``i.ready`` is a register (the spare register is empty), so the sink's ``ready`` logic —
however deep — ends at this buffer instead of running on into the source. While the
spare is empty the stream passes straight through (``o`` shows ``i``, same cycle); when
``o`` does not take an offered payload, the buffer keeps it in the spare and shows it
from there until it is taken (``i`` waits meanwhile). ``o.payload`` costs one multiplexer
level; ``o.ready`` reaches only the spare's registers.
"""

from amaranth import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["ReadySkid"]


class ReadySkid(wiring.Component):
    def __init__(self, shape):
        super().__init__({
            "i": In(stream.Signature(shape)),
            "o": Out(stream.Signature(shape)),
            "empty": Out(1),          # nothing kept in the spare
        })

    def elaborate(self, platform):
        m = Module()
        i, o = self.i, self.o
        spare = Signal.like(i.payload)
        kept = Signal()
        m.d.comb += [
            i.ready.eq(~kept),
            o.valid.eq(kept | i.valid),
            o.payload.eq(Mux(kept, spare, i.payload)),
            self.empty.eq(~kept),
        ]
        with m.If(kept):
            with m.If(o.ready):
                m.d.sync += kept.eq(0)
        with m.Elif(i.valid & ~o.ready):
            m.d.sync += [spare.eq(i.payload), kept.eq(1)]
        return m
