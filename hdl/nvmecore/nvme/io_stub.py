"""Command router and the placeholder NVM I/O path.

Commands from SQ 0 go to the admin engine; commands from I/O SQs go to the I/O path.
Until the NVM I/O path exists every I/O command completes with Invalid Opcode (DNR), so
a host that sends I/O sees a clean refusal rather than a hang.
"""

from amaranth import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..config import CoreConfig
from ..layouts import Completion, GenericStatus, StatusCodeType
from .sq_fetch import FetchedCommand

__all__ = ["CommandRouter", "IoStub"]


class CommandRouter(wiring.Component):
    def __init__(self, config: CoreConfig):
        cmd = stream.Signature(FetchedCommand(config))
        super().__init__({"cmd": In(cmd), "admin": Out(cmd), "io": Out(cmd)})

    def elaborate(self, platform):
        m = Module()
        is_admin = self.cmd.p.sqid == 0
        m.d.comb += [
            self.admin.p.eq(self.cmd.p),
            self.io.p.eq(self.cmd.p),
            self.admin.valid.eq(self.cmd.valid & is_admin),
            self.io.valid.eq(self.cmd.valid & ~is_admin),
            self.cmd.ready.eq((is_admin & self.admin.ready) | (~is_admin & self.io.ready)),
        ]
        return m


class IoStub(wiring.Component):
    def __init__(self, config: CoreConfig):
        super().__init__({
            "cmd": In(stream.Signature(FetchedCommand(config))),
            "completion": Out(stream.Signature(Completion)),
            "idle": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        out = self.completion
        m.d.comb += [self.cmd.ready.eq(~out.valid | out.ready), self.idle.eq(~out.valid)]
        with m.If(out.valid & out.ready):
            m.d.sync += out.valid.eq(0)
        with m.If(self.cmd.valid & self.cmd.ready):
            sqe = self.cmd.p.sqe
            m.d.sync += [
                out.valid.eq(1),
                out.p.dw0.eq(0),
                out.p.nsid.eq(sqe.nsid),
                out.p.sqid.eq(self.cmd.p.sqid),
                out.p.cqid.eq(self.cmd.p.cqid),
                out.p.cid.eq(sqe.cdw0.cid),
                out.p.sqhd.eq(self.cmd.p.sqhd),
                out.p.sc.eq(GenericStatus.INVALID_OPCODE.value),
                out.p.sct.eq(StatusCodeType.GENERIC.value),
                out.p.dnr.eq(1),
            ]
        return m
