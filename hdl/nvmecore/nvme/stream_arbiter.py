"""Round-robin arbiter of several ``lib.stream`` sources onto one sink.

The lowest-numbered source with ``valid`` after the last one served wins; once the output
is offered, the winner keeps it until the transfer (``amaranth.lib.stream``'s rule: the
offered payload does not change). ``grant`` says which source the output shows.
"""

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..priority import round_robin

__all__ = ["StreamArbiter"]


class StreamArbiter(wiring.Component):
    def __init__(self, shape, count):
        self._count = count
        super().__init__({
            **{f"in{i}": In(stream.Signature(shape)) for i in range(count)},
            "out": Out(stream.Signature(shape)),
            "grant": Out(range(count)),
        })

    @property
    def inputs(self):
        return [getattr(self, f"in{i}") for i in range(self._count)]

    def elaborate(self, platform):
        m = Module()
        count = self._count
        inputs = self.inputs
        last = Signal(range(count))
        held = Signal()
        held_by = Signal(range(count))
        pick = Signal(range(count))
        valid = Cat(*(port.valid for port in inputs))
        m.d.comb += pick.eq(round_robin(m, valid, last, len(pick))[0])
        who = Mux(held, held_by, pick)
        m.d.comb += self.grant.eq(who)
        with m.Switch(who):
            for i, port in enumerate(inputs):
                with m.Case(i):
                    m.d.comb += [self.out.p.eq(port.p), self.out.valid.eq(port.valid),
                                 port.ready.eq(self.out.ready)]
        with m.If(self.out.valid & self.out.ready):
            m.d.sync += [held.eq(0), last.eq(who)]
        with m.Elif(self.out.valid):
            m.d.sync += [held.eq(1), held_by.eq(who)]
        return m
