"""UltraScale+ requester-completion (RC) parser: completion payload into the reorder ring.

Takes RC beats from the hard IP in DWORD-aligned mode [PG213 "Requester Completion
Interface"], straddled or not, and writes each completion's payload DWORDs into a ring of
``width/32`` DWORD banks (owned by :class:`~.usp_read.UspReadEngine`) at the position its
request reserved. Per TLP: a 3-DW :class:`RcDescriptor`, then ``dword_count`` payload
DWORDs; TLPs start on 128-bit boundaries [PG213 RC straddle], so a descriptor never spans
two beats, but a payload may.

Four stages:

- **S0** is the beat as ``rc`` shows it: ``rc`` must come from registers (the adapter's
  :class:`~.usp_skid.AxisSkid` on RC, whose own ``tready`` towards the hard IP is a
  register); ``rc.tready`` is high whenever SL is empty or moves on.
- **SL** registers the beat again with the engine's answers about each TLP starting in
  it (``lookup``, asked as the beat enters SL): is the tag outstanding, where is its
  request in the ring, how long is it. Which TLP a beat leaves open (where the next
  beat's TLPs start at 256 bits) follows from ``is_sop``/``is_eop`` alone and is tracked
  here. What S1 needs that does not depend on the ring row is computed here too and
  registered with the answers (LUT depth): each slot's lanes, each completion's offset in
  its request, its lane-to-bank rotation and whether it failed.
- **S1** (combinational on SL) cuts the beat into *pieces*: slot 0 is the TLP that
  continues from the previous beat, slot k+1 the k-th TLP starting in this beat. Payload
  DWORD i of a completion goes to request DWORD (request length − byte_count) + i
  [PCIe 4.0 §2.2.9: byte count is what remains, this completion included]. A piece
  becomes a bank mask, a rotation (lane → bank) and a start row.
- **S2** writes the pieces to the banks (which pieces clash is registered with them).
  Pieces of one beat usually land on different banks and go in one cycle; where two
  would write the same bank, the later one waits a cycle (and RC with it). Pieces are
  written in order, and a completion's event (request done, request failed) is reported
  as its last piece is written (``early``, one per piece, for the engine's delivery
  decision, a register) and (``event``, for the per-tag state) from a register the cycle
  after its last piece is written, at most one event a
  cycle; so a request is never seen done before its data is in the ring.

A completion for a tag that is not outstanding is dropped and pulses ``unexpected``; so
is any completion after the one that ended its request, once the engine has seen that
one. A completion with an error code, a status other than SC, poisoned data
[PCIe 4.0 §2.7.2], a byte count beyond its request, or in a beat marked ``discontinue``
[PG213 RC tuser: discard the TLP] writes nothing and marks its request failed.
"""

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from .usp_layouts import SEGMENT_DW, Axis, CplStatus, RcDescriptor, RcErrorCode, straddle_segments

__all__ = ["UspRcParser", "RcLookup", "BankWrite", "RcEvent"]


class RcLookup(wiring.Signature):
    """Per starting TLP: the parser asks about ``tag``; the engine answers (combinationally)
    whether it is outstanding, and where its request sits in the ring. ``discard``: the
    tag is still the hard IP's, but its request has been given up (the engine's own
    time-out): its completions are taken, their data dropped, and the one that ends it
    is reported (the IP's verdict frees the tag)."""

    def __init__(self, row_bits):
        super().__init__({
            "tag":    Out(8),
            "live":   In(1),
            "discard": In(1),
            "row":    In(row_bits),     # first ring row of the request
            "dwords": In(11),           # request length in DWORDs (1 to 1024)
        })


class BankWrite(wiring.Signature):
    def __init__(self, row_bits):
        super().__init__({"en": Out(1), "row": Out(row_bits), "data": Out(32)})


class RcEvent(data.Struct):
    """A completion of an outstanding tag has been written: ``done`` if it ended its
    request (``request_done``), ``failed`` if it was an error."""
    valid:  1
    tag:    8
    done:   1
    failed: 1


class _Open(data.Struct):
    """The TLP that continues into the next beat."""
    open:   1
    tag:    8
    live:   1       # its tag was outstanding: report an event at its end
    write:  1       # its payload goes to the ring
    done:   1
    failed: 1
    addr:   16      # ring DWORD address of its next payload DWORD (low bits used)


class UspRcParser(wiring.Component):
    def __init__(self, width, ring_rows):
        self._width = width
        self._lanes = width // 32
        self._starts = straddle_segments("rc", width)
        self._row_bits = exact_log2(ring_rows)
        super().__init__({
            "rc":         In(Axis("rc", width)),
            "lookup":     Out(RcLookup(self._row_bits)).array(self._starts),
            "write":      Out(BankWrite(self._row_bits)).array(self._lanes),
            "event":      Out(RcEvent),
            # per piece register of S2, the event it reports as its last piece is written
            # (the cycle before ``event``)
            "early":      Out(RcEvent).array(self._starts + 1),
            "unexpected": Out(1),
            "err_cor":    Out(1),
            "err_uncor":  Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        L, P, width = self._lanes, self._starts, self._width
        lb = exact_log2(L)
        addr_bits = self._row_bits + lb
        rc = self.rc

        # -- S0: the beat, from the register slice in front (``rc`` is registered) ----------
        s0_valid, s0_data, s0_user = rc.tvalid, rc.tdata, rc.tuser
        s2_free = Signal()                  # S2 writes its last pieces this cycle
        move = Signal()                     # SL's beat goes to S2 at this edge
        move0 = Signal()                    # S0's beat goes to SL at this edge
        s1_valid = Signal()                 # SL holds a beat
        s1_free = Signal()
        m.d.comb += [
            move.eq(s1_valid & s2_free),
            s1_free.eq(~s1_valid | s2_free),
            move0.eq(s0_valid & s1_free),
            rc.tready.eq(s1_free),
        ]

        def framing(user, is_open):
            """Where the TLPs of a beat start and end, given whether one continues into
            it: (sop_valid, sop_seg, eop_valid, eop_lane), eop lists one longer."""
            if width == 256:
                # [PG213 256-bit RC straddle] is_sop[0]: a TLP starts in DW 0, or in DW 4
                # when another one ends in this beat; is_sop[1]: a second one in DW 4.
                sop_valid = [user.is_sop[0], user.is_sop[1]]
                sop_seg = [is_open, Const(1)]
                eop_valid = [user.is_eop0, user.is_eop1]
                eop_lane = [user.is_eop0_ptr, user.is_eop1_ptr]
            else:
                # [PG213 512-bit RC] is_sop[k] / is_sopk_ptr: the k+1-th TLP starts in 128-bit
                # segment ptr; is_eop[k] / is_eopk_ptr: the k+1-th TLP ends in DWORD ptr.
                sop_valid = [user.is_sop[k] for k in range(P)]
                sop_seg = [user[f"is_sop{k}_ptr"] for k in range(P)]
                eop_valid = [user.is_eop[k] for k in range(P)]
                eop_lane = [user[f"is_eop{k}_ptr"] for k in range(P)]
            return sop_valid, sop_seg, eop_valid + [Const(0)], eop_lane + [Const(0)]

        # -- SL: the tag lookups, registered ---------------------------------------------------
        # Framing is known from is_sop / is_eop alone, so the TLP left open by a beat (which
        # moves where the next beat's TLPs start at 256 bits) is tracked here, a stage ahead
        # of the pieces. Each starting TLP's tag is looked up in the engine as the beat enters
        # SL; the answers wait in registers for S1 (LUT depth: the lookup and the ring
        # arithmetic are in different stages).
        frame_open = Signal()               # a TLP continues past the beats taken into SL
        f_sop, f_seg, f_eop, f_lane = framing(s0_user, frame_open)
        s1_data = Signal(width)
        s1_user = Signal(rc.tuser.shape())
        s1_open = Signal()                  # a TLP continues into SL's beat
        answers = []
        for k in range(P):
            d = Signal(RcDescriptor, name=f"ldesc{k}")
            m.d.comb += [d.eq(s0_data.word_select(f_seg[k], 32 * SEGMENT_DW)[:96]),
                         self.lookup[k].tag.eq(d.tag)]
            # ``off``: where this completion's first DWORD sits in its request (request
            # length − byte count in DWORDs, modulo the ring); ``rot``: its lane-to-bank
            # rotation; ``failed`` and the length checks: all computed here (LUT depth: S1
            # adds the request's row and rotates lane masks only)
            answer = Signal(data.StructLayout({
                "live": 1, "discard": 1, "row": self._row_bits, "off": addr_bits,
                "rot": lb, "too_long": 1, "bad_count": 1, "failed": 1}), name=f"ans{k}")
            answers.append(answer)
            with m.If(move0):
                look = self.lookup[k]
                bc = d.byte_count[2:]
                too_long, bad_count = bc > look.dwords, d.dword_count > bc
                m.d.sync += [answer.live.eq(look.live), answer.discard.eq(look.discard),
                             answer.row.eq(look.row),
                             answer.off.eq(look.dwords - bc),
                             answer.rot.eq(look.dwords - bc - ((f_seg[k] << 2) + 3)),
                             answer.too_long.eq(too_long), answer.bad_count.eq(bad_count),
                             answer.failed.eq((d.error_code != RcErrorCode.NORMAL) |
                                              (d.status != CplStatus.SC) | d.poisoned |
                                              too_long | bad_count)]
        # Each slot's framing (see S1), registered for S1: active, ends here, first and last
        # payload lane, and the lanes between them.
        frame_layout = data.StructLayout({"active": 1, "ends": 1, "first": lb, "last": lb,
                                          "mask": L})
        frames = [Signal(frame_layout, name=f"frame{j}") for j in range(P + 1)]
        open_after = frame_open             # the last active slot of the beat does not end
        for j, frame in enumerate(frames):
            if j == 0:
                active, ends, first = frame_open, f_eop[0], Const(0, lb)
                last = Mux(ends, f_lane[0], L - 1)
            else:
                active = f_sop[j - 1]
                ends = Mux(frame_open, f_eop[j], f_eop[j - 1])
                first = (f_seg[j - 1] << 2) + 3
                last = Mux(ends, Mux(frame_open, f_lane[j], f_lane[j - 1]), L - 1)
            fr = Signal(frame_layout, name=f"fr{j}")
            m.d.comb += [fr.active.eq(active), fr.ends.eq(ends), fr.first.eq(first),
                         fr.last.eq(last)]
            m.d.comb += fr.mask.eq(Cat(_lane_in(fr, i, L) for i in range(L)))
            with m.If(move0):
                m.d.sync += frame.eq(fr)
            open_after = Mux(active, ~ends, open_after)
        with m.If(move0):
            m.d.sync += [s1_data.eq(s0_data), s1_user.eq(s0_user), s1_open.eq(frame_open),
                         frame_open.eq(open_after)]
        with m.If(move0):
            m.d.sync += s1_valid.eq(1)
        with m.Elif(move):
            m.d.sync += s1_valid.eq(0)

        # -- S1: pieces ----------------------------------------------------------------------
        op = Signal(_Open)
        sop_valid, sop_seg, _, _ = framing(s1_user, s1_open)   # (the rest is in frames)

        # Each slot: active, ends here, first/last payload lane, ring address of the first
        # payload DWORD, payload written?, and the event fields.
        slot_layout = data.StructLayout({
            "active": 1, "ends": 1, "first": lb, "last": lb, "addr": addr_bits,
            "write": 1, "live": 1, "tag": 8, "done": 1, "failed": 1,
        })
        slots = [Signal(slot_layout, name=f"slot{j}") for j in range(P + 1)]
        for slot, frame in zip(slots, frames, strict=True):
            m.d.comb += [slot.active.eq(frame.active), slot.ends.eq(frame.ends),
                         slot.first.eq(frame.first), slot.last.eq(frame.last)]
        rots = [op.addr[:lb]] + [a.rot for a in answers]     # lane + rot = bank
        m.d.comb += [
            slots[0].addr.eq(op.addr), slots[0].write.eq(op.write), slots[0].live.eq(op.live),
            slots[0].tag.eq(op.tag), slots[0].done.eq(op.done), slots[0].failed.eq(op.failed),
        ]
        unexpected, cor, uncor = Signal(), Signal(), Signal()
        for k, slot in enumerate(slots[1:]):
            desc = Signal(RcDescriptor, name=f"desc{k}")
            m.d.comb += desc.eq(s1_data.word_select(sop_seg[k], 32 * SEGMENT_DW)[:96])
            look = answers[k]
            m.d.comb += [
                slot.addr.eq((look.row << lb) + look.off),
                slot.failed.eq(look.failed),
                slot.write.eq(look.live & ~look.discard & ~slot.failed),
                slot.live.eq(look.live),
                slot.tag.eq(desc.tag), slot.done.eq(desc.request_done),
            ]
            with m.If(sop_valid[k] & ~look.live):
                m.d.comb += unexpected.eq(1)
            # Errors for the hard IP's AER logic, classed as PCIe does [PCIe 4.0 §6.2.3.2.4]:
            # poisoned data and UR / CA status are advisory non-fatal (reported correctable),
            # as is an unexpected completion; a malformed completion (length, address,
            # requester ID mismatch) and a completion time-out are uncorrectable. Not again
            # for a request the engine already gave up (it reported the time-out then).
            code = desc.error_code
            with m.If(sop_valid[k] & look.live & ~look.discard):
                with m.If((code == RcErrorCode.BAD_LENGTH) | (code == RcErrorCode.MISMATCH) |
                          (code == RcErrorCode.BAD_ADDRESS) | (code == RcErrorCode.TIMEOUT) |
                          look.too_long | look.bad_count):
                    m.d.comb += uncor.eq(1)
                with m.Elif(desc.poisoned | (desc.status != CplStatus.SC) |
                            (code != RcErrorCode.NORMAL)):
                    m.d.comb += cor.eq(1)
        m.d.sync += [
            self.unexpected.eq(move & unexpected),
            self.err_cor.eq(move & (cor | unexpected)),
            self.err_uncor.eq(move & uncor),
        ]

        # -- S2: piece registers, filled from S1 -----------------------------------------------
        piece_layout = data.StructLayout({
            "pending": 1, "banks": L, "rot": lb, "row": self._row_bits, "bank": lb,
            "event": 1, "tag": 8, "done": 1, "failed": 1,
        })
        pieces = [Signal(piece_layout, name=f"piece{j}") for j in range(P + 1)]
        s2_data = Signal(width)
        take = [Signal(name=f"take{j}") for j in range(P + 1)]

        # (computed outside the If: ``move`` is the registers' enable only, not an input
        # of the rotation logic)
        shaped = []
        for j, (slot, frame) in enumerate(zip(slots, frames, strict=True)):
            lanes, rot, banks = Signal(L, name=f"lanes{j}"), Signal(lb), Signal(L)
            event = slot.active & slot.ends & slot.live
            write = slot.write.replicate(L)
            m.d.comb += [
                lanes.eq(frame.mask & write),
                rot.eq(rots[j]),
                banks.eq((Cat(frame.mask, frame.mask) << rot)[L:] & write),
            ]
            shaped.append((lanes, rot, banks, event))
        # Which pieces of the beat would clash (share a bank or the event port), decided as
        # they are loaded (LUT depth: S2 then combines registered bits with ``pending``).
        n = len(pieces)
        conflict = {(i, k): Signal(name=f"conflict{i}_{k}") for k in range(n) for i in range(k)}
        with m.If(move):
            m.d.sync += s2_data.eq(s1_data)
            for (i, k), c in conflict.items():
                (_, _, bi, ei), (_, _, bk, ek) = shaped[i], shaped[k]
                m.d.sync += c.eq((bi & bk).any() | (ei & ek))
            for slot, piece, (lanes, rot, banks, event) in zip(slots, pieces, shaped,
                                                                strict=True):
                m.d.sync += [
                    piece.pending.eq(lanes.any() | event),
                    piece.banks.eq(banks), piece.rot.eq(rot),
                    piece.row.eq(slot.addr[lb:]), piece.bank.eq(slot.addr[:lb]),
                    piece.event.eq(event), piece.tag.eq(slot.tag), piece.done.eq(slot.done),
                    piece.failed.eq(slot.failed | s1_user.discontinue),
                ]
            # The TLP left open at the end of the beat: the last active slot that does not
            # end here (later slots override earlier ones).
            for j, slot in enumerate(slots):
                with m.If(slot.active):
                    m.d.sync += op.open.eq(~slot.ends)
                    if j == 0:
                        m.d.sync += op.addr.eq(op.addr + L)
                    else:
                        m.d.sync += [
                            op.tag.eq(slot.tag), op.live.eq(slot.live), op.write.eq(slot.write),
                            op.done.eq(slot.done), op.failed.eq(slot.failed),
                            op.addr.eq(slot.addr + L - slot.first),
                        ]
        with m.Else():
            for piece, t in zip(pieces, take, strict=True):
                with m.If(t):
                    m.d.sync += piece.pending.eq(0)

        # -- S2: write the pieces that fit, in order -------------------------------------------
        # A piece goes when every piece before it goes too and it shares no bank (nor the
        # event port) with them. Pieces still pending always follow the ones written, so
        # this is a flat function of the pairwise clashes between pending pieces, not a
        # chain through the pieces (LUT depth at 512 bits).
        blocked = []                    # piece k clashes with an earlier pending piece
        for k in range(n):
            clashes = []
            for i in range(k):
                c = Signal(name=f"clash{i}_{k}")
                m.d.comb += c.eq(pieces[i].pending & pieces[k].pending & conflict[(i, k)])
                clashes.append(c)
            b_k = Signal(name=f"blocked{k}")
            m.d.comb += b_k.eq(Cat(clashes).any() if clashes else 0)
            blocked.append(b_k)
        for j, (piece, t) in enumerate(zip(pieces, take, strict=True)):
            m.d.comb += t.eq(piece.pending & ~Cat(blocked[:j + 1]).any())
        m.d.comb += s2_free.eq(~Cat(blocked).any())

        for b, port in enumerate(self.write):
            lane = Signal(lb, name=f"lane{b}")          # the lane bank b takes its DWORD from
            for piece, t in zip(pieces, take, strict=True):
                with m.If(t & piece.banks[b]):
                    m.d.comb += [
                        # a bank below the piece's first one takes the next row (no bank
                        # is below bank L - 1's lowest: no constant comparison for lint)
                        port.en.eq(1),
                        port.row.eq(piece.row + (b < piece.bank) if b < L - 1 else piece.row),
                        lane.eq(b - piece.rot),
                    ]
            m.d.comb += port.data.eq(s2_data.word_select(lane, 32))
        # Each piece's event as it is written, for the engine's delivery decision (one
        # compare per piece there, beside the take logic; the decision is a register, so
        # the request is seen done the cycle after its data went into the ring).
        for early, piece, t in zip(self.early, pieces, take, strict=True):
            m.d.comb += [early.valid.eq(t & piece.event), early.tag.eq(piece.tag),
                         early.done.eq(piece.done), early.failed.eq(piece.failed)]
        # The event goes out from a register, the cycle after its last piece is written
        # (the engine decodes its tag into per-tag state: kept off the scheduling path).
        m.d.sync += self.event.valid.eq(0)
        for piece, t in zip(pieces, take, strict=True):
            with m.If(t & piece.event):
                m.d.sync += [
                    self.event.valid.eq(1), self.event.tag.eq(piece.tag),
                    self.event.done.eq(piece.done), self.event.failed.eq(piece.failed),
                ]
        return m


def _lane_in(slot, i, lanes):
    """Lane ``i`` carries payload of an active ``slot``: first <= i <= last, without the
    comparisons that are constant at the ends (lint)."""
    term = slot.active
    if i < lanes - 1:                   # first <= lanes - 1 always holds
        term = term & (slot.first <= i)
    if i > 0:                           # 0 <= last always holds
        term = term & (i <= slot.last)
    return term
