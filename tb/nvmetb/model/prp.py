"""Where a command's data goes: PRP1 and PRP2 [NVMe 1.4 §4.3].

The admin commands move at most 4096 bytes (Identify data, log pages ≤ 4 KiB), so PRP1
and PRP2 always reach them; PRP lists come with the NVM I/O path (DESIGN.md §11).
"""

from nvmecore.layouts import GenericStatus

from .commands import Refused

__all__ = ["prp_segments"]


def prp_segments(prp1, prp2, length, page_bytes):
    """The ``(address, bytes)`` pieces of a ``length``-byte transfer.

    PRP1 may have any DWORD-aligned offset into its page; what does not fit in that
    page goes to PRP2, which must then be page aligned. An offset that is not DWORD
    aligned, or a misaligned PRP2 in use, is Invalid PRP Offset
    [NVMe 1.4 §4.3, Figure 127 (13h)]. PRP2 is not looked at when PRP1 holds it all.
    """
    if prp1 % 4:
        raise Refused(GenericStatus.INVALID_PRP_OFFSET, dnr=True)
    first = min(length, page_bytes - prp1 % page_bytes)
    pieces = [(prp1, first)]
    if length > first:
        if prp2 % page_bytes:
            raise Refused(GenericStatus.INVALID_PRP_OFFSET, dnr=True)
        assert length - first <= page_bytes, "more than two pages needs a PRP list"
        pieces.append((prp2, length - first))
    return pieces
