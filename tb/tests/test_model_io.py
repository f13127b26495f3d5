"""The reference model's NVM command set, against docs/io-commands.md and the NVMe 1.4
specification.

The host of ``model_host`` submits I/O commands on I/O SQs through host memory and
doorbells. Data buffers are scattered over separate pages (with PRP lists built here,
from the spec's rules, independently of the model's walker), sometimes above 4 GiB.
Log pages are read back with Get Log Page and checked at the spec's byte offsets.
"""

import random
import struct
from dataclasses import dataclass, field

import pytest

from model_host import OK, PAGE, A, C, G, Host, S, dnr, u16, u32, u64
from nvmecore import CoreConfig
from nvmecore.layouts import MediaStatus, NvmOpcode
from nvmecore.nvm_layouts import (
    BROADCAST_NSID,
    DsmRange,
    FormatNvmDw10,
    ReadWriteDw12,
    WriteZeroesDw12,
    lba_bytes,
)
from nvmecore.nvme import identify
from nvmetb.model import MDTS_BYTES, ControllerModel, IoDma, RangeSet
from nvmetb.model.commands import Refused
from nvmetb.model.prp import prp_walk

pytestmark = pytest.mark.quick

N = NvmOpcode
M = MediaStatus
M32 = 0xFFFF_FFFF
NS_BYTES = 1 << 20
CONFIG = CoreConfig(io_queues=2, msix_vectors=3, max_queue_entries=64,
                    namespace_bytes=NS_BYTES)
CONFIG_4K = CoreConfig(io_queues=2, msix_vectors=3, max_queue_entries=64,
                       namespace_bytes=NS_BYTES, lba_format=1)
HIGH = 0x1_2345_0000            # host memory above 4 GiB
TOP = 0xFFFF_FFF0_0000_0000     # near the top of the 64-bit space


def media(code, dnr=False):
    return S(code, dnr)


# -- The host side: buffers, PRP lists, commands ---------------------------------------

class Alloc:
    """Separate pages from ``start`` on (one unused page after each)."""

    def __init__(self, start):
        self.next = start

    def __call__(self):
        addr, self.next = self.next, self.next + 2 * PAGE
        return addr


@dataclass
class Buffer:
    """A data buffer as PRPs describe it: ``pieces`` (address, bytes) in order, the PRP
    list reads a controller must make (``list_reads``, only the entries needed) and
    where each list entry lies in memory (``entries``: (address, "data" | "chain"))."""
    prp1: int
    prp2: int
    pieces: list
    list_reads: list = field(default_factory=list)
    entries: list = field(default_factory=list)

    @property
    def length(self):
        return sum(n for _, n in self.pieces)

    def fill(self, mem, payload):
        at = 0
        for addr, n in self.pieces:
            mem.write(addr, payload[at:at + n])
            at += n

    def read(self, mem):
        return b"".join(mem.read(addr, n) for addr, n in self.pieces)


def qword(value):
    return value.to_bytes(8, "little")


def make_buffer(host, length, *, offset=0, list_offset=0, alloc=None, list_alloc=None):
    """PRPs for ``length`` bytes [NVMe 1.4 §4.3]: PRP1 at ``offset`` into its page; a
    second page in PRP2; or a PRP list at ``list_offset`` into its page, whose last entry
    chains to the next list page when more entries are needed than the page holds."""
    alloc = alloc or (lambda: host.alloc())
    list_alloc = list_alloc or alloc
    prp1 = alloc() + offset
    first = min(length, PAGE - offset)
    pieces = [(prp1, first)]
    rest = length - first
    pages = [alloc() for _ in range(-(-rest // PAGE))]
    pieces += [(p, min(PAGE, rest - i * PAGE)) for i, p in enumerate(pages)]
    buf = Buffer(prp1, 0, pieces)
    if len(pages) == 1:
        buf.prp2 = pages[0]
    elif pages:
        buf.prp2 = at = list_alloc() + list_offset
        slots = (PAGE - list_offset) // 8
        left = pages
        while True:
            if len(left) <= slots:
                entries, chain = left, None
            else:
                chain = list_alloc()
                entries, left = [*left[:slots - 1], chain], left[slots - 1:]
            host.mem.write(at, b"".join(qword(e) for e in entries))
            buf.list_reads.append((at, 8 * len(entries)))
            buf.entries += [(at + 8 * i, "data") for i in range(len(entries))]
            if chain is None:
                break
            buf.entries[-1] = (buf.entries[-1][0], "chain")
            at, slots = chain, PAGE // 8
    return buf


def rw_fields(slba, nblocks, buf=None, **dw12):
    """SLBA in CDW11:CDW10, NLB (0's based) and other CDW12 fields, PRP1 / PRP2."""
    fields = {"cdw10": slba & M32, "cdw11": slba >> 32 & M32,
              "cdw12": ReadWriteDw12.const({"nlb": (nblocks - 1) & 0xFFFF,
                                            **dw12}).as_bits()}
    if buf is not None:
        fields |= {"prp1": buf.prp1, "prp2": buf.prp2}
    return fields


class IoHost(Host):
    """The model tests' host with an I/O queue pair (1) and I/O shorthands."""

    def __init__(self, config=CONFIG):
        super().__init__(config)
        self.enable()
        self.pair(1, entries=16)
        self.rng = random.Random(1)

    @property
    def lba(self):
        return lba_bytes(self.model.lba_format)

    def io(self, opc, *, qid=1, nsid=1, **fields):
        cid = self.submit(qid, opc, nsid=nsid, **fields)
        (e,) = self.reap(qid)
        assert e.cid == cid and e.sqid == qid and e.dw0 == 0
        return e

    def random_bytes(self, n):
        return self.rng.randbytes(n)

    def write(self, slba, payload, **layout):
        buf = make_buffer(self, len(payload), **layout)
        buf.fill(self.mem, payload)
        return self.io(N.WRITE, **rw_fields(slba, len(payload) // self.lba, buf))

    def read(self, slba, nblocks, **layout):
        """(completion, the data the host got)."""
        buf = make_buffer(self, nblocks * self.lba, **layout)
        e = self.io(N.READ, **rw_fields(slba, nblocks, buf))
        return e, buf.read(self.mem)

    def compare(self, slba, payload):
        buf = make_buffer(self, len(payload))
        buf.fill(self.mem, payload)
        return self.io(N.COMPARE, **rw_fields(slba, len(payload) // self.lba, buf))

    def write_zeroes(self, slba, nblocks, **dw12):
        return self.io(N.WRITE_ZEROES, cdw10=slba & M32, cdw11=slba >> 32 & M32,
                       cdw12=WriteZeroesDw12.const({"nlb": nblocks - 1, **dw12}).as_bits())

    def dsm(self, ranges, *, ad=1, nr=None, offset=0, **fields):
        """Dataset Management over ``ranges`` ((slba, nlb) or (slba, nlb, cattr))."""
        raw = b"".join(DsmRange.const({"slba": r[0], "nlb": r[1],
                                       "cattr": r[2] if len(r) > 2 else 0})
                       .as_bits().to_bytes(16, "little") for r in ranges)
        buf = make_buffer(self, len(raw), offset=offset)
        buf.fill(self.mem, raw)
        nr = len(ranges) - 1 if nr is None else nr
        return self.io(N.DSM, prp1=buf.prp1, prp2=buf.prp2, cdw10=nr, cdw11=ad << 2,
                       **fields)

    def format(self, lbaf=0, nsid=1, **dw10):
        return self.cmd(A.FORMAT_NVM, nsid=nsid,
                        cdw10=FormatNvmDw10.const({"lbaf": lbaf, **dw10}).as_bits())

    def smart(self):
        """SMART / Health: (data units read, written, host reads, host writes), from
        the spec's byte offsets [NVMe 1.4 Figure 194]."""
        e, buf = self.get_log(0x02, 512)
        assert e.status == OK
        log = self.mem.read(buf, 512)
        return tuple(int.from_bytes(log[at:at + 16], "little") for at in (32, 48, 64, 80))

    def error_entries(self, n):
        """The ``n`` newest Error Information entries: (SQID, CID, status, LBA, NSID)."""
        e, buf = self.get_log(0x01, 64 * n)
        assert e.status == OK
        log = self.mem.read(buf, 64 * n)
        return [(u16(log, 64 * i + 8), u16(log, 64 * i + 10), u16(log, 64 * i + 12),
                 u64(log, 64 * i + 16), u32(log, 64 * i + 24)) for i in range(n)]

    def dma(self, *kinds):
        return [d for d in self.model.io_dma if d.kind in kinds]


@pytest.fixture
def host():
    return IoHost()


@pytest.fixture(params=[CONFIG, CONFIG_4K], ids=["lba512", "lba4k"])
def any_host(request):
    return IoHost(request.param)


def nsze(host):
    return NS_BYTES // host.lba


# -- Command gating ---------------------------------------------------------------------

@pytest.mark.parametrize("case,status", [
    # Flush: only its NSID is checked.
    (dict(opc=N.FLUSH), OK),
    (dict(opc=N.FLUSH, nsid=BROADCAST_NSID), OK),
    (dict(opc=N.FLUSH, nsid=0), dnr(G.INVALID_NAMESPACE)),
    (dict(opc=N.FLUSH, nsid=2), dnr(G.INVALID_NAMESPACE)),
    (dict(opc=N.FLUSH, fuse=1, psdt=3, formatting=True), OK),
    # NSID, then Format In Progress, FUSE, the opcode, PSDT.
    (dict(nsid=0), dnr(G.INVALID_NAMESPACE)),
    (dict(nsid=2), dnr(G.INVALID_NAMESPACE)),
    (dict(nsid=BROADCAST_NSID), dnr(G.INVALID_NAMESPACE)),
    (dict(nsid=0, fuse=1, formatting=True, opc=0x04), dnr(G.INVALID_NAMESPACE)),
    (dict(formatting=True), S(G.FORMAT_IN_PROGRESS)),
    (dict(formatting=True, fuse=1, opc=0x04), S(G.FORMAT_IN_PROGRESS)),
    (dict(fuse=1), S(G.INVALID_FIELD)),
    (dict(fuse=2, opc=0x04, psdt=1), S(G.INVALID_FIELD)),
    (dict(fuse=3, opc=N.WRITE_ZEROES), S(G.INVALID_FIELD)),
    (dict(opc=0x04), dnr(G.INVALID_OPCODE)),
    (dict(opc=0x0C, psdt=1), dnr(G.INVALID_OPCODE)),
    (dict(opc=0x0D), dnr(G.INVALID_OPCODE)),
    (dict(opc=0x80), dnr(G.INVALID_OPCODE)),
    (dict(psdt=1), dnr(G.INVALID_FIELD)),
    (dict(opc=N.WRITE, psdt=2), dnr(G.INVALID_FIELD)),
    (dict(opc=N.COMPARE, psdt=3), dnr(G.INVALID_FIELD)),
    (dict(opc=N.DSM, psdt=1, ad=1), dnr(G.INVALID_FIELD)),
    (dict(opc=N.DSM, psdt=1), OK),                              # AD = 0: no transfer
    (dict(opc=N.WRITE_ZEROES, psdt=2), OK),
    # PSDT comes before the command's own checks (LBA range).
    (dict(psdt=1, slba=1 << 40), dnr(G.INVALID_FIELD)),
])
def test_gating(host, case, status):
    host.model.namespace[:8] = b"\x5A" * 8
    host.model.format_in_progress = case.get("formatting", False)
    buf = host.alloc()
    host.mem.write(buf, b"\xA5" * PAGE)
    opc = case.get("opc", N.READ)
    fields = rw_fields(case.get("slba", 0), 1)
    if opc == N.DSM:
        fields["cdw11"] = case.get("ad", 0) << 2
    e = host.io(opc, nsid=case.get("nsid", 1), fuse=case.get("fuse", 0),
                psdt=case.get("psdt", 0), prp1=buf, **fields)
    assert e.status == status
    if status != OK:                                 # refused: nothing moved
        assert host.model.io_dma == []
        assert host.mem.read(buf, PAGE) == b"\xA5" * PAGE
        assert host.model.namespace[:8] == b"\x5A" * 8


# -- Read and Write: checks ----------------------------------------------------------------

@pytest.mark.parametrize("opc", [N.READ, N.WRITE, N.COMPARE])
def test_mdts(any_host, opc):
    host = any_host
    most = MDTS_BYTES // host.lba                  # 1024 or 128 blocks: 512 KiB
    assert MDTS_BYTES == 4096 << identify.MDTS == 512 << 10
    buf = make_buffer(host, MDTS_BYTES)
    assert host.io(opc, **rw_fields(0, most, buf)).status == OK
    before = len(host.model.io_dma)
    for slba, nblocks in [(0, most + 1), (0, 0x10000), (nsze(host), most + 1)]:
        e = host.io(opc, **rw_fields(slba, nblocks, buf))
        assert e.status == dnr(G.INVALID_FIELD)   # MDTS is checked before the range
    assert len(host.model.io_dma) == before


@pytest.mark.parametrize("opc", [N.READ, N.WRITE, N.COMPARE, N.WRITE_ZEROES])
def test_lba_range(any_host, opc):
    host = any_host
    last = nsze(host) - 1
    buf = make_buffer(host, 2 * host.lba)
    ok_cases = [(last, 1), (last - 1, 2), (0, 1)]
    bad_cases = [(last, 2), (last + 1, 1), (1 << 32, 1), ((1 << 64) - 1, 1),
                 ((1 << 64) - 1, 2),            # SLBA + NLB overflows 64 bits
                 ((1 << 64) - 2, 3)]
    for slba, nblocks in ok_cases + bad_cases:
        if opc == N.WRITE_ZEROES:
            e = host.write_zeroes(slba, nblocks)
        else:
            e = host.io(opc, **rw_fields(slba, nblocks, buf))
        good = (slba, nblocks) in ok_cases
        assert e.status == (OK if good else dnr(G.LBA_OUT_OF_RANGE)), (slba, nblocks)


def test_range_is_checked_before_the_prps(host):
    e = host.io(N.READ, **rw_fields(nsze(host), 1), prp1=0x1002)
    assert e.status == dnr(G.LBA_OUT_OF_RANGE)
    assert host.io(N.READ, **rw_fields(0, 1), prp1=0x1002).status == dnr(G.INVALID_PRP_OFFSET)


def test_write_zeroes_has_no_mdts():
    host = IoHost(CONFIG_4K)
    host.model.namespace[:] = b"\xEE" * NS_BYTES
    e = host.write_zeroes(0, nsze(host))            # 1 MiB, twice MDTS
    assert e.status == OK and host.model.namespace == bytes(NS_BYTES)
    assert host.model.io_dma == []                  # no data moves


# -- Read and Write: data ----------------------------------------------------------------

def test_write_read_round_trip(any_host):
    host = any_host
    lba = host.lba
    chunks = {}
    for slba, nblocks in [(0, 1), (3, 2), (nsze(host) - 4, 4), (17, 9)]:
        payload = host.random_bytes(nblocks * lba)
        assert host.write(slba, payload).status == OK
        chunks[slba] = payload
        assert host.model.namespace[slba * lba:slba * lba + len(payload)] == payload
    for slba, payload in chunks.items():
        e, got = host.read(slba, len(payload) // lba)
        assert e.status == OK and got == payload
    # Never-written blocks read as zeroes; neighbours of written ones are untouched.
    e, got = host.read(1, 2)
    assert got == bytes(2 * lba)
    e, got = host.read(2, 3)
    assert got == bytes(lba) + chunks[3]


def test_write_hints_are_ignored(host):
    payload = host.random_bytes(512)
    buf = make_buffer(host, 512)
    buf.fill(host.mem, payload)
    e = host.io(N.WRITE, cdw13=0xFFFF_FFFF, cdw14=0xFFFF_FFFF, cdw2=1, mptr=0x1234,
                **rw_fields(5, 1, buf, fua=1, lr=1, dtype=0xF, prinfo=0xF))
    assert e.status == OK
    assert host.model.namespace[5 * 512:6 * 512] == payload


def test_read_writes_only_its_pieces(host):
    payload = host.random_bytes(3 * PAGE)
    assert host.write(0, payload).status == OK
    buf = make_buffer(host, 3 * PAGE, offset=0x404)
    for addr, n in buf.pieces:
        host.mem.write(addr - 4, b"\xCC" * (n + 8))
    host.model.io_dma.clear()
    assert host.io(N.READ, **rw_fields(0, 24, buf)).status == OK
    assert buf.read(host.mem) == payload
    for addr, n in buf.pieces:                      # the bytes around are untouched
        assert host.mem.read(addr - 4, 4) == host.mem.read(addr + n, 4) == b"\xCC" * 4
    assert host.dma(IoDma.HOST_WRITE) == [IoDma(IoDma.HOST_WRITE, a, n) for a, n in buf.pieces]
    assert [(d.addr, d.length) for d in host.dma(IoDma.PRP_LIST)] == buf.list_reads


# -- PRPs ----------------------------------------------------------------------------------

LAYOUTS = [
    # (length, PRP1 offset, list offset)
    (512, 0, 0),
    (512, 0xE00, 0),              # PRP1 alone, to the end of its page
    (1024, 0xE00, 0),             # PRP1 and a PRP2 page
    (PAGE, 0x004, 0),
    (2 * PAGE, 0, 0),             # PRP2 page
    (2 * PAGE + 512, 0, 0),       # a list of two entries
    (3 * PAGE, 0x200, 0x008),     # a list with an offset
    (8 * PAGE, 0x200, PAGE - 3 * 8),       # three slots: two entries and a chain
    (8 * PAGE, 0, PAGE - 8),      # one slot: nothing but the chain pointer
    (8 * PAGE, 0, PAGE - 8 * 8),  # eight slots, seven pages: no chain
    (8 * PAGE, 0, PAGE - 7 * 8),  # seven slots, seven pages: full, no chain
    (MDTS_BYTES, 0x100, 0xC00),   # 128 slots for 128 entries: full, no chain
    (MDTS_BYTES, 0, 0),           # 128 pages: 127 entries in one list
    (MDTS_BYTES, 0x100, 0x7F0),   # 128 entries from offset 7F0h: 258 slots, no chain
    (MDTS_BYTES, 0x100, 0xF00),   # 32 slots: 31 entries and a chain to 97 more
]


@pytest.mark.parametrize("high", [False, True], ids=["low", "above4g"])
@pytest.mark.parametrize("length,offset,list_offset", LAYOUTS)
def test_prp_layouts(host, length, offset, list_offset, high):
    alloc = Alloc(TOP) if high else None
    list_alloc = Alloc(HIGH) if high else None
    payload = host.random_bytes(length)
    slba = 7
    buf = make_buffer(host, length, offset=offset, list_offset=list_offset, alloc=alloc,
                      list_alloc=list_alloc)
    buf.fill(host.mem, payload)
    assert host.io(N.WRITE, **rw_fields(slba, length // 512, buf)).status == OK
    assert host.model.namespace[slba * 512:slba * 512 + length] == payload
    want = ([IoDma(IoDma.PRP_LIST, a, n) for a, n in buf.list_reads]
            + [IoDma(IoDma.HOST_READ, a, n) for a, n in buf.pieces])
    assert host.model.io_dma == want             # every list read before any data moves
    host.model.io_dma.clear()
    # Read it back through a fresh buffer of the same layout.
    out = make_buffer(host, length, offset=offset, list_offset=list_offset, alloc=alloc,
                      list_alloc=list_alloc)
    assert host.io(N.READ, **rw_fields(slba, length // 512, out)).status == OK
    assert out.read(host.mem) == payload
    assert host.model.io_dma == ([IoDma(IoDma.PRP_LIST, a, n) for a, n in out.list_reads]
                                 + [IoDma(IoDma.HOST_WRITE, a, n) for a, n in out.pieces])


def test_chained_list_shapes(host):
    """What the layouts above exercise, spelt out: a list from offset F00h holds 32
    entries, the 32nd chaining to a page that holds the rest from its offset 0."""
    buf = make_buffer(host, MDTS_BYTES, offset=0x100, list_offset=0xF00)
    assert [n for _, n in buf.list_reads] == [32 * 8, 97 * 8]
    assert len(buf.pieces) == 1 + 31 + 97 and buf.pieces[0][1] == PAGE - 0x100
    assert buf.pieces[-1][1] == 0x100
    one_slot = make_buffer(host, 8 * PAGE, list_offset=PAGE - 8)
    assert [n for _, n in one_slot.list_reads] == [8, 7 * 8]


def test_only_needed_entries_are_read(host):
    """Faults just past the entries needed, in both list pages, are never hit."""
    payload = host.random_bytes(8 * PAGE)
    buf = make_buffer(host, 8 * PAGE, offset=0x200, list_offset=PAGE - 3 * 8)
    buf.fill(host.mem, payload)
    last_list, nbytes = buf.list_reads[-1]
    host.mem.bad_reads.append((last_list + nbytes, last_list + PAGE))
    assert host.io(N.WRITE, **rw_fields(0, 64, buf)).status == OK
    # PRP2 unused with one page, or none: it is not read, whatever it holds.
    for length, offset in [(PAGE, 0), (512, 0x800)]:
        small = make_buffer(host, length, offset=offset)
        small.fill(host.mem, payload[:length])
        fields = rw_fields(0, length // 512, small) | {"prp2": 0x123}
        assert host.io(N.WRITE, **fields).status == OK


@pytest.mark.parametrize("prp1_offset,prp2_offset,length", [
    (0x002, 0, 512),              # PRP1 bits 1:0
    (0x001, 0, PAGE),
    (0x203, 0, 2 * PAGE),
    (0x200, 0x010, PAGE),         # PRP2 as a page, not aligned
    (0x000, 0x800, 2 * PAGE),
    (0x000, 0x004, 3 * PAGE),     # PRP2 as a list pointer: bits 2:0
    (0x200, 0x001, 3 * PAGE),
])
def test_invalid_prp_offsets(host, prp1_offset, prp2_offset, length):
    for opc in (N.WRITE, N.READ, N.COMPARE):
        buf = make_buffer(host, length, offset=prp1_offset & ~3)
        for addr, n in buf.pieces:
            host.mem.write(addr, b"\xA5" * n)
        prp1 = buf.prp1 - (prp1_offset & ~3) + prp1_offset
        e = host.io(opc, **rw_fields(0, length // 512), prp1=prp1,
                    prp2=buf.prp2 + prp2_offset)
        assert e.status == dnr(G.INVALID_PRP_OFFSET)
        assert buf.read(host.mem) == b"\xA5" * length
    assert host.dma(IoDma.HOST_READ, IoDma.HOST_WRITE) == []
    assert host.model.namespace == bytes(NS_BYTES)


# The entries of make_buffer(8 pages, PRP1 offset 200h, list offset FE8h): list page 1
# holds two data entries and the chain; list page 2 holds six data entries.
ENTRY_POSITIONS = range(9)


@pytest.mark.parametrize("position", ENTRY_POSITIONS)
@pytest.mark.parametrize("opc", [N.WRITE, N.READ])
def test_misaligned_list_entry(host, opc, position):
    old = host.random_bytes(64 * 512)
    host.model.namespace[:len(old)] = old
    buf = make_buffer(host, 8 * PAGE, offset=0x200, list_offset=PAGE - 3 * 8,
                      alloc=Alloc(HIGH))
    assert [kind for _, kind in buf.entries] == ["data", "data", "chain"] + ["data"] * 6
    buf.fill(host.mem, b"\x3C" * buf.length)
    at, kind = buf.entries[position]
    entry = int.from_bytes(host.mem.read(at, 8), "little")
    for bad in (entry + 0x200, entry + 8, entry | 1):
        host.mem.write(at, qword(bad))
        e = host.io(opc, **rw_fields(0, 64, buf))
        assert e.status == dnr(G.INVALID_PRP_OFFSET), (position, kind, hex(bad))
    # Nothing moved: the list pages before the bad entry were read, no data.
    assert host.dma(IoDma.HOST_READ, IoDma.HOST_WRITE) == []
    assert host.model.namespace[:len(old)] == old
    assert buf.read(host.mem) == b"\x3C" * buf.length
    reads = [(d.addr, d.length) for d in host.dma(IoDma.PRP_LIST)]
    assert reads == (buf.list_reads[:1] if position < 3 else buf.list_reads) * 3


@pytest.mark.parametrize("which", [0, 1])
@pytest.mark.parametrize("opc", [N.WRITE, N.READ, N.COMPARE])
def test_failing_list_read(host, opc, which):
    """A failed PRP list read: Data Transfer Error, no DNR, nothing moved."""
    old = host.random_bytes(64 * 512)
    host.model.namespace[:len(old)] = old
    buf = make_buffer(host, 8 * PAGE, offset=0x200, list_offset=PAGE - 3 * 8)
    buf.fill(host.mem, b"\x3C" * buf.length)
    addr, n = buf.list_reads[which]
    host.mem.bad_reads.append((addr + n - 8, addr + n))     # its last entry
    e = host.io(opc, **rw_fields(0, 64, buf))
    assert e.status == S(G.DATA_TRANSFER_ERROR)
    assert host.dma(IoDma.HOST_READ, IoDma.HOST_WRITE) == []
    assert host.model.namespace[:len(old)] == old and host.model.undefined_ranges() == []
    assert buf.read(host.mem) == b"\x3C" * buf.length
    assert host.model.dma_errors[-1][:3] == ("read", addr, n)
    host.mem.bad_reads.clear()                               # a retry may pass
    assert host.io(opc, **rw_fields(0, 64, buf)).status in (OK, media(M.COMPARE_FAILURE,
                                                                       dnr=True))


def test_failing_host_data_read_on_write(host):
    old = host.random_bytes(16 * 512)
    host.model.namespace[512:512 + len(old)] = old
    buf = make_buffer(host, 16 * 512, offset=0x100)
    buf.fill(host.mem, host.random_bytes(buf.length))
    host.mem.bad_reads.append((buf.pieces[2][0] + 100, buf.pieces[2][0] + 101))
    e = host.io(N.WRITE, **rw_fields(1, 16, buf))
    assert e.status == S(G.DATA_TRANSFER_ERROR)
    assert host.model.undefined_ranges() == [(512, 512 + 16 * 512)]
    # The image is compared everywhere else.
    image = bytearray(host.model.namespace)
    assert host.model.namespace_mismatch(image) is None
    image[600] ^= 0xFF                                       # undefined: skipped
    assert host.model.namespace_mismatch(image) is None
    image[511] ^= 0xFF
    assert "0x1ff" in host.model.namespace_mismatch(image)
    # Writing the blocks again defines them; writing half defines half.
    host.mem.bad_reads.clear()
    payload = host.random_bytes(8 * 512)
    assert host.write(1, payload).status == OK
    assert host.model.undefined_ranges() == [(512 + 8 * 512, 512 + 16 * 512)]
    assert host.write_zeroes(9, 8).status == OK
    assert host.model.undefined_ranges() == []


def test_failing_host_data_read_on_compare(host):
    payload = host.random_bytes(2 * 512)
    assert host.write(0, payload).status == OK
    buf = make_buffer(host, 2 * 512)
    buf.fill(host.mem, payload)
    host.mem.bad_reads.append((buf.prp1, buf.prp1 + 1))
    assert host.io(N.COMPARE, **rw_fields(0, 2, buf)).status == S(G.DATA_TRANSFER_ERROR)
    assert host.model.undefined_ranges() == []               # a compare changes nothing


def test_failing_host_write_on_read_is_not_reported(host):
    """A Read's data goes out as posted writes: a failure cannot be seen."""
    buf = make_buffer(host, 2 * PAGE)
    host.mem.bad_writes.append((buf.pieces[1][0], buf.pieces[1][0] + PAGE))
    assert host.io(N.READ, **rw_fields(0, 16, buf)).status == OK
    assert host.model.dma_errors[-1][:3] == ("write", buf.pieces[1][0], PAGE)


def test_prp_walk_many_list_pages():
    """The walker itself, beyond MDTS: chains over four list pages."""
    memory = {}
    pages = [0x10_0000 + 0x2000 * i for i in range(1500)]
    lists = [0x900_0000 + 0x1000 * i for i in range(4)]
    first_slots = 5                                          # list offset FD8h
    chunks = [pages[1:5], pages[5:516], pages[516:1027], pages[1027:]]
    for i, chunk in enumerate(chunks):
        start = lists[i] + (PAGE - 8 * first_slots if i == 0 else 0)
        nxt = [lists[i + 1]] if i + 1 < len(chunks) else []
        for j, entry in enumerate(chunk + nxt):
            memory[start + 8 * j] = qword(entry)
    reads = []

    def read_list(addr, n):
        reads.append((addr, n))
        return b"".join(memory[addr + k] for k in range(0, n, 8))

    length = len(pages) * PAGE - 0x300
    pieces = prp_walk(pages[0] + 0x300, lists[0] + PAGE - 8 * first_slots, length, PAGE,
                      read_list)
    assert pieces == [(pages[0] + 0x300, PAGE - 0x300)] + [(p, PAGE) for p in pages[1:]]
    assert reads == [(lists[0] + PAGE - 40, 40), (lists[1], PAGE), (lists[2], PAGE),
                     (lists[3], 473 * 8)]
    with pytest.raises(Refused) as refused:
        prp_walk(pages[0], lists[0] + PAGE - 40, length, PAGE, lambda addr, n: None)
    assert refused.value.status == S(G.DATA_TRANSFER_ERROR)


# -- Compare ----------------------------------------------------------------------------------

def test_compare(any_host):
    host = any_host
    payload = host.random_bytes(3 * host.lba)
    assert host.write(2, payload).status == OK
    assert host.compare(2, payload).status == OK
    for at in (0, len(payload) // 2, len(payload) - 1):
        other = bytearray(payload)
        other[at] ^= 0x01
        assert host.compare(2, bytes(other)).status == media(M.COMPARE_FAILURE, dnr=True)
    assert host.compare(3, payload).status == media(M.COMPARE_FAILURE, dnr=True)
    assert host.model.namespace[2 * host.lba:5 * host.lba] == payload    # unchanged


# -- Write Zeroes and Dataset Management --------------------------------------------------

def test_write_zeroes(any_host):
    host = any_host
    lba = host.lba
    host.model.namespace[:] = b"\x77" * NS_BYTES
    assert host.write_zeroes(3, 5).status == OK
    assert host.write_zeroes(10, 2, deac=1, fua=1).status == OK
    image = bytearray(b"\x77" * NS_BYTES)
    image[3 * lba:8 * lba] = bytes(5 * lba)
    image[10 * lba:12 * lba] = bytes(2 * lba)
    assert host.model.namespace == image
    e, got = host.read(2, 7)
    assert got == b"\x77" * lba + bytes(5 * lba) + b"\x77" * lba


def test_dsm_without_deallocate_does_nothing(host):
    host.model.namespace[:] = b"\x77" * NS_BYTES
    # AD = 0: success at once; the range list is not even read (PRP1 is misaligned).
    for cdw11 in (0, 0b011):
        assert host.io(N.DSM, cdw10=255, cdw11=cdw11, prp1=0x1002).status == OK
    assert host.model.io_dma == [] and host.model.namespace == b"\x77" * NS_BYTES


def test_dsm_deallocate(any_host):
    host = any_host
    lba, blocks = host.lba, nsze(any_host)
    host.model.namespace[:] = b"\x77" * NS_BYTES
    ranges = [
        (4, 2, 0xFFFF_FFFF),          # zeroed (context attributes are hints)
        (9, 0),                       # NLB 0: skipped
        (blocks - 1, 2),              # runs past the end: skipped
        ((1 << 64) - 1, 2),           # overflows: skipped
        (blocks, 1),                  # outside: skipped
        (blocks - 3, 3),              # up to the end: zeroed
        (20, 1),
        (5, 2),                       # overlaps the first
    ]
    e = host.dsm(ranges)
    assert e.status == OK
    image = bytearray(b"\x77" * NS_BYTES)
    for start, n in [(4, 3), (blocks - 3, 3), (20, 1)]:
        image[start * lba:(start + n) * lba] = bytes(n * lba)
    assert host.model.namespace == image
    assert host.dma(IoDma.HOST_READ)[-1].length == 16 * len(ranges)


def test_dsm_reads_nr_plus_one_ranges(host):
    host.model.namespace[:] = b"\x77" * NS_BYTES
    e = host.dsm([(1, 1), (2, 1), (3, 1)], nr=1)                 # only two ranges
    assert e.status == OK
    assert host.model.namespace[:4 * 512] == b"\x77" * 512 + bytes(1024) + b"\x77" * 512
    assert [d.length for d in host.model.io_dma] == [32]


def test_dsm_256_ranges_over_two_pages(host):
    host.model.namespace[:] = b"\x77" * NS_BYTES
    ranges = [(2 * i, 1) for i in range(256)]
    e = host.dsm(ranges, offset=0x100)
    assert e.status == OK
    assert [(d.kind, d.length) for d in host.model.io_dma] == [
        (IoDma.HOST_READ, PAGE - 0x100), (IoDma.HOST_READ, 0x100)]
    for i in range(256):
        assert host.model.namespace[1024 * i:1024 * i + 1024] == bytes(512) + b"\x77" * 512


@pytest.mark.parametrize("prp1,prp2,status", [
    (0x2, 0, dnr(G.INVALID_PRP_OFFSET)),
    (0xF00, 0x10, dnr(G.INVALID_PRP_OFFSET)),
    (0xF00, "bad", S(G.DATA_TRANSFER_ERROR)),
    (0x000, "bad", OK),            # PRP2 not needed: the bad page is not read
])
def test_dsm_transfer_errors(host, prp1, prp2, status):
    host.model.namespace[:] = b"\x77" * NS_BYTES
    first, second = host.alloc(), host.alloc()
    raw = b"".join(DsmRange.const({"slba": i, "nlb": 1}).as_bits().to_bytes(16, "little")
                   for i in range(256))
    host.mem.write(first + (prp1 & ~3), raw[:PAGE - (prp1 & ~3)])
    host.mem.write(second, raw[PAGE - (prp1 & ~3):])
    if prp2 == "bad":
        host.mem.bad_reads.append((second, second + PAGE))
        prp2 = 0
    nr = 255 if prp1 & ~3 else 10
    e = host.io(N.DSM, prp1=first + prp1, prp2=second + prp2, cdw10=nr, cdw11=1 << 2)
    assert e.status == status
    changed = host.model.namespace != b"\x77" * NS_BYTES
    assert changed == (status == OK)


# -- Flush ---------------------------------------------------------------------------------

def test_flush(host):
    assert host.io(N.FLUSH).status == OK
    assert host.io(N.FLUSH, nsid=BROADCAST_NSID).status == OK
    assert host.model.io_dma == []


# -- Format NVM -------------------------------------------------------------------------------

@pytest.mark.parametrize("case,status", [
    (dict(), OK),
    (dict(lbaf=1), OK),
    (dict(nsid=BROADCAST_NSID, lbaf=1), OK),
    (dict(lbaf=1, ses=1, mset=1, pil=1), OK),            # MSET, PIL ignored
    (dict(nsid=0), dnr(G.INVALID_NAMESPACE)),
    (dict(nsid=2), dnr(G.INVALID_NAMESPACE)),
    (dict(nsid=0xFFFF_FFFE), dnr(G.INVALID_NAMESPACE)),
    (dict(lbaf=2), dnr(C.INVALID_FORMAT)),
    (dict(lbaf=15), dnr(C.INVALID_FORMAT)),
    (dict(pi=1), dnr(C.INVALID_FORMAT)),
    (dict(pi=7), dnr(C.INVALID_FORMAT)),
    (dict(ses=2), dnr(G.INVALID_FIELD)),                 # no cryptographic erase
    (dict(ses=7), dnr(G.INVALID_FIELD)),
    # The first check that applies decides.
    (dict(nsid=0, lbaf=2, pi=1, ses=2), dnr(G.INVALID_NAMESPACE)),
    (dict(lbaf=2, ses=3), dnr(C.INVALID_FORMAT)),
    (dict(pi=2, ses=3), dnr(C.INVALID_FORMAT)),
    (dict(psdt=1, nsid=0), dnr(G.INVALID_FIELD)),        # admin gating first
    (dict(fuse=1, nsid=0), S(G.INVALID_FIELD)),
])
def test_format_nvm_checks(host, case, status):
    host.model.namespace[:] = b"\x77" * NS_BYTES
    before = host.smart()
    fields = {k: case[k] for k in ("lbaf", "ses", "mset", "pi", "pil") if k in case}
    cid = host.submit(0, A.FORMAT_NVM, nsid=case.get("nsid", 1), psdt=case.get("psdt", 0),
                      fuse=case.get("fuse", 0), prp1=0x3, prp2=0x5,   # PRPs not used
                      cdw10=FormatNvmDw10.const(fields).as_bits())
    (e,) = host.reap(0)
    assert (e.cid, e.status, e.dw0) == (cid, status, 0)
    if status == OK:
        assert host.model.namespace == bytes(NS_BYTES)
        assert host.model.lba_format == case.get("lbaf", 0)
    else:
        assert host.model.namespace == b"\x77" * NS_BYTES and host.model.lba_format == 0
    assert host.smart() == before


def test_format_nvm_changes_the_namespace(host):
    model = host.model
    assert host.write(0, host.random_bytes(8 * 512)).status == OK
    smart = host.smart()
    assert host.format(lbaf=1).status == OK
    assert model.lba_format == 1 and model.namespace == bytes(NS_BYTES)
    assert host.smart() == smart                          # Format is not counted
    # Identify Namespace reports the new format: FLBAS, NSZE = NCAP = NUSE.
    buf = host.alloc()
    assert host.cmd(A.IDENTIFY, nsid=1, prp1=buf, cdw10=0x00).status == OK
    page = host.mem.read(buf, PAGE)
    assert page == identify.identify_namespace(CONFIG, model.device_id, 1)
    assert [u64(page, at) for at in (0, 8, 16)] == [NS_BYTES // 4096] * 3
    assert page[26] & 0xF == 1 and page[25] == 1         # FLBAS, NLBAF
    # I/O follows: 4 KiB blocks, 256 of them.
    payload = host.random_bytes(4096)
    assert host.write(255, payload).status == OK
    assert model.namespace[-4096:] == payload
    assert host.write_zeroes(256, 1).status == dnr(G.LBA_OUT_OF_RANGE)
    assert host.io(N.READ, **rw_fields(0, 129)).status == dnr(G.INVALID_FIELD)   # MDTS
    # And back.
    assert host.format(lbaf=0, nsid=BROADCAST_NSID).status == OK
    assert host.cmd(A.IDENTIFY, nsid=1, prp1=buf, cdw10=0x00).status == OK
    assert u64(host.mem.read(buf, 8), 0) == NS_BYTES // 512


def test_identify_namespace_with_the_configured_format():
    host = IoHost(CONFIG_4K)
    buf = host.alloc()
    assert host.cmd(A.IDENTIFY, nsid=1, prp1=buf, cdw10=0x00).status == OK
    page = host.mem.read(buf, PAGE)
    assert u64(page, 0) == NS_BYTES // 4096 and page[26] == 1


def test_format_clears_undefined_ranges(host):
    host.model.fail_namespace(0, 512)
    assert host.write(0, bytes(512)).status == media(M.WRITE_FAULT)
    assert host.model.undefined_ranges() == [(0, 512)]
    host.model.clear_namespace_faults()
    assert host.format().status == OK
    assert host.model.undefined_ranges() == []


def test_format_media_error(host):
    assert host.write(0, b"\x11" * 512).status == OK
    host.model.fail_namespace(NS_BYTES - 512, NS_BYTES)
    assert host.format(lbaf=1).status == S(G.INTERNAL_ERROR)
    assert host.model.lba_format == 0                     # the format did not change
    assert host.model.undefined_ranges() == [(0, NS_BYTES)]


# -- SMART / Health ---------------------------------------------------------------------------

def test_smart_counters(host):
    assert host.smart() == (0, 0, 0, 0)
    payload = host.random_bytes(512)
    assert host.write(0, payload).status == OK
    assert host.smart() == (0, 1, 0, 1)                    # 1 unit rounds up to 1
    assert host.read(0, 1)[0].status == OK
    assert host.compare(0, payload).status == OK           # a matched Compare reads
    assert host.smart() == (1, 1, 2, 1)
    # Not counted: Write Zeroes, DSM, Flush, failed and refused commands.
    assert host.write_zeroes(0, 1).status == OK
    assert host.dsm([(0, 8)]).status == OK
    assert host.io(N.FLUSH).status == OK
    assert host.compare(0, payload).status == media(M.COMPARE_FAILURE, dnr=True)
    assert host.io(N.READ, **rw_fields(nsze(host), 1)).status != OK
    assert host.io(N.WRITE, **rw_fields(0, 1), prp1=0x1001).status != OK
    host.model.fail_namespace(0, 512)
    assert host.read(0, 1)[0].status == media(M.UNRECOVERED_READ_ERROR)
    assert host.write(0, payload).status == media(M.WRITE_FAULT)
    assert host.smart() == (1, 1, 2, 1)


def test_smart_data_units_round_up():
    """Thousands of 512-byte units, rounded up on the running total [NVMe 1.4 Figure
    194]: 999 units → 1, 1000 → 1, 1001 → 2, 2000 → 2, 2001 → 3."""
    host = IoHost(CONFIG_4K)                 # 8 units per block
    for nblocks, want in [(124, 1), (1, 1), (1, 2), (124, 2), (1, 3)]:
        # units so far: 992, 1000, 1008, 2000, 2008
        assert host.read(0, nblocks)[0].status == OK
        assert host.smart()[0] == want
    payload = host.random_bytes(125 * 4096)
    assert host.write(0, payload).status == OK                    # exactly 1000 units
    assert host.smart()[1] == 1 and host.smart()[3] == 1
    assert host.compare(0, payload).status == OK
    assert host.smart()[2] == 6 and host.smart()[0] == 4          # 3008 units


def test_smart_counts_kept_across_controller_reset_cleared_by_bus_reset(host):
    assert host.write(0, bytes(512)).status == OK
    host.reset()
    host.enable()
    host.pair(1)
    assert host.smart() == (0, 1, 0, 1)
    host.model.bus_reset()
    assert host.model.health.smart_fields() == {
        "data_units_read": 0, "data_units_written": 0, "host_read_commands": 0,
        "host_write_commands": 0}


# -- Error Information log ----------------------------------------------------------------

def test_error_log_entries_carry_the_lba(host):
    slba = 0x1_0000_0123
    failures = [
        (N.READ, rw_fields(slba, 1), dnr(G.LBA_OUT_OF_RANGE), slba, 1),
        (N.WRITE, rw_fields(7, 1) | {"prp1": 0x3}, dnr(G.INVALID_PRP_OFFSET), 7, 1),
        (N.COMPARE, rw_fields(9, 1), media(M.COMPARE_FAILURE, dnr=True), 9, 1),
        (N.WRITE_ZEROES, {"cdw10": 0xFFFF_FF00, "cdw11": 5}, dnr(G.LBA_OUT_OF_RANGE),
         5 << 32 | 0xFFFF_FF00, 1),
        (N.READ, rw_fields(3, 1), dnr(G.INVALID_NAMESPACE), 3, 0),
        (N.WRITE, rw_fields(4, 1) | {"fuse": 1}, S(G.INVALID_FIELD), 4, 1),
        (N.DSM, {"cdw10": 0, "cdw11": 4, "prp1": 0x2, "cdw12": 9},
         dnr(G.INVALID_PRP_OFFSET), 0, 1),
        (N.FLUSH, {"cdw10": 5}, dnr(G.INVALID_NAMESPACE), 0, 3),
        (0x04, {"cdw10": 5}, dnr(G.INVALID_OPCODE), 0, 1),
    ]
    buf = host.alloc()
    host.mem.write(buf, b"\x01" * PAGE)
    cids = []
    for opc, fields, status, _, nsid in failures:
        fields = {"prp1": buf, **fields}
        e = host.io(opc, nsid=nsid, **fields)
        assert e.status == status
        cids.append(e.cid)
    entries = host.error_entries(len(failures))
    for i, (_, _, status, lba, nsid) in enumerate(reversed(failures)):
        assert entries[i] == (1, cids[-1 - i], status.field(phase=0), lba, nsid)
    assert host.model.error_log.count == len(failures)


def test_media_errors_are_logged(host):
    host.model.fail_namespace(4096, 4097)
    assert host.read(8, 1)[0].status == media(M.UNRECOVERED_READ_ERROR)
    host.model.fail_flush()
    assert host.io(N.FLUSH).status == media(M.WRITE_FAULT)
    (flush, read) = host.error_entries(2)
    assert read[2:] == (media(M.UNRECOVERED_READ_ERROR).field(), 8, 1)
    assert flush[2:] == (media(M.WRITE_FAULT).field(), 0, 1)


# -- Persistence across resets ---------------------------------------------------------------

def test_namespace_and_format_survive_resets(host):
    model = host.model
    payload = host.random_bytes(2 * 4096)
    assert host.format(lbaf=1).status == OK
    assert host.write(10, payload).status == OK
    host.model.fail_namespace(0, 4096)
    assert host.write(0, bytes(4096)).status == media(M.WRITE_FAULT)
    host.reset()                                         # controller reset
    assert model.lba_format == 1 and model.namespace[10 * 4096:12 * 4096] == payload
    model.bus_reset()                                    # function-level reset, link down
    assert model.lba_format == 1 and model.namespace[10 * 4096:12 * 4096] == payload
    assert model.undefined_ranges() == [(0, 4096)]       # the backend's state too
    host.cqs.clear()
    host.sqs.clear()
    host.enable()
    host.pair(1)
    e, got = host.read(10, 2)
    assert e.status == OK and got == payload
    assert host.read(0, 1)[0].status == media(M.UNRECOVERED_READ_ERROR)   # faults stay
    # A new model starts afresh.
    fresh = ControllerModel(CONFIG, host.mem)
    assert fresh.lba_format == 0 and fresh.namespace == bytes(NS_BYTES)
    assert fresh.undefined_ranges() == []


# -- Media errors and undefined ranges ---------------------------------------------------------

def test_media_errors(host):
    model = host.model
    old = host.random_bytes(32 * 512)
    model.namespace[:len(old)] = old
    model.fail_namespace(8 * 512 + 100, 8 * 512 + 101)       # in block 8
    # Read: 2/81, no DNR; the data the backend returned still reaches the host.
    e, got = host.read(6, 4)
    assert e.status == media(M.UNRECOVERED_READ_ERROR) and got == old[6 * 512:10 * 512]
    assert host.read(0, 8)[0].status == OK                   # ends just before it
    assert host.read(9, 4)[0].status == OK                   # starts just after it
    assert host.compare(8, old[8 * 512:9 * 512]).status == media(M.UNRECOVERED_READ_ERROR)
    # Write and Write Zeroes: 2/80; the blocks they touched are undefined.
    assert host.write(7, bytes(2 * 512)).status == media(M.WRITE_FAULT)
    assert model.undefined_ranges() == [(7 * 512, 9 * 512)]
    assert host.write_zeroes(8, 3).status == media(M.WRITE_FAULT)
    assert model.undefined_ranges() == [(7 * 512, 11 * 512)]
    assert model.namespace[:len(old)] == old                 # the image keeps old bytes
    # Dataset Management: 0/06; ranges before the failing one are zeroed, it and those
    # after it are undefined.
    e = host.dsm([(1, 1), (8, 1), (20, 2), (3000, 1), (25, 1)])
    assert e.status == S(G.INTERNAL_ERROR)
    assert model.namespace[512:1024] == bytes(512)
    assert model.undefined_ranges() == [(7 * 512, 11 * 512), (20 * 512, 22 * 512),
                                        (25 * 512, 26 * 512)]
    # Flush.
    assert host.io(N.FLUSH).status == OK
    model.fail_flush()
    assert host.io(N.FLUSH).status == media(M.WRITE_FAULT)
    # Only the failed commands were affected; with the faults gone, everything works.
    model.clear_namespace_faults()
    assert host.io(N.FLUSH).status == OK
    assert host.write(7, bytes(4 * 512)).status == OK
    assert host.dsm([(20, 2), (25, 1)]).status == OK
    assert model.undefined_ranges() == []


def test_namespace_mismatch(host):
    model = host.model
    assert model.namespace_mismatch(bytes(NS_BYTES)) is None
    assert "bytes" in model.namespace_mismatch(bytes(NS_BYTES - 1))
    image = bytearray(NS_BYTES)
    image[0x1234] = 1
    image[0x2000] = 2
    text = model.namespace_mismatch(image)
    assert "0x1234" in text and "LBA 9 " in text and "2 bytes differ" in text
    model.fail_namespace(0x1000, 0x1400)
    assert host.write_zeroes(8, 2).status == media(M.WRITE_FAULT)
    assert "0x2000" in model.namespace_mismatch(image)       # the first one is skipped
    image[0x2000] = 0
    assert model.namespace_mismatch(image) is None


def test_range_set():
    r = RangeSet([(10, 20), (30, 40)])
    r.add(20, 25)                                  # touching: merges
    assert list(r) == [(10, 25), (30, 40)]
    r.add(5, 35)
    assert list(r) == [(5, 40)]
    r.remove(10, 12)
    r.remove(39, 50)
    assert list(r) == [(5, 10), (12, 39)]
    assert r.overlaps(9, 10) and not r.overlaps(10, 12) and r.overlaps(38, 100)
    r.remove(0, 100)
    assert not r and len(r) == 0


# -- Abort and many queues --------------------------------------------------------------------

def test_abort_names_a_finished_io_command(host):
    cid = host.io(N.FLUSH).cid
    e = host.cmd(A.ABORT, cdw10=cid << 16 | 1)
    assert (e.status, e.dw0) == (OK, 1)                    # not aborted: it has run


def test_io_on_two_queues(host):
    host.pair(2, entries=8)
    a, b = host.random_bytes(512), host.random_bytes(512)
    buf_a, buf_b = make_buffer(host, 512), make_buffer(host, 512)
    buf_a.fill(host.mem, a)
    buf_b.fill(host.mem, b)
    ca = host.submit(1, N.WRITE, nsid=1, **rw_fields(0, 1, buf_a))
    cb = host.submit(2, N.WRITE, nsid=1, **rw_fields(1, 1, buf_b))
    assert [(e.cid, e.status) for e in host.reap(1) + host.reap(2)] == [(ca, OK), (cb, OK)]
    assert host.model.namespace[:1024] == a + b


def test_struct_sanity():
    """The helpers' encodings against the spec's bit positions [NVMe 1.4 Figures 372,
    364, 285], read without our layouts."""
    assert rw_fields(0x1_0000_0002, 3, fua=1)["cdw12"] == 1 << 30 | 2
    raw = DsmRange.const({"slba": 0x0102, "nlb": 7, "cattr": 1}).as_bits().to_bytes(16,
                                                                                   "little")
    assert struct.unpack("<IIQ", raw) == (1, 7, 0x0102)
    assert FormatNvmDw10.const({"lbaf": 1, "ses": 2, "pi": 1}).as_bits() == 1 | 1 << 5 | 2 << 9
