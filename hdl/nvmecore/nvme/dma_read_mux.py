"""DMA read arbiter: several requesters share the core's one in-order DMA read port.

Requests are granted round robin; a request offered on the output keeps its requester
until it is taken (``amaranth.lib.stream``'s rule). The requester of every request taken is
queued, so read data, which comes back in request order [DESIGN.md §2], goes to the
requester at the head of that queue until the beat with ``last``. The queue's ``depth``
bounds the reads in flight. With bus mastering disabled no new request goes out
[PCIe 4.0 §7.5.1.1.3].

Every requester must take its data promptly (each sizes its requests to the room it has):
one that stalls holds up the data of every read behind its own.
"""

from amaranth import Module, Mux, Signal
from amaranth.lib import fifo, wiring
from amaranth.lib.wiring import In, Out

from ..bus import DmaRead

__all__ = ["DmaReadArbiter"]


class DmaReadArbiter(wiring.Component):
    def __init__(self, width, count, depth=32):
        self._count = count
        self._depth = depth
        super().__init__({
            **{f"in{i}": In(DmaRead(width)) for i in range(count)},
            "out": Out(DmaRead(width)),
            "bus_master_enable": In(1),
            "idle": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        count = self._count
        inputs = [getattr(self, f"in{i}") for i in range(count)]
        m.submodules.owners = owners = fifo.SyncFIFO(width=max(1, (count - 1).bit_length()),
                                                     depth=self._depth)

        # -- Requests: round robin, held while offered ------------------------------------------
        last = Signal(range(count))         # served last
        held = Signal()                     # a request is on the output, not yet taken
        held_by = Signal(range(count))
        pick = Signal(range(count))
        for i in reversed(range(count)):    # the lowest index with a request ...
            with m.If(inputs[i].req.valid):
                m.d.comb += pick.eq(i)
        for i in reversed(range(1, count)):  # ... or the lowest above the last served
            with m.If(inputs[i].req.valid & (i > last)):
                m.d.comb += pick.eq(i)
        who = Mux(held, held_by, pick)
        out = self.out.req
        go = owners.w_rdy & (self.bus_master_enable | held)
        with m.Switch(who):
            for i, port in enumerate(inputs):
                with m.Case(i):
                    m.d.comb += [
                        out.p.eq(port.req.p),
                        out.valid.eq(port.req.valid & go),
                        port.req.ready.eq(out.ready & go),
                    ]
        m.d.comb += [owners.w_data.eq(who), owners.w_en.eq(out.valid & out.ready)]
        with m.If(out.valid & out.ready):
            m.d.sync += [held.eq(0), last.eq(who)]
        with m.Elif(out.valid):
            m.d.sync += [held.eq(1), held_by.eq(who)]

        # -- Data: to the requester of the oldest read in flight ---------------------------------
        data = self.out.data
        owner = owners.r_data
        for i, port in enumerate(inputs):
            m.d.comb += [
                port.data.p.eq(data.p),
                port.data.valid.eq(data.valid & owners.r_rdy & (owner == i)),
            ]
        with m.Switch(owner):
            for i, port in enumerate(inputs):
                with m.Case(i):
                    m.d.comb += data.ready.eq(port.data.ready & owners.r_rdy)
        m.d.comb += owners.r_en.eq(data.valid & data.ready & data.p.last)
        # Idle: no read in flight (a request offered and never taken is not in flight).
        m.d.comb += self.idle.eq(~owners.r_rdy)
        return m
