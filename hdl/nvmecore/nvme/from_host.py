"""From-host mover: the host data of a Write, a Compare or a Dataset Management range list,
from the host's PRP pieces to where it goes [NVMe 1.4 §6.15, §6.2, §6.7;
docs/io-commands.md].

Per PRP token (in order): a command whose PRPs failed, or that an Abort caught before it
started, is reported at once and its pieces are dropped. Otherwise:

- the *splitter* cuts each PRP piece into DMA reads of at most max read request size (a
  piece never crosses a 4 KiB page), issuing a read only when the read buffer has room for
  all of its data — read data never waits on the shared DMA read port — so several reads,
  across pieces and commands, are in flight at once;
- a :class:`~.dword_pack.DwordGather` packs the reads' data into the command's contiguous
  stream;
- the stream goes to the backend's ``wdata`` (Write), is compared beat by beat with the
  namespace data (Compare), or goes to the DSM unit (``dsm``). A failed read marks the
  command's data: a Write or Compare then reports a Data Transfer Error.

The backend WRITE (a Write) or READ (a Compare's namespace data) is issued only when the
command's data is next out of the gather: a backend that runs its commands in order then
never holds a WRITE whose data waits behind another command's (a range list the DSM unit
cannot take while its ZERO waits behind that very WRITE).
"""

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from ..backend.interface import TAG_WIDTH, BackendBeat, BackendCommand, BackendOp
from ..bus import DmaRead, strobe
from ..config import CoreConfig
from ..layouts import GenericStatus, MediaStatus
from .dword_pack import MAX_DWORDS, DwordGather
from .io_layouts import OK, IoEvent, status_const
from .prp_walker import MAX_TRANSFER_BYTES, IoOp, PrpToken, Segment
from .to_host import token_status

__all__ = ["FromHost", "DsmBeat"]

COMMAND_DEPTH = 4
#: Commands whose data is being read or waits in the buffer: a command stays in
#: ``consumers`` from its token until its last beat has gone out, so this bounds the data
#: reads in flight to that many commands. The IP's completion space allows 128 x 64 B =
#: 8 KiB of reads in flight (usp_read), 16 commands of 512 B; 32 leaves room for a 128 B
#: RCB and for commands smaller than a read.
COMMANDS_IN_FLIGHT = 32
#: Beats of read data the buffer holds: 8 KiB at 256 bits (1 µs of a x8 Gen3 link).
READ_BUFFER_BEATS = 256
#: DMA reads in flight.
READS_IN_FLIGHT = 64


class DsmBeat(data.StructLayout):
    """A beat of a Dataset Management range list, with its command's tag and length."""

    def __init__(self, width):
        super().__init__({"data": width, "last": 1, "error": 1, "tag": TAG_WIDTH,
                          "length": range(MAX_TRANSFER_BYTES + 1)})


class FromHost(wiring.Component):
    def __init__(self, config: CoreConfig):
        self._config = config
        aw = config.namespace_addr_width
        width = config.data_width
        super().__init__({
            "tok":     In(stream.Signature(PrpToken(aw))),
            "seg":     In(stream.Signature(Segment)),
            "aborted": In(config.io_slots),
            "start":   Out(strobe(data.StructLayout({"tag": TAG_WIDTH}))),
            "backend": Out(stream.Signature(BackendCommand(aw))),
            "wdata":   Out(stream.Signature(BackendBeat(width))),
            "crdata":  In(stream.Signature(BackendBeat(width))),     # a Compare's namespace data
            "dsm":     Out(stream.Signature(DsmBeat(width))),
            "dma":     Out(DmaRead(width)),
            "max_read_request_size": In(3),
            "event":   Out(stream.Signature(IoEvent)),              # data all moved
            "fail_event": Out(stream.Signature(IoEvent)),           # a command not run
            "idle":    Out(1),
        })

    def elaborate(self, platform):  # noqa: C901
        m = Module()
        config = self._config
        width = config.data_width
        beat_bytes = width // 8
        beat_shift = beat_bytes.bit_length() - 1
        sw = config.io_slot_width

        # -- Token stage (as ToHost's) ------------------------------------------------------
        tok = self.tok
        command = data.StructLayout({"tag": TAG_WIDTH, "op": IoOp, "pieces": range(257),
                                     "skip": 1, "length": range(MAX_TRANSFER_BYTES + 1),
                                     "ns_addr": config.namespace_addr_width})
        m.submodules.commands = commands = fifo.SyncFIFOBuffered(
            width=command.size, depth=COMMAND_DEPTH)
        m.submodules.consumers = consumers = fifo.SyncFIFOBuffered(
            width=command.size, depth=COMMANDS_IN_FLIGHT)
        decided = Signal()
        runs = Signal()
        fail = Signal(OK.shape())
        status, ok = token_status(m, tok.p, self.aborted.bit_select(tok.p.tag[:sw], 1))
        with m.If(tok.valid & ~decided):
            m.d.comb += [self.start.valid.eq(1), self.start.tag.eq(tok.p.tag)]
            m.d.sync += [decided.eq(1), runs.eq(ok), fail.eq(status)]
        entry = data.View(command, commands.w_data)
        m.d.comb += [
            entry.tag.eq(tok.p.tag), entry.op.eq(tok.p.op), entry.pieces.eq(tok.p.pieces),
            entry.skip.eq(~runs), entry.length.eq(tok.p.length), entry.ns_addr.eq(tok.p.ns_addr),
            consumers.w_data.eq(commands.w_data),
        ]
        fev = self.fail_event
        m.d.comb += [fev.p.tag.eq(tok.p.tag), fev.p.status.eq(fail), fev.p.media.eq(0),
                     # a Write's or Compare's backend part never runs either
                     fev.p.delta.eq(Mux(tok.p.op == IoOp.DSM, -1, -2))]
        with m.If(tok.valid & decided & commands.w_rdy & consumers.w_rdy):
            with m.If(runs):
                m.d.comb += [tok.ready.eq(1), commands.w_en.eq(1), consumers.w_en.eq(1)]
                m.d.sync += decided.eq(0)
            with m.Else():
                m.d.comb += fev.valid.eq(1)
                with m.If(fev.ready):
                    m.d.comb += [tok.ready.eq(1), commands.w_en.eq(1)]
                    m.d.sync += decided.eq(0)

        # -- Splitter: pieces into reads, each within the read buffer's room ------------------
        cur = data.View(command, commands.r_data)
        seg = self.seg
        left = Signal(range(257))
        in_cmd = Signal()
        piece_addr = Signal(64)
        piece_left = Signal(range(MAX_DWORDS + 1))
        in_piece = Signal()
        mrrs_dwords = Signal(range(MAX_DWORDS + 1))
        m.d.comb += mrrs_dwords.eq(Const(32, 11) << self.max_read_request_size)
        chunk = Signal(range(MAX_DWORDS + 1))
        m.d.comb += chunk.eq(Mux(piece_left < mrrs_dwords, piece_left, mrrs_dwords))
        chunk_beats = Signal(range(MAX_DWORDS + 1))
        m.d.comb += chunk_beats.eq(((chunk << 2) + beat_bytes - 1) >> beat_shift)
        reserved = Signal(range(READ_BUFFER_BEATS + 1))

        m.submodules.gather = gather = DwordGather(width)
        m.submodules.requests = requests = fifo.SyncFIFOBuffered(
            width=len(gather.req.p.as_value()), depth=READS_IN_FLIGHT)
        m.d.comb += [gather.req.p.eq(requests.r_data), gather.req.valid.eq(requests.r_rdy),
                     requests.r_en.eq(gather.req.ready)]
        req = self.dma.req
        requesting = Signal()
        last_piece = left == 1
        last_chunk = chunk == piece_left
        room = READ_BUFFER_BEATS - reserved
        m.d.comb += req.valid.eq(requesting)
        with m.If(req.valid & req.ready):
            m.d.sync += requesting.eq(0)
        with m.If(~in_cmd):
            with m.If(commands.r_rdy):
                with m.If(cur.pieces == 0):
                    m.d.comb += commands.r_en.eq(1)
                with m.Else():
                    m.d.sync += [in_cmd.eq(1), left.eq(cur.pieces)]
        with m.Elif(cur.skip):
            m.d.comb += seg.ready.eq(1)
            with m.If(seg.valid):
                m.d.sync += left.eq(left - 1)
                with m.If(last_piece):
                    m.d.comb += commands.r_en.eq(1)
                    m.d.sync += in_cmd.eq(0)
        with m.Elif(~in_piece):
            m.d.comb += seg.ready.eq(1)
            with m.If(seg.valid):
                m.d.sync += [in_piece.eq(1), piece_addr.eq(seg.p.addr),
                             piece_left.eq(seg.p.dwords)]
        with m.Elif(~requesting & requests.w_rdy & (chunk_beats <= room)):
            end = last_piece & last_chunk
            m.d.comb += [requests.w_en.eq(1),
                         requests.w_data.eq(Cat(chunk, end))]
            m.d.sync += [
                requesting.eq(1), req.p.addr.eq(piece_addr), req.p.length.eq(chunk << 2),
                req.p.tag.eq(0),
                piece_addr.eq(piece_addr + (chunk << 2)), piece_left.eq(piece_left - chunk),
            ]
            with m.If(last_chunk):
                m.d.sync += [in_piece.eq(0), left.eq(left - 1)]
                with m.If(last_piece):
                    m.d.comb += commands.r_en.eq(1)
                    m.d.sync += in_cmd.eq(0)
        issued_beats = Signal.like(chunk_beats)
        with m.If(requests.w_en):
            m.d.sync += issued_beats.eq(chunk_beats)

        # -- Read data: buffered, then gathered -----------------------------------------------
        m.submodules.buffer = buffer = fifo.SyncFIFOBuffered(width=width + 2,
                                                             depth=READ_BUFFER_BEATS)
        beat = self.dma.data
        m.d.comb += [
            buffer.w_data.eq(Cat(beat.p.data, beat.p.last, beat.p.error)),
            buffer.w_en.eq(beat.valid), beat.ready.eq(1),         # room was reserved
            gather.i.p.data.eq(buffer.r_data[:width]),
            gather.i.p.last.eq(buffer.r_data[width]),
            gather.i.p.error.eq(buffer.r_data[width + 1]),
            gather.i.valid.eq(buffer.r_rdy), buffer.r_en.eq(gather.i.ready),
        ]
        popped = buffer.r_en & buffer.r_rdy
        m.d.sync += reserved.eq(reserved + Mux(req.valid & req.ready, issued_beats, 0) - popped)

        # -- Where the data goes ------------------------------------------------------------------
        out = gather.o
        who = data.View(command, consumers.r_data)
        mismatch = Signal()
        ev = self.event
        pending = Signal()                       # the command's data is through: report it
        final = Signal(OK.shape())
        m.d.comb += [
            self.wdata.p.data.eq(out.p.data), self.wdata.p.last.eq(out.p.last),
            self.dsm.p.data.eq(out.p.data), self.dsm.p.last.eq(out.p.last),
            self.dsm.p.error.eq(out.p.error), self.dsm.p.tag.eq(who.tag),
            self.dsm.p.length.eq(who.length),
            ev.p.tag.eq(who.tag), ev.p.status.eq(final), ev.p.media.eq(0), ev.p.delta.eq(-1),
        ]
        # A Compare's beats are compared a lane (DWORD) at a time into a register, and the
        # lanes' results are folded into ``mismatch`` the cycle after: the realigner's
        # output path then ends at that register, not in the command's status. Its status
        # is therefore known a cycle after its last beat (``settling``).
        lanes = width // 32
        lane_diff = Signal(lanes)
        settling = Signal()
        last_error = Signal()
        differs = Cat(*(out.p.data[32 * j:32 * j + 32] != self.crdata.p.data[32 * j:32 * j + 32]
                        for j in range(lanes)))
        m.d.sync += [lane_diff.eq(0), mismatch.eq(mismatch | lane_diff.any())]
        # The backend command of the command whose data is next: issued once, first.
        issued = Signal()
        m.d.comb += [
            self.backend.p.op.eq(Mux(who.op == IoOp.WRITE, BackendOp.WRITE, BackendOp.READ)),
            self.backend.p.tag.eq(who.tag),
            self.backend.p.addr.eq(who.ns_addr),
            self.backend.p.length.eq(who.length),
        ]
        needs_backend = (who.op == IoOp.WRITE) | (who.op == IoOp.COMPARE)
        with m.If(settling):
            wrong = mismatch | lane_diff.any()
            m.d.sync += [
                settling.eq(0), pending.eq(1),
                final.eq(Mux(last_error, status_const(GenericStatus.DATA_TRANSFER_ERROR),
                             Mux(wrong, status_const(MediaStatus.COMPARE_FAILURE, dnr=True),
                                 OK))),
            ]
        with m.Elif(pending):
            m.d.comb += ev.valid.eq(1)
            with m.If(ev.ready):
                m.d.comb += consumers.r_en.eq(1)
                m.d.sync += [pending.eq(0), mismatch.eq(0), issued.eq(0)]
        with m.Elif(consumers.r_rdy & needs_backend & ~issued):
            m.d.comb += self.backend.valid.eq(1)
            with m.If(self.backend.ready):
                m.d.sync += issued.eq(1)
        with m.Elif(consumers.r_rdy):
            taken = Signal()
            with m.Switch(who.op):
                with m.Case(IoOp.WRITE):
                    m.d.comb += [self.wdata.valid.eq(out.valid), out.ready.eq(self.wdata.ready),
                                 taken.eq(out.valid & self.wdata.ready)]
                with m.Case(IoOp.COMPARE):
                    both = out.valid & self.crdata.valid
                    m.d.comb += [out.ready.eq(both), self.crdata.ready.eq(both),
                                 taken.eq(both)]
                with m.Case(IoOp.DSM):
                    # The DSM unit reports the command; nothing to do at its end here.
                    m.d.comb += [self.dsm.valid.eq(out.valid), out.ready.eq(self.dsm.ready)]
                    with m.If(out.valid & self.dsm.ready & out.p.last):
                        m.d.comb += consumers.r_en.eq(1)
            with m.If(taken):
                is_compare = who.op == IoOp.COMPARE
                with m.If(is_compare):
                    m.d.sync += lane_diff.eq(differs)
                    with m.If(out.p.last):
                        m.d.sync += [settling.eq(1), last_error.eq(out.p.error)]
                with m.Elif(out.p.last):
                    m.d.sync += [
                        pending.eq(1),
                        final.eq(Mux(out.p.error,
                                     status_const(GenericStatus.DATA_TRANSFER_ERROR), OK)),
                    ]

        m.d.comb += self.idle.eq(~tok.valid & ~commands.r_rdy & ~consumers.r_rdy & ~in_cmd
                                 & ~settling
                                 & ~requesting & ~buffer.r_rdy & (reserved == 0))
        return m
