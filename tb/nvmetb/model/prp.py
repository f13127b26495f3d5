"""Where a command's data goes: PRP1, PRP2 and PRP lists [NVMe 1.4 §4.3].

:func:`prp_segments` serves the admin commands, which move at most 4096 bytes (Identify
data, log pages ≤ 4 KiB), so PRP1 and PRP2 always reach them. :func:`prp_walk` serves
the NVM I/O commands: PRP2 may point to a PRP list, and list pages chain through their
last entry (docs/io-commands.md "PRPs").
"""

from nvmecore.layouts import GenericStatus

from .commands import Refused

__all__ = ["prp_segments", "prp_walk", "PRP_ENTRY_BYTES"]

#: A PRP entry is a QWORD [NVMe 1.4 §4.3, Figure 108].
PRP_ENTRY_BYTES = 8


def _invalid_offset():
    return Refused(GenericStatus.INVALID_PRP_OFFSET, dnr=True)


def _first_piece(prp1, length, page_bytes):
    """PRP1's piece: any DWORD-aligned offset into its page [NVMe 1.4 §4.3]."""
    if prp1 % 4:
        raise _invalid_offset()
    return prp1, min(length, page_bytes - prp1 % page_bytes)


def prp_segments(prp1, prp2, length, page_bytes):
    """The ``(address, bytes)`` pieces of a ``length``-byte transfer.

    PRP1 may have any DWORD-aligned offset into its page; what does not fit in that
    page goes to PRP2, which must then be page aligned. An offset that is not DWORD
    aligned, or a misaligned PRP2 in use, is Invalid PRP Offset
    [NVMe 1.4 §4.3, Figure 127 (13h)]. PRP2 is not looked at when PRP1 holds it all.
    """
    pieces = [_first_piece(prp1, length, page_bytes)]
    left = length - pieces[0][1]
    if left:
        if prp2 % page_bytes:
            raise _invalid_offset()
        assert left <= page_bytes, "more than two pages needs a PRP list"
        pieces.append((prp2, left))
    return pieces


def prp_walk(prp1, prp2, length, page_bytes, read_list):
    """The ``(address, bytes)`` pieces of a ``length``-byte transfer, reading PRP lists
    as needed (docs/io-commands.md "PRPs"; [NVMe 1.4 §4.3]).

    ``read_list(addr, nbytes)`` reads PRP entries from host memory: the bytes, or None
    if the read failed. It is called once per list page, for the entries needed from it
    only, in chain order. Every entry is read and checked here, before any data moves:

    - PRP1: bits 1:0 set → Invalid PRP Offset (DNR). Its piece runs to the end of its
      page. Nothing left: PRP2 is not looked at.
    - At most one page left: PRP2 is that page; not page aligned → Invalid PRP Offset.
    - More: PRP2 points to a PRP list and may carry a QWORD-aligned offset (bits 2:0
      set → Invalid PRP Offset; entries are QWORDs). A list page from offset ``o`` holds
      (page − o) / 8 entries; when more pages are needed than it holds, its last entry
      points to the next list page (page aligned, else Invalid PRP Offset), whose
      entries start at its offset 0. Every data entry must be page aligned, else
      Invalid PRP Offset.
    - A failed list read → Data Transfer Error, without DNR.
    """
    pieces = [_first_piece(prp1, length, page_bytes)]
    left = length - pieces[0][1]
    if not left:
        return pieces
    if left <= page_bytes:
        if prp2 % page_bytes:
            raise _invalid_offset()
        return [*pieces, (prp2, left)]
    if prp2 % PRP_ENTRY_BYTES:
        raise _invalid_offset()
    pages = -(-left // page_bytes)                  # data pages still to be found
    list_addr = prp2
    while True:
        slots = (page_bytes - list_addr % page_bytes) // PRP_ENTRY_BYTES
        chained = pages > slots                     # the last slot points to the next list
        count = slots if chained else pages
        raw = read_list(list_addr, count * PRP_ENTRY_BYTES)
        if raw is None:
            raise Refused(GenericStatus.DATA_TRANSFER_ERROR)
        assert len(raw) == count * PRP_ENTRY_BYTES
        entries = [int.from_bytes(raw[i:i + PRP_ENTRY_BYTES], "little")
                   for i in range(0, len(raw), PRP_ENTRY_BYTES)]
        for entry in entries[:-1] if chained else entries:
            if entry % page_bytes:
                raise _invalid_offset()
            pieces.append((entry, min(left, page_bytes)))
            left -= pieces[-1][1]
            pages -= 1
        if not chained:
            assert left == 0 and pages == 0
            return pieces
        list_addr = entries[-1]
        if list_addr % page_bytes:
            raise _invalid_offset()
