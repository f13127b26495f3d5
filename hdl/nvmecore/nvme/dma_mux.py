"""DMA write arbiter: several writers share the core's one in-order DMA write port.

A writer is granted the port for a whole write (header, then data beats up to ``last``),
lowest-numbered writer first. The next write's header may be taken while the data of the
one before is still going (one header ahead at most); its data follow. Writes from one
writer keep their order; a writer that starts a write only after another writer's write
was accepted (the CQ poster's interrupt request after its entry, an entry after the admin
data it completes) is behind it on the port, and PCIe keeps posted writes in order. With
bus mastering disabled no new write starts [PCIe 4.0 §7.5.1.1.3].
"""

from amaranth import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..bus import DmaWrite

__all__ = ["DmaWriteArbiter"]


class DmaWriteArbiter(wiring.Component):
    def __init__(self, width, count):
        self._count = count
        super().__init__({
            **{f"in{i}": In(DmaWrite(width)) for i in range(count)},
            "out": Out(DmaWrite(width)),
            "bus_master_enable": In(1),
            "idle": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        inputs = [getattr(self, f"in{i}") for i in range(self._count)]
        owner = Signal(range(self._count))      # whose command is on the port
        owner_reg = Signal(range(self._count))
        offered = Signal()      # a command is on the port, not yet taken: keep its writer
        cur = Signal(range(self._count))        # whose data is on the port
        busy = Signal()         # a write's command went out, its data has not all gone
        ahead = Signal()        # ... and the next write's command went out too
        nxt = Signal(range(self._count))        # whose

        m.d.comb += self.idle.eq(~busy & ~offered)
        with m.If(offered):
            m.d.comb += owner.eq(owner_reg)
        with m.Else():
            for i, port in reversed(list(enumerate(inputs))):
                with m.If(port.cmd.valid):
                    m.d.comb += owner.eq(i)
        with m.If(self.out.cmd.valid & ~self.out.cmd.ready):
            m.d.sync += [offered.eq(1), owner_reg.eq(owner)]
        with m.Else():
            m.d.sync += offered.eq(0)

        # One command may go ahead of the data of the write before it (the next writer's
        # request is taken while the last beat of this one waits or goes).
        may_cmd = ~ahead & self.bus_master_enable
        with m.Switch(owner):
            for i, port in enumerate(inputs):
                with m.Case(i):
                    m.d.comb += [
                        self.out.cmd.p.eq(port.cmd.p),
                        self.out.cmd.valid.eq(port.cmd.valid & may_cmd),
                        port.cmd.ready.eq(self.out.cmd.ready & may_cmd),
                    ]
        with m.Switch(cur):
            for i, port in enumerate(inputs):
                with m.Case(i):
                    m.d.comb += [
                        self.out.data.p.eq(port.data.p),
                        self.out.data.valid.eq(port.data.valid & busy),
                        port.data.ready.eq(self.out.data.ready & busy),
                    ]

        cmd_taken = self.out.cmd.valid & self.out.cmd.ready
        done = self.out.data.valid & self.out.data.ready & self.out.data.p.last
        with m.If(done):
            # The write ends: the one whose command went ahead (or goes now) follows.
            m.d.sync += [busy.eq(ahead | cmd_taken), ahead.eq(0),
                         cur.eq(Mux(ahead, nxt, owner))]
        with m.Elif(cmd_taken & busy):
            m.d.sync += [ahead.eq(1), nxt.eq(owner)]
        with m.Elif(cmd_taken):
            m.d.sync += [busy.eq(1), cur.eq(owner)]
        return m
