"""Host memory for a command's data, described by PRPs [NVMe 1.4 §4.3].

:func:`build_prps` allocates the data pages and the PRP list pages of one transfer
through a :class:`~nvmetb.host.transport.Transport` and writes the lists, following a
:class:`PrpLayout`: where PRP1 starts in its page, whether the data pages are one
buffer or scattered, where the list starts in its page, when a list chains to the next,
what lies above 4 GiB, and what is broken on purpose for the error paths.

Every buffer is exactly as long as the bytes the controller may touch (a data piece, the
list entries it must read), so the host memory's guard gaps catch an access one byte too
far: a list entry read that was not needed, a data write past the transfer.
"""

import random
from dataclasses import dataclass, field

from nvmecore.nvm_layouts import PAGE_BYTES

__all__ = ["PRP_ENTRY_BYTES", "BAD_ENTRY_OFFSET", "PrpLayout", "PrpBuffers", "build_prps",
           "prp_pieces"]

#: A PRP entry is a QWORD [NVMe 1.4 Figure 108].
PRP_ENTRY_BYTES = 8
#: What a broken list entry or chain pointer is off by: QWORD aligned, not page aligned,
#: so a walker that checks only bits 2:0 takes it.
BAD_ENTRY_OFFSET = 8


def prp_pieces(offset, length):
    """The lengths of a ``length``-byte transfer's pieces when PRP1 is ``offset`` bytes
    into its page: the rest of that page, whole pages, the remainder."""
    pieces = []
    room = PAGE_BYTES - offset
    while length:
        pieces.append(min(length, room))
        length -= pieces[-1]
        room = PAGE_BYTES
    return pieces


@dataclass(frozen=True)
class PrpLayout:
    """How one transfer's host memory is laid out.

    ``offset``: PRP1's byte offset into its page (a DWORD multiple for a valid command).
    ``contiguous``: all data in one buffer; otherwise each page is a buffer of its own,
    the buffers separated by unallocated guard pages (``shuffle``: allocated in random
    order, so the list's addresses do not even increase).
    ``list_offset``: the first PRP list's byte offset into its page (a QWORD multiple);
    the page then holds (4096 − offset) / 8 entries. ``chain_after``: instead of
    ``list_offset``, place the first list so that its page holds ``chain_after`` data
    entries and then the pointer to the next list (a chain, when more entries follow).
    ``data_high`` / ``list_high``: data pages / list pages above 4 GiB (True), below
    (False), the transport's choice (None) or, for scattered data pages, a random mix
    ("mixed").

    Broken on purpose: ``bad_prp1`` / ``bad_prp2`` are added to PRP1 / PRP2 (e.g. 2:
    PRP1 not DWORD aligned; 4: PRP2 neither page nor QWORD aligned); ``bad_entry``: the
    data entry of that index in the list(s) (0 is the second page of the transfer) is
    :data:`BAD_ENTRY_OFFSET` off a page boundary; ``bad_chain``: the first chain pointer
    is.
    """
    offset: int = 0
    contiguous: bool = False
    shuffle: bool = False
    list_offset: int = 0
    chain_after: int | None = None
    data_high: bool | str | None = None
    list_high: bool | None = None
    bad_prp1: int = 0
    bad_prp2: int = 0
    bad_entry: int | None = None
    bad_chain: bool = False

    def __post_init__(self):
        if not 0 <= self.offset < PAGE_BYTES:
            raise ValueError(f"PRP1 offset {self.offset} is not inside a page")
        if not 0 <= self.list_offset <= PAGE_BYTES - PRP_ENTRY_BYTES:
            raise ValueError(f"list offset {self.list_offset} leaves no room for an entry")
        if self.chain_after is not None:
            if self.list_offset:
                raise ValueError("give list_offset or chain_after, not both")
            if not 1 <= self.chain_after < PAGE_BYTES // PRP_ENTRY_BYTES:
                raise ValueError(f"chain_after={self.chain_after}: 1 .. 511 data entries")
        if self.data_high not in (None, True, False, "mixed"):
            raise ValueError(f"data_high={self.data_high!r}")

    @property
    def first_list_offset(self):
        if self.chain_after is not None:
            return PAGE_BYTES - PRP_ENTRY_BYTES * (self.chain_after + 1)
        return self.list_offset

    @property
    def broken(self):
        return bool(self.bad_prp1 or self.bad_prp2 or self.bad_entry is not None
                    or self.bad_chain)


@dataclass
class PrpBuffers:
    """One transfer's host memory: the PRPs to put in the command and where its bytes
    are.

    ``pieces``: the data's ``(address, length)`` pieces in transfer order (the first at
    PRP1). ``lists``: each PRP list's ``(address, entries)``, in walking order; the last
    entry of all but the last is the chain pointer (``chains``: their addresses).
    ``buffers``: every allocation (data and lists), to free.
    """
    prp1: int
    prp2: int
    length: int
    pieces: list[tuple[int, int]]
    lists: list[tuple[int, int]] = field(default_factory=list)
    chains: list[int] = field(default_factory=list)
    buffers: list[int] = field(default_factory=list)

    def write(self, transport, data: bytes):
        """Copy ``data`` (the whole transfer) into the pieces."""
        if len(data) != self.length:
            raise ValueError(f"{len(data)} bytes for a {self.length}-byte transfer")
        at = 0
        for addr, length in self.pieces:
            transport.mem_write(addr, data[at:at + length])
            at += length

    def read(self, transport) -> bytes:
        """The transfer's bytes, gathered from the pieces."""
        return b"".join(transport.mem_read(addr, length) for addr, length in self.pieces)

    def fill(self, transport, byte):
        self.write(transport, bytes([byte]) * self.length)

    def free(self, transport):
        for addr in self.buffers:
            transport.free(addr)
        self.buffers.clear()

    def list_range(self, index):
        """``(start, stop)`` of the host memory PRP list ``index`` occupies."""
        addr, entries = self.lists[index]
        return addr, addr + PRP_ENTRY_BYTES * entries


def _high(choice, rng):
    return rng.random() < 0.5 if choice == "mixed" else choice


def build_prps(transport, length, layout: PrpLayout | None = None, *, name="data",
               rng: random.Random | None = None) -> PrpBuffers:
    """Allocate and describe a ``length``-byte transfer laid out as ``layout`` says.

    The data buffers are called ``name`` (the bench compares buffers called "data" with
    the model's copy; give a command expected to fail another name), the lists
    "prp-list". The buffers are zeroed; fill them with :meth:`PrpBuffers.write`.
    """
    layout = layout or PrpLayout()
    rng = rng or random.Random(length)
    if length <= 0:
        raise ValueError("a transfer of no bytes has no PRPs")
    sizes = prp_pieces(layout.offset, length)
    buffers = []
    if layout.contiguous or len(sizes) == 1:
        high = _high(layout.data_high, rng)
        base = transport.alloc(length, PAGE_BYTES, offset=layout.offset, name=name,
                               above_4g=high)
        buffers.append(base)
        pieces, at = [], base
        for size in sizes:
            pieces.append((at, size))
            at += size
    else:
        order = list(range(len(sizes)))
        if layout.shuffle:
            rng.shuffle(order)
        addrs = {}
        for i in order:
            addrs[i] = transport.alloc(sizes[i], PAGE_BYTES, offset=layout.offset if i == 0
                                       else 0, name=name,
                                       above_4g=_high(layout.data_high, rng))
            buffers.append(addrs[i])
        pieces = [(addrs[i], sizes[i]) for i in range(len(sizes))]

    prp1 = pieces[0][0] + layout.bad_prp1
    prp2, lists, chains = 0, [], []
    entries = [addr for addr, _ in pieces[1:]]
    if layout.bad_entry is not None:
        if not 0 <= layout.bad_entry < len(entries) or len(entries) < 2:
            raise ValueError(f"bad_entry={layout.bad_entry}: the transfer has "
                             f"{len(entries)} entries past PRP1 (a list needs 2 or more)")
        entries[layout.bad_entry] += BAD_ENTRY_OFFSET
    if len(entries) == 1:
        prp2 = entries[0]
    elif len(entries) > 1:
        # Split the entries over list pages: each holds what its room allows, the last
        # slot of a full page pointing to the next [NVMe 1.4 §4.3].
        pages, rest, offset = [], entries, layout.first_list_offset
        while True:
            slots = (PAGE_BYTES - offset) // PRP_ENTRY_BYTES
            if len(rest) <= slots:
                pages.append((offset, rest))
                break
            pages.append((offset, rest[:slots - 1]))
            rest, offset = rest[slots - 1:], 0
        addrs = []
        for offset, page_entries in pages:
            used = len(page_entries) + (1 if len(addrs) < len(pages) - 1 else 0)
            addrs.append(transport.alloc(PRP_ENTRY_BYTES * used, PAGE_BYTES, offset=offset,
                                         name="prp-list", above_4g=layout.list_high))
        buffers += addrs
        for k, (_, page_entries) in enumerate(pages):
            values = list(page_entries)
            if k + 1 < len(pages):
                pointer = addrs[k + 1]
                if layout.bad_chain and not chains:
                    pointer += BAD_ENTRY_OFFSET
                values.append(pointer)
                chains.append(addrs[k] + PRP_ENTRY_BYTES * len(page_entries))
            transport.mem_write(addrs[k], b"".join(v.to_bytes(PRP_ENTRY_BYTES, "little")
                                                   for v in values))
            lists.append((addrs[k], len(values)))
        prp2 = addrs[0]
        if layout.bad_chain and not chains:
            raise ValueError("bad_chain: the transfer needs no chained list")
    if layout.bad_prp2:
        if len(entries) == 0:
            raise ValueError("bad_prp2: the transfer does not use PRP2")
        prp2 += layout.bad_prp2
    return PrpBuffers(prp1, prp2, length, pieces, lists, chains, buffers)
