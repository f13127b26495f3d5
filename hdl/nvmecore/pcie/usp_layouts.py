"""Xilinx UltraScale+ PCIe hard-IP interface structures, defined once.

The four AXI4-Stream interfaces of the ``pcie4_uscale_plus`` / ``pcie4c_uscale_plus``
blocks as PG213 (UltraScale+ Devices Integrated Block for PCI Express) describes them and
cocotbext-pcie 0.2.16 models them, in the "DWORD-aligned" data alignment mode:

- CQ (completer request, hard IP → user): a 4-DW :class:`CqDescriptor`, then the payload.
- CC (completer completion, user → hard IP): a 3-DW :class:`CcDescriptor`, then the payload.
- RQ (requester request, user → hard IP): a 4-DW :class:`RqDescriptor`, then the payload.
- RC (requester completion, hard IP → user): a 3-DW :class:`RcDescriptor`, then the payload.

Descriptors pack from bit 0 of the first DWORD of a TLP, as in PG213's descriptor
figures, so ``RqDescriptor.const({...}).as_value()`` is the descriptor an adapter drives
and ``data.Layout.cast(RcDescriptor).from_bits(x)`` decodes one in a bench. ``tuser``
layouts differ between the 256-bit and 512-bit interfaces; :func:`tuser_layout` gives the
one for an interface and width. Parity fields are carried but not used (parity off).

Spec references are to PG213 v1.3 ("[PG213 ...]") and the PCI Express Base Specification
4.0 ("[PCIe 4.0 §x]").
"""

from amaranth.lib import data, enum, wiring
from amaranth.lib.wiring import In, Out

__all__ = [
    "ReqType", "CplStatus", "RcErrorCode",
    "CqDescriptor", "CcDescriptor", "RqDescriptor", "RcDescriptor",
    "CQ_DESC_DW", "CC_DESC_DW", "RQ_DESC_DW", "RC_DESC_DW",
    "RqRead", "tuser_layout", "Axis", "SEGMENT_DW", "straddle_segments",
    "USP_WIDTHS", "USER_CLOCK_HZ",
]

USP_WIDTHS = (256, 512)          # datapath widths this adapter supports
USER_CLOCK_HZ = 250_000_000      # user_clk at both widths (DESIGN.md §10)
SEGMENT_DW = 4                   # straddled TLPs start on 128-bit boundaries [PG213 RC straddle]


class ReqType(enum.Enum, shape=4):
    """Descriptor ``req_type`` [PG213 Table "Transaction Types"]."""
    MEM_READ        = 0b0000
    MEM_WRITE       = 0b0001
    IO_READ         = 0b0010
    IO_WRITE        = 0b0011
    MEM_FETCH_ADD   = 0b0100
    MEM_SWAP        = 0b0101
    MEM_CAS         = 0b0110
    MEM_READ_LOCKED = 0b0111
    CFG_READ_0      = 0b1000
    CFG_READ_1      = 0b1001
    CFG_WRITE_0     = 0b1010
    CFG_WRITE_1     = 0b1011
    MSG             = 0b1100
    MSG_VENDOR      = 0b1101
    MSG_ATS         = 0b1110


class CplStatus(enum.Enum, shape=3):
    """Completion status [PCIe 4.0 §2.2.9]."""
    SC  = 0b000    # successful completion
    UR  = 0b001    # unsupported request
    CRS = 0b010    # configuration request retry status
    CA  = 0b100    # completer abort


class RcErrorCode(enum.Enum, shape=4):
    """RC descriptor ``error_code`` [PG213 Table "Requester Completion Descriptor"]."""
    NORMAL      = 0b0000
    POISONED    = 0b0001
    BAD_STATUS  = 0b0010    # UR, CA or CRS completion status
    BAD_LENGTH  = 0b0011    # byte count / length mismatch, or no data for a read
    MISMATCH    = 0b0100    # requester ID, TC or attributes differ from the request
    BAD_ADDRESS = 0b0101    # lower address does not match
    BAD_TAG     = 0b0110    # no request outstanding with this tag
    TIMEOUT     = 0b1001    # completion time-out in the hard IP
    FLR         = 0b1000    # request flushed by a function-level reset


class CqDescriptor(data.Struct):
    """Completer request descriptor, 4 DW [PG213 Figure "Completer Request Descriptor"]."""
    at:              2
    addr:            62     # address bits 63:2
    dword_count:     11
    req_type:        ReqType
    _rsvd0:          1
    requester_id:    16
    tag:             8
    target_function: 8
    bar_id:          3
    bar_aperture:    6
    tc:              3
    attr:            3
    _rsvd1:          1


class CcDescriptor(data.Struct):
    """Completer completion descriptor, 3 DW [PG213 Figure "Completer Completion
    Descriptor"]."""
    lower_address:   7
    _rsvd0:          1
    at:              2
    _rsvd1:          6
    byte_count:      13
    locked_read:     1
    _rsvd2:          2
    dword_count:     11
    status:          CplStatus
    poisoned:        1
    _rsvd3:          1
    requester_id:    16
    tag:             8
    completer_id:    16
    completer_id_en: 1
    tc:              3
    attr:            3
    force_ecrc:      1


class RqDescriptor(data.Struct):
    """Requester request descriptor, 4 DW [PG213 Figure "Requester Request Descriptor"]."""
    at:              2
    addr:            62     # address bits 63:2
    dword_count:     11
    req_type:        ReqType
    poisoned:        1
    requester_id:    16
    tag:             8
    completer_id:    16
    requester_id_en: 1
    tc:              3
    attr:            3
    force_ecrc:      1


class RcDescriptor(data.Struct):
    """Requester completion descriptor, 3 DW [PG213 Figure "Requester Completion
    Descriptor"]."""
    lower_address:   12
    error_code:      RcErrorCode
    byte_count:      13
    locked_read:     1
    request_done:    1      # the last completion of its request
    _rsvd0:          1
    dword_count:     11
    status:          CplStatus
    poisoned:        1
    _rsvd1:          1
    requester_id:    16
    tag:             8
    completer_id:    16
    _rsvd2:          1
    tc:              3
    attr:            3
    _rsvd3:          1


class RqRead(data.Struct):
    """A memory read TLP to issue, from the read engine (which owns tags and the reorder
    buffer) to the requester (which formats RQ beats)."""
    addr:   64      # byte address, DWORD-aligned
    dwords: 11      # 1 to 1024 (0 is also taken as 1024; the descriptor carries 0x400)
    tag:    8


CQ_DESC_DW = 4
CC_DESC_DW = 3
RQ_DESC_DW = 4
RC_DESC_DW = 3


# -- tuser [PG213 "Port Descriptions", 256-bit and 512-bit interfaces] ------------------

_TUSER = {
    ("cq", 256): {
        "first_be": 4, "last_be": 4, "byte_en": 32, "sop": 1, "discontinue": 1,
        "tph_present": 1, "tph_type": 2, "tph_st_tag": 8, "parity": 32, "_rsvd": 3,
    },
    ("cq", 512): {
        "first_be": 8, "last_be": 8, "byte_en": 64, "is_sop": 2, "is_sop0_ptr": 2,
        "is_sop1_ptr": 2, "is_eop": 2, "is_eop0_ptr": 4, "is_eop1_ptr": 4, "discontinue": 1,
        "tph_present": 2, "tph_type": 4, "tph_st_tag": 16, "parity": 64,
    },
    ("cc", 256): {"discontinue": 1, "parity": 32},
    ("cc", 512): {
        "is_sop": 2, "is_sop0_ptr": 2, "is_sop1_ptr": 2, "is_eop": 2, "is_eop0_ptr": 4,
        "is_eop1_ptr": 4, "discontinue": 1, "parity": 64,
    },
    ("rq", 256): {
        "first_be": 4, "last_be": 4, "addr_offset": 3, "discontinue": 1, "tph_present": 1,
        "tph_type": 2, "tph_indirect_tag_en": 1, "tph_st_tag": 8, "seq_num": 4,
        "parity": 32, "seq_num_hi": 2,
    },
    ("rq", 512): {
        "first_be": 8, "last_be": 8, "addr_offset": 4, "is_sop": 2, "is_sop0_ptr": 2,
        "is_sop1_ptr": 2, "is_eop": 2, "is_eop0_ptr": 4, "is_eop1_ptr": 4, "discontinue": 1,
        "tph_present": 2, "tph_type": 4, "tph_indirect_tag_en": 2, "tph_st_tag": 16,
        "seq_num0": 6, "seq_num1": 6, "parity": 64,
    },
    ("rc", 256): {
        "byte_en": 32, "is_sop": 2, "is_eop0": 1, "is_eop0_ptr": 3, "is_eop1": 1,
        "is_eop1_ptr": 3, "discontinue": 1, "parity": 32,
    },
    ("rc", 512): {
        "byte_en": 64, "is_sop": 4, "is_sop0_ptr": 2, "is_sop1_ptr": 2, "is_sop2_ptr": 2,
        "is_sop3_ptr": 2, "is_eop": 4, "is_eop0_ptr": 4, "is_eop1_ptr": 4, "is_eop2_ptr": 4,
        "is_eop3_ptr": 4, "discontinue": 1, "parity": 64,
    },
}


def tuser_layout(interface: str, width: int) -> data.StructLayout:
    """The ``tuser`` layout of ``interface`` ("cq", "cc", "rq" or "rc") at ``width`` bits.

    Widths: CQ 88 / 183, CC 33 / 81, RQ 62 / 137, RC 75 / 161 bits. Pointers (``*_ptr``)
    are DWORD indices in the beat; ``is_sop``/``is_eop`` bit i says that an i+1-th TLP
    starts / ends in the beat.
    """
    try:
        return data.StructLayout(_TUSER[(interface, width)])
    except KeyError:
        raise ValueError(f"no UltraScale+ {interface.upper()} interface at {width} bits; "
                         f"widths are {USP_WIDTHS}") from None


def straddle_segments(interface: str, width: int) -> int:
    """How many TLPs may start in one beat with straddling on (RC: 2 at 256 bits, 4 at
    512 bits; RQ: 2 at 512 bits; otherwise 1)."""
    if interface == "rc":
        return 2 if width == 256 else 4
    if interface == "rq" and width == 512:
        return 2
    return 1


class Axis(wiring.Signature):
    """One AXI4-Stream interface of the hard IP, from the *sender's* point of view
    (``Out(Axis(...))`` on the side that drives ``tdata``). ``tkeep`` has one bit per
    DWORD, as on the hard IP."""

    def __init__(self, interface: str, width: int):
        self.interface = interface
        self.width = width
        self.tuser_layout = tuser_layout(interface, width)
        super().__init__({
            "tdata":  Out(width),
            "tkeep":  Out(width // 32),
            "tlast":  Out(1),
            "tuser":  Out(self.tuser_layout),
            "tvalid": Out(1),
            "tready": In(1),
        })
