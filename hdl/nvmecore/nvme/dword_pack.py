"""DWORD realigners between a command's contiguous data and its DMA requests.

A command's data is one contiguous byte stream; on the host it lies in PRP pieces that
start at any DWORD offset of a page [NVMe 1.4 §4.3], and every DMA request carries its
data packed from bit 0 of its first beat [DESIGN.md §2]. Two blocks move between the two
shapes, a DWORD (32 bits) at a time, one beat per cycle:

- :class:`DwordGather` packs the data of consecutive DMA reads (each ``dwords`` long) into
  a contiguous stream, one command (a run of reads ending with ``end``) after another; a
  command whose length is not a whole number of beats ends with a zero-padded beat.
- :class:`DwordScatter` cuts a contiguous stream into writes of ``dwords`` each, every
  write packed from bit 0 of its first beat.

Each needs one W-bit rotation by a DWORD count per beat (W/32 positions), not a shifter
of twice the width.
"""

from amaranth import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["DwordGather", "DwordScatter", "GatherRequest", "ScatterWrite", "MAX_DWORDS"]

#: The most DWORDs one DMA request carries (4 KiB).
MAX_DWORDS = 1024


class GatherRequest(data.Struct):
    dwords: range(MAX_DWORDS + 1)     # DWORDs the read returns (1 .. 1024)
    end:    1                         # the last read of a command


class ScatterWrite(data.Struct):
    dwords: range(MAX_DWORDS + 1)     # DWORDs of the write (1 .. 1024)


def _rotate_dwords(m, value, amount, lanes, left, name):
    """``value`` (``lanes`` DWORDs) rotated by ``amount`` DWORDs."""
    out = Signal(32 * lanes, name=name)
    with m.Switch(amount):
        for n in range(lanes):
            with m.Case(n):
                m.d.comb += out.eq(value.rotate_left(32 * n) if left
                                   else value.rotate_right(32 * n))
    return out


class DwordGather(wiring.Component):
    """Reads' data in (``i``, one run of beats per :class:`GatherRequest` on ``req``, the
    last with ``last``), commands' data out (``o``, ``last`` on a command's final beat).
    ``error`` on an output beat: some beat of its command so far had ``error``."""

    def __init__(self, width):
        self._width = width
        beat = data.StructLayout({"data": width, "last": 1, "error": 1})
        super().__init__({
            "req": In(stream.Signature(GatherRequest)),
            "i":   In(stream.Signature(beat)),
            "o":   Out(stream.Signature(beat)),
        })

    def elaborate(self, platform):
        m = Module()
        width = self._width
        lanes = width // 32
        lane_bits = max(1, (lanes - 1).bit_length())

        acc = Signal(width)                 # fill DWORDs waiting, from DWORD 0 up
        fill = Signal(lane_bits)
        left = Signal(range(MAX_DWORDS + 1))  # DWORDs still to come in the current read
        started = Signal()                  # `left` holds the current read's count
        error = Signal()                    # an error beat in this command so far
        flush = Signal()                    # a command's padded last beat is due

        o, i, req = self.o, self.i, self.req
        remaining = Mux(started, left, req.p.dwords)
        k = Signal(range(lanes + 1))        # valid DWORDs in this input beat
        m.d.comb += k.eq(Mux(remaining < lanes, remaining, lanes))
        mask = Signal(width)
        for j in range(lanes):
            m.d.comb += mask[32 * j:32 * j + 32].eq(Mux(j < k, 0xFFFF_FFFF, 0))
        rot = _rotate_dwords(m, i.p.data & mask, fill, lanes, left=True, name="gather_rot")
        low = Signal(width)
        high = Signal(width)
        for j in range(lanes):
            below = (j < fill) if j < lanes - 1 else 0     # fill is at most lanes - 1
            part = slice(32 * j, 32 * j + 32)
            m.d.comb += [low[part].eq(Mux(below, acc[part], rot[part])),
                         high[part].eq(Mux(below, rot[part], 0))]
        total = Signal(range(2 * lanes + 1))
        m.d.comb += total.eq(fill + k)
        ends_read = k == remaining
        ends_cmd = ends_read & req.p.end
        err = error | i.p.error

        with m.If(flush):
            m.d.comb += [o.valid.eq(1), o.p.data.eq(acc), o.p.last.eq(1), o.p.error.eq(error)]
            with m.If(o.ready):
                m.d.sync += [flush.eq(0), fill.eq(0), acc.eq(0), error.eq(0)]
        with m.Elif(i.valid & (started | req.valid)):
            full = total >= lanes
            # An output beat goes out when a beat is full, or the command ends here.
            emit = full | ends_cmd
            m.d.comb += [
                o.valid.eq(emit),
                o.p.data.eq(low),
                o.p.last.eq(ends_cmd & (total <= lanes)),
                o.p.error.eq(err),
                i.ready.eq(~emit | o.ready),
            ]
            with m.If(i.ready):
                m.d.sync += [left.eq(remaining - k), started.eq(~ends_read), error.eq(err)]
                m.d.comb += req.ready.eq(ends_read)
                with m.If(full):
                    m.d.sync += [acc.eq(high), fill.eq(total - lanes)]
                with m.Else():
                    m.d.sync += [acc.eq(low), fill.eq(total)]
                with m.If(ends_cmd):
                    with m.If(total > lanes):
                        m.d.sync += flush.eq(1)          # the rest, padded, next cycle
                    with m.Else():
                        m.d.sync += [fill.eq(0), acc.eq(0), error.eq(0)]
        return m


class DwordScatter(wiring.Component):
    """A contiguous stream in (``i``; ``last`` is ignored), writes out (``o``): for each
    :class:`ScatterWrite` on ``wr``, ⌈dwords / (W/32)⌉ beats packed from bit 0, the last
    with ``last``. The writes' DWORDs must add up to the input's, a beat at a time."""

    def __init__(self, width):
        self._width = width
        super().__init__({
            "wr": In(stream.Signature(ScatterWrite)),
            "i":  In(stream.Signature(data.StructLayout({"data": width, "last": 1}))),
            "o":  Out(stream.Signature(data.StructLayout({"data": width, "last": 1}))),
        })

    def elaborate(self, platform):
        m = Module()
        width = self._width
        lanes = width // 32
        lane_bits = max(1, (lanes - 1).bit_length())

        # A window of two input beats, `cur` then `nxt`; `pos` is the next unread DWORD
        # of `cur`.
        cur = Signal(width)
        nxt = Signal(width)
        cur_ok = Signal()
        nxt_ok = Signal()
        pos = Signal(lane_bits)
        left = Signal(range(MAX_DWORDS + 1))   # DWORDs of the current write still to go
        started = Signal()

        o, i, wr = self.o, self.i, self.wr
        remaining = Mux(started, left, wr.p.dwords)
        k = Signal(range(lanes + 1))
        m.d.comb += k.eq(Mux(remaining < lanes, remaining, lanes))
        end = Signal(range(2 * lanes + 1))
        m.d.comb += end.eq(pos + k)
        # Output DWORD j is window DWORD pos + j: from cur for j < lanes - pos, else nxt.
        cur_rot = _rotate_dwords(m, cur, pos, lanes, left=False, name="scatter_cur")
        nxt_rot = _rotate_dwords(m, nxt, pos, lanes, left=False, name="scatter_nxt")
        word = Signal(width)
        for j in range(lanes):
            # Lanes past the write's end are zero, so the offered beat never changes while
            # it waits (the window may refill behind it).
            part = slice(32 * j, 32 * j + 32)
            m.d.comb += word[part].eq(Mux(j >= k, 0,
                                          Mux(j < lanes - pos, cur_rot[part], nxt_rot[part])))

        can = (wr.valid | started) & cur_ok & ((end <= lanes) | nxt_ok)
        done_write = k == remaining
        consumed = can & o.ready & (end >= lanes)      # `cur` is used up
        m.d.comb += [
            o.valid.eq(can),
            o.p.data.eq(word),
            o.p.last.eq(done_write),
        ]
        with m.If(can & o.ready):
            m.d.comb += wr.ready.eq(done_write)
            m.d.sync += [left.eq(remaining - k), started.eq(~done_write),
                         pos.eq(Mux(end >= lanes, end - lanes, end))]

        # Refill the window: `cur` from `nxt` or the input as it empties.
        take = Signal()
        with m.If(consumed):
            m.d.sync += [cur.eq(nxt), cur_ok.eq(nxt_ok), nxt_ok.eq(0)]
            m.d.comb += take.eq(1)
        with m.Elif(~cur_ok):
            m.d.comb += take.eq(1)
        with m.Elif(~nxt_ok):
            m.d.comb += take.eq(1)
        m.d.comb += i.ready.eq(take)
        with m.If(i.valid & take):
            with m.If(consumed):
                with m.If(nxt_ok):
                    m.d.sync += [nxt.eq(i.p.data), nxt_ok.eq(1)]
                with m.Else():
                    m.d.sync += [cur.eq(i.p.data), cur_ok.eq(1)]
            with m.Elif(~cur_ok):
                m.d.sync += [cur.eq(i.p.data), cur_ok.eq(1)]
            with m.Else():
                m.d.sync += [nxt.eq(i.p.data), nxt_ok.eq(1)]
        return m
