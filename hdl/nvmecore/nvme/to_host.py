"""To-host mover: a Read's data, from the backend to the host's PRP pieces
[NVMe 1.4 §6.9; docs/io-commands.md].

Per PRP token (in order): a command whose PRPs failed, or that an Abort caught before it
started, is reported at once and its pieces are dropped. Otherwise the backend READ is
issued, and three stages stream the data:

- the *splitter* cuts each PRP piece into writes of at most max payload size (a piece
  never crosses a 4 KiB page, so neither does a write);
- a :class:`~.dword_pack.DwordScatter` packs the backend's data into those writes;
- the *issuer* sends a write on the DMA write port only once all of its data is buffered,
  so a write never stalls the port (or the TLP behind it) halfway [PG213 "no gaps inside
  a TLP"]; after a command's last write it reports the command's part done.

The data buffer holds two 4 KiB writes, the most a write can be; the backend's READ data
therefore never waits for the host beyond one write's worth.
"""

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from ..backend.interface import TAG_WIDTH, BackendBeat, BackendCommand, BackendOp
from ..bus import DmaWrite, strobe
from ..config import CoreConfig
from ..layouts import GenericStatus
from ..nvm_layouts import PAGE_BYTES
from .dword_pack import MAX_DWORDS, DwordScatter
from .io_layouts import OK, IoEvent, status_const
from .prp_walker import PrpStatus, PrpToken, Segment

__all__ = ["ToHost", "token_status"]

#: Commands between the token stage and the splitter.
COMMAND_DEPTH = 4
#: Writes split and not yet sent.
WRITE_DEPTH = 32


def token_status(m, token, aborted):
    """The status a mover reports for a PRP token it does not run (a Signal of IoStatus),
    and whether it runs it."""
    status = Signal(OK.shape(), name="token_status")
    with m.If(aborted):
        m.d.comb += status.eq(status_const(GenericStatus.ABORT_REQUESTED))
    with m.Elif(token.status == PrpStatus.INVALID_PRP_OFFSET):
        m.d.comb += status.eq(status_const(GenericStatus.INVALID_PRP_OFFSET, dnr=True))
    with m.Elif(token.status == PrpStatus.TRANSFER_ERROR):
        m.d.comb += status.eq(status_const(GenericStatus.DATA_TRANSFER_ERROR))
    return status, ~aborted & (token.status == PrpStatus.OK)


class ToHost(wiring.Component):
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
            "rdata":   In(stream.Signature(BackendBeat(width))),
            "dma":     Out(DmaWrite(width)),
            "max_payload_size": In(3),
            "event":   Out(stream.Signature(IoEvent)),       # a Read's data all sent
            "fail_event": Out(stream.Signature(IoEvent)),    # a Read that does not run
            "idle":    Out(1),
        })

    def elaborate(self, platform):  # noqa: C901
        m = Module()
        config = self._config
        width = config.data_width
        beat_bytes = width // 8
        sw = config.io_slot_width

        # -- Token stage -----------------------------------------------------------------------
        # The token's fate is decided in the cycle it shows up — the abort flag sampled, the
        # start reported to the slots — and kept until it leaves.
        tok = self.tok
        command = data.StructLayout({"tag": TAG_WIDTH, "pieces": range(257), "skip": 1})
        m.submodules.commands = commands = fifo.SyncFIFOBuffered(
            width=command.size, depth=COMMAND_DEPTH)
        decided = Signal()
        runs = Signal()
        fail = Signal(OK.shape())
        status, ok = token_status(m, tok.p, self.aborted.bit_select(tok.p.tag[:sw], 1))
        with m.If(tok.valid & ~decided):
            m.d.comb += [self.start.valid.eq(1), self.start.tag.eq(tok.p.tag)]
            m.d.sync += [decided.eq(1), runs.eq(ok), fail.eq(status)]
        cmd_in = data.View(command, commands.w_data)
        fev = self.fail_event
        m.d.comb += [
            cmd_in.tag.eq(tok.p.tag), cmd_in.pieces.eq(tok.p.pieces), cmd_in.skip.eq(~runs),
            self.backend.p.op.eq(BackendOp.READ),
            self.backend.p.tag.eq(tok.p.tag),
            self.backend.p.addr.eq(tok.p.ns_addr),
            self.backend.p.length.eq(tok.p.length),
            # The mover's part and the backend's, which will never run.
            fev.p.tag.eq(tok.p.tag), fev.p.status.eq(fail), fev.p.media.eq(0),
            fev.p.delta.eq(-2),
        ]
        with m.If(tok.valid & decided & commands.w_rdy):
            with m.If(runs):
                m.d.comb += self.backend.valid.eq(1)
                with m.If(self.backend.ready):
                    m.d.comb += [tok.ready.eq(1), commands.w_en.eq(1)]
                    m.d.sync += decided.eq(0)
            with m.Else():
                m.d.comb += fev.valid.eq(1)
                with m.If(fev.ready):
                    m.d.comb += [tok.ready.eq(1), commands.w_en.eq(1)]
                    m.d.sync += decided.eq(0)

        # -- Splitter: pieces into writes -------------------------------------------------------
        cur = data.View(command, commands.r_data)
        seg = self.seg
        left = Signal(range(257))               # pieces of the current command still to come
        in_cmd = Signal()
        piece_addr = Signal(64)
        piece_left = Signal(range(MAX_DWORDS + 1))      # DWORDs of the piece not yet split
        in_piece = Signal()
        mps_dwords = Signal(range(MAX_DWORDS + 1))
        m.d.comb += mps_dwords.eq(Const(32, 11) << self.max_payload_size)
        chunk = Signal(range(MAX_DWORDS + 1))
        m.d.comb += chunk.eq(Mux(piece_left < mps_dwords, piece_left, mps_dwords))

        write = data.StructLayout({"addr": 64, "dwords": range(MAX_DWORDS + 1), "end": 1,
                                   "tag": TAG_WIDTH})
        m.submodules.writes = writes = fifo.SyncFIFOBuffered(width=write.size,
                                                             depth=WRITE_DEPTH)
        m.submodules.scatter = scatter = DwordScatter(width)
        m.submodules.lengths = lengths = fifo.SyncFIFOBuffered(width=11, depth=WRITE_DEPTH)
        m.d.comb += [
            scatter.wr.p.dwords.eq(lengths.r_data), scatter.wr.valid.eq(lengths.r_rdy),
            lengths.r_en.eq(scatter.wr.ready),
        ]
        w_in = data.View(write, writes.w_data)
        last_piece = left == 1
        last_chunk = chunk == piece_left
        m.d.comb += [
            w_in.addr.eq(piece_addr), w_in.dwords.eq(chunk),
            w_in.end.eq(last_piece & last_chunk), w_in.tag.eq(cur.tag),
            lengths.w_data.eq(chunk),
        ]
        with m.If(~in_cmd):
            with m.If(commands.r_rdy):
                with m.If(cur.pieces == 0):
                    m.d.comb += commands.r_en.eq(1)          # nothing to drop or split
                with m.Else():
                    m.d.sync += [in_cmd.eq(1), left.eq(cur.pieces)]
        with m.Elif(cur.skip):
            m.d.comb += seg.ready.eq(1)                      # drop the pieces
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
        with m.Elif(writes.w_rdy & lengths.w_rdy):
            m.d.comb += [writes.w_en.eq(1), lengths.w_en.eq(1)]
            m.d.sync += [piece_addr.eq(piece_addr + (chunk << 2)),
                         piece_left.eq(piece_left - chunk)]
            with m.If(last_chunk):
                m.d.sync += [in_piece.eq(0), left.eq(left - 1)]
                with m.If(last_piece):
                    m.d.comb += commands.r_en.eq(1)
                    m.d.sync += in_cmd.eq(0)

        # -- Data: the backend's beats packed into writes, buffered whole ------------------------
        depth = 2 * PAGE_BYTES // beat_bytes
        m.submodules.buffer = buffer = fifo.SyncFIFOBuffered(width=width + 1, depth=depth)
        m.d.comb += [
            scatter.i.p.data.eq(self.rdata.p.data), scatter.i.valid.eq(self.rdata.valid),
            self.rdata.ready.eq(scatter.i.ready),
            buffer.w_data.eq(Cat(scatter.o.p.data, scatter.o.p.last)),
            buffer.w_en.eq(scatter.o.valid), scatter.o.ready.eq(buffer.w_rdy),
        ]
        arrived = scatter.o.valid & scatter.o.ready & scatter.o.p.last

        # -- Issuer --------------------------------------------------------------------------
        # A write's command and its data go on their own: the command once all of the
        # write's data is buffered, even while the write before still sends its data (the
        # DMA write port takes a command ahead of the data before it), so data beats leave
        # back to back (at 512 bits a 256 B write took 5 cycles, its command's and 4 data
        # beats', against RQ's 4.5 when straddled). A write whose command went waits in
        # ``sending`` (end of its command, tag) for its data to go.
        w = data.View(write, writes.r_data)
        dma = self.dma
        waiting = Signal(range(depth + 1))       # whole writes buffered, command not yet sent
        m.submodules.sending = sending = fifo.SyncFIFO(width=1 + TAG_WIDTH, depth=2)
        cmd_taken = dma.cmd.valid & dma.cmd.ready
        m.d.comb += [
            dma.cmd.p.addr.eq(w.addr),
            dma.cmd.p.length.eq(w.dwords << 2),
            dma.cmd.valid.eq(writes.r_rdy & (waiting != 0) & sending.w_rdy),
            writes.r_en.eq(cmd_taken),
            sending.w_en.eq(cmd_taken),
            sending.w_data.eq(Cat(w.end, w.tag)),
        ]
        m.d.sync += waiting.eq(waiting + arrived - cmd_taken)

        # The data: a command's part is done once its last write's last beat is out; its
        # report waits in a register, and the next command's last beat waits for it.
        ev = self.event
        ev_pending = Signal()
        ev_tag = Signal(TAG_WIDTH)
        rec_end, rec_tag = sending.r_data[0], sending.r_data[1:]
        last_beat = buffer.r_data[width]
        hold = rec_end & last_beat & ev_pending
        m.d.comb += [
            dma.data.p.data.eq(buffer.r_data[:width]),
            dma.data.p.last.eq(last_beat),
            dma.data.valid.eq(sending.r_rdy & buffer.r_rdy & ~hold),
            buffer.r_en.eq(dma.data.valid & dma.data.ready),
        ]
        sent_last = dma.data.valid & dma.data.ready & last_beat
        m.d.comb += [
            sending.r_en.eq(sent_last),
            ev.valid.eq(ev_pending), ev.p.tag.eq(ev_tag), ev.p.status.eq(OK),
            ev.p.media.eq(0), ev.p.delta.eq(-1),
        ]
        with m.If(sent_last & rec_end):
            m.d.sync += [ev_pending.eq(1), ev_tag.eq(rec_tag)]
        with m.Elif(ev.ready):
            m.d.sync += ev_pending.eq(0)

        m.d.comb += self.idle.eq(~tok.valid & ~commands.r_rdy & ~in_cmd & ~writes.r_rdy
                                 & ~lengths.r_rdy & ~buffer.r_rdy & ~sending.r_rdy
                                 & ~ev_pending)
        return m
