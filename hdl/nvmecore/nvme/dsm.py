"""Dataset Management unit: a range list in, deallocations (ZEROs) out [NVMe 1.4 §6.7;
docs/io-commands.md].

The from-host mover hands over the command's range list (``(NR + 1) × 16`` bytes). The
unit keeps it whole, and only if it arrived intact deallocates each range in order: a
range with NLB ≠ 0 that lies inside the namespace (no overflow) becomes one backend ZERO;
the others are skipped (QEMU). Before each ZERO it tells the slot one more part is coming
(``event`` with delta +1), so the command cannot complete before its ZEROs do; after the
last range it reports its own part (Data Transfer Error if the list's read failed).
"""

from amaranth import Cat, Module, Mux, Signal, signed
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..backend.interface import TAG_WIDTH, BackendCommand, BackendOp
from ..config import CoreConfig
from ..layouts import GenericStatus
from ..nvm_layouts import DSM_MAX_RANGES, DSM_RANGE_BYTES, LBA_DATA_SHIFTS, DsmRange
from .from_host import DsmBeat
from .io_layouts import OK, IoEvent, IoStatus, status_const

__all__ = ["DsmUnit"]


class DsmUnit(wiring.Component):
    def __init__(self, config: CoreConfig):
        self._config = config
        aw = config.namespace_addr_width
        super().__init__({
            "list":       In(stream.Signature(DsmBeat(config.data_width))),
            "lba_format": In(1),
            "backend":    Out(stream.Signature(BackendCommand(aw))),
            "event":      Out(stream.Signature(IoEvent)),
            "idle":       Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        config = self._config
        width = config.data_width
        words = DSM_MAX_RANGES * DSM_RANGE_BYTES * 8 // width
        m.submodules.ranges = ranges = memory.Memory(shape=width, depth=words, init=[])
        wr = ranges.write_port()
        rd = ranges.read_port()

        tag = Signal(TAG_WIDTH)
        count = Signal(range(DSM_MAX_RANGES + 1))
        error = Signal()
        at = Signal(range(words + 1))            # words written
        index = Signal(range(DSM_MAX_RANGES + 1))  # the range being looked at

        # A range is 128 bits: a lane of a word (width ≥ 128), or two words (64 bits).
        per_word = max(1, width // 128)
        lo = Signal(64)                          # the first half (64-bit datapath)
        entry = Signal(DsmRange)
        if width >= 128:
            lane = Signal(range(per_word))
            m.d.comb += entry.eq(rd.data.word_select(lane, 128) if per_word > 1 else rd.data)
        else:
            m.d.comb += entry.eq(Cat(lo, rd.data))

        shift = Mux(self.lba_format, LBA_DATA_SHIFTS[1], LBA_DATA_SHIFTS[0])
        nsze = Mux(self.lba_format, config.namespace_bytes >> LBA_DATA_SHIFTS[1],
                   config.namespace_bytes >> LBA_DATA_SHIFTS[0])
        end = Signal(65)
        m.d.comb += end.eq(entry.slba + entry.nlb)
        inside = Signal()                        # registered in CHECK, used in RANGE
        # The read port holds its data unless asked (a read port's `en` is 1 by default).
        m.d.comb += rd.en.eq(0)
        back = self.backend
        ev_out = self.event
        ev_status = Signal(IoStatus)
        ev_delta = Signal(signed(10))
        m.d.comb += [
            ev_out.p.tag.eq(tag), ev_out.p.status.eq(ev_status), ev_out.p.media.eq(0),
            ev_out.p.delta.eq(ev_delta),
        ]
        m.d.comb += [
            back.p.op.eq(BackendOp.ZERO), back.p.tag.eq(tag),
            back.p.addr.eq(entry.slba << shift), back.p.length.eq(entry.nlb << shift),
        ]

        with m.FSM(name="dsm"):
            with m.State("LIST"):
                m.d.comb += [self.idle.eq(at == 0), self.list.ready.eq(1),
                             wr.addr.eq(at), wr.data.eq(self.list.p.data),
                             wr.en.eq(self.list.valid)]
                with m.If(self.list.valid):
                    m.d.sync += [at.eq(at + 1), tag.eq(self.list.p.tag),
                                 count.eq(self.list.p.length >> 4),
                                 error.eq(error | self.list.p.error)]
                    with m.If(self.list.p.last):
                        m.d.sync += [at.eq(0), index.eq(0)]
                        m.next = "READ"
            with m.State("READ"):
                # Ask for range `index`; its data shows next cycle.
                with m.If(error | (index == count)):
                    m.next = "DONE"
                with m.Else():
                    if width >= 128:
                        m.d.comb += [rd.addr.eq(index // per_word if per_word > 1 else index),
                                     rd.en.eq(1)]
                        if per_word > 1:
                            m.d.sync += lane.eq(index % per_word)
                        m.next = "CHECK"
                    else:
                        m.d.comb += [rd.addr.eq(2 * index), rd.en.eq(1)]
                        m.next = "SECOND"
            if width < 128:
                with m.State("SECOND"):
                    m.d.sync += lo.eq(rd.data)
                    m.d.comb += [rd.addr.eq(2 * index + 1), rd.en.eq(1)]
                    m.next = "CHECK"
            with m.State("CHECK"):
                # The range's bounds, registered (the 64-bit add and compare stay out of the
                # event's path).
                m.d.sync += inside.eq((entry.nlb != 0) & ~end[64] & (end[:64] <= nsze))
                m.next = "RANGE"
            with m.State("RANGE"):
                with m.If(inside):
                    m.d.comb += [ev_out.valid.eq(1), ev_status.eq(OK), ev_delta.eq(1)]
                    with m.If(ev_out.ready):
                        m.next = "ZERO"
                with m.Else():
                    m.d.sync += index.eq(index + 1)
                    m.next = "READ"
            with m.State("ZERO"):
                m.d.comb += back.valid.eq(1)
                with m.If(back.ready):
                    m.d.sync += index.eq(index + 1)
                    m.next = "READ"
            with m.State("DONE"):
                m.d.comb += [ev_out.valid.eq(1), ev_delta.eq(-1),
                             ev_status.eq(Mux(error,
                                              status_const(GenericStatus.DATA_TRANSFER_ERROR),
                                              OK))]
                with m.If(ev_out.ready):
                    m.d.sync += error.eq(0)
                    m.next = "LIST"
        return m
