"""Completer-side bench models: CQ request beats and CC completion parsing.

:func:`cq_beats` turns a :class:`CqRequest` into the beats the hard IP drives on CQ in
DWORD-aligned mode [PG213 "Completer Request Interface"]: a 4-DW descriptor in DWORDs
0-3 of the first beat, then the payload; ``sop`` (256 bits) or ``is_sop``/``is_eop`` with
pointers (512 bits) frame it, ``tlast`` ends it; ``first_be``/``last_be`` and per-DWORD
``byte_en`` ride in ``tuser``. :class:`CcParser` takes CC beats one at a time, checks
their framing and returns each completion when its last beat arrives; :meth:`CcParser.gap`
(for each cycle without ``tvalid``) asserts that no completion is cut by a gap.

Descriptors are packed and unpacked with the layouts in :mod:`nvmecore.pcie.usp_layouts`.
"""

import dataclasses

from amaranth.lib import data

from nvmecore.pcie.usp_layouts import (
    CC_DESC_DW,
    CQ_DESC_DW,
    CcDescriptor,
    CplStatus,
    CqDescriptor,
    ReqType,
    tuser_layout,
)

__all__ = ["CqRequest", "cq_beats", "CcCompletion", "CcParser"]


def _pack(layout, fields):
    """Pack ``fields`` (a dict, missing fields 0) with a struct layout, as an integer."""
    value = 0
    for name, field in data.Layout.cast(layout):
        v = fields.get(name, 0)
        v = getattr(v, "value", v)              # enum members
        value |= (int(v) & ((1 << field.width) - 1)) << field.offset
    return value


def _unpack(layout, value):
    fields = {}
    for name, field in data.Layout.cast(layout):
        fields[name] = (value >> field.offset) & ((1 << field.width) - 1)
    return fields


@dataclasses.dataclass
class CqRequest:
    """One completer request. ``addr`` is the byte address of the first DWORD (bits 1:0
    are zero); ``dword_count`` is the Length field (0 = 1024); ``payload`` holds the data
    of writes, I/O writes and AtomicOps (``4 * dword_count`` bytes), and is empty for
    reads."""
    req_type: ReqType
    addr: int
    dword_count: int
    first_be: int
    last_be: int
    tag: int
    requester_id: int
    bar_id: int = 0
    bar_aperture: int = 14
    tc: int = 0
    attr: int = 0
    payload: bytes = b""

    @property
    def posted(self):
        return self.req_type in (ReqType.MEM_WRITE, ReqType.MSG, ReqType.MSG_VENDOR,
                                 ReqType.MSG_ATS)


def cq_beats(request, width):
    """The CQ beats of ``request`` at ``width`` bits: dicts of ``tdata``, ``tkeep``,
    ``tlast`` and ``tuser`` (integers)."""
    assert request.addr % 4 == 0
    assert len(request.payload) % 4 == 0
    lanes = width // 32
    desc = _pack(CqDescriptor, {
        "addr": request.addr >> 2, "dword_count": request.dword_count,
        "req_type": request.req_type, "requester_id": request.requester_id,
        "tag": request.tag, "bar_id": request.bar_id, "bar_aperture": request.bar_aperture,
        "tc": request.tc, "attr": request.attr,
    })
    dwords = [(desc >> (32 * i)) & 0xFFFF_FFFF for i in range(CQ_DESC_DW)]
    payload = [int.from_bytes(request.payload[i:i + 4], "little")
               for i in range(0, len(request.payload), 4)]
    n = len(payload)
    byte_en = [0] * CQ_DESC_DW + [
        request.first_be if i == 0 else request.last_be if i == n - 1 else 0xF
        for i in range(n)]
    dwords += payload
    beats = []
    for start in range(0, len(dwords), lanes):
        chunk = dwords[start:start + lanes]
        first, last = start == 0, start + lanes >= len(dwords)
        tuser = {"first_be": request.first_be, "last_be": request.last_be,
                 "byte_en": sum(be << (4 * i) for i, be in
                                enumerate(byte_en[start:start + lanes]))}
        if width == 512:
            tuser.update(is_sop=int(first), is_sop0_ptr=0, is_eop=int(last),
                         is_eop0_ptr=(len(chunk) - 1) if last else 0)
        else:
            tuser.update(sop=int(first))
        beats.append({
            "tdata": sum(dw << (32 * i) for i, dw in enumerate(chunk)),
            "tkeep": (1 << len(chunk)) - 1,
            "tlast": int(last),
            "tuser": _pack(tuser_layout("cq", width), tuser),
        })
    return beats


@dataclasses.dataclass
class CcCompletion:
    """One completion from CC: the descriptor's fields and the data bytes."""
    lower_address: int
    byte_count: int
    dword_count: int
    status: CplStatus
    requester_id: int
    tag: int
    tc: int = 0
    attr: int = 0
    at: int = 0
    locked_read: int = 0
    poisoned: int = 0
    completer_id: int = 0
    completer_id_en: int = 0
    force_ecrc: int = 0
    data: bytes = b""


class CcParser:
    """Collects CC beats into :class:`CcCompletion` objects, asserting on malformed beats:
    DWORDs kept from lane 0 up, full beats before the last, ``tlast`` (and at 512 bits
    ``is_sop``/``is_eop`` with their pointers) where the TLP starts and ends, the beat
    count that ``dword_count`` implies, ``discontinue`` and parity 0."""

    def __init__(self, width):
        self.width = width
        self.lanes = width // 32
        self.layout = tuser_layout("cc", width)
        self._dwords = None         # DWORDs of the TLP being collected

    @property
    def in_tlp(self):
        return self._dwords is not None

    def gap(self):
        """A cycle without ``tvalid``: valid must stay high from a completion's first beat
        to its last [PG213 "Completer Completion Interface"]."""
        assert not self.in_tlp, "s_axis_cc_tvalid dropped inside a TLP"

    def feed(self, beat):
        tkeep, tlast = beat["tkeep"], beat["tlast"]
        tuser = _unpack(self.layout, beat["tuser"])
        count = tkeep.bit_length()
        assert count > 0 and tkeep == (1 << count) - 1, f"tkeep {tkeep:#x} not contiguous"
        assert tuser["discontinue"] == 0, "discontinue set"
        assert tuser["parity"] == 0, "parity not 0"
        first = self._dwords is None
        if self.width == 512:
            assert tuser["is_sop"] == int(first), f"is_sop {tuser['is_sop']} first {first}"
            assert tuser["is_sop0_ptr"] == 0 and tuser["is_sop1_ptr"] == 0
            assert tuser["is_eop"] == tlast, f"is_eop {tuser['is_eop']} tlast {tlast}"
            assert tuser["is_eop0_ptr"] == (count - 1 if tlast else 0)
            assert tuser["is_eop1_ptr"] == 0
        if first:
            self._dwords = []
        self._dwords += [(beat["tdata"] >> (32 * i)) & 0xFFFF_FFFF for i in range(count)]
        if not tlast:
            assert count == self.lanes, "a beat before the last is not full"
            return []
        dwords, self._dwords = self._dwords, None
        assert len(dwords) >= CC_DESC_DW, "TLP shorter than its descriptor"
        desc = _unpack(CcDescriptor, sum(dw << (32 * i) for i, dw in
                                         enumerate(dwords[:CC_DESC_DW])))
        assert len(dwords) == CC_DESC_DW + desc["dword_count"], \
            f"{len(dwords)} DWORDs for dword_count {desc['dword_count']}"
        for name in ("_rsvd0", "_rsvd1", "_rsvd2", "_rsvd3"):
            assert desc.pop(name) == 0, f"reserved field {name} set"
        desc["status"] = CplStatus(desc["status"])
        payload = b"".join(dw.to_bytes(4, "little") for dw in dwords[CC_DESC_DW:])
        return [CcCompletion(**desc, data=payload)]
