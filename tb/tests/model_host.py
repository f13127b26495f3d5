"""A small NVMe host for the reference model's quick tests (plain Python, no simulator).

It allocates queues in a sparse memory, builds SQEs with the layouts, rings doorbells
through ``model.write`` and reads the completions back from memory, checking each against
what the model says it posted. Shared by test_model_admin.py and test_model_io.py.
"""

import struct
from dataclasses import dataclass

from nvmecore import CoreConfig
from nvmecore.layouts import (
    DOORBELL_BASE,
    MSIX_TABLE_BASE,
    AdminOpcode,
    Cc,
    CommandSpecificStatus,
    GenericStatus,
    NvmOpcode,
    Reg,
    Sqe,
    public_fields,
)
from nvmetb.model import CompletionEntry, ControllerModel, Status

__all__ = [
    "PAGE", "CONFIG", "G", "C", "A", "OK", "MSIX_ADDR", "MSIX_DATA", "S", "dnr", "Fault",
    "Memory", "HostSq", "HostCq", "Host", "u16", "u32", "u64",
]

PAGE = 4096
CONFIG = CoreConfig(io_queues=4, msix_vectors=5, max_queue_entries=64)
G, C, A = GenericStatus, CommandSpecificStatus, AdminOpcode
OK = Status.of(G.SUCCESS)
MSIX_ADDR = 0xFEE0_0000
MSIX_DATA = 0x4000


def S(code, dnr=False):
    return Status.of(code, dnr)


def dnr(code):
    return Status.of(code, dnr=True)


class Fault(Exception):
    """A host memory access the test made fail."""


class Memory:
    """Sparse host memory, 4 KiB pages of zeros until written. Accesses that touch a
    range in ``bad_reads`` / ``bad_writes`` raise :class:`Fault`."""

    def __init__(self):
        self.pages = {}
        self.bad_reads = []
        self.bad_writes = []

    @staticmethod
    def _hits(ranges, addr, n):
        return any(start < addr + n and addr < end for start, end in ranges)

    def read(self, addr, n):
        if self._hits(self.bad_reads, addr, n):
            raise Fault(f"read {n} B at {addr:#x}")
        out = bytearray()
        while n:
            page, offset = divmod(addr, PAGE)
            k = min(n, PAGE - offset)
            out += self.pages.get(page, bytes(PAGE))[offset:offset + k]
            addr, n = addr + k, n - k
        return bytes(out)

    def write(self, addr, data):
        if self._hits(self.bad_writes, addr, len(data)):
            raise Fault(f"write {len(data)} B at {addr:#x}")
        data = bytes(data)
        while data:
            page, offset = divmod(addr, PAGE)
            k = min(len(data), PAGE - offset)
            self.pages.setdefault(page, bytearray(PAGE))[offset:offset + k] = data[:k]
            addr, data = addr + k, data[k:]


@dataclass
class HostSq:
    base: int
    size: int
    tail: int = 0


@dataclass
class HostCq:
    base: int
    size: int
    head: int = 0
    phase: int = 1
    seen: int = 0          # index into model.posted[qid] of the next entry


class Host:
    """Drives a ControllerModel the way a driver would."""

    def __init__(self, config=CONFIG, msix=True):
        self.config = config
        self.mem = Memory()
        self.model = ControllerModel(config, self.mem)
        self.model.device_id = 0x0123_4567_89AB_CDEF
        self.next_addr = 0x10_0000
        self.sqs: dict[int, HostSq] = {}
        self.cqs: dict[int, HostCq] = {}
        self.next_cid = 0x100
        if msix:
            for v in range(config.msix_vectors):
                self.model.write(MSIX_TABLE_BASE + 16 * v, MSIX_ADDR + 16 * v, 8)
                self.model.write(MSIX_TABLE_BASE + 16 * v + 8, MSIX_DATA + v, 8)  # unmasked
            self.model.set_cfg(msix_enable=True)

    # -- Memory and registers ---------------------------------------------------------

    def alloc(self, nbytes=PAGE):
        """Page-aligned buffer, with an unused page after it."""
        addr = self.next_addr
        self.next_addr += (nbytes + PAGE - 1) // PAGE * PAGE + PAGE
        return addr

    def enable(self, sq_entries=8, cq_entries=8, **cc):
        self.sqs[0] = HostSq(self.alloc(64 * sq_entries), sq_entries)
        self.cqs[0] = HostCq(self.alloc(16 * cq_entries), cq_entries,
                             seen=len(self.model.posted[0]))
        self.model.write(Reg.AQA, (cq_entries - 1) << 16 | (sq_entries - 1))
        self.model.write(Reg.ASQ, self.sqs[0].base, 8)
        self.model.write(Reg.ACQ, self.cqs[0].base, 8)
        self.write_cc(en=1, **cc)
        assert self.model.read(Reg.CSTS) & 1, "enable failed"

    def write_cc(self, **fields):
        self.model.write(Reg.CC, Cc.const({"iosqes": 6, "iocqes": 4, **fields}).as_bits())

    def reset(self):
        """Controller reset; the host forgets its queues."""
        self.write_cc(en=0)
        self.sqs.clear()
        self.cqs.clear()

    # -- Submission ---------------------------------------------------------------------

    def sqe(self, opc, cid, *, fuse=0, psdt=0, nsid=0, prp1=0, prp2=0, **dwords):
        """The 64 bytes of an SQE; ``dwords`` are the other fields of ``Sqe`` by name
        (cdw2, cdw3, mptr, cdw10 .. cdw15), zero when not given."""
        unknown = set(dwords) - set(public_fields(Sqe))
        assert not unknown, f"not SQE fields: {unknown}"
        return Sqe.const({
            **dwords,
            "cdw0": {"opc": opc, "fuse": fuse, "psdt": psdt, "cid": cid},
            "nsid": nsid, "prp1": prp1, "prp2": prp2,
        }).as_bits().to_bytes(64, "little")

    def submit(self, qid, opc, *, ring=True, cid=None, **fields):
        """Write one SQE at the tail (and ring the doorbell): its CID."""
        if cid is None:
            cid, self.next_cid = self.next_cid, self.next_cid + 1
        sq = self.sqs[qid]
        self.mem.write(sq.base + 64 * sq.tail, self.sqe(int(getattr(opc, "value", opc)),
                                                         cid, **fields))
        sq.tail = (sq.tail + 1) % sq.size
        if ring:
            self.ring_sq(qid)
        return cid

    def ring_sq(self, qid):
        self.model.write(DOORBELL_BASE + 8 * qid, self.sqs[qid].tail)

    def reap(self, qid, ring=True):
        """Read the new entries of CQ ``qid`` (phase tag) and, if ``ring``, return their
        slots. Each must be the entry the model says it posted there."""
        cq = self.cqs[qid]
        entries = []
        while True:
            raw = self.mem.read(cq.base + 16 * cq.head, 16)
            entry = CompletionEntry.from_bytes(raw)
            if entry.phase != cq.phase:
                break
            assert entry == self.model.posted[qid][cq.seen]
            entries.append(entry)
            cq.seen += 1
            cq.head += 1
            if cq.head == cq.size:
                cq.head, cq.phase = 0, cq.phase ^ 1
        if ring and entries:
            self.ring_cq(qid)
        return entries

    def ring_cq(self, qid):
        self.model.write(DOORBELL_BASE + 8 * qid + 4, self.cqs[qid].head)

    def cmd(self, opc, **fields):
        """One admin command, completed at once: its completion entry."""
        cid = self.submit(0, opc, **fields)
        entries = self.reap(0)
        assert len(entries) == 1 and entries[0].cid == cid, entries
        return entries[0]

    def cmd_then(self, opc, **fields):
        """One admin command, and what else the admin CQ got after it: all entries."""
        cid = self.submit(0, opc, **fields)
        entries = self.reap(0)
        assert entries and entries[0].cid == cid, entries
        return entries

    # -- Queue management -----------------------------------------------------------------

    def create_cq(self, qid, entries, iv=None, ien=1, pc=1, base=None):
        base = self.alloc(16 * entries) if base is None else base
        iv = qid % self.config.msix_vectors if iv is None else iv
        e = self.cmd(A.CREATE_IO_CQ, prp1=base, cdw10=(entries - 1) << 16 | qid,
                     cdw11=iv << 16 | ien << 1 | pc)
        if e.status == OK:
            self.cqs[qid] = HostCq(base, entries, seen=len(self.model.posted[qid]))
        return e

    def create_sq(self, qid, entries, cqid, pc=1, qprio=0, base=None):
        base = self.alloc(64 * entries) if base is None else base
        e = self.cmd(A.CREATE_IO_SQ, prp1=base, cdw10=(entries - 1) << 16 | qid,
                     cdw11=cqid << 16 | qprio << 1 | pc)
        if e.status == OK:
            self.sqs[qid] = HostSq(base, entries)
        return e

    def pair(self, qid, entries=8, cq_entries=None, iv=None, ien=1):
        assert self.create_cq(qid, cq_entries or entries, iv=iv, ien=ien).status == OK
        assert self.create_sq(qid, entries, qid).status == OK

    # -- Admin command shorthands -------------------------------------------------------

    def set_feature(self, fid, cdw11, sv=0):
        return self.cmd(A.SET_FEATURES, cdw10=sv << 31 | fid, cdw11=cdw11)

    def get_feature(self, fid, cdw11=0, sel=0):
        return self.cmd(A.GET_FEATURES, cdw10=sel << 8 | fid, cdw11=cdw11)

    def get_log(self, lid, nbytes, *, offset=0, rae=0, buf=None, prp2=0, then=False):
        """Get Log Page into ``buf``: (its entry, or with ``then`` all new admin entries,
        and ``buf``)."""
        buf = self.alloc(2 * PAGE) if buf is None else buf
        numd = nbytes // 4 - 1
        e = (self.cmd_then if then else self.cmd)(
            A.GET_LOG_PAGE, prp1=buf, prp2=prp2,
            cdw10=(numd & 0xFFFF) << 16 | rae << 15 | lid, cdw11=numd >> 16,
            cdw12=offset & 0xFFFF_FFFF, cdw13=offset >> 32)
        return e, buf

    def messages(self, vector):
        """MSI-X messages sent for ``vector``."""
        return sum(1 for w in self.model.dma_writes if w.addr == MSIX_ADDR + 16 * vector)

    def io_burst(self, qid, n, ring=True):
        return [self.submit(qid, NvmOpcode.FLUSH, nsid=1, ring=ring) for _ in range(n)]


def u16(buf, at):
    return struct.unpack_from("<H", buf, at)[0]


def u32(buf, at):
    return struct.unpack_from("<I", buf, at)[0]


def u64(buf, at):
    return struct.unpack_from("<Q", buf, at)[0]
