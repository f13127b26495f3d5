"""NVMe and core-interface structures, defined once.

Every register offset, field layout, opcode and status code used by the gateware, the
reference model (``nvmetb.model``) and the tests comes from this module. Fields pack from
bit 0 upwards, in the order of the NVMe specification's tables, so
``Cc.const({...}).as_bits()`` gives the value a host writes and
``data.Layout.cast(Cc).from_bits(x)`` decodes one.

Spec references are to the NVM Express Base Specification 1.4 (``[NVMe 1.4 §x]``) and
the PCI Express Base Specification 4.0 (``[PCIe 4.0 §x]``).
"""

from amaranth.lib import data, enum

__all__ = [
    "field_mask", "public_fields",
    "BAR0_SIZE", "DOORBELL_BASE", "MSIX_TABLE_BASE", "MSIX_PBA_BASE", "MSIX_ENTRY_BYTES",
    "Reg", "REG_WIDTH", "Cap", "CAP_AMS_WRR_URGENT", "Vs", "Cc", "Csts", "Aqa", "ShnType",
    "ShstState", "ArbitrationMechanism",
    "CC_WRITABLE_MASK", "AQA_WRITABLE_MASK", "NVME_VERSION_1_4",
    "RegRequest", "DmaWriteRequest", "DmaReadRequest", "Completion",
    "DoorbellUpdate", "QueueSizeUpdate", "IrqRequest",
    "AsyncEventType", "AsyncEventInfoError", "AsyncEvent", "LogPage",
    "MsixEntry", "MSIX_CTRL_MASKBIT",
    "SqeDw0", "Sqe", "CqeDw2", "CqeStatus", "Cqe",
    "StatusCodeType", "GenericStatus", "CommandSpecificStatus", "MediaStatus",
    "AdminOpcode", "NvmOpcode",
]

def field_mask(layout, *names):
    """The bits that the named fields of ``layout`` occupy, as an integer."""
    layout = data.Layout.cast(layout)
    mask = 0
    for name in names:
        field = layout[name]
        mask |= ((1 << field.width) - 1) << field.offset
    return mask


def public_fields(layout):
    """Names of the fields of ``layout`` that are not reserved (``_``-prefixed)."""
    return [name for name, _ in data.Layout.cast(layout) if not name.startswith("_")]


# -- BAR0 map [NVMe 1.4 §3.1] ---------------------------------------------------------

BAR0_SIZE = 0x4000           # 16 KiB (DESIGN.md §3)
DOORBELL_BASE = 0x1000       # SQyTDBL = 0x1000 + 8y, CQyHDBL = 0x1000 + 8y + 4 (DSTRD = 0)
MSIX_TABLE_BASE = 0x2000     # 16 B per vector
MSIX_PBA_BASE = 0x3000       # one bit per vector, read as QWORDs
MSIX_ENTRY_BYTES = 16


class Reg(enum.IntEnum):
    """Controller register offsets in BAR0 [NVMe 1.4 §3.1]."""
    CAP    = 0x00
    VS     = 0x08
    INTMS  = 0x0C
    INTMC  = 0x10
    CC     = 0x14
    CSTS   = 0x1C
    NSSR   = 0x20   # reserved here: CAP.NSSRS = 0
    AQA    = 0x24
    ASQ    = 0x28
    ACQ    = 0x30
    CMBLOC = 0x38
    CMBSZ  = 0x3C


#: Width in bits of each register that the core implements.
REG_WIDTH = {
    Reg.CAP: 64, Reg.VS: 32, Reg.INTMS: 32, Reg.INTMC: 32, Reg.CC: 32, Reg.CSTS: 32,
    Reg.AQA: 32, Reg.ASQ: 64, Reg.ACQ: 64, Reg.CMBLOC: 32, Reg.CMBSZ: 32,
}


class Cap(data.Struct):
    """Controller Capabilities [NVMe 1.4 §3.1.1]."""
    mqes:   16  # maximum queue entries supported, 0's based
    cqr:    1   # contiguous queues required
    ams:    2   # bit 0: weighted round robin with urgent; bit 1: vendor specific
    _rsvd0: 5
    to:     8   # timeout, in 500 ms units
    dstrd:  4   # doorbell stride 2^(2+DSTRD)
    nssrs:  1   # NVM subsystem reset supported
    css:    8   # command sets supported; bit 0 = NVM (CAP bit 37), bit 7 = admin only
    bps:    1
    _rsvd1: 2
    mpsmin: 4
    mpsmax: 4
    pmrs:   1
    cmbs:   1
    _rsvd2: 6


#: CAP.AMS bit 0: weighted round robin with urgent priority class [NVMe 1.4 §3.1.1].
CAP_AMS_WRR_URGENT = 0b01


class Vs(data.Struct):
    """Version [NVMe 1.4 §3.1.2]."""
    ter: 8
    mnr: 8
    mjr: 16


NVME_VERSION_1_4 = Vs.const({"mjr": 1, "mnr": 4, "ter": 0}).as_bits()


class ShnType(enum.Enum, shape=2):
    """CC.SHN [NVMe 1.4 §3.1.5]."""
    NONE   = 0b00
    NORMAL = 0b01
    ABRUPT = 0b10


class ShstState(enum.Enum, shape=2):
    """CSTS.SHST [NVMe 1.4 §3.1.6]."""
    NORMAL      = 0b00
    IN_PROGRESS = 0b01
    COMPLETE    = 0b10


class ArbitrationMechanism(enum.Enum, shape=3):
    """CC.AMS [NVMe 1.4 §3.1.5, §4.11]."""
    ROUND_ROBIN = 0b000
    WRR_URGENT  = 0b001     # weighted round robin with urgent priority class
    VENDOR      = 0b111


class Cc(data.Struct):
    """Controller Configuration [NVMe 1.4 §3.1.5]."""
    en:     1
    _rsvd0: 3
    css:    3    # 000b = NVM command set, 111b = admin only
    mps:    4    # memory page size 2^(12+MPS)
    ams:    3    # arbitration mechanism, an ArbitrationMechanism (kept a plain field so
                 # that unsupported values decode and can be refused)
    shn:    ShnType
    iosqes: 4
    iocqes: 4
    _rsvd1: 8


#: Bits of CC that are stored; reserved bits read as 0.


CC_WRITABLE_MASK = field_mask(Cc, *public_fields(Cc))


class Csts(data.Struct):
    """Controller Status [NVMe 1.4 §3.1.6]."""
    rdy:    1
    cfs:    1
    shst:   ShstState
    nssro:  1
    pp:     1
    _rsvd:  26


class Aqa(data.Struct):
    """Admin Queue Attributes [NVMe 1.4 §3.1.8]; both sizes 0's based."""
    asqs:   12
    _rsvd0: 4
    acqs:   12
    _rsvd1: 4


AQA_WRITABLE_MASK = field_mask(Aqa, *public_fields(Aqa))


# -- Core-internal interfaces (DESIGN.md §2) --------------------------------------------

class RegRequest(data.Struct):
    """Register bus request: one QWORD-aligned access to BAR0.

    ``addr`` is the byte offset of the QWORD (bits 2:0 are zero); ``be`` selects the
    bytes, bit i covering ``data[8i+7:8i]``. A 32-bit access to offset 0x14 is
    ``addr=0x10, be=0xF0`` with the value in ``data[63:32]``. Reads get one response
    (the whole QWORD, disabled bytes included) in request order; writes get none.
    """
    addr:  14
    write: 1
    be:    8
    data:  64


class DmaWriteRequest(data.Struct):
    """Header of a posted DMA write; its data follows on the data stream.

    Data is packed from bit 0 of the first data beat, whatever the address alignment;
    the PCIe adapter shifts it into place. ``length`` is in bytes (1 to 4096).
    """
    addr:   64
    length: 13


class DmaReadRequest(data.Struct):
    """A DMA read: ``length`` bytes (1 to 4096) from host address ``addr``. The core
    never asks for more than max read request size nor across a 4 KiB boundary. Data
    comes back in request order on the read data stream, packed from bit 0 of the first
    beat; ``tag`` is returned with every beat."""
    addr:   64
    length: 13
    tag:    8


class Completion(data.Struct):
    """A command's completion on its way to the CQ poster (``nsid`` and ``lba`` are for
    the Error Information log). The entry's SQ head is the poster's business: the SQ's
    head as it stands when the entry is written [NVMe 1.4 §4.6]."""
    dw0:    32
    nsid:   32
    lba:    64
    sqid:   16
    cqid:   16
    cid:    16
    sc:     8
    sct:    3
    dnr:    1


class DoorbellUpdate(data.Struct):
    """A valid doorbell write: new SQ tail (``cq`` = 0) or CQ head (``cq`` = 1)."""
    qid:   16
    cq:    1
    value: 16


class QueueSizeUpdate(data.Struct):
    """Creates (``valid`` = 1, ``size`` entries, 1's based) or deletes one queue.

    Used by the doorbell decoder's size table; the queue-management commands drive it.
    """
    qid:   16
    cq:    1
    valid: 1
    size:  17


class IrqRequest(data.Struct):
    """Interrupt request for one vector: raise it (``deassert`` = 0: an MSI-X message,
    or a pending INTx level) or withdraw a pending INTx level (``deassert`` = 1)."""
    vector:   11
    deassert: 1


class AsyncEventType(enum.Enum, shape=3):
    """Asynchronous Event Type [NVMe 1.4 §5.2, Figure 146]."""
    ERROR         = 0
    SMART_HEALTH  = 1
    NOTICE        = 2
    IO_CMD_SET    = 6
    VENDOR        = 7


class AsyncEventInfoError(enum.Enum, shape=8):
    """Asynchronous Event Information for the error type [NVMe 1.4 Figure 147]."""
    INVALID_DOORBELL_REGISTER    = 0x00
    INVALID_DOORBELL_WRITE_VALUE = 0x01
    DIAGNOSTIC_FAILURE           = 0x02
    PERSISTENT_INTERNAL_ERROR    = 0x03
    TRANSIENT_INTERNAL_ERROR     = 0x04
    FIRMWARE_IMAGE_LOAD_ERROR    = 0x05


class LogPage(enum.Enum, shape=8):
    """Log Page Identifiers [NVMe 1.4 §5.14.1]."""
    ERROR_INFORMATION = 0x01
    SMART_HEALTH      = 0x02
    FIRMWARE_SLOT     = 0x03


class AsyncEvent(data.Struct):
    """Completion DW0 of an Asynchronous Event Request [NVMe 1.4 Figure 145]."""
    type:   AsyncEventType
    _rsvd0: 5
    info:   8
    lid:    8
    _rsvd1: 8


# -- MSI-X [PCIe 4.0 §7.7.2] ------------------------------------------------------------

class MsixEntry(data.Struct):
    """One MSI-X table entry (16 bytes)."""
    addr: 64      # message address; bits 1:0 are zero
    msg_data: 32
    ctrl: 32      # vector control; bit 0 = mask


MSIX_CTRL_MASKBIT = 0


# -- Queue entries [NVMe 1.4 §4.2, §4.6] ------------------------------------------------

class SqeDw0(data.Struct):
    """Command Dword 0 [NVMe 1.4 Figure 105]."""
    opc:    8
    fuse:   2
    _rsvd:  4
    psdt:   2
    cid:    16


class Sqe(data.Struct):
    """Submission queue entry, 64 bytes [NVMe 1.4 Figure 104]."""
    cdw0:  SqeDw0
    nsid:  32
    cdw2:  32
    cdw3:  32
    mptr:  64
    prp1:  64
    prp2:  64
    cdw10: 32
    cdw11: 32
    cdw12: 32
    cdw13: 32
    cdw14: 32
    cdw15: 32


class StatusCodeType(enum.Enum, shape=3):
    GENERIC          = 0
    COMMAND_SPECIFIC = 1
    MEDIA            = 2
    PATH             = 3
    VENDOR           = 7


class CqeStatus(data.Struct):
    """Completion status field with the phase tag [NVMe 1.4 Figure 125]."""
    p:   1
    sc:  8
    sct: StatusCodeType
    crd: 2
    m:   1
    dnr: 1


class CqeDw2(data.Struct):
    sqhd: 16
    sqid: 16


class Cqe(data.Struct):
    """Completion queue entry, 16 bytes [NVMe 1.4 Figure 121]."""
    dw0:    32
    dw1:    32
    dw2:    CqeDw2
    cid:    16
    status: CqeStatus


class GenericStatus(enum.Enum, shape=8):
    """Generic command status values, SCT 0 [NVMe 1.4 Figure 127]."""
    SUCCESS                  = 0x00
    INVALID_OPCODE           = 0x01
    INVALID_FIELD            = 0x02
    COMMAND_ID_CONFLICT      = 0x03
    DATA_TRANSFER_ERROR      = 0x04
    POWER_LOSS_ABORT         = 0x05
    INTERNAL_ERROR           = 0x06
    ABORT_REQUESTED          = 0x07
    ABORT_SQ_DELETED         = 0x08
    ABORT_FUSE_FAILED        = 0x09
    ABORT_FUSE_MISSING       = 0x0A
    INVALID_NAMESPACE        = 0x0B
    COMMAND_SEQUENCE_ERROR   = 0x0C
    INVALID_SGL_DESCRIPTOR   = 0x0D
    INVALID_USE_OF_CMB       = 0x12
    INVALID_PRP_OFFSET       = 0x13
    LBA_OUT_OF_RANGE         = 0x80
    CAPACITY_EXCEEDED        = 0x81
    NAMESPACE_NOT_READY      = 0x82
    RESERVATION_CONFLICT     = 0x83
    FORMAT_IN_PROGRESS       = 0x84


class CommandSpecificStatus(enum.Enum, shape=8):
    """Command specific status values, SCT 1 [NVMe 1.4 Figure 128]."""
    COMPLETION_QUEUE_INVALID      = 0x00
    INVALID_QUEUE_IDENTIFIER      = 0x01
    INVALID_QUEUE_SIZE            = 0x02
    ABORT_COMMAND_LIMIT_EXCEEDED  = 0x03
    AER_LIMIT_EXCEEDED            = 0x05
    INVALID_FIRMWARE_SLOT         = 0x06
    INVALID_FIRMWARE_IMAGE        = 0x07
    INVALID_INTERRUPT_VECTOR      = 0x08
    INVALID_LOG_PAGE              = 0x09
    INVALID_FORMAT                = 0x0A
    INVALID_QUEUE_DELETION        = 0x0C
    FEATURE_NOT_SAVEABLE          = 0x0D
    FEATURE_NOT_CHANGEABLE        = 0x0E
    FEATURE_NOT_NAMESPACE_SPECIFIC = 0x0F


class MediaStatus(enum.Enum, shape=8):
    """Media and data integrity errors, SCT 2 [NVMe 1.4 Figure 130]."""
    WRITE_FAULT              = 0x80
    UNRECOVERED_READ_ERROR   = 0x81
    GUARD_CHECK_ERROR        = 0x82
    APP_TAG_CHECK_ERROR      = 0x83
    REF_TAG_CHECK_ERROR      = 0x84
    COMPARE_FAILURE          = 0x85
    ACCESS_DENIED            = 0x86
    DEALLOCATED_OR_UNWRITTEN = 0x87


class AdminOpcode(enum.Enum, shape=8):
    """Admin command opcodes [NVMe 1.4 Figure 139]."""
    DELETE_IO_SQ     = 0x00
    CREATE_IO_SQ     = 0x01
    GET_LOG_PAGE     = 0x02
    DELETE_IO_CQ     = 0x04
    CREATE_IO_CQ     = 0x05
    IDENTIFY         = 0x06
    ABORT            = 0x08
    SET_FEATURES     = 0x09
    GET_FEATURES     = 0x0A
    ASYNC_EVENT_REQ  = 0x0C
    FORMAT_NVM       = 0x80


class NvmOpcode(enum.Enum, shape=8):
    """NVM command set opcodes [NVMe 1.4 Figure 346] (those this core implements)."""
    FLUSH        = 0x00
    WRITE        = 0x01
    READ         = 0x02
    COMPARE      = 0x05
    WRITE_ZEROES = 0x08
    DSM          = 0x09
