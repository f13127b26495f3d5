"""Requester request (RQ) beats → TLPs, as the UltraScale+ hard IP reads them.

:class:`RqParser` takes the beats a design hands to the hard IP (one dict per transfer,
``tvalid and tready``) and returns each TLP when its last DWORD has gone by. DWORD-aligned
mode only: a TLP is its 4-DW :class:`~nvmecore.pcie.usp_layouts.RqDescriptor` then its
payload [PG213 "Requester Request Interface Operation"].

TLP boundaries: at 256 bits a TLP starts in DW 0 of the beat after the previous one's
``tlast`` and ends at the last ``tkeep`` DW of its ``tlast`` beat. At 512 bits the parser
reads ``is_sop``/``is_eop`` and their pointers, as the 512-bit hard IP does; without
straddling it also checks that ``tlast`` and ``tkeep`` agree with them. With straddling
[PG213 "Straddle Option on CQ, CC, and RQ Interfaces"] a second TLP may start at DW 8 when
one ended in DWs 0..7 of the same beat; ``tlast`` is ignored, as the IP ignores it.

Anything the hard IP could not take is an ``AssertionError``: ``tvalid`` low between the
first and last beat of a TLP (call :meth:`RqParser.gap` for every cycle without
``tvalid``), a start inside a TLP, an end
outside one, a payload longer or shorter than ``dword_count``, ``tkeep`` not covering
exactly the DWs of TLPs, byte enables breaking [PCIe 4.0 §2.2.5], a request crossing 4 KiB
[PCIe 4.0 §2.2.7], ``discontinue`` or a non-zero ``addr_offset``.
"""

from dataclasses import dataclass, field

from amaranth.lib import data

from nvmecore.pcie.usp_layouts import RQ_DESC_DW, ReqType, RqDescriptor, tuser_layout

__all__ = ["RqTlp", "RqParser"]

#: request types without a payload; every other type carries ``dword_count`` DWs
_NO_DATA = {ReqType.MEM_READ, ReqType.MEM_READ_LOCKED, ReqType.IO_READ,
            ReqType.CFG_READ_0, ReqType.CFG_READ_1}
_MEMORY = {ReqType.MEM_READ, ReqType.MEM_WRITE, ReqType.MEM_READ_LOCKED,
           ReqType.MEM_FETCH_ADD, ReqType.MEM_SWAP, ReqType.MEM_CAS}

_DESC = data.Layout.cast(RqDescriptor)


@dataclass
class RqTlp:
    """One request TLP as the adapter described it. ``dword_count`` is 1..1024."""
    req_type: ReqType
    addr: int
    dword_count: int
    tag: int
    first_be: int
    last_be: int
    payload: bytes = b""
    # descriptor fields the adapter leaves at zero
    at: int = 0
    poisoned: int = 0
    requester_id: int = 0
    requester_id_en: int = 0
    completer_id: int = 0
    tc: int = 0
    attr: int = 0
    force_ecrc: int = 0


@dataclass
class _Frame:
    first_be: int
    last_be: int
    dws: list = field(default_factory=list)
    expected: int | None = None        # total DWs, once the descriptor is in


class RqParser:
    """Feed it every transferred beat in order; it returns the TLPs each beat completes.

    ``beats`` counts the beats fed, ``straddled`` those in which a TLP started at DW 8.
    """

    def __init__(self, width, straddle=False):
        self._user = tuser_layout("rq", width)          # raises on a width the IP lacks
        if straddle and width != 512:
            raise ValueError("RQ straddling exists only on the 512-bit interface")
        self.width = width
        self.straddle = straddle
        self.dws = width // 32
        self.beats = 0
        self.straddled = 0
        self._frame = None

    @property
    def in_tlp(self):
        """A TLP has started and not ended."""
        return self._frame is not None

    def gap(self):
        """A cycle without ``tvalid``: the hard IP nullifies a TLP whose valid drops
        between its first and last beat [PG213 "Requester Request Interface": the user
        logic must keep s_axis_rq_tvalid asserted for the whole TLP]."""
        assert not self.in_tlp, \
            f"after beat {self.beats}: s_axis_rq_tvalid dropped inside a TLP"

    def feed(self, beat):
        n = self.dws
        tdata, tkeep, tlast = beat["tdata"], beat["tkeep"], bool(beat["tlast"])
        user = self._user.from_bits(beat["tuser"])
        self.beats += 1
        beat_no = self.beats
        assert not user.discontinue, f"beat {beat_no}: discontinue is not modelled"
        assert user.addr_offset == 0, f"beat {beat_no}: addr_offset in DWORD-aligned mode"

        # (DW, byte-enable group) of each start, DW of each end, in beat order
        if self.width == 256:
            starts = [] if self.in_tlp else [(0, 0)]
            assert tkeep & 1, f"beat {beat_no}: tkeep must start at DW 0"
            assert tkeep & (tkeep + 1) == 0, f"beat {beat_no}: tkeep not contiguous"
            assert tlast or tkeep == (1 << n) - 1, f"beat {beat_no}: short beat before tlast"
            ends = [tkeep.bit_length() - 1] if tlast else []
        else:
            starts = self._pointers(beat_no, "sop", user.is_sop,
                                    [user.is_sop0_ptr * 4, user.is_sop1_ptr * 4])
            starts = [(dw, group) for group, dw in enumerate(starts)]
            ends = self._pointers(beat_no, "eop", user.is_eop,
                                  [user.is_eop0_ptr, user.is_eop1_ptr])
            if not self.straddle:
                assert [dw for dw, _ in starts] in ([], [0]), \
                    f"beat {beat_no}: without straddle a TLP starts at DW 0"
                assert bool(starts) != self.in_tlp, \
                    f"beat {beat_no}: is_sop must be set exactly when a new TLP begins"
                assert tlast == bool(ends), f"beat {beat_no}: tlast disagrees with is_eop"
            else:
                for dw, _ in starts:
                    assert dw in (0, 8), f"beat {beat_no}: a TLP starts at DW 0 or 8, not {dw}"
                assert self.in_tlp or not starts or starts[0][0] == 0, \
                    f"beat {beat_no}: after a TLP ended in an earlier beat, the next starts at DW 0"

        done, keep = [], 0
        for dw in range(n):
            if starts and starts[0][0] == dw:
                _, group = starts.pop(0)
                assert not self.in_tlp, f"beat {beat_no}: a TLP starts at DW {dw} inside another"
                if dw:
                    assert keep & 1, f"beat {beat_no}: a TLP at DW {dw} with DWs 0..7 unused"
                    self.straddled += 1
                self._frame = _Frame(user.first_be >> 4 * group & 0xF,
                                     user.last_be >> 4 * group & 0xF)
            if self.in_tlp:
                keep |= 1 << dw
                self._take(beat_no, tdata >> 32 * dw & 0xFFFF_FFFF)
            if ends and ends[0] == dw:
                ends.pop(0)
                assert self.in_tlp, f"beat {beat_no}: a TLP ends at DW {dw} outside a TLP"
                done.append(self._finish(beat_no))
        assert not starts and not ends, f"beat {beat_no}: is_sop/is_eop pointers out of order"
        assert tkeep == keep, \
            f"beat {beat_no}: tkeep {tkeep:#x} but the TLPs cover DWs {keep:#x}"
        return done

    def _pointers(self, beat_no, what, flags, ptrs):
        assert flags in (0b00, 0b01, 0b11), f"beat {beat_no}: is_{what} = {flags:#04b}"
        count = bin(flags).count("1")
        assert count <= (2 if self.straddle else 1), \
            f"beat {beat_no}: {count} TLPs {what} in one beat without straddling"
        ptrs = ptrs[:count]
        assert ptrs == sorted(set(ptrs)), f"beat {beat_no}: is_{what} pointers {ptrs}"
        return ptrs

    def _take(self, beat_no, dw):
        frame = self._frame
        frame.dws.append(dw)
        if len(frame.dws) == RQ_DESC_DW:
            desc = self._descriptor(beat_no, frame.dws)
            count = desc.dword_count
            assert 1 <= count <= 1024, f"beat {beat_no}: dword_count {count}"
            frame.expected = RQ_DESC_DW + (0 if desc.req_type in _NO_DATA else count)
        if frame.expected is not None:
            assert len(frame.dws) <= frame.expected, \
                f"beat {beat_no}: payload longer than dword_count"

    def _descriptor(self, beat_no, dws):
        bits = sum(dw << 32 * i for i, dw in enumerate(dws[:RQ_DESC_DW]))
        try:
            return _DESC.from_bits(bits)
        except ValueError as error:
            raise AssertionError(f"beat {beat_no}: descriptor {bits:#034x}: {error}") from None

    def _finish(self, beat_no):
        frame, self._frame = self._frame, None
        assert frame.expected is not None, f"beat {beat_no}: TLP shorter than its descriptor"
        assert len(frame.dws) == frame.expected, \
            f"beat {beat_no}: payload shorter than dword_count"
        desc = self._descriptor(beat_no, frame.dws)
        tlp = RqTlp(
            req_type=desc.req_type, addr=desc.addr << 2, dword_count=desc.dword_count,
            tag=desc.tag, first_be=frame.first_be, last_be=frame.last_be,
            payload=b"".join(dw.to_bytes(4, "little") for dw in frame.dws[RQ_DESC_DW:]),
            at=desc.at, poisoned=desc.poisoned, requester_id=desc.requester_id,
            requester_id_en=desc.requester_id_en, completer_id=desc.completer_id,
            tc=desc.tc, attr=desc.attr, force_ecrc=desc.force_ecrc)
        # byte enables [PCIe 4.0 §2.2.5]: one DW has no last; more need both non-zero
        if tlp.dword_count == 1:
            assert tlp.last_be == 0, f"beat {beat_no}: 1-DW request with last_be {tlp.last_be:#x}"
        else:
            assert tlp.first_be and tlp.last_be, \
                f"beat {beat_no}: {tlp.dword_count}-DW request needs first_be and last_be"
        if tlp.req_type in _MEMORY:                     # [PCIe 4.0 §2.2.7]
            assert (tlp.addr & 0xFFF) + 4 * tlp.dword_count <= 4096, \
                f"beat {beat_no}: request at {tlp.addr:#x} crosses 4 KiB"
        return tlp
