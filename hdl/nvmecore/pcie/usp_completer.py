"""UltraScale+ completer: CQ requests → register bus; read data → CC completions.

Handles one request at a time, in the hard IP's DWORD-aligned mode [PG213 "Completer
Interface"]:

- Memory reads and writes that hit BAR0 become register-bus accesses at the request's
  address modulo ``BAR0_SIZE``: one :class:`RegRequest` per QWORD the request touches, low
  address first. Byte enables come from the first DWORD's ``first_be``, the last DWORD's
  ``last_be`` and all ones between [PCIe 4.0 §2.2.5]; a write QWORD without an enabled
  byte issues nothing.
- A read of up to 32 DWORDs (128 B, DESIGN.md §11) collects its responses and answers
  with one CC completion. A zero-length read (one DWORD, ``first_be`` 0) touches no
  register and returns one DWORD of zeros [PCIe 4.0 §2.2.5: the data returned is
  undefined].
- Writes longer than max payload size or to another BAR, messages and any other posted
  request are dropped; every other non-posted request (longer reads, reads of other BARs,
  I/O, atomics, locked reads, configuration) is answered with an Unsupported Request
  completion without data. ``unsupported`` pulses once for each. Either way the whole
  request is consumed. A UR completion to a memory read carries the byte count and lower
  address a successful one would; to an AtomicOp, the operand size and 0; to anything
  else, 4 and 0 [PCIe 4.0 §2.2.9]. ``err_cor`` pulses with a UR completion (an advisory
  non-fatal error) and ``err_uncor`` with a dropped posted request [PCIe 4.0 §6.2.3.2.4]:
  the adapter passes them to the hard IP's ``cfg_err_cor_in`` / ``cfg_err_uncor_in``.
- Non-posted credits: ``np_req`` (the hard IP's ``pcie_cq_np_req``) grants one credit at
  a time, keeping at most two granted and not yet used [PG213 ``pcie_cq_np_req``: the
  hard IP forwards a non-posted request only while its credit count is non-zero]. A
  credit counts as used when a non-posted request's first beat is taken. The count is
  kept in ``credit_domain``, which an adapter leaves out of a function-level reset, as
  the hard IP's own count is.

Read turnaround with a register bus that answers one cycle after the request: CQ first
beat in cycle 0, register request in cycle 1, response in cycle 2, CC first beat in
cycle 3. A write's last register request and the next request's first beat share a
cycle, so single-QWORD writes (a host ringing doorbells) go one per cycle.

A beat with ``discontinue`` set ends the request where it stands: the rest of its data is
dropped and a read is not answered, as PG213 asks of the user ("must discard the entire
TLP"); a write's QWORDs taken from earlier beats have already been issued.
"""

from amaranth import C, Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..bus import RegisterBus
from ..layouts import BAR0_SIZE, RegRequest
from .usp_layouts import (
    CC_DESC_DW,
    CQ_DESC_DW,
    USP_WIDTHS,
    Axis,
    CcDescriptor,
    CplStatus,
    CqDescriptor,
    ReqType,
)

__all__ = ["UspCompleter", "MAX_READ_DW", "NP_CREDITS"]

MAX_READ_DW = 32            # longer reads are answered UR (DESIGN.md §11)
NP_CREDITS = 2              # non-posted credits kept granted ahead of use
_READ_QWORDS = MAX_READ_DW // 2 + 1     # an odd start address touches one QWORD more
_BAR0_QW_BITS = (BAR0_SIZE // 8).bit_length() - 1
assert (1 << _BAR0_QW_BITS) * 8 == BAR0_SIZE
assert data.Layout.cast(RegRequest)["addr"].width == _BAR0_QW_BITS + 3


def _posted(req_type):
    """Posted request types: memory writes and messages [PCIe 4.0 §2.4.1]."""
    return ((req_type == ReqType.MEM_WRITE) | (req_type == ReqType.MSG) |
            (req_type == ReqType.MSG_VENDOR) | (req_type == ReqType.MSG_ATS))


def _first_byte(be):
    """Offset of the first enabled byte in a DWORD, 0 when none is: the lower address
    table of [PCIe 4.0 §2.3.1.1]."""
    return Mux(be[0], 0, Mux(be[1], 1, Mux(be[2], 2, Mux(be[3], 3, 0))))


def _bytes_after_last(be):
    """Bytes after the last enabled byte of a DWORD (3 when none is): the byte count
    table of [PCIe 4.0 §2.3.1.1]."""
    return Mux(be[3], 0, Mux(be[2], 1, Mux(be[1], 2, 3)))


class UspCompleter(wiring.Component):
    """Completer for PF0's BAR0 on a ``width``-bit (256 or 512) UltraScale+ interface."""

    def __init__(self, width, *, credit_domain="sync"):
        if width not in USP_WIDTHS:
            raise ValueError(f"the UltraScale+ completer runs at {USP_WIDTHS} bits, "
                             f"not {width}")
        self.width = width
        self.credit_domain = credit_domain
        super().__init__({
            "cq":     In(Axis("cq", width)),
            "cc":     Out(Axis("cc", width)),
            "regs":   Out(RegisterBus()),
            "np_req": Out(2),                   # pcie_cq_np_req
            "max_payload_size": In(3),          # 0 = 128 B ... 5 = 4096 B
            "idle":   Out(1),
            "unsupported": Out(1),
            # errors for the hard IP's AER logic (cfg_err_cor_in / cfg_err_uncor_in)
            "err_cor":   Out(1),
            "err_uncor": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        lanes = self.width // 32
        cq, cc, regs = self.cq, self.cc, self.regs

        # -- CQ beat framing [PG213 "Completer Request Interface"]; CQ never straddles, so
        # a TLP starts at DWORD 0 (is_sop0_ptr = 0) -----------------------------------------
        if self.width == 512:
            sop, eop = cq.tuser.is_sop[0], cq.tuser.is_eop[0]
        else:
            sop, eop = cq.tuser.sop, cq.tlast
        desc_in = CqDescriptor(cq.tdata[:32 * CQ_DESC_DW])
        ndw_in = Mux(desc_in.dword_count == 0, 1024, desc_in.dword_count)   # 0 = 1024 DW
        mps_dw = Mux(self.max_payload_size > 5, 1024,
                     Const(32, 11) << self.max_payload_size)   # [PCIe 4.0 §7.5.3.4]

        # -- The request being served ------------------------------------------------------
        req = Signal(CqDescriptor)
        ndw = Signal(11)              # its length in DWORDs, 1 to 1024
        first_be = Signal(4)
        last_be = Signal(4)
        status = Signal(CplStatus)
        got_last = Signal()           # its last beat has been taken
        odd = req.addr[0]             # starts in the upper half of a QWORD

        # -- QWORD sequencer: QWORD `qaddr` holds the DWORDs numbered n_hi - 1 and n_hi,
        # counting the request's DWORDs from 1 (0 is the pad below an odd start) ----------
        qaddr = Signal(_BAR0_QW_BITS)
        n_hi = Signal(12)
        # What the register bus request needs from n_hi is kept in registers, computed
        # when n_hi is loaded or stepped (250 MHz: no comparator chain between n_hi and
        # the core's register decode).
        last_qw = Signal()            # n_hi >= ndw
        hi_beyond = Signal()          # n_hi > ndw
        qw_be = Signal(8)             # the byte enables of QWORD qaddr
        qw_any = Signal()             # qw_be != 0

        def dw_be(n, ndw, first_be, last_be):
            return Mux((n == 0) | (n > ndw), 0,
                       Mux(n == 1, first_be, Mux(n == ndw, last_be, 0xF)))

        def load_qword(n, ndw, first_be, last_be):
            """n_hi and the flags derived from it, for the next cycle."""
            n = Value.cast(n)[:12]
            be = Cat(dw_be(n - 1, ndw, first_be, last_be), dw_be(n, ndw, first_be, last_be))
            m.d.sync += [n_hi.eq(n), last_qw.eq(n >= ndw), hi_beyond.eq(n > ndw),
                         qw_be.eq(be), qw_any.eq(be != 0)]

        # -- Write data, re-aligned to QWORDs: buf[:64] is QWORD `qaddr` ------------------
        buf = Signal(self.width + 32)
        buf_cnt = Signal(range(lanes + 2))      # DWORDs in buf
        have_qw = (buf_cnt >= 2) | ((buf_cnt == 1) & hi_beyond)   # hi DWORD beyond the end

        m.d.comb += [
            regs.req.payload.addr.eq(Cat(C(0, 3), qaddr)),
            regs.req.payload.be.eq(qw_be),
            regs.req.payload.data.eq(buf[:64]),
        ]

        def next_qword():
            m.d.sync += qaddr.eq(qaddr + 1)
            load_qword(n_hi + 2, ndw, first_be, last_be)

        # -- Read data and the completion ------------------------------------------------
        rbuf = Signal(64 * _READ_QWORDS)        # responses, the first at bit 0
        rd_idx = Signal(range(_READ_QWORDS + 1))
        rd_last = Signal(range(_READ_QWORDS))
        issuing = Signal()
        cc_left = Signal(range(CC_DESC_DW + MAX_READ_DW + 1))   # DWORDs still to send
        cc_beats = -(-(32 * (CC_DESC_DW + MAX_READ_DW)) // self.width)
        cc_beat = Signal(range(cc_beats))
        cc_last = cc_left <= lanes

        mem_read = (req.req_type == ReqType.MEM_READ) | (req.req_type == ReqType.MEM_READ_LOCKED)

        def byte_count(req_type, ndw, first_be, last_be):
            """[PCIe 4.0 §2.2.9, §2.3.1.1] the completion's byte count: the bytes the
            enables cover for memory reads (a zero-length read counts 4 - 0 - 3 = 1, as
            the table wants), the operand size for AtomicOps, 4 for everything else."""
            reads = (req_type == ReqType.MEM_READ) | (req_type == ReqType.MEM_READ_LOCKED)
            be_bytes = (ndw * 4 - _first_byte(first_be)
                        - _bytes_after_last(Mux(ndw == 1, first_be, last_be)))
            return Mux(reads, be_bytes,
                       Mux((req_type == ReqType.MEM_FETCH_ADD) | (req_type == ReqType.MEM_SWAP),
                           ndw * 4, Mux(req_type == ReqType.MEM_CAS, ndw * 2, 4)))

        # loaded with the request (250 MHz: no subtraction chain before CC's data)
        cpl_bytes = Signal(13)
        desc = Signal(CcDescriptor)
        m.d.comb += [
            # [PCIe 4.0 §2.2.9] memory read completions (UR ones too) carry the address of
            # the first enabled byte; all other completions carry zero.
            desc.lower_address.eq(Mux(mem_read, Cat(_first_byte(first_be)[:2], req.addr[:5]),
                                      0)),
            desc.at.eq(req.at),
            desc.byte_count.eq(cpl_bytes),
            # [PG213 CC descriptor] set for a completion to a locked read, 0 otherwise.
            desc.locked_read.eq(req.req_type == ReqType.MEM_READ_LOCKED),
            desc.dword_count.eq(Mux(status == CplStatus.SC, ndw, 0)),
            desc.status.eq(status),
            desc.requester_id.eq(req.requester_id),
            desc.tag.eq(req.tag),
            desc.tc.eq(req.tc),
            desc.attr.eq(req.attr),
            # completer_id_en = 0: the hard IP fills in the completer ID [PG213].
        ]
        payload = Mux(odd, rbuf[32:32 * (MAX_READ_DW + 1)], rbuf[:32 * MAX_READ_DW])
        tlp = Cat(desc, payload, C(0, cc_beats * self.width - 32 * (CC_DESC_DW + MAX_READ_DW)))
        m.d.comb += [
            cc.tdata.eq(tlp.word_select(cc_beat, self.width)),
            cc.tkeep.eq(Cat(cc_left > i for i in range(lanes))),
            cc.tlast.eq(cc_last),
        ]
        if self.width == 512:
            # The 512-bit CC interface frames TLPs with is_sop/is_eop [PG213 512-bit
            # completer interface].
            m.d.comb += [
                cc.tuser.is_sop[0].eq(cc_beat == 0),
                cc.tuser.is_eop[0].eq(cc_last),
                cc.tuser.is_eop0_ptr.eq(Mux(cc_last, cc_left - 1, 0)),
            ]

        # -- Non-posted credits [PG213 "pcie_cq_np_req"]: 0b01 grants one ---------------------
        # The count lives in ``credit_domain``: the hard IP's own count survives a
        # function-level reset (only user_reset / link down clear it), so an adapter that
        # resets the completer on FLR keeps this one out of that reset; otherwise the IP
        # would hold two more credits after every FLR.
        credits = Signal(range(NP_CREDITS + 1))
        np_used = Signal()
        grant = (credits < NP_CREDITS) | np_used
        m.d[self.credit_domain] += [
            credits.eq(credits + grant - np_used),
            self.np_req.eq(Cat(grant, C(0, 1))),
        ]
        m.d.sync += [self.unsupported.eq(0), self.err_cor.eq(0), self.err_uncor.eq(0)]

        def finish():
            with m.If(got_last):
                m.next = "IDLE"
            with m.Else():
                m.next = "DRAIN"

        def start():
            """Take the request whose first beat is on CQ (in IDLE, or as a write's last
            QWORD goes: one single-QWORD write per cycle, such as a stream of doorbells)."""
            m.next = "IDLE"                     # unless it says otherwise below
            m.d.comb += np_used.eq(~_posted(desc_in.req_type))
            m.d.sync += [
                req.eq(desc_in),
                ndw.eq(ndw_in),
                first_be.eq(cq.tuser.first_be[:4]),
                last_be.eq(cq.tuser.last_be[:4]),
                got_last.eq(eop),
                status.eq(CplStatus.SC),
                qaddr.eq(desc_in.addr[1:]),
                # payload DWORDs in this beat, after a zero pad below an odd start
                buf.eq(Mux(desc_in.addr[0], Cat(C(0, 32), cq.tdata[32 * CQ_DESC_DW:]),
                           cq.tdata[32 * CQ_DESC_DW:])),
                buf_cnt.eq(desc_in.addr[0] + lanes - CQ_DESC_DW),
                issuing.eq(1),
                rd_idx.eq(0),
                rd_last.eq((desc_in.addr[0] + ndw_in - 1) >> 1),
                rbuf[:64].eq(0),
                cc_left.eq(CC_DESC_DW + ndw_in),
                cpl_bytes.eq(byte_count(desc_in.req_type, ndw_in,
                                        cq.tuser.first_be[:4], cq.tuser.last_be[:4])),
            ]
            load_qword(2 - desc_in.addr[0], ndw_in, cq.tuser.first_be[:4],
                       cq.tuser.last_be[:4])
            bar0 = desc_in.bar_id == 0
            with m.If(cq.tuser.discontinue):
                m.d.sync += self.unsupported.eq(1)
                with m.If(~eop):
                    m.next = "DRAIN"
            with m.Elif((desc_in.req_type == ReqType.MEM_WRITE) & bar0 &
                        (ndw_in <= mps_dw)):
                m.next = "WRITE"
            with m.Elif((desc_in.req_type == ReqType.MEM_READ) & bar0 &
                        (ndw_in <= MAX_READ_DW)):
                with m.If((ndw_in == 1) & (cq.tuser.first_be[:4] == 0)):
                    m.next = "CPL"          # zero-length read: no register access
                with m.Else():
                    m.next = "READ"
            with m.Elif(_posted(desc_in.req_type)):
                # an unsupported posted request: an uncorrectable (non-fatal) error,
                # as nothing answers it [PCIe 4.0 §6.2.3.2.4.1]
                m.d.sync += [self.unsupported.eq(1), self.err_uncor.eq(1)]
                with m.If(~eop):
                    m.next = "DRAIN"
            with m.Else():
                # answered with UR: an advisory non-fatal error, reported as
                # correctable [PCIe 4.0 §6.2.3.2.4.1]
                m.d.sync += [
                    self.unsupported.eq(1),
                    self.err_cor.eq(1),
                    status.eq(CplStatus.UR),
                    cc_left.eq(CC_DESC_DW),
                ]
                m.next = "CPL"

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += [self.idle.eq(1), cq.tready.eq(1)]
                with m.If(cq.tvalid & sop):
                    start()
                with m.Elif(cq.tvalid & ~eop):
                    m.next = "DRAIN"                # a stray beat: skip to the end of it

            with m.State("WRITE"):
                m.d.comb += [
                    regs.req.valid.eq(have_qw & qw_any),
                    regs.req.payload.write.eq(1),
                ]
                with m.If(have_qw):
                    with m.If(regs.req.ready | ~qw_any):
                        next_qword()
                        m.d.sync += [
                            buf.eq(buf[64:]),
                            buf_cnt.eq(Mux(buf_cnt >= 2, buf_cnt - 2, 0)),
                        ]
                        with m.If(last_qw & got_last):
                            # The next request may start in this cycle.
                            m.d.comb += cq.tready.eq(1)
                            with m.If(cq.tvalid & sop):
                                start()
                            with m.Elif(cq.tvalid & ~eop):
                                m.next = "DRAIN"
                            with m.Else():
                                m.next = "IDLE"
                        with m.Elif(last_qw):
                            m.next = "DRAIN"
                with m.Elif(got_last):
                    m.next = "IDLE"                 # shorter than its length says
                with m.Else():
                    m.d.comb += cq.tready.eq(1)
                    with m.If(cq.tvalid):
                        m.d.sync += [
                            # a DWORD left over from the previous beat goes below this one
                            buf.eq(Mux(buf_cnt[0], Cat(buf[:32], cq.tdata), cq.tdata)),
                            buf_cnt.eq(buf_cnt[0] + lanes),
                            got_last.eq(eop),
                        ]
                        with m.If(cq.tuser.discontinue):
                            m.d.sync += self.unsupported.eq(1)
                            with m.If(eop):
                                m.next = "IDLE"
                            with m.Else():
                                m.next = "DRAIN"

            with m.State("READ"):
                m.d.comb += [
                    regs.req.valid.eq(issuing),
                    regs.resp.ready.eq(1),
                ]
                with m.If(issuing & regs.req.ready):
                    next_qword()
                    with m.If(last_qw):
                        m.d.sync += issuing.eq(0)
                with m.If(regs.resp.valid):
                    m.d.sync += [
                        rbuf.word_select(rd_idx, 64).eq(regs.resp.payload),
                        rd_idx.eq(rd_idx + 1),
                    ]
                    with m.If(rd_idx == rd_last):
                        m.next = "CPL"

            with m.State("CPL"):
                m.d.comb += cc.tvalid.eq(1)
                with m.If(cc.tready):
                    m.d.sync += [cc_beat.eq(cc_beat + 1), cc_left.eq(cc_left - lanes)]
                    with m.If(cc_last):
                        m.d.sync += cc_beat.eq(0)
                        finish()

            with m.State("DRAIN"):
                m.d.comb += cq.tready.eq(1)
                with m.If(cq.tvalid & eop):
                    m.next = "IDLE"

        return m
