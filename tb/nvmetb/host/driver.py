"""An NVMe host driver, written against :class:`~nvmetb.host.transport.Transport`.

:class:`NvmeHost` brings a controller up the way Linux 6.1's ``nvme`` driver does, keeps
the host's view of every queue (tails, heads, phase tags, SQHD, command identifiers) and
offers the admin commands as coroutines. It never decides how time passes: it asks the
transport to wait, in microseconds, between polls.

Every register offset, SQE / CQE field and status value comes from
:mod:`nvmecore.layouts`; the admin command dwords (Identify, Get Log Page, Features, queue
management, Abort), CNS and Feature identifiers from :mod:`nvmecore.admin_layouts`, which
the admin engine and the reference model share.
"""

import logging
from collections import Counter
from dataclasses import dataclass, field

from amaranth.lib import data

from nvmecore.admin_layouts import (
    AbortDw10,
    Cns,
    CreateCqDw11,
    CreateSqDw11,
    FeatureDw10,
    FeatureId,
    GetLogPageDw10,
    GetLogPageDw11,
    IdentifyDw10,
    IdentifyDw11,
    NumberOfQueues,
    QueueIdSize,
)
from nvmecore.layouts import (
    DOORBELL_BASE,
    MSIX_CTRL_MASKBIT,
    MSIX_ENTRY_BYTES,
    MSIX_TABLE_BASE,
    REG_WIDTH,
    AdminOpcode,
    Aqa,
    ArbitrationMechanism,
    Cap,
    Cc,
    Cqe,
    Csts,
    GenericStatus,
    MsixEntry,
    Reg,
    ShnType,
    ShstState,
    Sqe,
    field_mask,
)

from .io import IoCommand, IoStats, NvmIo
from .shadow import NamespaceShadow
from .status import (
    CommandError,
    ControllerTimeout,
    NvmeError,
    ProtocolError,
    QueueFull,
    Status,
)
from .transport import Transport

__all__ = [
    "cq_buffer_name", "is_cq_buffer",
    "Cns", "FeatureId", "IdentifyDw10", "IdentifyDw11", "GetLogPageDw10",
    "GetLogPageDw11", "FeatureDw10", "NumberOfQueues", "QueueIdSize", "CreateCqDw11",
    "CreateSqDw11", "AbortDw10",
    "SQE_BYTES", "CQE_BYTES", "MPS", "PAGE_SIZE", "build_sqe", "decode_cqe", "Status",
    "NvmeError", "CommandError", "ControllerTimeout", "ProtocolError", "QueueFull",
    "SubmissionQueue", "CompletionQueue", "NvmeHost",
]

log = logging.getLogger("tb")


def _layout(shape):
    return data.Layout.cast(shape)


def _encode(shape, fields):
    return _layout(shape).const(fields).as_bits()


def _decode(shape, value):
    return _layout(shape).from_bits(value)


def _field(shape, name, value):
    """The bits of one field, from a whole value of ``shape``."""
    f = _layout(shape)[name]
    return value >> f.offset & ((1 << f.width) - 1)


def _replace(shape, value, **fields):
    """``value`` (of ``shape``) with the named fields replaced."""
    out = value & ~field_mask(shape, *fields)
    for name, v in fields.items():
        f = _layout(shape)[name]
        out |= (int(getattr(v, "value", v)) & ((1 << f.width) - 1)) << f.offset
    return out


SQE_BYTES = _layout(Sqe).size // 8
CQE_BYTES = _layout(Cqe).size // 8
#: CC.MPS: 4 KiB memory pages, as Linux on x86 uses; page size 2^(12 + MPS)
#: [NVMe 1.4 §3.1.5].
MPS = 0
PAGE_SIZE = 1 << (12 + MPS)
_M32 = 0xFFFF_FFFF


# -- Entries ---------------------------------------------------------------------------------------

def cq_buffer_name(qid):
    """The name the driver gives the host buffer of CQ ``qid`` (``acq``, ``cq<qid>``)."""
    return "acq" if qid == 0 else f"cq{qid}"


def is_cq_buffer(name):
    """Whether a host buffer named ``name`` is a completion queue's
    (:func:`cq_buffer_name`)."""
    return name == "acq" or (name or "").removeprefix("cq").isdigit()


def build_sqe(opcode, cid, *, nsid=0, prp1=0, prp2=0, cdw2=0, cdw3=0, mptr=0, fuse=0,
              psdt=0, cdw10=0, cdw11=0, cdw12=0, cdw13=0, cdw14=0, cdw15=0) -> bytes:
    """The 64 bytes of a submission queue entry."""
    return Sqe.const({
        "cdw0": {"opc": int(getattr(opcode, "value", opcode)), "fuse": fuse, "psdt": psdt,
                 "cid": cid},
        "nsid": nsid, "cdw2": cdw2, "cdw3": cdw3, "mptr": mptr, "prp1": prp1, "prp2": prp2,
        "cdw10": cdw10, "cdw11": cdw11, "cdw12": cdw12, "cdw13": cdw13, "cdw14": cdw14,
        "cdw15": cdw15,
    }).as_bits().to_bytes(SQE_BYTES, "little")


def decode_cqe(raw: bytes):
    """A completion queue entry from its 16 bytes, as a ``data.Const`` of :class:`Cqe`."""
    return _decode(Cqe, int.from_bytes(raw, "little"))


# -- Queues ------------------------------------------------------------------------------------

@dataclass
class SubmissionQueue:
    qid: int
    base: int
    entries: int
    cqid: int
    tail: int = 0
    head: int = 0                 # from the SQHD of the latest completion
    next_cid: int = 0
    outstanding: Counter = field(default_factory=Counter)

    @property
    def full(self):
        return (self.tail + 1) % self.entries == self.head


@dataclass
class CompletionQueue:
    qid: int
    base: int
    entries: int
    vector: int | None            # None: interrupts disabled (IEN = 0)
    head: int = 0
    phase: int = 1


class NvmeHost(NvmIo):
    """The host side of one controller.

    ``admin_entries``: admin queue depth (Linux: 32). ``poll_us``: the wait between polls
    of CSTS or a CQ. ``command_timeout_us``: how long :meth:`wait_completion` waits by
    default.
    """

    def __init__(self, transport: Transport, *, admin_entries=32, poll_us=1.0,
                 command_timeout_us=1_000_000, us_per_kib=4.0):
        self.t = transport
        self.admin_entries = admin_entries
        self.poll_us = poll_us
        self.command_timeout_us = command_timeout_us
        #: Extra time an I/O command is given per KiB of data it moves (a simulated
        #: datapath with backpressure moves a 512 KiB command in a millisecond or two).
        self.us_per_kib = us_per_kib
        self.cap = None
        self.sqs: dict[int, SubmissionQueue] = {}
        self.cqs: dict[int, CompletionQueue] = {}
        self.completions = {}                # (sqid, cid) -> CQE not yet collected
        self.aer_cids: set[int] = set()      # Async Event Requests outstanding
        self.async_events = []               # CQEs of completed AERs, in order
        self.vectors = 0
        self.io_queues = 0
        self.id_ctrl = None
        self.cs_ctrl_status = None
        self.nsids: list[int] = []
        self.id_ns: dict[int, bytes] = {}
        self.ns_descs: dict[int, bytes] = {}
        # NVM I/O (nvmetb.host.io)
        self.io_pending: dict[tuple[int, int], IoCommand] = {}   # (sqid, cid) in flight
        self.io_stats = IoStats()
        self.shadow: NamespaceShadow | None = None

    # -- Registers ------------------------------------------------------------------------

    async def read_reg(self, reg: Reg) -> int:
        return await self.t.mmio_read(reg, REG_WIDTH[reg] // 8)

    async def write_reg(self, reg: Reg, value):
        if REG_WIDTH[reg] == 64:
            # lo_hi_writeq, as Linux writes ASQ and ACQ.
            await self.t.mmio_write(reg, value & _M32, 4)
            await self.t.mmio_write(reg + 4, value >> 32, 4)
        else:
            await self.t.mmio_write(reg, value, 4)

    async def read_cap(self):
        self.cap = _decode(Cap, await self.read_reg(Reg.CAP))
        return self.cap

    async def csts(self):
        return _decode(Csts, await self.read_reg(Reg.CSTS))

    def doorbell(self, qid, cq=False):
        """BAR0 offset of SQ ``qid``'s tail doorbell or CQ ``qid``'s head doorbell
        [NVMe 1.4 §3.1.24]."""
        return DOORBELL_BASE + (2 * qid + int(cq)) * (4 << self.cap.dstrd)

    @property
    def ready_timeout_us(self):
        """CAP.TO, in microseconds: (TO + 1) × 500 ms, as Linux waits."""
        return (self.cap.to + 1) * 500_000

    async def wait_ready(self, rdy: bool, timeout_us=None):
        """Poll CSTS until RDY = ``rdy``, within CAP.TO."""
        timeout_us = self.ready_timeout_us if timeout_us is None else timeout_us
        waited = 0.0
        while True:
            csts = await self.csts()
            if csts.rdy == rdy:
                return csts
            if rdy and csts.cfs:
                raise NvmeError("CSTS.CFS set while waiting for the controller to be ready")
            if waited >= timeout_us:
                raise ControllerTimeout(f"CSTS.RDY did not become {int(rdy)} "
                                        f"within {timeout_us} us")
            await self.t.wait(self.poll_us)
            waited += self.poll_us

    # -- Controller state -----------------------------------------------------------------------

    async def disable(self):
        """CC.EN = 0 (and SHN = 0), wait for CSTS.RDY = 0; every queue is gone."""
        if self.cap is None:
            await self.read_cap()
        cc = await self.read_reg(Reg.CC)
        await self.write_reg(Reg.CC, _replace(Cc, cc, en=0, shn=ShnType.NONE))
        await self.wait_ready(False)
        self._forget_queues()

    def _forget_queues(self):
        for q in (*self.sqs.values(), *self.cqs.values()):
            self.t.free(q.base)
        self.sqs.clear()
        self.cqs.clear()
        self.completions.clear()
        self.aer_cids.clear()
        self._forget_io()

    async def setup_msix(self, vectors):
        """Program MSI-X table entries 0..vectors-1 with the transport's addresses and
        unmask them, then clear the function mask."""
        await self.t.pci_config(bus_master=True, msix_enable=True, msix_function_mask=True)
        entry = _layout(MsixEntry)
        for vector in range(vectors):
            addr, value = self.t.msix_vector_address(vector)
            base = MSIX_TABLE_BASE + vector * MSIX_ENTRY_BYTES
            await self.t.mmio_write(base + entry["addr"].offset // 8, addr & _M32, 4)
            await self.t.mmio_write(base + entry["addr"].offset // 8 + 4, addr >> 32, 4)
            await self.t.mmio_write(base + entry["msg_data"].offset // 8, value, 4)
            await self.t.mmio_write(base + entry["ctrl"].offset // 8,
                                    0 << MSIX_CTRL_MASKBIT, 4)
        await self.t.pci_config(msix_function_mask=False)
        self.vectors = vectors

    async def enable(self, admin_entries=None, *, ams=ArbitrationMechanism.ROUND_ROBIN):
        """Allocate the admin queues, program AQA / ASQ / ACQ and CC (EN = 1, arbitration
        ``ams``) and wait for CSTS.RDY, as Linux's nvme_pci_configure_admin_queue and
        nvme_enable_ctrl do."""
        if self.cap is None:
            await self.read_cap()
        entries = admin_entries or self.admin_entries
        sq = SubmissionQueue(0, self.t.alloc(entries * SQE_BYTES, PAGE_SIZE, name="asq"),
                             entries, cqid=0)
        cq = CompletionQueue(0, self.t.alloc(entries * CQE_BYTES, PAGE_SIZE, name=cq_buffer_name(0)),
                             entries, vector=0)
        await self.write_reg(Reg.AQA, _encode(Aqa, {"asqs": entries - 1, "acqs": entries - 1}))
        await self.write_reg(Reg.ASQ, sq.base)
        await self.write_reg(Reg.ACQ, cq.base)
        self.sqs[0], self.cqs[0] = sq, cq
        sqes = (SQE_BYTES.bit_length() - 1)
        cqes = (CQE_BYTES.bit_length() - 1)
        await self.write_reg(Reg.CC, _encode(Cc, {
            "en": 1, "css": 0, "mps": MPS, "ams": ams.value,
            "shn": ShnType.NONE, "iosqes": sqes, "iocqes": cqes}))
        await self.wait_ready(True)

    async def bring_up(self, io_queues=1, queue_entries=1024, *, vectors=None,
                       admin_entries=None, verify_io=False,
                       ams=ArbitrationMechanism.ROUND_ROBIN):
        """Everything Linux does from probe to a usable controller (DESIGN.md §11: Debian
        12's kernel 6.1, plus CNS 06h): returns the number of I/O queue pairs created.
        ``verify_io``: finish with :meth:`verify_io` (a pattern written and read back
        through every I/O queue; it overwrites the namespace's first blocks). ``ams``:
        the arbitration mechanism enabled (CC.AMS; Linux leaves it round robin)."""
        await self.read_cap()
        await self.t.pci_config(bus_master=True)
        await self.disable()
        await self.setup_msix(vectors or io_queues + 1)
        await self.enable(admin_entries, ams=ams)

        _, self.id_ctrl = await self.identify(Cns.CONTROLLER)
        cqe, _ = await self.identify(Cns.CS_CONTROLLER, csi=0, check=False)
        status = Status.of(cqe)
        if not (status.ok or status.is_(GenericStatus.INVALID_FIELD)):
            raise CommandError("Identify CNS 06h", cqe)
        self.cs_ctrl_status = status
        _, nslist = await self.identify(Cns.ACTIVE_NSID_LIST, nsid=0)
        self.nsids = []
        for i in range(0, len(nslist), 4):
            nsid = int.from_bytes(nslist[i:i + 4], "little")
            if nsid == 0:
                break
            self.nsids.append(nsid)
        for nsid in self.nsids:
            _, self.ns_descs[nsid] = await self.identify(Cns.NS_DESCRIPTORS, nsid=nsid)
            _, self.id_ns[nsid] = await self.identify(Cns.NAMESPACE, nsid=nsid)

        granted = await self.set_number_of_queues(io_queues)
        count = min(io_queues, granted)
        entries = min(queue_entries, self.cap.mqes + 1)
        for qid in range(1, count + 1):
            await self.create_io_cq(qid, entries)
            await self.create_io_sq(qid, entries, cqid=qid)
        self.io_queues = count
        await self.async_event_request()
        log.info("nvme host: controller up, %d I/O queue pairs of %d entries, %d vectors, "
                 "namespaces %s", count, entries, self.vectors, self.nsids)
        if verify_io:
            await self.verify_io()
        return count

    async def shutdown(self, *, delete_queues=True, timeout_us=None):
        """Delete the I/O queues (SQs first), then CC.SHN = normal and wait for
        CSTS.SHST = complete (Linux: nvme_disable_io_queues, nvme_shutdown_ctrl)."""
        if delete_queues:
            for qid in sorted(q for q in self.sqs if q):
                await self.delete_io_sq(qid)
            for qid in sorted(q for q in self.cqs if q):
                await self.delete_io_cq(qid)
        cc = await self.read_reg(Reg.CC)
        await self.write_reg(Reg.CC, _replace(Cc, cc, shn=ShnType.NORMAL))
        timeout_us = 5_000_000 if timeout_us is None else timeout_us
        waited = 0.0
        while _field(Csts, "shst", await self.read_reg(Reg.CSTS)) != ShstState.COMPLETE.value:
            if waited >= timeout_us:
                raise ControllerTimeout(f"shutdown not complete within {timeout_us} us")
            await self.t.wait(self.poll_us)
            waited += self.poll_us

    # -- Submission and completion ---------------------------------------------------------------

    def _new_cid(self, sq):
        for _ in range(0x10000):
            cid = sq.next_cid
            sq.next_cid = (cid + 1) % 0xFFFF          # FFFFh is never used [NVMe 1.4 §4.2]
            if not sq.outstanding[cid]:
                return cid
        raise QueueFull(f"SQ {sq.qid}: no free command identifier")

    async def submit(self, qid, sqe, *, cid=None, ring=True) -> int:
        """Place one command in SQ ``qid`` and ring its tail doorbell. ``sqe`` is 64 bytes
        or the fields of an :class:`Sqe` (as for ``Sqe.const``). Its CID is replaced by
        ``cid``, or by a free one when ``cid`` is None. Returns the CID."""
        sq = self.sqs[qid]
        if sq.full:
            await self.process_completions(sq.cqid)
            if sq.full:
                raise QueueFull(f"SQ {qid} is full (tail {sq.tail}, head {sq.head})")
        cid = self._new_cid(sq) if cid is None else cid
        if isinstance(sqe, (bytes, bytearray)):
            if len(sqe) != SQE_BYTES:
                raise ValueError(f"an SQE is {SQE_BYTES} bytes, not {len(sqe)}")
            raw = int.from_bytes(sqe, "little")
        else:
            raw = Sqe.const(sqe).as_bits()
        dw0 = _replace(_layout(Sqe)["cdw0"].shape, _field(Sqe, "cdw0", raw), cid=cid)
        raw = _replace(Sqe, raw, cdw0=dw0)
        self.t.mem_write(sq.base + sq.tail * SQE_BYTES, raw.to_bytes(SQE_BYTES, "little"))
        sq.tail = (sq.tail + 1) % sq.entries
        sq.outstanding[cid] += 1
        if ring:
            await self.ring_sq(qid)
        return cid

    async def ring_sq(self, qid):
        await self.t.mmio_write(self.doorbell(qid), self.sqs[qid].tail, 4)

    async def process_completions(self, cqid) -> int:
        """Consume every new entry of CQ ``cqid`` (by phase tag), then ring its head
        doorbell once. Returns how many were consumed."""
        cq = self.cqs[cqid]
        count = 0
        while count < cq.entries:
            cqe = decode_cqe(self.t.mem_read(cq.base + cq.head * CQE_BYTES, CQE_BYTES))
            if cqe.status.p != cq.phase:
                break
            self._complete(cq, cqe)
            cq.head += 1
            if cq.head == cq.entries:
                cq.head = 0
                cq.phase ^= 1
            count += 1
        if count:
            await self.t.mmio_write(self.doorbell(cqid, cq=True), cq.head, 4)
        return count

    def _complete(self, cq, cqe):
        sqid, cid, sqhd = cqe.dw2.sqid, cqe.cid, cqe.dw2.sqhd
        sq = self.sqs.get(sqid)
        if sq is None or sq.cqid != cq.qid:
            raise ProtocolError(f"CQ {cq.qid} entry {cq.head}: SQID {sqid} is not an SQ of "
                                f"this CQ")
        if not sq.outstanding[cid]:
            raise ProtocolError(f"CQ {cq.qid} entry {cq.head}: CID {cid} is not outstanding "
                                f"on SQ {sqid}")
        # SQHD lies between the last one seen and the tail: it never moves backwards
        # (DESIGN.md §11) nor past what the host submitted.
        if sqhd >= sq.entries or (sqhd - sq.head) % sq.entries > (sq.tail - sq.head) % sq.entries:
            raise ProtocolError(f"CQ {cq.qid} entry {cq.head}: SQHD {sqhd} outside SQ {sqid}'s "
                                f"head {sq.head} .. tail {sq.tail}")
        sq.head = sqhd
        sq.outstanding[cid] -= 1
        if sqid == 0 and cid in self.aer_cids:
            self.aer_cids.discard(cid)
            self.async_events.append(cqe)
        log.debug("nvme host: CQ %d: SQ %d CID %d status %s DW0 %#x", cq.qid, sqid, cid,
                  Status.of(cqe), cqe.dw0)
        self.completions[(sqid, cid)] = cqe

    async def wait_completion(self, qid, cid, timeout_us=None):
        """The CQE of command ``cid`` on SQ ``qid``, polling its CQ."""
        timeout_us = self.command_timeout_us if timeout_us is None else timeout_us
        cqid = self.sqs[qid].cqid if qid in self.sqs else None
        waited = 0.0
        while (qid, cid) not in self.completions:
            if cqid is None or cqid not in self.cqs:
                raise NvmeError(f"SQ {qid} has no completion queue to poll")
            if await self.process_completions(cqid):
                continue
            if waited >= timeout_us:
                raise ControllerTimeout(f"no completion for SQ {qid} CID {cid} within "
                                        f"{timeout_us} us")
            await self.t.wait(self.poll_us)
            waited += self.poll_us
        return self.completions.pop((qid, cid))

    # -- Commands -----------------------------------------------------------------------------

    async def command(self, qid, opcode, *, nsid=0, cdw10=0, cdw11=0, cdw12=0, cdw13=0,
                      cdw14=0, cdw15=0, prp1=None, prp2=None, data_len=0, data_out=None,
                      page_offset=0, fuse=0, psdt=0, cid=None, check=False, timeout_us=None):
        """Submit one command on SQ ``qid`` and wait for it: ``(cqe, data)``.

        With ``data_len`` or ``data_out`` and no ``prp1``, a buffer is allocated
        ``page_offset`` bytes into a page (``data_out`` copied in); PRP1 points at it and
        PRP2 at the next page when it crosses one (at most two pages). ``data`` is
        ``data_len`` bytes read back after completion (empty when the caller gave PRP1).
        ``check``: raise :class:`CommandError` unless it succeeded."""
        size = max(data_len, len(data_out or b""))
        buf = None
        if size and prp1 is None:
            if page_offset + size > 2 * PAGE_SIZE:
                raise ValueError("a transfer beyond two pages needs a PRP list")
            buf = self.t.alloc(page_offset + size, PAGE_SIZE, name="data")
            addr = buf + page_offset
            if data_out:
                self.t.mem_write(addr, bytes(data_out))
            prp1 = addr
            if prp2 is None and page_offset + size > PAGE_SIZE:
                prp2 = buf + PAGE_SIZE
        cid = await self.submit(qid, build_sqe(
            opcode, 0, nsid=nsid, prp1=prp1 or 0, prp2=prp2 or 0, fuse=fuse, psdt=psdt,
            cdw10=cdw10, cdw11=cdw11, cdw12=cdw12, cdw13=cdw13, cdw14=cdw14, cdw15=cdw15),
            cid=cid)
        cqe = await self.wait_completion(qid, cid, timeout_us)
        result = b""
        if buf is not None:
            result = self.t.mem_read(buf + page_offset, data_len) if data_len else b""
            self.t.free(buf)
        if check and not Status.of(cqe).ok:
            raise CommandError(f"{getattr(opcode, 'name', opcode)} on SQ {qid}", cqe)
        return cqe, result

    async def admin(self, opcode, **kwargs):
        """An admin command: see :meth:`command`."""
        return await self.command(0, opcode, **kwargs)

    async def identify(self, cns, nsid=0, *, cntid=0, csi=0, page_offset=0, check=True):
        """Identify: ``(cqe, 4096 bytes)``."""
        return await self.admin(
            AdminOpcode.IDENTIFY, nsid=nsid,
            cdw10=_encode(IdentifyDw10, {"cns": int(getattr(cns, "value", cns)),
                                          "cntid": cntid}),
            cdw11=_encode(IdentifyDw11, {"csi": csi}),
            data_len=PAGE_SIZE, page_offset=page_offset, check=check)

    async def get_log_page(self, lid, numd, offset=0, rae=False, *, lsp=0, nsid=0xFFFF_FFFF,
                           page_offset=0, prp1=None, check=True):
        """Get Log Page of ``numd`` dwords (the 0's based NUMD field is ``numd`` − 1) from
        byte ``offset``: ``(cqe, numd × 4 bytes)``; with ``prp1`` the data goes there
        (a NUMD larger than the log needs no buffer that large) and ``(cqe, b"")``."""
        n = numd - 1
        return await self.admin(
            AdminOpcode.GET_LOG_PAGE, nsid=nsid,
            cdw10=_encode(GetLogPageDw10, {"lid": int(getattr(lid, "value", lid)), "lsp": lsp,
                                            "rae": int(rae), "numdl": n & 0xFFFF}),
            cdw11=_encode(GetLogPageDw11, {"numdu": n >> 16}),
            cdw12=offset & _M32, cdw13=offset >> 32, prp1=prp1,
            data_len=0 if prp1 is not None else 4 * numd, page_offset=page_offset,
            check=check)

    async def set_features(self, fid, cdw11=0, *, sv=False, nsid=0, cdw12=0, cdw13=0,
                           cdw14=0, cdw15=0, data_out=None, check=True):
        cqe, _ = await self.admin(
            AdminOpcode.SET_FEATURES, nsid=nsid,
            cdw10=_encode(FeatureDw10, {"fid": int(getattr(fid, "value", fid)),
                                          "sv": int(sv)}),
            cdw11=cdw11, cdw12=cdw12, cdw13=cdw13, cdw14=cdw14, cdw15=cdw15,
            data_out=data_out, check=check)
        return cqe

    async def get_features(self, fid, sel=0, cdw11=0, *, nsid=0, data_len=0, check=True):
        cqe, _ = await self.admin(
            AdminOpcode.GET_FEATURES, nsid=nsid,
            cdw10=_encode(FeatureDw10, {"fid": int(getattr(fid, "value", fid)),
                                          "sel": sel}),
            cdw11=cdw11, data_len=data_len, check=check)
        return cqe

    async def set_number_of_queues(self, pairs) -> int:
        """Set Features Number of Queues for ``pairs`` SQs and CQs; the pairs granted
        (min of NSQA + 1, NCQA + 1)."""
        cqe = await self.set_features(FeatureId.NUMBER_OF_QUEUES, _encode(
            NumberOfQueues, {"nsq": pairs - 1, "ncq": pairs - 1}))
        granted = _decode(NumberOfQueues, cqe.dw0)
        return min(granted.nsq, granted.ncq) + 1

    async def create_io_cq(self, qid, entries, *, vector=None, ien=True, pc=True, base=None,
                           check=True):
        """Create I/O CQ ``qid`` (IV = ``vector``, by default ``qid`` as Linux uses, or 0
        when there are not that many vectors). Host memory is allocated unless ``base``
        is given."""
        if vector is None:
            vector = qid if qid < self.vectors else 0
        own = base is None
        if own:
            base = self.t.alloc(entries * CQE_BYTES, PAGE_SIZE, name=cq_buffer_name(qid))
        cqe, _ = await self.admin(
            AdminOpcode.CREATE_IO_CQ, prp1=base,
            cdw10=_encode(QueueIdSize, {"qid": qid, "qsize": entries - 1}),
            cdw11=_encode(CreateCqDw11, {"pc": int(pc), "ien": int(ien), "iv": vector}))
        if Status.of(cqe).ok:
            self.cqs[qid] = CompletionQueue(qid, base, entries, vector if ien else None)
        elif own:
            self.t.free(base)
        if check and not Status.of(cqe).ok:
            raise CommandError(f"Create I/O CQ {qid}", cqe)
        return cqe

    async def create_io_sq(self, qid, entries, *, cqid=None, qprio=0, pc=True, base=None,
                           check=True):
        """Create I/O SQ ``qid`` on CQ ``cqid`` (default ``qid``)."""
        cqid = qid if cqid is None else cqid
        own = base is None
        if own:
            base = self.t.alloc(entries * SQE_BYTES, PAGE_SIZE, name=f"sq{qid}")
        cqe, _ = await self.admin(
            AdminOpcode.CREATE_IO_SQ, prp1=base,
            cdw10=_encode(QueueIdSize, {"qid": qid, "qsize": entries - 1}),
            cdw11=_encode(CreateSqDw11, {"pc": int(pc), "qprio": qprio, "cqid": cqid}))
        if Status.of(cqe).ok:
            self.sqs[qid] = SubmissionQueue(qid, base, entries, cqid)
        elif own:
            self.t.free(base)
        if check and not Status.of(cqe).ok:
            raise CommandError(f"Create I/O SQ {qid}", cqe)
        return cqe

    async def delete_io_sq(self, qid, *, check=True):
        cqe, _ = await self.admin(AdminOpcode.DELETE_IO_SQ,
                                  cdw10=_encode(QueueIdSize, {"qid": qid}), check=check)
        if Status.of(cqe).ok and qid in self.sqs:
            self.t.free(self.sqs.pop(qid).base)
        return cqe

    async def delete_io_cq(self, qid, *, check=True):
        cqe, _ = await self.admin(AdminOpcode.DELETE_IO_CQ,
                                  cdw10=_encode(QueueIdSize, {"qid": qid}), check=check)
        if Status.of(cqe).ok and qid in self.cqs:
            self.t.free(self.cqs.pop(qid).base)
        return cqe

    async def abort(self, sqid, cid, *, check=True):
        cqe, _ = await self.admin(AdminOpcode.ABORT,
                                  cdw10=_encode(AbortDw10, {"sqid": sqid, "cid": cid}),
                                  check=check)
        return cqe

    async def async_event_request(self) -> int:
        """Post an Asynchronous Event Request (not waited for); returns its CID. Its CQE,
        when the controller sends it, lands in :attr:`async_events`."""
        cid = await self.submit(0, build_sqe(AdminOpcode.ASYNC_EVENT_REQ, 0))
        self.aer_cids.add(cid)
        return cid
