"""CQ poster [NVMe 1.4 §4.6]: writes each completion into its CQ and raises the CQ's
interrupt behind it.

A completion is written at base + tail × 16 with the CQ's current phase tag and, as SQHD,
the head of the entry's SQ as it stands: every entry fetched and handed on so far, so it
never moves backwards however commands complete [NVMe 1.4 §4.6]; then the
tail advances (the phase flips on wrap) and, when the CQ has IEN = 1, an interrupt
request for its vector follows. The request is made only once the entry's write has
been handed to the DMA write port, so the MSI-X message, a later write on the same
in-order port, can never overtake it. The slot was reserved when the command was
fetched, so posting never waits for space.
"""

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..bus import DmaWrite, strobe
from ..config import CoreConfig
from ..layouts import Completion, Cqe
from .queue_state import PostLookup, QueueSetup

__all__ = ["CqPoster", "CoalescedIrq"]

CQE_BYTES = 16


class CoalescedIrq(data.Struct):
    """An interrupt request from a CQ: ``admin`` ones are never aggregated."""
    vector: 11
    admin:  1


class CqPoster(wiring.Component):
    def __init__(self, config: CoreConfig):
        self._config = config
        super().__init__({
            "completion": In(stream.Signature(Completion)),
            "dma":        Out(DmaWrite(config.data_width)),
            "irq":        Out(stream.Signature(CoalescedIrq)),
            "setup":      In(strobe(QueueSetup)),
            "idle":       Out(1),
            "queues":     Out(PostLookup(config)),
        })

    def elaborate(self, platform):
        m = Module()
        config = self._config
        width = config.data_width
        beats = max(1, CQE_BYTES * 8 // width)

        m.submodules.base = base_mem = memory.Memory(shape=52, depth=config.queue_pairs,
                                                     init=[])
        base_wr = base_mem.write_port()
        base_rd = base_mem.read_port(transparent_for=(base_wr,))
        m.d.comb += [
            base_wr.addr.eq(self.setup.qid),
            base_wr.data.eq(self.setup.base),
            base_wr.en.eq(self.setup.valid & self.setup.cq & self.setup.create),
        ]

        c = Signal(Completion)
        sqhd = Signal(16)                     # taken as the entry's write starts
        cqe = Signal(Cqe)
        beat = Signal(max(1, (beats - 1).bit_length()))
        irq = Signal(CoalescedIrq)
        qs = self.queues
        m.d.comb += [
            # The queue state and the base address are read a cycle after their address;
            # the ports follow their address: hold it while posting.
            qs.cq.eq(Mux(self.idle, self.completion.p.cqid, c.cqid)),
            qs.sq.eq(Mux(self.idle, self.completion.p.sqid, c.sqid)),
            base_rd.addr.eq(Mux(self.idle, self.completion.p.cqid, c.cqid)),
            self.dma.cmd.p.addr.eq(Cat(Const(0, 12), base_rd.data) + (qs.tail << 4)),
            self.dma.cmd.p.length.eq(CQE_BYTES),
            self.dma.data.p.data.eq(cqe.as_value().word_select(beat, min(width, 128))
                                    if beats > 1 else cqe.as_value()),
            self.dma.data.p.last.eq(beat == beats - 1),
            self.irq.p.eq(irq),
        ]
        # [NVMe 1.4 Figure 121, 125]
        m.d.comb += [
            cqe.dw0.eq(c.dw0),
            cqe.dw2.sqhd.eq(sqhd),
            cqe.dw2.sqid.eq(c.sqid),
            cqe.cid.eq(c.cid),
            cqe.status.p.eq(qs.phase),
            cqe.status.sc.eq(c.sc),
            cqe.status.sct.eq(c.sct),
            cqe.status.dnr.eq(c.dnr),
        ]

        with m.FSM(name="post"):
            with m.State("IDLE"):
                m.d.comb += [self.idle.eq(1), self.completion.ready.eq(1)]
                with m.If(self.completion.valid):
                    m.d.comb += base_rd.en.eq(1)
                    m.d.sync += c.eq(self.completion.p)
                    m.next = "CMD"
            with m.State("CMD"):
                m.d.comb += self.dma.cmd.valid.eq(1)
                with m.If(self.dma.cmd.ready):
                    m.d.sync += [beat.eq(0), sqhd.eq(qs.sq_head)]
                    m.next = "DATA"
            with m.State("DATA"):
                m.d.comb += self.dma.data.valid.eq(1)
                with m.If(self.dma.data.ready):
                    m.d.sync += beat.eq(beat + 1)
                    with m.If(beat == beats - 1):
                        m.d.comb += [qs.post.valid.eq(1), qs.post.qid.eq(c.cqid)]
                        m.d.sync += [irq.vector.eq(qs.iv), irq.admin.eq(c.cqid == 0)]
                        with m.If(qs.ien):
                            m.next = "IRQ"
                        with m.Else():
                            m.next = "IDLE"
            with m.State("IRQ"):
                m.d.comb += self.irq.valid.eq(1)
                with m.If(self.irq.ready):
                    m.next = "IDLE"
        return m
