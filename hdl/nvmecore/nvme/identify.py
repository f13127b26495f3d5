"""Identify data and log pages: their builders, and the Identify ROM.

The pure-Python builders below are the one source of truth for the data the admin
commands return (docs/admin-commands.md, DESIGN.md §11 "Identify defaults"): the
reference model calls them, and :class:`IdentifyRom` takes its constants from them.

Every value that does not depend on ``device_id`` is a build-time constant. The fields
that do (the serial number, the serial part of the subsystem NQN, NGUID and EUI-64) are
overlaid in hardware by :class:`IdentifyRom`; their positions are listed once, in
:func:`device_id_positions`, and checked against the builders at elaboration.
"""

import enum
from collections.abc import Mapping

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..admin_layouts import (
    ErrorLogEntry,
    FirmwareSlotLog,
    IdentifyController,
    IdentifyNamespace,
    NsIdDescriptorHeader,
    NsIdType,
    SmartCriticalWarning,
    SmartHealthLog,
    byte_offset,
)
from ..config import CoreConfig
from ..layouts import NVME_VERSION_1_4
from ..nvm_layouts import LBA_DATA_SHIFTS, Dlfeat, Oncs

__all__ = [
    "IDENTIFY_BYTES", "IdentifyPage", "serial_number", "subnqn", "nguid", "eui64",
    "identify_controller", "identify_namespace", "active_namespace_list",
    "namespace_descriptors", "identify_page", "error_log_entry", "error_log", "smart_log",
    "firmware_slot_log", "device_id_positions", "IdentifyRom",
]


# -- Defaults (docs/admin-commands.md "Identify", DESIGN.md §11) ------------------------

IDENTIFY_BYTES = 4096          # every Identify data structure [NVMe 1.4 §5.15.2]
SN_BYTES = 20
SUBNQN_BYTES = 256
DEVICE_ID_DIGITS = 16          # the serial number shows device_id as 16 hex digits

RAB = 6                        # recommended arbitration burst: 2^6 commands
MDTS = 7                       # 2^7 × 4 KiB = 512 KiB per command
CNTLID = 1
VER = NVME_VERSION_1_4
RTD3R_US = 0
RTD3E_US = 1_000_000           # 1 s
OAES = 0
CNTRLTYPE_IO = 1               # I/O controller [NVMe 1.4 Figure 247, byte 111]
OACS = 1 << 1                  # Format NVM [NVMe 1.4 Figure 247, bit 1]
ACL = 3                        # 4 concurrent Aborts (0's based)
AERL = 3                       # 4 outstanding Asynchronous Event Requests (0's based)
FRMW = 0x03                    # slot 1 read-only, 1 slot
LPA = 0x04                     # extended data for Get Log Page
ELPE = 63                      # 64 error log entries (0's based)
NPSS = 0                       # one power state
WCTEMP_K = 343
CCTEMP_K = 358
SQES = 0x66                    # SQ entries 64 bytes, required and maximum
CQES = 0x44                    # CQ entries 16 bytes, required and maximum
NN = 1                         # one namespace, NSID 1
#: Compare, Dataset Management, Write Zeroes (docs/io-commands.md)
ONCS = data.Layout.cast(Oncs).const({"compare": 1, "dsm": 1, "write_zeroes": 1}).as_bits()
FUSES = 0                      # no fused operations
FNA = 0                        # Format NVM: per namespace, no secure or crypto erase
VWC = 0                        # no volatile write cache
SGLS = 0                       # no SGLs
PSD0_MAX_POWER = 2500          # 25 W in 0.01 W units (MXPS = 0)

NLBAF = len(LBA_DATA_SHIFTS) - 1   # two LBA formats (0's based): 512 B, 4 KiB
NSFEAT = 0
#: Deallocated blocks read as zeroes; Write Zeroes with DEAC deallocates (it zeroes).
DLFEAT = data.Layout.cast(Dlfeat).const({"read_value": 1, "write_zeroes_deac": 1}).as_bits()

ERROR_LOG_ENTRIES = ELPE + 1
ERROR_LOG_BYTES = ERROR_LOG_ENTRIES * 64
SMART_LOG_BYTES = 512
FIRMWARE_SLOT_LOG_BYTES = 512
PARAM_ERROR_LOC_NONE = 0xFFFF  # parameter error location "not specific to a parameter"
AVAILABLE_SPARE = 100          # percent
AVAILABLE_SPARE_THRESHOLD = 10  # percent
DEFAULT_TEMPERATURE_K = 313    # the temperature input's default (DESIGN.md §11)
#: Critical Warning bit 1 as a mask: a temperature crossed a threshold [NVMe 1.4 Figure 194].
CRITICAL_WARNING_TEMPERATURE = 1 << data.Layout.cast(SmartCriticalWarning)["temperature"].offset
FIRMWARE_ACTIVE_SLOT = 1

#: Namespace Identification Descriptors returned for CNS 03h, in order, with NIDL.
NS_DESCRIPTORS = ((NsIdType.EUI64, 8), (NsIdType.NGUID, 16), (NsIdType.CSI, 1))
CSI_NVM = 0


class IdentifyPage(enum.IntEnum):
    """Pages of :class:`IdentifyRom` (not CNS values)."""
    CONTROLLER     = 0      # CNS 01h
    NAMESPACE      = 1      # CNS 00h, NSID 1
    ACTIVE_NS_LIST = 2      # CNS 02h, NSID 0
    NS_DESCRIPTORS = 3      # CNS 03h, NSID 1


# -- Helpers -----------------------------------------------------------------------------

def _to_bytes(layout, fields):
    """The bytes of ``layout`` holding ``fields`` (a mapping for ``Layout.const``)."""
    layout = data.Layout.cast(layout)
    return layout.const(fields).as_bits().to_bytes(layout.size // 8, "little")


def _packed(raw: bytes):
    """A byte string as the value of a bit field: byte 0 in the lowest bits."""
    return int.from_bytes(raw, "little")


def _ascii(text: str, length: int, pad=b" "):
    raw = text.encode("ascii")
    if len(raw) > length:
        raise ValueError(f"{text!r} is longer than {length} bytes")
    return raw.ljust(length, pad)


def _check_device_id(device_id):
    if not (isinstance(device_id, int) and 0 <= device_id < 1 << 64):
        raise ValueError(f"device_id must be a 64-bit unsigned integer, not {device_id!r}")


# -- Identity strings and identifiers (DESIGN.md §11) ------------------------------------

def serial_number(config: CoreConfig, device_id: int) -> bytes:
    """SN: the prefix and 16 uppercase hex digits of ``device_id``, space padded to 20."""
    _check_device_id(device_id)
    return _ascii(f"{config.serial_prefix}{device_id:016X}", SN_BYTES)


def subnqn(config: CoreConfig, device_id: int) -> bytes:
    """SUBNQN: base + ":sn." + SN without its trailing spaces, NUL padded to 256 bytes."""
    sn = serial_number(config, device_id).rstrip(b" ").decode("ascii")
    return _ascii(f"{config.subnqn_base}:sn.{sn}", SUBNQN_BYTES, pad=b"\0")


def nguid(config: CoreConfig, device_id: int) -> bytes:
    """NGUID (16 bytes, big-endian): the 8 prefix bytes, then ``device_id``."""
    _check_device_id(device_id)
    return config.nguid_prefix.to_bytes(8, "big") + device_id.to_bytes(8, "big")


def eui64(config: CoreConfig, device_id: int) -> bytes:
    """EUI-64 (8 bytes, big-endian): the 24-bit OUI, then the low 40 bits of
    ``device_id``."""
    _check_device_id(device_id)
    return config.ieee_oui.to_bytes(3, "big") + (device_id & (1 << 40) - 1).to_bytes(5, "big")


# -- Identify data structures [NVMe 1.4 §5.15.2] -----------------------------------------

def identify_controller(config: CoreConfig, device_id: int) -> bytes:
    """Identify Controller data (CNS 01h), 4096 bytes [NVMe 1.4 Figure 247]."""
    return _to_bytes(IdentifyController, {
        "vid":       config.pci_vendor_id,
        "ssvid":     config.pci_subsystem_vendor_id,
        "sn":        _packed(serial_number(config, device_id)),
        "mn":        _packed(_ascii(config.model_number, 40)),
        "fr":        _packed(_ascii(config.firmware_revision, 8)),
        "rab":       RAB,
        "ieee":      config.ieee_oui,        # the field is little-endian [Figure 247]
        "mdts":      MDTS,
        "cntlid":    CNTLID,
        "ver":       VER,
        "rtd3r":     RTD3R_US,
        "rtd3e":     RTD3E_US,
        "oaes":      OAES,
        "cntrltype": CNTRLTYPE_IO,
        "oacs":      OACS,
        "acl":       ACL,
        "aerl":      AERL,
        "frmw":      FRMW,
        "lpa":       LPA,
        "elpe":      ELPE,
        "npss":      NPSS,
        "wctemp":    WCTEMP_K,
        "cctemp":    CCTEMP_K,
        "sqes":      SQES,
        "cqes":      CQES,
        "nn":        NN,
        "oncs":      ONCS,
        "fuses":     FUSES,
        "fna":       FNA,
        "vwc":       VWC,
        "sgls":      SGLS,
        "subnqn":    _packed(subnqn(config, device_id)),
        "psd":       [{"mp": PSD0_MAX_POWER}],       # PSD0; PSD1..31 unused (NPSS = 0)
    })


def identify_namespace(config: CoreConfig, device_id: int, lba_format=None) -> bytes:
    """Identify Namespace data (CNS 00h) for NSID 1, 4096 bytes [NVMe 1.4 Figure 245],
    formatted with ``lba_format`` (FLBAS; by default the configured one, the format
    before any Format NVM)."""
    lba_format = config.lba_format if lba_format is None else lba_format
    blocks = config.namespace_bytes >> LBA_DATA_SHIFTS[lba_format]
    return _to_bytes(IdentifyNamespace, {
        "nsze":   blocks,
        "ncap":   blocks,
        "nuse":   blocks,
        "nsfeat": NSFEAT,
        "nlbaf":  NLBAF,
        "flbas":  lba_format,
        "dlfeat": DLFEAT,
        "nguid":  _packed(nguid(config, device_id)),
        "eui64":  _packed(eui64(config, device_id)),
        "lbaf":   [{"lbads": shift} for shift in LBA_DATA_SHIFTS],
    })


def active_namespace_list(config: CoreConfig, nsid: int) -> bytes:
    """Active Namespace ID list (CNS 02h): the active NSIDs above ``nsid``, ascending, as
    32-bit little-endian words, zero padded to 4096 bytes [NVMe 1.4 §5.15.2]."""
    ids = [n for n in range(1, NN + 1) if n > nsid]
    return b"".join(n.to_bytes(4, "little") for n in ids).ljust(IDENTIFY_BYTES, b"\0")


def _descriptor_offsets():
    """Byte offset of each identifier in the CNS 03h list, keyed by NIDT."""
    offsets, at = {}, 0
    for nidt, nidl in NS_DESCRIPTORS:
        offsets[nidt] = at + 4
        at += 4 + nidl
    return offsets


def namespace_descriptors(config: CoreConfig, device_id: int) -> bytes:
    """Namespace Identification Descriptor list (CNS 03h) for NSID 1: EUI-64, NGUID and
    the command set identifier (NVM), then a zero header ending the list, zero padded
    to 4096 bytes [NVMe 1.4 §5.15.2]."""
    values = {
        NsIdType.EUI64: eui64(config, device_id),
        NsIdType.NGUID: nguid(config, device_id),
        NsIdType.CSI:   bytes([CSI_NVM]),
    }
    out = bytearray()
    for nidt, nidl in NS_DESCRIPTORS:
        assert len(values[nidt]) == nidl
        out += _to_bytes(NsIdDescriptorHeader, {"nidt": nidt, "nidl": nidl})
        out += values[nidt]
    return bytes(out).ljust(IDENTIFY_BYTES, b"\0")   # the zeros include the terminator


def identify_page(config: CoreConfig, page: IdentifyPage, device_id: int) -> bytes:
    """The 4096 bytes :class:`IdentifyRom` returns for ``page``."""
    match IdentifyPage(page):
        case IdentifyPage.CONTROLLER:
            return identify_controller(config, device_id)
        case IdentifyPage.NAMESPACE:
            return identify_namespace(config, device_id)
        case IdentifyPage.ACTIVE_NS_LIST:
            return active_namespace_list(config, 0)
        case IdentifyPage.NS_DESCRIPTORS:
            return namespace_descriptors(config, device_id)


# -- Log pages [NVMe 1.4 §5.14.1] --------------------------------------------------------

def error_log_entry(*, error_count: int, sqid: int, cid: int, sct: int, sc: int,
                    dnr: bool = False, more: bool = False, crd: int = 0, nsid: int = 0,
                    param_error_loc: int = PARAM_ERROR_LOC_NONE, lba: int = 0) -> bytes:
    """One Error Information log entry, 64 bytes [NVMe 1.4 §5.14.1.1]. The status field
    is the completion's, with the phase tag 0."""
    return _to_bytes(ErrorLogEntry, {
        "error_count":     error_count,
        "sqid":            sqid,
        "cid":             cid,
        "status":          {"p": 0, "sc": sc, "sct": sct, "crd": crd, "m": int(more),
                            "dnr": int(dnr)},
        "param_error_loc": param_error_loc,
        "lba":             lba,
        "nsid":            nsid,
    })


def error_log(entries) -> bytes:
    """Error Information log (log 01h), 4096 bytes: ``entries`` newest first, each the
    bytes of :func:`error_log_entry` or a mapping of its keyword arguments. Only the
    ELPE + 1 = 64 newest are kept; unused entries are zero (error count 0)."""
    out = bytearray()
    for entry in list(entries)[:ERROR_LOG_ENTRIES]:
        if isinstance(entry, Mapping):
            entry = error_log_entry(**entry)
        if len(entry) != 64:
            raise ValueError("an error log entry is 64 bytes")
        out += entry
    return bytes(out).ljust(ERROR_LOG_BYTES, b"\0")


def smart_log(*, temperature: int = DEFAULT_TEMPERATURE_K, critical_warning: int = 0,
              error_log_entries: int = 0, available_spare: int = AVAILABLE_SPARE,
              available_spare_threshold: int = AVAILABLE_SPARE_THRESHOLD,
              percentage_used: int = 0, data_units_read: int = 0, data_units_written: int = 0,
              host_read_commands: int = 0, host_write_commands: int = 0,
              controller_busy_time: int = 0, power_cycles: int = 0, power_on_hours: int = 0,
              unsafe_shutdowns: int = 0, media_errors: int = 0) -> bytes:
    """SMART / Health Information log (log 02h), 512 bytes [NVMe 1.4 Figure 194].

    ``temperature`` is the composite temperature in kelvin; ``critical_warning`` the
    Critical Warning bits (:data:`CRITICAL_WARNING_TEMPERATURE` = 02h: a temperature
    threshold was crossed); ``error_log_entries`` the number of Error Information log
    entries over the controller's life (the newest error count).
    """
    if not 0 <= critical_warning < 1 << 8:
        raise ValueError("critical_warning is 8 bits")
    warning = data.Layout.cast(SmartCriticalWarning).from_bits(critical_warning)
    return _to_bytes(SmartHealthLog, {
        "critical_warning":          warning,
        "composite_temperature":     temperature,
        "available_spare":           available_spare,
        "available_spare_threshold": available_spare_threshold,
        "percentage_used":           percentage_used,
        "data_units_read":           data_units_read,
        "data_units_written":        data_units_written,
        "host_read_commands":        host_read_commands,
        "host_write_commands":       host_write_commands,
        "controller_busy_time":      controller_busy_time,
        "power_cycles":              power_cycles,
        "power_on_hours":            power_on_hours,
        "unsafe_shutdowns":          unsafe_shutdowns,
        "media_errors":              media_errors,
        "error_log_entries":         error_log_entries,
    })


def firmware_slot_log(config: CoreConfig) -> bytes:
    """Firmware Slot Information log (log 03h), 512 bytes: running from slot 1, which
    holds the configured firmware revision [NVMe 1.4 §5.14.1.3]."""
    return _to_bytes(FirmwareSlotLog, {
        "afi":  {"active": FIRMWARE_ACTIVE_SLOT},
        "frs1": _packed(_ascii(config.firmware_revision, 8)),
    })


# -- Where device_id shows ---------------------------------------------------------------

def device_id_positions(config: CoreConfig):
    """The bytes of each page that depend on ``device_id``.

    Returns ``{page: {byte offset: source}}``, where a source is ``("hex", i)``, the ASCII
    form of hex digit ``i`` of ``device_id`` counted from the most significant, or
    ``("byte", i)``, bits 8i+7:8i of ``device_id``.
    """
    digits = [("hex", i) for i in range(DEVICE_ID_DIGITS)]
    big_endian = [("byte", 7 - i) for i in range(8)]        # NGUID's last 8 bytes
    low_40 = big_endian[3:]                                 # EUI-64's last 5 bytes

    def place(offset, sources):
        return {offset + i: source for i, source in enumerate(sources)}

    sn_at = byte_offset(IdentifyController, "sn") + len(config.serial_prefix)
    nqn_at = (byte_offset(IdentifyController, "subnqn") + len(config.subnqn_base)
              + len(":sn.") + len(config.serial_prefix))
    descriptors = _descriptor_offsets()
    return {
        IdentifyPage.CONTROLLER: place(sn_at, digits) | place(nqn_at, digits),
        IdentifyPage.NAMESPACE: (place(byte_offset(IdentifyNamespace, "nguid") + 8, big_endian)
                                 | place(byte_offset(IdentifyNamespace, "eui64") + 3, low_40)),
        IdentifyPage.ACTIVE_NS_LIST: {},
        IdentifyPage.NS_DESCRIPTORS: (place(descriptors[NsIdType.NGUID] + 8, big_endian)
                                      | place(descriptors[NsIdType.EUI64] + 3, low_40)),
    }


def _source_byte(source, device_id):
    kind, i = source
    if kind == "hex":
        return ord(f"{device_id:016X}"[i])
    return device_id >> 8 * i & 0xFF


def _check_positions(config, constant_pages, positions):
    """The builders, for a few device IDs, equal the device_id = 0 pages with the listed
    bytes replaced: nothing else depends on device_id, and the list is right."""
    for device_id in (0x0123_4567_89AB_CDEF, 0xFEDC_BA98_7654_3210, (1 << 64) - 1):
        for page in IdentifyPage:
            expected = bytearray(constant_pages[page])
            for offset, source in positions[page].items():
                expected[offset] = _source_byte(source, device_id)
            if identify_page(config, page, device_id) != expected:
                raise AssertionError(f"device_id_positions disagrees with the builders "
                                     f"for page {page.name}")


# -- Gateware ----------------------------------------------------------------------------

class IdentifyRom(wiring.Component):
    """The four Identify pages as a synchronous ROM.

    ``data`` is beat ``beat`` (``data_width`` bits, byte 0 in bits 7:0) of page ``page``
    (an :class:`IdentifyPage`) one cycle after ``en``; it holds while ``en`` is low, and
    resets to 0. The constant beats come from the builders with ``device_id`` = 0 in a
    switch that lists only the non-zero beats; the bytes that depend on ``device_id``
    (:func:`device_id_positions`) are muxed in from the ``device_id`` input, and those of
    Identify Namespace that depend on the LBA format (NSZE, NCAP, NUSE, FLBAS: the bytes
    where the two formats' pages differ) from the ``lba_format`` input.

    Attributes ``constant_beats``, ``device_id_beats`` and ``format_beats`` count the beats
    in the switch (a beat may depend on both device_id and the format).
    """

    def __init__(self, config: CoreConfig):
        self._config = config
        self._beat_bytes = config.data_width // 8
        self._beats = IDENTIFY_BYTES // self._beat_bytes
        super().__init__({
            "page":      In(2),
            "device_id": In(64),
            "beat":      In(range(self._beats)),
            "en":        In(1),
            "lba_format": In(1),
            "data":      Out(config.data_width),
        })

        constant_pages = {page: identify_page(config, page, 0) for page in IdentifyPage}
        positions = device_id_positions(config)
        _check_positions(config, constant_pages, positions)
        formats = [identify_namespace(config, 0, f) for f in range(len(LBA_DATA_SHIFTS))]
        assert len(formats) == 2, "the lba_format input selects one of two formats"
        for offset in range(IDENTIFY_BYTES):
            if formats[0][offset] != formats[1][offset]:
                assert offset not in positions[IdentifyPage.NAMESPACE]
                positions[IdentifyPage.NAMESPACE][offset] = ("format",
                                                             (formats[0][offset],
                                                              formats[1][offset]))

        # (page, beat) → (constant bytes of the beat, {byte in beat: source}), non-zero only
        self._rom = {}
        for page in IdentifyPage:
            for beat in range(self._beats):
                start = beat * self._beat_bytes
                chunk = constant_pages[page][start:start + self._beat_bytes]
                dynamic = {offset - start: source
                           for offset, source in positions[page].items()
                           if start <= offset < start + self._beat_bytes}
                if dynamic or any(chunk):
                    self._rom[page, beat] = (chunk, dynamic)
        kinds = [{kind for kind, _ in dynamic.values()} for _, dynamic in self._rom.values()]
        self.device_id_beats = sum(1 for k in kinds if k - {"format"})
        self.format_beats = sum(1 for k in kinds if "format" in k)
        self.constant_beats = sum(1 for k in kinds if not k)

    def elaborate(self, platform):
        m = Module()

        # ASCII of each hex digit of device_id, most significant first: '0'+n or 'A'+n-10.
        # Shared by the serial number and the subsystem NQN.
        digits = []
        for i in range(DEVICE_ID_DIGITS):
            nibble = self.device_id[60 - 4 * i:64 - 4 * i]
            digit = Signal(8, name=f"sn_digit{i}")
            m.d.comb += digit.eq(Mux(nibble < 10, nibble + ord("0"), nibble + ord("A") - 10))
            digits.append(digit)

        def source_value(source):
            kind, i = source
            if kind == "format":
                return Mux(self.lba_format, Const(i[1], 8), Const(i[0], 8))
            return digits[i] if kind == "hex" else self.device_id.word_select(i, 8)

        def beat_value(chunk, dynamic):
            parts, run = [], bytearray()
            for offset, byte in enumerate(chunk):
                if offset in dynamic:
                    if run:
                        parts.append(Const(_packed(run), 8 * len(run)))
                        run = bytearray()
                    parts.append(source_value(dynamic[offset]))
                else:
                    run.append(byte)
            if run:
                parts.append(Const(_packed(run), 8 * len(run)))
            return Cat(*parts)

        beat_bits = len(self.beat)
        with m.If(self.en):
            with m.Switch(Cat(self.beat, self.page)):
                for (page, beat), (chunk, dynamic) in self._rom.items():
                    with m.Case(page << beat_bits | beat):
                        m.d.sync += self.data.eq(beat_value(chunk, dynamic))
                with m.Default():
                    m.d.sync += self.data.eq(0)

        return m
