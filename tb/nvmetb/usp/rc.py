"""Requester-completion (RC) beats of the UltraScale+ hard IP, built in plain Python.

A read's answer is a list of :class:`RcCompletion` (see :func:`split_completions` for how a
root complex may split it); :func:`rc_beats` lays completions out on the RC interface as
the hard IP does in DWORD-aligned mode [PG213 "Requester Completion Interface"]: each TLP
is a 3-DW :class:`RcDescriptor` followed by its payload; without straddling a TLP starts
in DW 0 of a new beat, with straddling up to 2 (256 bits) or 4 (512 bits) TLPs start in
one beat, each on the next free 128-bit boundary. :func:`parse_rc_beats` reads beats back
(used to check the builder, and usable as a monitor).
"""

from dataclasses import dataclass

from amaranth.lib import data

from nvmecore.pcie.usp_layouts import (
    RC_DESC_DW,
    SEGMENT_DW,
    CplStatus,
    RcDescriptor,
    RcErrorCode,
    straddle_segments,
    tuser_layout,
)

__all__ = ["RcCompletion", "rc_beats", "parse_rc_beats", "split_completions",
           "error_completion"]


@dataclass
class RcCompletion:
    """One completion TLP as the hard IP hands it over on RC."""
    tag: int
    lower_address: int          # address bits 11:0 of the first byte [PG213 RC descriptor]
    byte_count: int             # bytes left in the request, this completion included
    payload: bytes = b""
    status: CplStatus = CplStatus.SC
    error_code: RcErrorCode = RcErrorCode.NORMAL
    poisoned: bool = False
    request_done: bool = False

    @property
    def dword_count(self) -> int:
        return (len(self.payload) + 3) // 4

    def descriptor(self) -> int:
        return RcDescriptor.const({
            "lower_address": self.lower_address & 0xFFF,
            "error_code": self.error_code,
            "byte_count": self.byte_count,
            "request_done": int(self.request_done),
            "dword_count": self.dword_count,
            "status": self.status,
            "poisoned": int(self.poisoned),
            "tag": self.tag,
        }).as_value().value

    def dwords(self) -> list[tuple[int, int]]:
        """(DWORD, byte enables) of the whole TLP, descriptor first (no byte enables)."""
        desc = self.descriptor()
        out = [((desc >> (32 * i)) & 0xFFFF_FFFF, 0) for i in range(RC_DESC_DW)]
        padded = self.payload + bytes(-len(self.payload) % 4)
        for i in range(self.dword_count):
            be = 0xF
            if i == self.dword_count - 1 and len(self.payload) % 4:
                be = (1 << (len(self.payload) % 4)) - 1
            out.append((int.from_bytes(padded[4 * i:4 * i + 4], "little"), be))
        return out


def split_completions(tag: int, addr: int, payload: bytes, *, rcb: int = 64,
                      max_payload: int = 256, every_rcb: bool = False) -> list[RcCompletion]:
    """The successful answer to a read of ``len(payload)`` bytes at ``addr``, split as a
    root complex may [PCIe 4.0 §2.3.1.1]: a first completion up to the next RCB boundary
    (when ``addr`` is not on one), then chunks of ``max_payload`` bytes (a multiple of
    ``rcb``), or of ``rcb`` bytes with ``every_rcb``."""
    assert max_payload % rcb == 0
    chunk = rcb if every_rcb else max_payload
    out = []
    offset = 0
    while offset < len(payload):
        here = addr + offset
        size = rcb - here % rcb if here % rcb else chunk
        size = min(size, len(payload) - offset)
        out.append(RcCompletion(tag=tag, lower_address=here & 0xFFF,
                                byte_count=len(payload) - offset,
                                payload=payload[offset:offset + size]))
        offset += size
    out[-1].request_done = True
    return out


def error_completion(tag: int, addr: int, byte_count: int,
                     status: CplStatus) -> RcCompletion:
    """A completion without data that ends a read with ``status`` (UR or CA): the hard IP
    reports it with error code "bad status" and request_done [PG213 RC error codes]."""
    return RcCompletion(tag=tag, lower_address=addr & 0xFFF, byte_count=byte_count,
                        status=status, error_code=RcErrorCode.BAD_STATUS,
                        request_done=True)


def _pack_tuser(width: int, byte_en: list[int], sops: list[int], eops: list[int]) -> int:
    fields = {"byte_en": sum(be << (4 * lane) for lane, be in enumerate(byte_en))}
    if width == 256:
        fields["is_sop"] = (1 << len(sops)) - 1
        for i, lane in enumerate(eops):
            fields[f"is_eop{i}"] = 1
            fields[f"is_eop{i}_ptr"] = lane
    else:
        fields["is_sop"] = (1 << len(sops)) - 1
        fields["is_eop"] = (1 << len(eops)) - 1
        for i, lane in enumerate(sops):
            fields[f"is_sop{i}_ptr"] = lane // SEGMENT_DW
        for i, lane in enumerate(eops):
            fields[f"is_eop{i}_ptr"] = lane
    return data.Layout.cast(tuser_layout("rc", width)).const(fields).as_value().value


def rc_beats(completions: list[RcCompletion], width: int, straddle: int = 1) -> list[dict]:
    """Lay ``completions`` out on RC beats ``{"tdata", "tkeep", "tlast", "tuser"}``.

    ``straddle`` is how many TLPs may start in one beat (1; 2 at 256 bits; 2 or 4 at 512
    bits). ``tlast`` marks the end of a TLP only without straddling, as on the hard IP."""
    lanes = width // 32
    assert straddle in (1, 2, 4) and straddle <= straddle_segments("rc", width)
    beats = []
    cur = None      # lanes of the beat being filled: (dword, byte enables) or None

    def flush():
        nonlocal cur
        used = [(lane, dw) for lane, (dw, _) in enumerate(cur["lanes"]) if dw is not None]
        tdata = sum(dw << (32 * lane) for lane, dw in used)
        tkeep = sum(1 << lane for lane, _ in used)
        byte_en = [be for _, be in cur["lanes"]]
        beats.append({
            "tdata": tdata, "tkeep": tkeep,
            "tlast": int(straddle == 1 and bool(cur["eops"])),
            "tuser": _pack_tuser(width, byte_en, cur["sops"], cur["eops"]),
        })
        cur = None

    def new_beat():
        return {"lanes": [(None, 0)] * lanes, "sops": [], "eops": [], "pos": 0}

    for cpl in completions:
        if cur is not None:
            start = -(-cur["pos"] // SEGMENT_DW) * SEGMENT_DW
            if straddle == 1 or start >= lanes or len(cur["sops"]) >= straddle:
                flush()
        if cur is None:
            cur = new_beat()
        start = -(-cur["pos"] // SEGMENT_DW) * SEGMENT_DW
        cur["sops"].append(start)
        pos = start
        tlp = cpl.dwords()
        for i, dw_be in enumerate(tlp):
            if pos == lanes:
                flush()
                cur = new_beat()
                pos = 0
            cur["lanes"][pos] = dw_be
            if i == len(tlp) - 1:
                cur["eops"].append(pos)
            pos += 1
        cur["pos"] = pos
    if cur is not None:
        flush()
    return beats


def parse_rc_beats(beats: list[dict], width: int) -> list[RcCompletion]:
    """Read completions back from RC beats by ``is_sop``/``is_eop`` alone, as the read
    engine does (used to check :func:`rc_beats`, and usable as a monitor)."""
    lanes = width // 32
    layout = data.Layout.cast(tuser_layout("rc", width))
    out = []
    open_dws = None         # DWORDs so far of a TLP that continues into the next beat
    for beat in beats:
        tu = layout.from_bits(beat["tuser"])
        words = [(beat["tdata"] >> (32 * i)) & 0xFFFF_FFFF for i in range(lanes)]
        if width == 256:
            # [PG213 256-bit RC straddle] the first TLP starts in DW 0, or in DW 4 when
            # another ends in this beat; a second one always starts in DW 4.
            sops = [4 if open_dws is not None else 0, 4][:bin(tu.is_sop).count("1")]
            eops = [ptr for en, ptr in ((tu.is_eop0, tu.is_eop0_ptr),
                                        (tu.is_eop1, tu.is_eop1_ptr)) if en]
        else:
            sops = [getattr(tu, f"is_sop{i}_ptr") * SEGMENT_DW for i in range(4)
                    if tu.is_sop >> i & 1]
            eops = [getattr(tu, f"is_eop{i}_ptr") for i in range(4) if tu.is_eop >> i & 1]
        pieces = ([(0, open_dws)] if open_dws is not None else []) + [(s, []) for s in sops]
        open_dws = None
        for i, (first, dws) in enumerate(pieces):
            if i < len(eops):
                dws.extend(words[first:eops[i] + 1])
                out.append(_completion_from_dwords(dws))
            else:
                assert i == len(pieces) - 1, "only the last TLP of a beat may continue"
                dws.extend(words[first:])
                open_dws = dws
    assert open_dws is None, "beats end inside a TLP"
    return out


def _completion_from_dwords(dws: list[int]) -> RcCompletion:
    desc = data.Layout.cast(RcDescriptor).from_bits(dws[0] | dws[1] << 32 | dws[2] << 64)
    payload = b"".join(dw.to_bytes(4, "little") for dw in dws[RC_DESC_DW:])
    assert len(payload) == 4 * desc.dword_count
    return RcCompletion(tag=desc.tag, lower_address=desc.lower_address,
                        byte_count=desc.byte_count, payload=payload,
                        status=CplStatus(desc.status), error_code=RcErrorCode(desc.error_code),
                        poisoned=bool(desc.poisoned), request_done=bool(desc.request_done))
