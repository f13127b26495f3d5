"""Host writer: copies a data structure of up to 4 KiB to host memory through PRP1/PRP2.

Used by the admin engine for Identify data and log pages [NVMe 1.4 §4.3]. PRP1 may
start anywhere DWORD-aligned in a page; when the data goes past that page the rest goes
to PRP2 (page aligned — the caller checks). Every write it issues stays within a page
and within max payload size.

The data comes from a *source*: put a beat index on ``src_beat`` with ``src_en``, read
``src_data`` the next cycle (a synchronous ROM or memory). ``offset`` (DWORD aligned) is
where in the source to start, so the output is realigned a DWORD at a time.
"""

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..bus import DmaWrite

__all__ = ["HostWriter", "HostWriteRequest"]

PAGE = 4096


class HostWriteRequest(data.Struct):
    prp1:   64
    prp2:   64
    length: 13      # bytes, 1..4096
    offset: 13      # byte offset into the source, DWORD aligned


class HostWriter(wiring.Component):
    def __init__(self, width):
        self._width = width
        beats = PAGE * 8 // width
        super().__init__({
            "request":  In(stream.Signature(HostWriteRequest)),
            "dma":      Out(DmaWrite(width)),
            "max_payload_size": In(3),
            "src_beat": Out(range(2 * beats + 2)),
            "src_en":   Out(1),
            "src_data": In(width),
            "idle":     Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        width = self._width
        nbytes = width // 8
        shift_bits = (nbytes - 1).bit_length()

        addr = Signal(64)
        prp2 = Signal(64)
        remaining = Signal(13)          # bytes still to write
        src_off = Signal(14)            # byte offset into the source
        chunk = Signal(13)              # bytes of the current write
        beats_left = Signal(range(PAGE // nbytes + 2))
        word = Signal(range(2 * PAGE // nbytes + 2))
        cur = Signal(width)
        nxt = Signal(width)
        shift = Signal(range(nbytes // 4 + 1))   # DWORDs

        mps = Signal(13)
        m.d.comb += mps.eq(Const(128, 13) << self.max_payload_size)
        to_page = Signal(13)
        m.d.comb += to_page.eq(PAGE - addr[:12])
        in_page = Signal(13)
        m.d.comb += in_page.eq(Mux(to_page < remaining, to_page, remaining))
        size = Signal(13)           # bytes of the next write
        m.d.comb += size.eq(Mux(mps < in_page, mps, in_page))

        m.d.comb += [
            self.dma.cmd.p.addr.eq(addr),
            self.dma.cmd.p.length.eq(size),
            self.dma.data.p.data.eq((Cat(cur, nxt) >> Cat(Const(0, 5), shift))[:width]),
            self.dma.data.p.last.eq(beats_left == 1),
            self.src_beat.eq(word),
        ]

        with m.FSM(name="writer"):
            with m.State("IDLE"):
                m.d.comb += [self.idle.eq(1), self.request.ready.eq(1)]
                with m.If(self.request.valid):
                    m.d.sync += [
                        addr.eq(self.request.p.prp1),
                        prp2.eq(self.request.p.prp2),
                        remaining.eq(self.request.p.length),
                        src_off.eq(self.request.p.offset),
                    ]
                    m.next = "CMD"
            with m.State("CMD"):
                m.d.comb += self.dma.cmd.valid.eq(1)
                with m.If(self.dma.cmd.ready):
                    m.d.sync += [
                        chunk.eq(size),
                        beats_left.eq((size + nbytes - 1) >> shift_bits),
                        word.eq(src_off >> shift_bits),
                        shift.eq(src_off[2:shift_bits] if shift_bits > 2 else 0),
                    ]
                    m.next = "LOAD0"
            with m.State("LOAD0"):
                m.d.comb += self.src_en.eq(1)
                m.d.sync += word.eq(word + 1)
                m.next = "LOAD1"
            with m.State("LOAD1"):
                m.d.comb += self.src_en.eq(1)
                m.d.sync += [cur.eq(self.src_data), word.eq(word + 1)]
                m.next = "WAIT"
            with m.State("WAIT"):
                m.d.sync += nxt.eq(self.src_data)
                m.next = "EMIT"
            with m.State("EMIT"):
                m.d.comb += self.dma.data.valid.eq(1)
                with m.If(self.dma.data.ready):
                    m.d.sync += beats_left.eq(beats_left - 1)
                    with m.If(beats_left == 1):
                        # This write is done: on to the next one, or the next page.
                        next_addr = addr + chunk
                        m.d.sync += [
                            remaining.eq(remaining - chunk),
                            src_off.eq(src_off + chunk),
                            addr.eq(Mux(next_addr[:12] == 0, prp2, next_addr)),
                        ]
                        with m.If(remaining == chunk):
                            m.next = "IDLE"
                        with m.Else():
                            m.next = "CMD"
                    with m.Else():
                        m.d.comb += self.src_en.eq(1)
                        m.d.sync += [cur.eq(nxt), word.eq(word + 1)]
                        m.next = "WAIT"
        return m
