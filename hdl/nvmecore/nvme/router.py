"""Command router: commands from SQ 0 go to the admin engine, the others to the I/O engine.

Neither side may hold up the fetch engine's output for long: fetched entries whose DMA data
waits behind a refused command would block the shared read port, and with it the reads
of the I/O commands an admin command (Format NVM, Delete I/O SQ) may be waiting for. So
admin commands wait in a FIFO of ``ADMIN_SLOTS`` entries, and the fetch engine fetches from
the admin SQ only while the FIFO has room for every entry it asks for (``admin_taken``
gives a slot back); I/O commands get the same guarantee from the I/O engine's slots.
"""

from amaranth import Module, Mux, ResetInserter
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from ..config import CoreConfig
from .sq_fetch import FetchedCommand

__all__ = ["CommandRouter", "ADMIN_SLOTS"]

#: Admin commands fetched ahead of the admin engine.
ADMIN_SLOTS = 4


class CommandRouter(wiring.Component):
    def __init__(self, config: CoreConfig):
        self._config = config
        cmd = stream.Signature(FetchedCommand(config))
        super().__init__({
            "cmd": In(cmd),
            "admin": Out(cmd),
            "io": Out(cmd),
            "admin_taken": Out(1),         # an admin command left the FIFO
            "clear": In(1),                # controller reset: drop what waits
            "idle": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        layout = data.Layout.cast(FetchedCommand(self._config))
        # SyncFIFO (first word out the cycle after it is written; a few entries of
        # distributed RAM read asynchronously), not SyncFIFOBuffered's extra cycle.
        queue = fifo.SyncFIFO(width=layout.size, depth=ADMIN_SLOTS)
        m.submodules.queue = ResetInserter(self.clear)(queue)
        is_admin = self.cmd.p.sqid == 0
        m.d.comb += [
            queue.w_data.eq(self.cmd.p),
            queue.w_en.eq(self.cmd.valid & is_admin),
            self.io.p.eq(self.cmd.p),
            self.io.valid.eq(self.cmd.valid & ~is_admin),
            self.cmd.ready.eq(Mux(is_admin, queue.w_rdy, self.io.ready)),
            self.admin.p.eq(queue.r_data),
            self.admin.valid.eq(queue.r_rdy),
            queue.r_en.eq(self.admin.ready),
            self.admin_taken.eq(self.admin.valid & self.admin.ready),
            self.idle.eq(~queue.r_rdy),
        ]
        return m
