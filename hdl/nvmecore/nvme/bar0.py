"""BAR0 decoder: the register bus (DESIGN.md §2) fanned out to the register blocks.

0x0000-0x0FFF controller registers, 0x1000-0x1FFF doorbells, 0x2000-0x3FFF MSI-X table
and PBA. One access at a time: a request is taken when no block is busy and no read
response is waiting; read data comes back in request order, two cycles after the request.
"""

from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..bus import RegisterBus, RegisterPort

__all__ = ["Bar0Decoder"]


class Bar0Decoder(wiring.Component):
    bus: In(RegisterBus())
    ctrl: Out(RegisterPort())
    doorbell: Out(RegisterPort())
    msix: Out(RegisterPort())

    def elaborate(self, platform):
        m = Module()
        req, resp = self.bus.req, self.bus.resp
        ports = (self.ctrl, self.doorbell, self.msix)

        region = Signal(2)
        m.d.comb += region.eq(req.p.addr[12:14].as_unsigned())

        read_pending = Signal()
        read_region = Signal(2)
        busy = Signal()
        m.d.comb += [
            busy.eq(self.ctrl.busy | self.doorbell.busy | self.msix.busy),
            req.ready.eq(~busy & ~read_pending & ~resp.valid),
        ]
        take = req.valid & req.ready

        for index, port in enumerate(ports):
            selected = (region == index) if index < 2 else region[1]
            m.d.comb += [
                port.addr.eq(req.p.addr),
                port.be.eq(req.p.be),
                port.wdata.eq(req.p.data),
                port.w_stb.eq(take & req.p.write & selected),
                port.r_stb.eq(take & ~req.p.write & selected),
            ]

        with m.If(take & ~req.p.write):
            m.d.sync += [read_pending.eq(1), read_region.eq(region)]
        with m.If(read_pending):
            m.d.sync += [read_pending.eq(0), resp.valid.eq(1)]
            with m.Switch(read_region):
                with m.Case(0):
                    m.d.sync += resp.payload.eq(self.ctrl.rdata)
                with m.Case(1):
                    m.d.sync += resp.payload.eq(self.doorbell.rdata)
                with m.Default():
                    m.d.sync += resp.payload.eq(self.msix.rdata)
        with m.Elif(resp.ready):
            m.d.sync += resp.valid.eq(0)
        return m
