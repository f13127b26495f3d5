"""CQ poster [NVMe 1.4 §4.6]: writes each completion into its CQ and raises the CQ's
interrupt behind it.

A completion is written at base + tail × 16 with the CQ's current phase tag and, as SQHD,
the head of the entry's SQ as it stands: every entry fetched and handed on so far, so it
never moves backwards however commands complete [NVMe 1.4 §4.6]. The tail advances (the
phase flips on wrap) in the cycle the DMA write port takes the entry's write command, and
then, when the CQ has IEN = 1, an interrupt request for its vector is offered, while the
entry's data beat goes out. The MSI-X message, a later write on the same in-order port,
cannot overtake the entry: the write arbiter grants the entry's write before the message
is even formed and keeps the port to the poster until its last beat. The slot was reserved
when the command was fetched, so posting never waits for space.

Cycle behaviour: one completion per three cycles (take it, its write command, its data
beat) while the interrupt unit takes each request as it is offered; a request not yet
taken holds the next entry's write command back.
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
        waiting = Signal()                    # for a completion
        qs = self.queues
        m.d.comb += [
            # The queue state and the base address are read a cycle after their address;
            # the ports follow their address: hold it while posting.
            qs.cq.eq(Mux(waiting, self.completion.p.cqid, c.cqid)),
            qs.sq.eq(Mux(waiting, self.completion.p.sqid, c.sqid)),
            base_rd.addr.eq(Mux(waiting, self.completion.p.cqid, c.cqid)),
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
            cqe.status.sc.eq(c.sc),
            cqe.status.sct.eq(c.sct),
            cqe.status.dnr.eq(c.dnr),
        ]

        irq_valid = Signal()                  # the request of the last entry written
        phase = Signal()                      # the entry's phase tag, taken with its SQHD
        m.d.comb += [self.irq.valid.eq(irq_valid), cqe.status.p.eq(phase)]
        with m.If(self.irq.ready):
            m.d.sync += irq_valid.eq(0)

        with m.FSM(name="post"):
            with m.State("IDLE"):
                m.d.comb += [waiting.eq(1), self.idle.eq(~irq_valid), self.completion.ready.eq(1)]
                with m.If(self.completion.valid):
                    m.d.comb += base_rd.en.eq(1)
                    m.d.sync += c.eq(self.completion.p)
                    m.next = "CMD"
            with m.State("CMD"):
                # One request waits at most: the next entry waits for it to be taken.
                m.d.comb += self.dma.cmd.valid.eq(~irq_valid)
                with m.If(self.dma.cmd.valid & self.dma.cmd.ready):
                    m.d.comb += [qs.post.valid.eq(1), qs.post.qid.eq(c.cqid)]
                    m.d.sync += [
                        beat.eq(0), sqhd.eq(qs.sq_head), phase.eq(qs.phase),
                        irq.vector.eq(qs.iv), irq.admin.eq(c.cqid == 0),
                        irq_valid.eq(qs.ien),
                    ]
                    m.next = "DATA"
            with m.State("DATA"):
                m.d.comb += self.dma.data.valid.eq(1)
                with m.If(self.dma.data.ready):
                    m.d.sync += beat.eq(beat + 1)
                    with m.If(beat == beats - 1):
                        m.next = "IDLE"
        return m
