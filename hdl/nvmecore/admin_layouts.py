"""Data structures that admin commands return: Identify data and log pages.

Each layout packs from bit 0 = byte 0 upwards, so ``Layout.const({...}).as_bits()`` turned
into ``to_bytes(size, "little")`` is the buffer the host reads. Multi-byte numbers are
little-endian as the specification stores them. ASCII strings and the big-endian
identifiers (NGUID, EUI-64) are plain bit fields of the right width, filled byte by byte:
byte 0 of the string or identifier is the lowest byte of the field
(``int.from_bytes(text, "little")``); :mod:`nvmecore.nvme.identify` does that.

References are to the NVM Express Base Specification 1.4 (``[NVMe 1.4 ...]``); reserved
fields are named ``_rsvdN`` and read as zero.
"""

from amaranth.lib import data, enum

from .layouts import CqeStatus

__all__ = [
    "PowerStateDescriptor", "IdentifyController", "LbaFormat", "IdentifyNamespace",
    "NsIdType", "NsIdDescriptorHeader", "ErrorLogEntry", "SmartCriticalWarning",
    "SmartHealthLog", "FirmwareSlotInfo", "FirmwareSlotLog", "byte_offset",
]


def byte_offset(layout, name):
    """Byte offset of the field ``name`` of ``layout`` (a field that starts on a byte)."""
    offset = data.Layout.cast(layout)[name].offset
    assert offset % 8 == 0, f"{name} does not start on a byte"
    return offset // 8


def _check(layout, size, offsets):
    """Assert the total size of ``layout`` and the byte offsets of some anchor fields."""
    layout = data.Layout.cast(layout)
    assert layout.size == 8 * size, f"{layout!r}: {layout.size // 8} bytes, not {size}"
    for name, offset in offsets.items():
        assert byte_offset(layout, name) == offset, f"{name} not at byte {offset}"


# -- Identify [NVMe 1.4 §5.15] ----------------------------------------------------------

class PowerStateDescriptor(data.Struct):
    """Power State Descriptor, 32 bytes [NVMe 1.4 §5.15.2.2, Identify Controller bytes
    2048..3071 (Figure 247) hold 32 of them]."""
    mp:     16   # maximum power, in 0.01 W (MXPS = 0) or 0.0001 W (MXPS = 1)
    _rsvd0: 8
    mxps:   1    # max power scale
    nops:   1    # non-operational state
    _rsvd1: 6
    enlat:  32   # entry latency, µs
    exlat:  32   # exit latency, µs
    rrt:    5    # relative read throughput
    _rsvd2: 3
    rrl:    5    # relative read latency
    _rsvd3: 3
    rwt:    5    # relative write throughput
    _rsvd4: 3
    rwl:    5    # relative write latency
    _rsvd5: 3
    idlp:   16   # idle power
    _rsvd6: 6
    ips:    2    # idle power scale
    _rsvd7: 8
    actp:   16   # active power
    apw:    3    # active power workload
    _rsvd8: 3
    aps:    2    # active power scale
    _rsvd9: 72


_check(PowerStateDescriptor, 32, {"enlat": 4, "exlat": 8, "idlp": 16, "actp": 20})


class IdentifyController(data.Struct):
    """Identify Controller data structure, CNS 01h, 4096 bytes [NVMe 1.4 Figure 247]."""
    # Controller capabilities and features (bytes 0..255)
    vid:       16
    ssvid:     16
    sn:        20 * 8     # serial number, ASCII, space padded
    mn:        40 * 8     # model number, ASCII, space padded
    fr:        8 * 8      # firmware revision, ASCII, space padded
    rab:       8          # recommended arbitration burst
    ieee:      24         # IEEE OUI, little-endian
    cmic:      8
    mdts:      8          # maximum data transfer size, 2^n minimum pages
    cntlid:    16
    ver:       32
    rtd3r:     32         # RTD3 resume latency, µs
    rtd3e:     32         # RTD3 entry latency, µs
    oaes:      32         # optional asynchronous events supported
    ctratt:    32
    rrls:      16
    _rsvd0:    9 * 8      # bytes 102..110
    cntrltype: 8          # byte 111: 1 = I/O controller
    fguid:     128
    crdt1:     16
    crdt2:     16
    crdt3:     16
    _rsvd1:    106 * 8    # bytes 134..239
    _rsvd2:    16 * 8     # bytes 240..255: NVMe Management Interface
    # Admin command set attributes and optional controller capabilities (256..511)
    oacs:      16         # optional admin command support
    acl:       8          # abort command limit, 0's based
    aerl:      8          # asynchronous event request limit, 0's based
    frmw:      8          # firmware updates
    lpa:       8          # log page attributes
    elpe:      8          # error log page entries, 0's based
    npss:      8          # number of power states support, 0's based
    avscc:     8
    apsta:     8
    wctemp:    16         # warning composite temperature threshold, K
    cctemp:    16         # critical composite temperature threshold, K
    mtfa:      16
    hmpre:     32
    hmmin:     32
    tnvmcap:   128
    unvmcap:   128
    rpmbs:     32
    edstt:     16
    dsto:      8
    fwug:      8
    kas:       16
    hctma:     16
    mntmt:     16
    mxtmt:     16
    sanicap:   32
    hmminds:   32
    hmmaxd:    16
    nsetidmax: 16
    endgidmax: 16
    anatt:     8
    anacap:    8
    anagrpmax: 32
    nanagrpid: 32
    pels:      32
    _rsvd3:    156 * 8    # bytes 356..511
    # NVM command set attributes (512..767)
    sqes:      8          # required (3:0) and maximum (7:4) SQ entry size, 2^n bytes
    cqes:      8          # required (3:0) and maximum (7:4) CQ entry size, 2^n bytes
    maxcmd:    16
    nn:        32         # number of namespaces
    oncs:      16         # optional NVM command support
    fuses:     16
    fna:       8
    vwc:       8
    awun:      16
    awupf:     16
    nvscc:     8
    nwpc:      8
    acwu:      16
    _rsvd4:    16         # bytes 534..535
    sgls:      32
    mnan:      32
    _rsvd5:    224 * 8    # bytes 544..767
    subnqn:    256 * 8    # NVM subsystem NVMe qualified name, UTF-8, NUL padded
    _rsvd6:    768 * 8    # bytes 1024..1791
    _rsvd7:    256 * 8    # bytes 1792..2047: NVMe over Fabrics only
    # Power state descriptors (2048..3071) and vendor specific (3072..4095)
    psd:       data.ArrayLayout(PowerStateDescriptor, 32)
    vs:        1024 * 8


_check(IdentifyController, 4096, {
    "vid": 0, "sn": 4, "mn": 24, "fr": 64, "rab": 72, "ieee": 73, "mdts": 77, "cntlid": 78,
    "ver": 80, "rtd3e": 88, "cntrltype": 111, "fguid": 112, "oacs": 256, "aerl": 259,
    "elpe": 262, "wctemp": 266, "tnvmcap": 280, "pels": 352, "sqes": 512, "nn": 516,
    "vwc": 525, "sgls": 536, "subnqn": 768, "psd": 2048, "vs": 3072,
})


class LbaFormat(data.Struct):
    """LBA Format data structure, 4 bytes [NVMe 1.4 §5.15.2.1, Identify Namespace
    (Figure 245) bytes 128..191 hold 16 of them]."""
    ms:     16   # metadata size
    lbads:  8    # LBA data size, 2^n bytes
    rp:     2    # relative performance
    _rsvd:  6


_check(LbaFormat, 4, {"lbads": 2})


class IdentifyNamespace(data.Struct):
    """Identify Namespace data structure (NVM command set), CNS 00h, 4096 bytes
    [NVMe 1.4 Figure 245]."""
    nsze:     64     # namespace size, LBAs
    ncap:     64     # namespace capacity, LBAs
    nuse:     64     # namespace utilization, LBAs
    nsfeat:   8
    nlbaf:    8      # number of LBA formats, 0's based
    flbas:    8      # formatted LBA size: index into lbaf (bits 3:0)
    mc:       8
    dpc:      8
    dps:      8
    nmic:     8
    rescap:   8
    fpi:      8
    dlfeat:   8
    nawun:    16
    nawupf:   16
    nacwu:    16
    nabsn:    16
    nabo:     16
    nabspf:   16
    noiob:    16
    nvmcap:   128
    npwg:     16
    npwa:     16
    npdg:     16
    npda:     16
    nows:     16
    _rsvd0:   18 * 8    # bytes 74..91
    anagrpid: 32
    _rsvd1:   3 * 8     # bytes 96..98
    nsattr:   8
    nvmsetid: 16
    endgid:   16
    nguid:    128       # big-endian identifier, byte 0 in the lowest bits
    eui64:    64        # big-endian identifier, byte 0 in the lowest bits
    lbaf:     data.ArrayLayout(LbaFormat, 16)
    _rsvd2:   192 * 8   # bytes 192..383
    vs:       3712 * 8  # bytes 384..4095: vendor specific


_check(IdentifyNamespace, 4096, {
    "nsze": 0, "ncap": 8, "nuse": 16, "nsfeat": 24, "nlbaf": 25, "flbas": 26, "dlfeat": 33,
    "nvmcap": 48, "nows": 72, "anagrpid": 92, "nsattr": 99, "nvmsetid": 100, "endgid": 102,
    "nguid": 104, "eui64": 120, "lbaf": 128, "vs": 384,
})


class NsIdType(enum.Enum, shape=8):
    """Namespace Identifier Type (NIDT) [NVMe 1.4 §5.15.2, CNS 03h; CSI from NVMe 2.0]."""
    EUI64 = 1    # NIDL 8
    NGUID = 2    # NIDL 16
    UUID  = 3    # NIDL 16
    CSI   = 4    # NIDL 1: command set identifier (0 = NVM)


class NsIdDescriptorHeader(data.Struct):
    """Header of one Namespace Identification Descriptor; NIDL bytes of identifier
    follow it [NVMe 1.4 §5.15.2, CNS 03h]. A header with NIDL = 0 ends the list."""
    nidt:  NsIdType
    nidl:  8
    _rsvd: 16


_check(NsIdDescriptorHeader, 4, {"nidl": 1})


# -- Log pages [NVMe 1.4 §5.14.1] -------------------------------------------------------

class ErrorLogEntry(data.Struct):
    """Error Information log entry, 64 bytes (log 01h) [NVMe 1.4 §5.14.1.1]."""
    error_count:     64    # 1, 2, ... per error; 0 = unused entry
    sqid:            16
    cid:             16
    status:          CqeStatus   # the completion's status field; bit 0 is the phase tag
    param_error_loc: 16    # parameter error location; FFFFh = not specific
    lba:             64
    nsid:            32
    vs_info:         8     # vendor specific information available
    trtype:          8     # transport type (fabrics)
    _rsvd0:          16
    cmd_info:        64    # command specific information
    trtype_info:     16    # transport type specific information
    _rsvd1:          22 * 8


_check(ErrorLogEntry, 64, {
    "sqid": 8, "cid": 10, "status": 12, "param_error_loc": 14, "lba": 16, "nsid": 24,
    "vs_info": 28, "trtype": 29, "cmd_info": 32, "trtype_info": 40,
})


class SmartCriticalWarning(data.Struct):
    """SMART / Health Critical Warning bits [NVMe 1.4 Figure 194, byte 0]."""
    spare:           1   # available spare below threshold
    temperature:     1   # a temperature crossed a threshold
    reliability:     1   # NVM subsystem reliability degraded
    read_only:       1   # media placed in read-only mode
    volatile_backup: 1   # volatile memory backup device failed
    pmr_read_only:   1   # persistent memory region read-only
    _rsvd:           2


class SmartHealthLog(data.Struct):
    """SMART / Health Information log, 512 bytes (log 02h) [NVMe 1.4 Figure 194].

    The counters are 128-bit little-endian; temperatures are in kelvin.
    """
    critical_warning:          SmartCriticalWarning
    composite_temperature:     16
    available_spare:           8      # percent
    available_spare_threshold: 8      # percent
    percentage_used:           8
    endurance_group_warning:   8      # endurance group critical warning summary
    _rsvd0:                    25 * 8  # bytes 7..31
    data_units_read:           128    # 1000 × 512 bytes
    data_units_written:        128
    host_read_commands:        128
    host_write_commands:       128
    controller_busy_time:      128    # minutes
    power_cycles:              128
    power_on_hours:            128
    unsafe_shutdowns:          128
    media_errors:              128
    error_log_entries:         128    # number of error information log entries
    warning_temperature_time:  32     # minutes
    critical_temperature_time: 32     # minutes
    temperature_sensor:        data.ArrayLayout(16, 8)   # sensors 1..8, K
    tmt1_transitions:          32     # thermal management temperature 1 transition count
    tmt2_transitions:          32
    tmt1_time:                 32     # total time for thermal management temperature 1, s
    tmt2_time:                 32
    _rsvd1:                    280 * 8   # bytes 232..511


_check(SmartHealthLog, 512, {
    "composite_temperature": 1, "available_spare": 3, "endurance_group_warning": 6,
    "data_units_read": 32, "error_log_entries": 176, "warning_temperature_time": 192,
    "critical_temperature_time": 196, "temperature_sensor": 200, "tmt1_transitions": 216,
    "tmt2_time": 228,
})


class FirmwareSlotInfo(data.Struct):
    """Active Firmware Info (AFI) [NVMe 1.4 §5.14.1.3, byte 0 of the log]."""
    active: 3    # slot the running firmware came from
    _rsvd0: 1
    next:   3    # slot activated at the next reset; 0 = not indicated
    _rsvd1: 1


class FirmwareSlotLog(data.Struct):
    """Firmware Slot Information log, 512 bytes (log 03h) [NVMe 1.4 §5.14.1.3].
    FRS1..FRS7 are 8-character ASCII revisions; an empty slot is all zero."""
    afi:    FirmwareSlotInfo
    _rsvd0: 7 * 8
    frs1:   64
    frs2:   64
    frs3:   64
    frs4:   64
    frs5:   64
    frs6:   64
    frs7:   64
    _rsvd1: 448 * 8   # bytes 64..511


_check(FirmwareSlotLog, 512, {"frs1": 8, "frs7": 56})


# -- Admin command dwords [NVMe 1.4 §5] -------------------------------------------------
#
# The fields inside the command Dwords (CDW10..CDW15) of each admin command, the CNS and
# Feature Identifier values, and the feature values that Set Features takes in CDW11 and
# Get Features returns in completion DW0. Fields pack from bit 0 up, as in the
# specification's figures. The gateware's admin engine, the reference model
# (``nvmetb.model``) and the host driver (``nvmetb.host``) all import them from here.

__all__ += [
    "QueueIdSize", "CreateCqDw11", "QueuePriority", "CreateSqDw11", "AbortDw10", "IdentifyDw10",
    "IdentifyDw11", "Cns", "GetLogPageDw10", "GetLogPageDw11", "FeatureDw10", "FeatureId",
    "Arbitration", "PowerManagement", "ThresholdType", "TemperatureThreshold",
    "ErrorRecovery", "NumberOfQueues", "InterruptCoalescing", "InterruptVectorConfig",
    "WriteAtomicityNormal", "AsyncEventConfig", "AsyncEventInfoSmart",
]


# Queue management [NVMe 1.4 §5.3 - §5.6]

class QueueIdSize(data.Struct):
    """CDW10 of Create I/O CQ / SQ [NVMe 1.4 Figures 153, 157] and of Delete I/O CQ / SQ
    [§5.6, §5.7] (QSIZE reserved for the delete commands)."""
    qid:   16
    qsize: 16     # entries, 0's based; 0 for the delete commands


class CreateCqDw11(data.Struct):
    """CDW11 of Create I/O Completion Queue [NVMe 1.4 §5.3, Figure 154]."""
    pc:    1      # physically contiguous
    ien:   1      # interrupts enabled
    _rsvd: 14
    iv:    16     # interrupt vector


class QueuePriority(enum.Enum, shape=2):
    """QPRIO of Create I/O Submission Queue: the SQ's class under weighted round robin
    with urgent priority class [NVMe 1.4 §4.11.2, Figure 158]."""
    URGENT = 0b00
    HIGH   = 0b01
    MEDIUM = 0b10
    LOW    = 0b11


class CreateSqDw11(data.Struct):
    """CDW11 of Create I/O Submission Queue [NVMe 1.4 §5.4, Figure 158]."""
    pc:    1      # physically contiguous
    qprio: 2      # queue priority, a QueuePriority (weighted round robin)
    _rsvd: 13
    cqid:  16


# Abort [NVMe 1.4 §5.1]

class AbortDw10(data.Struct):
    """CDW10 of Abort [NVMe 1.4 Figure 140]."""
    sqid: 16
    cid:  16


# Identify [NVMe 1.4 §5.15]

class IdentifyDw10(data.Struct):
    """CDW10 of Identify [NVMe 1.4 Figure 242]."""
    cns:   8      # Cns
    _rsvd: 8
    cntid: 16     # controller identifier


class IdentifyDw11(data.Struct):
    """CDW11 of Identify [NVMe 1.4 Figure 243; CSI from NVMe 2.0]."""
    nvmsetid: 16  # NVM set identifier
    _rsvd:    8
    csi:      8   # command set identifier


class Cns(enum.Enum, shape=8):
    """Controller or Namespace Structure [NVMe 1.4 Figure 244] (06h and 08h: later
    specifications)."""
    NAMESPACE         = 0x00
    CONTROLLER        = 0x01
    ACTIVE_NSID_LIST  = 0x02
    NS_DESCRIPTORS    = 0x03
    CS_CONTROLLER     = 0x06   # I/O command set specific Identify Controller
    CS_INDEPENDENT_NS = 0x08   # I/O command set independent Identify Namespace


# Get Log Page [NVMe 1.4 §5.14]

class GetLogPageDw10(data.Struct):
    """CDW10 of Get Log Page [NVMe 1.4 Figure 189]."""
    lid:   8      # log page identifier
    lsp:   4      # log specific field
    _rsvd: 3
    rae:   1      # retain asynchronous event
    numdl: 16     # number of Dwords, lower half, 0's based


class GetLogPageDw11(data.Struct):
    """CDW11 of Get Log Page [NVMe 1.4 Figure 190]."""
    numdu: 16     # number of Dwords, upper half
    lsi:   16     # log specific identifier


# Features [NVMe 1.4 §5.13, §5.21]

class FeatureDw10(data.Struct):
    """CDW10 of Get Features [NVMe 1.4 Figure 184] (SEL) and Set Features [Figure 270]
    (SV)."""
    fid:   8      # FeatureId
    sel:   3      # Get Features only: 000b = current
    _rsvd: 20
    sv:    1      # Set Features only: save


class FeatureId(enum.Enum, shape=8):
    """Feature Identifiers [NVMe 1.4 Figure 271]."""
    ARBITRATION             = 0x01
    POWER_MANAGEMENT        = 0x02
    TEMPERATURE_THRESHOLD   = 0x04
    ERROR_RECOVERY          = 0x05
    VOLATILE_WRITE_CACHE    = 0x06
    NUMBER_OF_QUEUES        = 0x07
    INTERRUPT_COALESCING    = 0x08
    INTERRUPT_VECTOR_CONFIG = 0x09
    WRITE_ATOMICITY_NORMAL  = 0x0A
    ASYNC_EVENT_CONFIG      = 0x0B


class Arbitration(data.Struct):
    """Feature 01h [NVMe 1.4 §5.21.1.1]."""
    ab:    3      # arbitration burst, 2^AB commands; 111b = no limit
    _rsvd: 5
    lpw:   8      # low / medium / high priority weights, 0's based
    mpw:   8
    hpw:   8


class PowerManagement(data.Struct):
    """Feature 02h [NVMe 1.4 §5.21.1.2]."""
    ps:    5      # power state
    wh:    3      # workload hint
    _rsvd: 24


class ThresholdType(enum.Enum, shape=2):
    """THSEL of the Temperature Threshold feature [NVMe 1.4 §5.21.1.4]."""
    OVER  = 0b00
    UNDER = 0b01


class TemperatureThreshold(data.Struct):
    """Feature 04h [NVMe 1.4 §5.21.1.4]."""
    tmpth:  16    # kelvin
    tmpsel: 4     # 0 = composite temperature
    thsel:  2     # ThresholdType; 10b and 11b are reserved
    _rsvd:  10


class ErrorRecovery(data.Struct):
    """Feature 05h [NVMe 1.4 §5.21.1.5]."""
    tler:  16     # time limited error recovery, 100 ms units
    dulbe: 1      # deallocated or unwritten logical block error enable
    _rsvd: 15


class NumberOfQueues(data.Struct):
    """Feature 07h: CDW11 asks (NSQR, NCQR), completion DW0 grants (NSQA, NCQA); all 0's
    based [NVMe 1.4 §5.21.1.7, Figures 282, 283]."""
    nsq: 16
    ncq: 16


class InterruptCoalescing(data.Struct):
    """Feature 08h [NVMe 1.4 §5.21.1.8]."""
    thr:   8      # aggregation threshold, 0's based completions
    time:  8      # aggregation time, 100 µs units
    _rsvd: 16


class InterruptVectorConfig(data.Struct):
    """Feature 09h [NVMe 1.4 §5.21.1.9]."""
    iv:    16
    cd:    1      # coalescing disable
    _rsvd: 15


class WriteAtomicityNormal(data.Struct):
    """Feature 0Ah [NVMe 1.4 §5.21.1.10]."""
    dn:    1      # disable normal
    _rsvd: 31


class AsyncEventConfig(data.Struct):
    """Feature 0Bh [NVMe 1.4 §5.21.1.11]; the notices (bits 8 and up) are not supported
    and ignored (docs/admin-commands.md)."""
    smart: 8      # one bit per SMART / Health critical warning (bit 1: temperature)
    _rsvd: 24


class AsyncEventInfoSmart(enum.Enum, shape=8):
    """Asynchronous Event Information for the SMART / Health type [NVMe 1.4 Figure 148]."""
    NVM_SUBSYSTEM_RELIABILITY = 0x00
    TEMPERATURE_THRESHOLD     = 0x01
    SPARE_BELOW_THRESHOLD     = 0x02
