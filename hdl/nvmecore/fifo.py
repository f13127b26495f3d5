"""A block-RAM FIFO without :class:`amaranth.lib.fifo.SyncFIFOBuffered`'s added cycle.

:class:`BypassFIFO` has SyncFIFOBuffered's interface and storage (a memory of ``depth -
1`` entries read synchronously, so it maps to block RAM, plus the read port's output
register), and a bypass register beside that output: an entry written while the memory is
empty and the output is free (empty, or read in that cycle) goes straight to the bypass
register. So an entry written in cycle t can be read in cycle t + 1, as with
:class:`~amaranth.lib.fifo.SyncFIFO`, without its asynchronous (distributed RAM) read;
SyncFIFOBuffered shows it in t + 2. ``r_data`` costs one multiplexer level (memory output or
bypass register); ``w_rdy`` is SyncFIFOBuffered's (the memory has room).
"""

from amaranth import Elaboratable, Module, Mux, Signal
from amaranth.lib.fifo import FIFOInterface
from amaranth.lib.memory import Memory

__all__ = ["BypassFIFO"]


class BypassFIFO(Elaboratable, FIFOInterface):
    def __init__(self, *, width, depth):
        if depth < 2:
            raise ValueError("BypassFIFO needs a depth of at least 2")
        super().__init__(width=width, depth=depth)
        self.level = Signal(range(depth + 1))

    def elaborate(self, platform):
        m = Module()
        inner_depth = self.depth - 1
        inner_level = Signal(range(inner_depth + 1))
        inner_r_rdy = Signal()
        from_mem = Signal()             # the output shows the memory's read register
        bypass_data = Signal(self.width)

        m.submodules.storage = storage = Memory(shape=self.width, depth=inner_depth, init=[])
        w_port = storage.write_port()
        r_port = storage.read_port(domain="sync")
        produce = Signal(range(inner_depth))
        consume = Signal(range(inner_depth))

        def incr(value):
            return Mux(value == inner_depth - 1, 0, value + 1)

        out_free = ~self.r_rdy | self.r_en
        do_write = self.w_rdy & self.w_en
        do_read = self.r_rdy & self.r_en
        do_inner_read = inner_r_rdy & out_free
        bypass = do_write & ~inner_r_rdy & out_free     # memory empty, output free
        do_inner_write = do_write & ~bypass
        m.d.comb += [
            self.w_rdy.eq(inner_level != inner_depth),
            inner_r_rdy.eq(inner_level != 0),
            self.r_data.eq(Mux(from_mem, r_port.data, bypass_data)),
            self.w_level.eq(self.level),
            self.r_level.eq(self.level),
            w_port.addr.eq(produce),
            w_port.data.eq(self.w_data),
            w_port.en.eq(do_inner_write),
            r_port.addr.eq(consume),
            r_port.en.eq(do_inner_read),
        ]
        with m.If(do_inner_write):
            m.d.sync += produce.eq(incr(produce))
        with m.If(do_inner_read):
            m.d.sync += consume.eq(incr(consume))
        m.d.sync += inner_level.eq(inner_level + do_inner_write - do_inner_read)

        with m.If(do_inner_read):
            m.d.sync += from_mem.eq(1)
        with m.Elif(bypass):
            m.d.sync += [from_mem.eq(0), bypass_data.eq(self.w_data)]
        # The output holds an entry next cycle when the memory has one (it refills the
        # output as it frees), an entry is written (to the output or behind it), or the
        # entry there stays: ``r_en`` reaches one AND term only (LUT depth: the reader's
        # ready logic ends here).
        m.d.sync += self.r_rdy.eq(inner_r_rdy | do_write | (self.r_rdy & ~self.r_en))
        m.d.sync += self.level.eq(self.level + do_write - do_read)
        return m
