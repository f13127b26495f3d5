"""UltraScale+ requester request (RQ) formatter: read TLPs and posted writes → RQ beats.

Each :class:`~.usp_layouts.RqRead` becomes one memory read TLP; each write on the core's
:class:`~nvmecore.bus.DmaWrite` port becomes one memory write TLP. The interface runs in
DWORD-aligned mode: a TLP is its 4-DW :class:`~.usp_layouts.RqDescriptor` followed at once
by its payload, so the core's data (packed from bit 0 of its first beat) goes out shifted up
by the descriptor's 128 bits, or by 384 bits when the TLP starts at DW 8
[PG213 "Requester Request Interface Operation"].

Reads and writes share the interface TLP by TLP, round robin; each kind keeps its order.
A write that breaks a PCIe rule the core's DMA engines guarantee (DWORD-aligned address
and length, at most max payload size and ``max_payload``, not crossing 4 KiB) is not
split: it is dropped whole, its data beats consumed, with a ``refused`` pulse.

Writes are stored and forwarded: ``tvalid`` must stay high from a TLP's first beat to its
last [PG213 "Requester Memory Write Operation"], so a write starts on RQ only once its
whole payload is in a FIFO of two ``max_payload`` payloads (the largest the hard IP is
set to accept, 1024 B by default); one write fills it while the one before drains, so
back-to-back writes of the largest payload keep RQ busy.

Straddling (512 bits only, ``straddle=True``): when the TLP in DWs 0..7 of a beat ends
there, a second TLP starts at DW 8 of the same beat [PG213 "Straddle Option on CQ, CC, and
RQ Interfaces"]. Reads wait in a one-entry buffer in front of the stream's head, so two
reads can leave in one beat whenever two are waiting (which is whenever the hard IP holds
``tready`` low). A write may start at DW 8 too, behind a read or behind the last beat of
a write that takes no new data beat (one command and one data beat per cycle).

Cycle behaviour: the beat is formed combinationally from the heads of the read buffer and
the write FIFOs and registered into ``rq``, one beat per cycle. A read takes one beat
(half a beat when straddled); a write of L DWs ⌈(4 + L) / (width/32)⌉ beats, back to back.
A write's first beat leaves on RQ two cycles after its last data beat came in (it is in the
FIFO the cycle after, and the output register takes it then).
"""

from amaranth import Cat, Const, Module, Mux, Shape, Signal, Value, signed
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from ..bus import DmaWrite, DmaWriteBeat
from ..fifo import BypassFIFO
from ..layouts import DmaWriteRequest
from .usp_layouts import RQ_DESC_DW, USP_WIDTHS, Axis, ReqType, RqDescriptor, RqRead

__all__ = ["UspRequester"]

HALF_DW = 8       # a straddled TLP starts at DW 8 [PG213 "Straddle Option on ... RQ"]


class UspRequester(wiring.Component):
    """Ports: ``rd`` (read TLPs, tags allocated), ``wr`` (the core's posted writes), ``rq``
    (to the hard IP), ``max_payload_size`` (PCIe encoding, 0 = 128 B ... 5 = 4096 B),
    ``np_credits`` (the hard IP's ``pcie_tfc_nph_av``: reads wait while the link partner
    has no room for one, writes pass them), ``refused`` (one-cycle pulse per dropped
    write), ``idle`` (nothing held or in flight).
    """

    #: Writes whose commands wait in the command FIFO (many short writes: CQ entries,
    #: MSI-X messages).
    CMD_DEPTH = 16

    def __init__(self, width, *, straddle=False, max_payload=1024):
        if max_payload not in (128, 256, 512, 1024, 2048, 4096):
            raise ValueError("max_payload must be a PCIe payload size, 128 to 4096 bytes")
        if width not in USP_WIDTHS:
            raise ValueError(f"UltraScale+ RQ width must be one of {USP_WIDTHS}, not {width}")
        if straddle and width != 512:
            raise ValueError("RQ straddling exists only on the 512-bit interface")
        self.width = width
        self.straddle = straddle
        self.max_payload = max_payload
        super().__init__({
            "rd":               In(stream.Signature(RqRead)),
            "wr":               In(DmaWrite(width)),
            "rq":               Out(Axis("rq", width)),
            "max_payload_size": In(3),
            # pcie_tfc_nph_av: non-posted header credits the link partner has (15: 15 or more)
            "np_credits":       In(4, init=15),
            "refused":          Out(1),
            "idle":             Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        W, N = self.width, self.width // 32            # bits and DWORDs per beat
        rq, rd, wdata = self.rq, self.rd, self.wr.data

        def named(name, expr, shape=None):
            """``expr`` as a signal: Amaranth repeats an expression at every use."""
            sig = Signal(shape if shape is not None else Value.cast(expr).shape(), name=name)
            m.d.comb += sig.eq(expr)
            return sig

        def dw_mask(first, last):
            """tkeep bits first..last (``last`` may be a signal)."""
            return ((Const(2, N + 1) << last) - 1)[:N] & ~Const((1 << first) - 1, N)

        # -- Reads: a one-entry buffer ahead of the stream's head -----------------------------
        rbuf = Signal(RqRead)
        rbuf_valid = Signal()
        r0 = named("r0", Mux(rbuf_valid, rbuf, rd.payload), RqRead)    # the oldest read
        r0_valid = named("r0_valid", rbuf_valid | rd.valid)

        # -- Non-posted credit: a read goes out only when the link partner has room for it,
        # so the hard IP never holds a read on RQ with posted writes queued behind it
        # [PG213 "Avoiding Head-of-Line Blocking for Posted Requests"]. pcie_tfc_nph_av
        # shows a read two cycles after its transfer, so the reads in the output register
        # and those sent in the two cycles before are taken off.
        # (rq_reads is 0 whenever rq.tvalid is; the two cycles' sends are kept as one sum,
        # a register: LUT depth from the credit count to the read grant)
        rq_reads = Signal(2)                # reads in the beat in the output register
        sent_q1, sent_sum = Signal(2), Signal(3)      # sent a cycle ago; and two cycles ago
        sent_now = Mux(rq.tready, rq_reads, 0)
        m.d.sync += [sent_q1.eq(sent_now), sent_sum.eq(sent_now + sent_q1)]
        np_room = named("np_room", self.np_credits - rq_reads - sent_sum, signed(6))
        r0_go = named("r0_go", r0_valid & (np_room >= 1))     # the oldest read may go

        def read_desc(r):
            d = Signal(RqDescriptor)
            m.d.comb += [
                d.req_type.eq(ReqType.MEM_READ),
                d.addr.eq(r.addr[2:]),
                # 11-bit count with 1024 as 0x400 (as cocotbext-pcie packs it) [PG213 Table
                # "Requester Request Descriptor Fields"]; 0 and 1024 on `dwords` mean 1024
                d.dword_count.eq(Cat(r.dwords[:10], r.dwords[:10] == 0)),
                d.tag.eq(r.tag),
            ]
            return d

        # -- Writes: store and forward ------------------------------------------------------
        # The hard IP nullifies a TLP whose tvalid drops before its last beat [PG213
        # "Requester Memory Write Operation"], and the core's data may come with gaps. So a
        # write's command and data go into FIFOs, and the formatter starts a write only
        # once its whole payload is buffered; then its beats leave back to back. The data
        # FIFO holds two largest payloads, so one write fills while another drains. A write
        # that breaks a rule is refused here, before the FIFOs: its data is consumed and
        # dropped (it may be longer than the FIFO).
        cmd_in, data_in = self.wr.cmd, self.wr.data
        mps_bytes = named("mps_bytes", Mux(self.max_payload_size > 5, 4096,    # [PCIe 4.0
                                           Const(128, 13) << self.max_payload_size))  # §7.5.3.4]
        c = cmd_in.payload
        in_ok = named("in_ok", (c.addr[:2] == 0) & (c.length[:2] == 0) & (c.length != 0)
                      & (c.length <= mps_bytes) & (c.length <= self.max_payload)  # [§2.2.2]
                      & (c.addr[:12] + c.length <= 4096))       # no 4 KiB crossing [§2.2.7]
        m.submodules.cmd_fifo = cmd_fifo = SyncFIFOBuffered(
            width=Shape.cast(DmaWriteRequest).width, depth=self.CMD_DEPTH)
        # (the data FIFO shows a beat the cycle after it is written: a write can start the
        # cycle after its last beat came in, as ``complete`` counts it)
        m.submodules.data_fifo = data_fifo = BypassFIFO(
            width=W, depth=2 * self.max_payload // (W // 8) + 1)
        passing = Signal()              # a command was taken; its data beats come in
        in_bad = Signal()               # ... and it was refused: drop them
        complete = Signal(range(self.CMD_DEPTH + 1))    # whole payloads in the data FIFO
        in_last = named("in_last", data_in.valid & data_in.ready & data_in.payload.last)
        m.d.comb += [
            # the next command may come in with the last data beat of the one before
            cmd_in.ready.eq((~passing | in_last) & cmd_fifo.w_rdy),
            cmd_fifo.w_data.eq(c),
            cmd_fifo.w_en.eq(cmd_in.valid & cmd_in.ready & in_ok),
            data_in.ready.eq(passing & (in_bad | data_fifo.w_rdy)),
            data_fifo.w_data.eq(data_in.payload.data),
            data_fifo.w_en.eq(data_in.valid & data_in.ready & ~in_bad),
        ]
        m.d.sync += self.refused.eq(cmd_in.valid & cmd_in.ready & ~in_ok)
        with m.If(cmd_in.valid & cmd_in.ready):
            m.d.sync += [passing.eq(1), in_bad.eq(~in_ok)]
        with m.Elif(in_last):
            m.d.sync += passing.eq(0)
        w_start = Signal()              # the formatter takes the command at the head
        m.d.sync += complete.eq(complete + (in_last & ~in_bad) - w_start)

        cmd = stream.Signature(DmaWriteRequest).flip().create()     # the write to send
        wdata = stream.Signature(DmaWriteBeat(W)).flip().create()   # its data, no gaps
        m.d.comb += [
            cmd.valid.eq(cmd_fifo.r_rdy & (complete != 0)),
            cmd.payload.eq(cmd_fifo.r_data),
            cmd_fifo.r_en.eq(cmd.ready),
            w_start.eq(cmd.valid & cmd.ready),
            wdata.valid.eq(data_fifo.r_rdy),
            wdata.payload.data.eq(data_fifo.r_data),
            data_fifo.r_en.eq(wdata.ready),
        ]

        w = cmd.payload
        w_len = named("w_len", w.length[2:])            # payload DWORDs (≤ 1024)
        w_desc = Signal(RqDescriptor)
        m.d.comb += [
            w_desc.req_type.eq(ReqType.MEM_WRITE),
            w_desc.addr.eq(w.addr[2:]),
            w_desc.dword_count.eq(w_len),
        ]
        w_active = Signal()                             # a write TLP has beats to go
        w_ready = named("w_ready", cmd.valid & wdata.valid)  # a write can start

        # -- The write in progress ----------------------------------------------------------
        # Its next payload DWs are the top `shift` DWs of the input beat last taken, kept in
        # `w_hold`: shift 4 when the TLP started at DW 0, 12 when at DW 8.
        hold_dw = RQ_DESC_DW + (HALF_DW if self.straddle else 0)
        w_rem = Signal(11)                              # payload DWs not yet sent
        w_hold = Signal(hold_dw * 32)
        w_far = Signal()                                # it started at DW 8
        shift = Mux(w_far, RQ_DESC_DW + HALF_DW, RQ_DESC_DW)
        needs_in = named("needs_in", w_rem > shift)     # this beat takes a new input beat
        cont_go = named("cont_go", w_active & (~needs_in | wdata.valid))  # its beat can go
        cont_end = named("cont_end", w_rem <= N)
        cont_data = Cat(w_hold[(hold_dw - RQ_DESC_DW) * 32:], wdata.payload.data)[:W]
        if self.straddle:
            cont_data = Mux(w_far, Cat(w_hold, wdata.payload.data)[:W], cont_data)
        cont_data = named("cont_data", cont_data)
        # a starting write: descriptor, then its first input beat [PG213 DWORD-aligned mode]
        first_data = named("first_data", Cat(w_desc, wdata.payload.data)[:W])

        # -- Slot 0: the TLP at DW 0 (a continuation or a new TLP), round robin -------------
        prio_wr = Signal()                              # the next grant prefers a write
        s0_wr = named("s0_wr", ~w_active & w_ready & (prio_wr | ~r0_go))
        s0_rd = named("s0_rd", ~w_active & r0_go & ~s0_wr)
        s0_start = named("s0_start", s0_wr | s0_rd)
        s0_valid = named("s0_valid", cont_go | s0_start)
        s0_end = named("s0_end", Mux(w_active, cont_end, s0_rd | (w_len <= N - RQ_DESC_DW)))
        s0_last_dw = named("s0_last_dw", Mux(w_active, w_rem - 1, Mux(s0_rd, 3, 3 + w_len)),
                           range(N))                    # where it ends, if it ends here
        s0_lbe = named("s0_lbe", Mux(s0_rd, Mux(r0.dwords == 1, 0, 0xF),
                                     Mux(w_len == 1, 0, 0xF)), 4)
        s0_data = named("s0_data", Mux(w_active, cont_data,
                                       Mux(s0_wr, first_data, read_desc(r0))), W)

        # -- Slot 1 (straddle): a new TLP at DW 8 when slot 0's ends in DWs 0..7 ------------
        s1_wr = s1_rd = s1_end = s1_lbe = Const(0)
        s1_last_dw = Const(0, range(N))
        if self.straddle:
            lo_free = named("lo_free", s0_rd | (s0_wr & (w_len <= HALF_DW - RQ_DESC_DW))
                            | (cont_go & (w_rem <= HALF_DW)))
            r_next = named("r_next", Mux(s0_rd, rd.payload, r0), RqRead)
            r_next_valid = Mux(s0_rd, rbuf_valid & rd.valid & (np_room >= 2),  # the head
                               r0_go)                                           # behind
            # one command and one data beat per cycle: not behind a write that took them
            w_ready1 = w_ready & (s0_rd | (w_active & ~needs_in))
            prio1 = Mux(s0_rd, 1, Mux(s0_wr, 0, prio_wr))
            s1_wr = named("s1_wr", lo_free & w_ready1 & (prio1 | ~r_next_valid))
            s1_rd = named("s1_rd", lo_free & r_next_valid & ~s1_wr)
            s1_end = named("s1_end", s1_rd | (w_len <= N - HALF_DW - RQ_DESC_DW))
            s1_last_dw = named("s1_last_dw", Mux(s1_rd, HALF_DW + 3, HALF_DW + 3 + w_len),
                               range(N))
            s1_lbe = named("s1_lbe", Mux(s1_rd, Mux(r_next.dwords == 1, 0, 0xF),
                                         Mux(w_len == 1, 0, 0xF)), 4)
            s1_data = named("s1_data", Mux(s1_wr, first_data, read_desc(r_next)), W // 2)
        s1_valid = named("s1_valid", s1_wr | s1_rd)

        # -- Consume the inputs when the output register takes a beat -----------------------
        load = named("load", ~rq.tvalid | rq.tready)
        reads = named("reads", s0_rd + s1_rd, 2)
        rbuf_taken = named("rbuf_taken", load & rbuf_valid & (reads != 0))
        head_taken = named("head_taken", load & Mux(rbuf_valid, reads == 2, reads == 1))
        m.d.comb += [
            rd.ready.eq(~rbuf_valid | rbuf_taken | head_taken),
            cmd.ready.eq(load & (s0_wr | s1_wr)),
            wdata.ready.eq(load & (s0_wr | s1_wr | (w_active & needs_in))),
        ]
        with m.If(rd.valid & rd.ready & ~head_taken):
            m.d.sync += [rbuf.eq(rd.payload), rbuf_valid.eq(1)]
        with m.Elif(rbuf_taken):
            m.d.sync += rbuf_valid.eq(0)

        with m.If(load):
            with m.If(s0_wr):
                m.d.sync += [
                    w_active.eq(w_len > N - RQ_DESC_DW),
                    w_rem.eq(w_len - (N - RQ_DESC_DW)),
                    w_hold.eq(wdata.payload.data[(N - hold_dw) * 32:]),
                    w_far.eq(0),
                ]
            with m.Elif(cont_go):
                m.d.sync += [w_active.eq(~cont_end), w_rem.eq(w_rem - N)]
                with m.If(needs_in):
                    m.d.sync += w_hold.eq(wdata.payload.data[(N - hold_dw) * 32:])
            with m.If(s1_wr):
                m.d.sync += [
                    w_active.eq(w_len > N - HALF_DW - RQ_DESC_DW),
                    w_rem.eq(w_len - (N - HALF_DW - RQ_DESC_DW)),
                    w_hold.eq(wdata.payload.data[(N - hold_dw) * 32:]),
                    w_far.eq(1),
                ]
            # round robin per TLP: after a read a write goes first, and the other way round
            with m.If(s1_valid):
                m.d.sync += prio_wr.eq(s1_rd)
            with m.Elif(s0_start):
                m.d.sync += prio_wr.eq(s0_rd)

        # -- The beat ------------------------------------------------------------------------
        keep0 = Mux(s0_end, dw_mask(0, s0_last_dw), Const((1 << N) - 1, N))
        if self.straddle:
            tdata = Cat(s0_data[:W // 2], Mux(s1_valid, s1_data, s0_data[W // 2:]))
            keep1 = Mux(s1_end, dw_mask(HALF_DW, s1_last_dw), dw_mask(HALF_DW, N - 1))
            tkeep = Mux(s1_valid, keep0 | keep1, keep0)
            # the beat ends on a TLP boundary (the IP ignores tlast when straddling)
            tlast = Mux(s1_valid, s1_end, s0_end)
        else:
            tdata, tkeep, tlast = s0_data, keep0, s0_end
        user = rq.tuser
        with m.If(load):
            m.d.sync += [
                rq_reads.eq(reads),
                rq.tvalid.eq(s0_valid),
                rq.tdata.eq(tdata),
                rq.tkeep.eq(tkeep),
                rq.tlast.eq(tlast),
                # DWORD-aligned mode: addr_offset 0; no discontinue, TPH, seq_num or parity
                user.eq(0),
            ]
            if W == 256:
                m.d.sync += [user.first_be.eq(Mux(s0_start, 0xF, 0)),
                             user.last_be.eq(Mux(s0_start, s0_lbe, 0))]
            else:
                # [PG213 Table "Sideband Signal Descriptions in s_axis_rq_tuser", 512-bit]:
                # is_sop[i] and first_be/last_be group i = the i-th TLP starting in the beat,
                # is_sopI_ptr its start DW / 4; is_eopI_ptr = last DW of the i-th TLP ending.
                both_sop = s0_start & s1_valid
                s0_eop = s0_valid & s0_end
                s1_eop = s1_valid & s1_end
                sop_ptr = Const(HALF_DW // 4, 2)
                m.d.sync += [
                    user.is_sop.eq(Mux(both_sop, 0b11, s0_start | s1_valid)),
                    user.is_sop0_ptr.eq(Mux(s0_start, 0, sop_ptr)),
                    user.is_sop1_ptr.eq(Mux(both_sop, sop_ptr, 0)),
                    user.is_eop.eq(Mux(s0_eop & s1_eop, 0b11, s0_eop | s1_eop)),
                    user.is_eop0_ptr.eq(Mux(s0_eop, s0_last_dw, Mux(s1_eop, s1_last_dw, 0))),
                    user.is_eop1_ptr.eq(Mux(s0_eop & s1_eop, s1_last_dw, 0)),
                    user.first_be.eq(Mux(both_sop, 0xFF, Mux(s0_start | s1_valid, 0x0F, 0))),
                    user.last_be.eq(Mux(both_sop, Cat(s0_lbe, s1_lbe),
                                        Mux(s0_start, s0_lbe, Mux(s1_valid, s1_lbe, 0)))),
                ]

        m.d.comb += self.idle.eq(~rq.tvalid & ~rbuf_valid & ~cmd_fifo.r_rdy & ~w_active &
                                 ~passing & ~data_fifo.r_rdy)
        return m
