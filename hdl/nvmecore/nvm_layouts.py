"""The NVM command set's command dwords, data structures and limits, defined once.

The I/O commands' command dwords (CDW10..CDW15), the Dataset Management range, Format
NVM's CDW10 and the constants of the namespace's LBA formats. Fields pack from bit 0 up,
as in the specification's figures. The gateware's I/O engine and admin engine, the
reference model (``nvmetb.model``) and the host driver (``nvmetb.host``) import them from
here; docs/io-commands.md is the behaviour contract.

References are to the NVM Express Base Specification 1.4 (``[NVMe 1.4 ...]``), whose
chapter 6 is the NVM command set.
"""

from amaranth.lib import data, enum

__all__ = [
    "PAGE_BYTES", "SECTOR_BYTES", "LBA_DATA_SHIFTS", "lba_bytes", "BROADCAST_NSID",
    "ReadWriteDw12", "ReadWriteDw13", "WriteZeroesDw12", "DsmDw10", "DsmDw11", "DsmRange",
    "DSM_RANGE_BYTES", "DSM_MAX_RANGES", "FormatNvmDw10", "SecureErase",
    "Oncs", "Fna", "Dlfeat",
]

#: Host memory page size: CC.MPS = 0 is the only one supported [NVMe 1.4 §3.1.5].
PAGE_BYTES = 4096
#: The unit the backend interface and SMART / Health count in [NVMe 1.4 Figure 194].
SECTOR_BYTES = 512
#: LBA data sizes of the LBA formats offered, as 2^n bytes: LBAF0 512 B, LBAF1 4 KiB.
LBA_DATA_SHIFTS = (9, 12)
#: NSID FFFFFFFFh: every namespace (Flush, Format NVM) [NVMe 1.4 §6.1.2].
BROADCAST_NSID = 0xFFFF_FFFF


def lba_bytes(lba_format):
    """Bytes per logical block of LBA format ``lba_format`` (an index into the LBAF list)."""
    return 1 << LBA_DATA_SHIFTS[lba_format]


# -- Read, Write, Compare [NVMe 1.4 §6.9, §6.15, §6.2] ----------------------------------------
# CDW10 / CDW11 hold the starting LBA (SLBA, 64 bits, CDW10 the low half).

class ReadWriteDw12(data.Struct):
    """CDW12 of Read, Write and Compare [NVMe 1.4 Figures 372, 404, 350]."""
    nlb:    16      # number of logical blocks, 0's based
    _rsvd0: 4
    dtype:  4       # Write only: directive type
    stc:    1       # Write only: storage tag check (NVMe 2.0; reserved in 1.4)
    _rsvd1: 1
    prinfo: 4       # protection information field (no end-to-end protection here)
    fua:    1       # force unit access
    lr:     1       # limited retry


class ReadWriteDw13(data.Struct):
    """CDW13 of Read and Write: Dataset Management hints [NVMe 1.4 Figure 373]."""
    dsm:    8
    _rsvd:  8
    dspec:  16      # Write only: directive specific


class WriteZeroesDw12(data.Struct):
    """CDW12 of Write Zeroes [NVMe 1.4 §6.16, Figure 410]."""
    nlb:    16      # 0's based
    _rsvd0: 9
    deac:   1       # deallocate the blocks
    prinfo: 4
    fua:    1
    lr:     1


# -- Dataset Management [NVMe 1.4 §6.7] -----------------------------------------------------

class DsmDw10(data.Struct):
    """CDW10 of Dataset Management [NVMe 1.4 Figure 362]."""
    nr:    8        # number of ranges, 0's based
    _rsvd: 24


class DsmDw11(data.Struct):
    """CDW11 of Dataset Management [NVMe 1.4 Figure 363]."""
    idr:   1        # integral dataset for read (a hint)
    idw:   1        # integral dataset for write (a hint)
    ad:    1        # attribute: deallocate
    _rsvd: 29


class DsmRange(data.Struct):
    """One Dataset Management range, 16 bytes in host memory [NVMe 1.4 Figure 364]."""
    cattr: 32       # context attributes (hints)
    nlb:   32       # length in logical blocks, 1's based (0: an empty range)
    slba:  64       # starting LBA


DSM_RANGE_BYTES = data.Layout.cast(DsmRange).size // 8      # 16
DSM_MAX_RANGES = 256


# -- Format NVM [NVMe 1.4 §5.23] --------------------------------------------------------------

class SecureErase(enum.Enum, shape=3):
    """SES of Format NVM [NVMe 1.4 Figure 285]."""
    NONE            = 0
    USER_DATA_ERASE = 1
    CRYPTOGRAPHIC   = 2


class FormatNvmDw10(data.Struct):
    """CDW10 of Format NVM [NVMe 1.4 Figure 285]."""
    lbaf:  4        # LBA format index
    mset:  1        # metadata settings
    pi:    3        # protection information type
    pil:   1        # protection information location
    ses:   3        # SecureErase
    _rsvd: 20


# -- Identify fields the NVM command set reports ------------------------------------------

class Oncs(data.Struct):
    """Optional NVM Command Support, Identify Controller bytes 521:520 [NVMe 1.4
    Figure 247]."""
    compare:          1
    write_uncorrect:  1
    dsm:              1
    write_zeroes:     1
    save_select:      1     # Save field of Set Features, Select field of Get Features
    reservations:     1
    timestamp:        1
    verify:           1
    _rsvd:            8


class Fna(data.Struct):
    """Format NVM Attributes, Identify Controller byte 524 [NVMe 1.4 Figure 247]."""
    format_all:       1     # a format applies to every namespace
    erase_all:        1     # a secure erase applies to every namespace
    crypto_erase:     1     # cryptographic erase supported
    _rsvd:            5


class Dlfeat(data.Struct):
    """Deallocate Logical Block Features, Identify Namespace byte 33 [NVMe 1.4
    Figure 245]."""
    read_value:       3     # 001b: a deallocated block reads as all zeroes
    write_zeroes_deac: 1    # Write Zeroes with DEAC deallocates
    guard_crc:        1     # the guard field of deallocated blocks is the CRC
    _rsvd:            3
