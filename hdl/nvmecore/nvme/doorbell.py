"""Doorbell decoder: SQyTDBL / CQyHDBL writes at BAR0 0x1000 + 8y (+ 4) [NVMe 1.4 §3.1.24].

A write whose four bytes are all enabled becomes a :class:`DoorbellUpdate` when its
queue exists and the value is below the queue's size. Otherwise it is ignored and
reported as an asynchronous event of the error type: "invalid doorbell register" for a
queue that does not exist, "invalid doorbell write value" for a value out of range
[NVMe 1.4 Figure 147]; QEMU's nvme_process_db does the same. Doorbells read as 0.

Queue sizes live in a memory indexed by queue ID (the admin pair's come from AQA, latched
at enable). ``queue`` updates create and delete entries; a controller reset (and the bus
reset) sweeps the memory clear, one entry per cycle, during which ``busy`` is high.
"""

from amaranth import Cat, Const, Module, Mux, ResetInserter, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..bus import RegisterPort
from ..config import CoreConfig
from ..layouts import (
    DOORBELL_BASE,
    AsyncEvent,
    AsyncEventInfoError,
    AsyncEventType,
    DoorbellUpdate,
    LogPage,
    QueueSizeUpdate,
)
from .ready_skid import ReadySkid

__all__ = ["DoorbellDecoder"]


class _SizeEntry(data.Struct):
    valid:   1
    size_m1: 16     # entries - 1: a value v is in range when v <= size_m1


class DoorbellDecoder(wiring.Component):
    port: In(RegisterPort())
    update: Out(stream.Signature(DoorbellUpdate))
    event: Out(stream.Signature(AsyncEvent))
    queue: In(stream.Signature(QueueSizeUpdate))
    admin_ready: In(1)
    admin_sq_size: In(13)
    admin_cq_size: In(13)
    ctrl_reset: In(1)
    idle: Out(1)

    def __init__(self, config: CoreConfig):
        self._config = config
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        config = self._config
        port = self.port
        depth = config.queue_pairs
        qid_width = max(1, (depth - 1).bit_length())

        # Two halves per queue ID: [0] the SQ, [1] the CQ.
        entry = data.ArrayLayout(_SizeEntry, 2)
        m.submodules.sizes = sizes = memory.Memory(shape=entry, depth=depth, init=[])
        wr = sizes.write_port(granularity=1)
        rd = sizes.read_port(transparent_for=(wr,))

        # -- Sweep after reset and on controller reset --------------------------------
        sweeping = Signal(init=1)
        sweep_qid = Signal(qid_width)
        with m.If(self.ctrl_reset):
            m.d.sync += [sweeping.eq(1), sweep_qid.eq(0)]
        with m.Elif(sweeping):
            m.d.sync += sweep_qid.eq(sweep_qid + 1)
            with m.If(sweep_qid == depth - 1):
                m.d.sync += sweeping.eq(0)

        m.d.comb += self.queue.ready.eq(~sweeping)
        with m.If(sweeping):
            m.d.comb += [wr.addr.eq(sweep_qid), wr.data.eq(0), wr.en.eq(0b11)]
        with m.Elif(self.queue.valid & (self.queue.p.qid < depth)):
            m.d.comb += [
                wr.addr.eq(self.queue.p.qid),
                wr.data[self.queue.p.cq].valid.eq(self.queue.p.valid),
                wr.data[self.queue.p.cq].size_m1.eq(self.queue.p.size - 1),
                wr.en.eq(Const(1, 2) << self.queue.p.cq),
            ]

        # The updates leave through a registered-ready skid buffer (no forward latency):
        # stage 1 sees a ``ready`` that is a register, so it can let the next write in
        # as it reports the last lane of this one without the consumer's ready logic
        # running on into the register bus.
        m.submodules.out = out = ResetInserter(self.ctrl_reset)(ReadySkid(DoorbellUpdate))
        wiring.connect(m, out.o, wiring.flipped(self.update))
        update = out.i

        # -- Stage 0: decode the write, read the size entry -----------------------------
        in_db = (port.addr >= DOORBELL_BASE) & (port.addr < DOORBELL_BASE * 2)
        index = (port.addr - DOORBELL_BASE)[3:12]          # y: 0..511
        # lanes[0] = SQ tail (offset 0), lanes[1] = CQ head (offset 4); whole dwords only.
        lanes_pending = Signal(2)          # lanes still to be reported from stage 1
        lane_value = data.ArrayLayout(16, 2)
        values = Signal(lane_value)
        qid = Signal(9)
        exists = Signal()                  # y names a queue pair this build has

        busy = Signal()
        releasing = Signal()               # stage 1 reports its last lane now
        m.d.comb += [
            busy.eq((lanes_pending.any() & ~releasing) | sweeping),
            port.busy.eq(busy),
            self.idle.eq(~lanes_pending.any() & ~sweeping & out.empty),
            port.rdata.eq(0),
            # Read with the write only: the entry stays on the port through stage 1.
            rd.addr.eq(index),
            rd.en.eq(port.w_stb),
        ]

        # -- Stage 1: check each lane, SQ first, and report ------------------------------
        lane = Signal()                    # which lane is reported this cycle
        m.d.comb += lane.eq(~lanes_pending[0])
        size_m1 = Signal(16)
        valid = Signal()
        with m.If(qid == 0):
            m.d.comb += [
                valid.eq(self.admin_ready),
                size_m1.eq(self.admin_sq_size - 1),
            ]
            with m.If(lane):
                m.d.comb += size_m1.eq(self.admin_cq_size - 1)
        with m.Else():
            m.d.comb += [
                valid.eq(exists & rd.data[lane].valid),
                size_m1.eq(rd.data[lane].size_m1),
            ]

        value = values[lane]
        bad_register = ~valid
        bad_value = value > size_m1
        m.d.comb += [
            update.p.qid.eq(qid),
            update.p.cq.eq(lane),
            update.p.value.eq(value),
        ]
        # Error-type events, reported through the Error Information log [NVMe 1.4 Fig. 147].
        events = [AsyncEvent.const({"type": AsyncEventType.ERROR, "info": info.value,
                                    "lid": LogPage.ERROR_INFORMATION.value})
                  for info in (AsyncEventInfoError.INVALID_DOORBELL_WRITE_VALUE,
                               AsyncEventInfoError.INVALID_DOORBELL_REGISTER)]
        m.d.comb += self.event.p.eq(Mux(bad_register, events[1], events[0]))

        bad = bad_register | bad_value
        with m.If(lanes_pending.any()):
            m.d.comb += [
                self.event.valid.eq(bad),
                update.valid.eq(~bad),
                # A good last lane taken: the next write may come in this cycle (an error
                # event waits for its own ready, a rare path, and holds the next write).
                releasing.eq(~bad & update.ready
                             & (lanes_pending == Cat(~lane, lane))),
            ]
            with m.If(Mux(bad, self.event.ready, update.ready)):
                m.d.sync += lanes_pending.bit_select(lane, 1).eq(0)

        # (After stage 1: a write taken as stage 1 releases sets the lanes anew.)
        with m.If(port.w_stb & in_db):
            m.d.sync += [
                lanes_pending.eq(Cat(port.be[0:4].all(), port.be[4:8].all())),
                values[0].eq(port.wdata[0:16]),
                values[1].eq(port.wdata[32:48]),
                qid.eq(index),
                exists.eq(index < depth),
            ]
        return m
