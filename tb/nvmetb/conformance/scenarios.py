"""The conformance scenarios: each names the outcomes the NVMe base specification (1.4)
decides, and where QEMU's NVMe device (7.2) legitimately answers otherwise, what it
answers and why. See :mod:`nvmetb.conformance` for the checks."""

from amaranth.lib import data

from nvmecore.admin_layouts import Cns, FeatureId, IdentifyController
from nvmecore.layouts import (
    MSIX_ENTRY_BYTES,
    MSIX_PBA_BASE,
    MSIX_TABLE_BASE,
    AdminOpcode,
    Aqa,
    Cc,
    CommandSpecificStatus,
    Csts,
    GenericStatus,
    LogPage,
    MediaStatus,
    NvmOpcode,
    Reg,
    ShnType,
    ShstState,
)
from nvmecore.nvm_layouts import BROADCAST_NSID, PAGE_BYTES, Dlfeat
from nvmetb.host import PrpLayout, Status, pattern
from nvmetb.host.driver import CQE_BYTES, build_sqe, decode_cqe
from nvmetb.scenarios.arbitration import EXPECTED as ARBITRATION_EXPECTED
from nvmetb.scenarios.arbitration import arbitration_batches

from . import ANY, Run, scenario

G, C, M = GenericStatus, CommandSpecificStatus, MediaStatus
M64 = (1 << 64) - 1
FLUSH = {"cdw0": {"opc": NvmOpcode.FLUSH.value}, "nsid": 1}

# Why QEMU legitimately differs, said once.
WHY_NN = "QEMU's subsystem has 256 namespace IDs (NSID 2 valid but inactive), ours NN = 1"
WHY_DELETE_CQ = ("Delete I/O CQ of a missing queue: spec says Invalid Queue Identifier "
                 "(1/01); QEMU 7.2 answers Completion Queue Invalid (1/00)")
WHY_LOG = ("unknown log page: spec says Invalid Log Page (1/09); QEMU 7.2 answers "
           "Invalid Field (0/02+DNR)")
WHY_NO_ERROR_LOG = "QEMU 7.2 keeps no Error Information entries (its log reads as zeroes)"
WHY_WRR = ("QEMU 7.2 offers round robin only (CAP.AMS = 0) and does not check CC.AMS: "
           "with AMS = 001b it enables, ignores QPRIO and the weights, and fetches each SQ "
           "as its doorbell comes, whatever room its CQ has")


def _decode(shape, raw):
    return data.Layout.cast(shape).from_bits(int.from_bytes(raw, "little"))


def _cc(**fields):
    base = {"iosqes": 6, "iocqes": 4}
    base.update(fields)
    return Cc.const(base).as_bits()


async def up(c: Run, queues=2, entries=16):
    """The Linux-like bring-up with ``queues`` I/O queue pairs, an AER held."""
    got = await c.host.bring_up(io_queues=queues, queue_entries=entries)
    c.equal("I/O queue pairs granted", got, queues)
    return got


async def csts(c: Run):
    return _decode(Csts, (await c.host.read_reg(Reg.CSTS)).to_bytes(4, "little"))


async def wait_csts(c: Run, pred, timeout_us=20_000):
    waited = 0.0
    while True:
        value = await csts(c)
        if pred(value) or waited >= timeout_us:
            return value
        await c.t.wait(c.host.poll_us)
        waited += c.host.poll_us


async def set_admin(c: Run, asq, acq, asqs=7, acqs=7):
    h = c.host
    await h.write_reg(Reg.AQA, Aqa.const({"asqs": asqs, "acqs": acqs}).as_bits())
    await h.write_reg(Reg.ASQ, asq)
    await h.write_reg(Reg.ACQ, acq)


async def enable_with(c: Run, label, *, asq_offset=0, acq_offset=0, asqs=7, acqs=7,
                      **cc):
    """Enable with a set-up that must fail: CSTS.CFS = 1, RDY = 0; after CC.EN = 0,
    CSTS = 0 and a good set-up enables."""
    h = c.host
    await h.read_cap()
    await h.disable()
    asq = c.t.alloc(PAGE_BYTES, name="asq")
    acq = c.t.alloc(PAGE_BYTES, name="acq")
    await set_admin(c, asq + asq_offset, acq + acq_offset, asqs, acqs)
    await h.write_reg(Reg.CC, _cc(en=1, **cc))
    status = await wait_csts(c, lambda s: s.rdy or s.cfs)
    c.equal(f"{label}: CSTS.CFS", status.cfs, 1)
    c.equal(f"{label}: CSTS.RDY", status.rdy, 0)
    await h.write_reg(Reg.CC, _cc(en=0))
    status = await wait_csts(c, lambda s: not s.rdy and not s.cfs)
    c.equal(f"{label}: CSTS after CC.EN = 0", (status.rdy, status.cfs), (0, 0))
    await up(c, 1)


async def pending_aer(c: Run, timeout_us=50):
    """Wait for an Asynchronous Event completion; its CQE or None."""
    h = c.host
    waited = 0.0
    timeout_us *= c.scale
    while not h.async_events and waited < timeout_us:
        await h.process_completions(0)
        if h.async_events:
            break
        await c.t.wait(h.poll_us)
        waited += h.poll_us
    return h.async_events.pop(0) if h.async_events else None


def vector_count(c: Run, vector):
    return sum(1 for m in c.t.msix_messages() if c.t.msix_vector_of(*m) == vector)


def raw_cq_now(c: Run, cqid):
    """The CQ's entries as they are in host memory (not consumed)."""
    cq = c.host.cqs[cqid]
    raw = c.t.mem_read(cq.base, cq.entries * CQE_BYTES)
    return [decode_cqe(raw[i:i + CQE_BYTES]) for i in range(0, len(raw), CQE_BYTES)]


async def raw_cq(c: Run, cqid):
    return raw_cq_now(c, cqid)


def lba_format_index(c: Run, lbads):
    """The LBA format with ``2^lbads`` data bytes and no metadata, or None."""
    ns = c.host.namespace()
    for i in range(ns.nlbaf + 1):
        if ns.lbaf[i].lbads == lbads and ns.lbaf[i].ms == 0:
            return i
    return None


# == Bring-up and registers ===============================================================

@scenario("bring-up", ci_slice=True)
async def bring_up(c: Run):
    """The Linux 6.1 bring-up (disable, MSI-X, admin queues, enable, Identify, Number of
    Queues, I/O queues, AER): RDY = 1 with CFS = 0, every step succeeds, the pairs asked
    for are granted, one namespace (NSID 1) is active, and data written through every
    I/O queue reads back."""
    await up(c, 2)
    status = await csts(c)
    c.equal("CSTS.RDY / CFS / SHST", (status.rdy, status.cfs, status.shst.value), (1, 0, 0))
    c.equal("active namespaces", c.host.nsids, [1])
    await c.host.verify_io(blocks=4)
    c.true("data read back through every queue", True)


@scenario("bring-up")
async def cap_and_version(c: Run):
    """CAP: CQR = 1, DSTRD = 0, NVM command set (bit 37), MPSMIN = 0 (4 KiB), TO ≠ 0;
    VS = 1.4. MQES, MPSMAX and the I/O command set bit (43) are the controller's choice
    (recorded)."""
    cap = await c.host.read_cap()
    c.equal("CAP.CQR", cap.cqr, 1)
    c.equal("CAP.DSTRD", cap.dstrd, 0)
    c.equal("CAP.CSS NVM (bit 37)", cap.css & 1, 1)
    c.equal("CAP.MPSMIN", cap.mpsmin, 0)
    c.true("CAP.TO non-zero", cap.to != 0)
    c.true("CAP.MQES at least 1", cap.mqes >= 1)
    c.equal("CAP.MPSMAX", cap.mpsmax, 0,
            qemu=(4, "CAP limits: QEMU offers pages up to 64 KiB, ours 4 KiB only"))
    c.equal("CAP.CSS I/O command sets (bit 43)", cap.css >> 6 & 1, 0,
            qemu=(1, "QEMU 7.2 advertises the I/O command set bit; ours keeps it 0 so "
                     "Linux takes the NVM-only path (reference notes)"))
    c.equal("VS", await c.host.read_reg(Reg.VS), 0x0001_0400)


@scenario("bring-up")
async def enable_misaligned_asq(c: Run):
    """CC.EN = 1 with ASQ not page aligned: CSTS.CFS = 1, RDY stays 0; a reset clears
    CSTS and a good set-up enables."""
    await enable_with(c, "ASQ + 0x800", asq_offset=0x800)


@scenario("bring-up")
async def enable_misaligned_acq(c: Run):
    """CC.EN = 1 with ACQ not page aligned: CFS, then recovery."""
    await enable_with(c, "ACQ + 0x40", acq_offset=0x40)


@scenario("bring-up")
async def enable_admin_size_one(c: Run):
    """CC.EN = 1 with AQA.ASQS = 0 (a one-entry admin SQ): CFS, then recovery."""
    await enable_with(c, "ASQS 0", asqs=0)


@scenario("bring-up")
async def enable_bad_css_mps(c: Run):
    """CC.EN = 1 with a command set the controller does not offer (CSS = 1), then with
    MPS = 5 (128 KiB pages, above both controllers' MPSMAX): CFS each time."""
    await enable_with(c, "CSS 1", css=1)
    await enable_with(c, "MPS 5", mps=5)


@scenario("bring-up", ci_slice=True)
async def controller_reset(c: Run):
    """CC.EN 1→0: RDY clears within CAP.TO, AQA / ASQ / ACQ keep their values, every
    queue is gone (a doorbell to an old I/O SQ is an invalid-register event after the
    next bring-up); the controller comes up again and works."""
    h = c.host
    await up(c, 2)
    aqa, asq, acq = (await h.read_reg(Reg.AQA), await h.read_reg(Reg.ASQ),
                     await h.read_reg(Reg.ACQ))
    await h.disable()
    c.equal("CSTS after reset", ((await csts(c)).rdy, (await csts(c)).cfs), (0, 0))
    c.equal("AQA / ASQ / ACQ kept", (await h.read_reg(Reg.AQA), await h.read_reg(Reg.ASQ),
                                     await h.read_reg(Reg.ACQ)), (aqa, asq, acq))
    await up(c, 1)
    await h.t.mmio_write(h.doorbell(2), 1)                 # SQ 2 was deleted
    cqe = await pending_aer(c)
    c.true("an invalid-register event for the deleted queue", cqe is not None)
    if cqe is not None:
        c.equal("event DW0 (type 0, info 00h, log 01h)", cqe.dw0 & 0xFFFFFF, 0x01_00_00)
    await h.verify_io(blocks=2)


@scenario("bring-up", ci_slice=True)
async def shutdown_normal(c: Run):
    """CC.SHN = 01b after deleting the I/O queues (Linux's order): SHST reaches 10b,
    RDY stays 1; CC.EN = 0 then clears CSTS and the controller comes up again."""
    h = c.host
    await up(c, 2)
    await h.shutdown()
    status = await csts(c)
    c.equal("SHST complete, RDY 1", (status.shst.value, status.rdy),
            (ShstState.COMPLETE.value, 1))
    await h.disable()
    c.equal("CSTS after reset", (await h.read_reg(Reg.CSTS)) & 0xF, 0)
    await up(c, 1)


@scenario("bring-up")
async def shutdown_abrupt(c: Run):
    """CC.SHN = 10b (abrupt): SHST reaches 10b."""
    h = c.host
    await up(c, 1)
    cc = await h.read_reg(Reg.CC)
    await h.write_reg(Reg.CC, cc & ~(3 << 14) | ShnType.ABRUPT.value << 14)
    status = await wait_csts(c, lambda s: s.shst == ShstState.COMPLETE)
    c.equal("SHST", status.shst.value, ShstState.COMPLETE.value)
    await h.disable()
    await up(c, 1)


@scenario("bring-up")
async def shutdown_in_traffic(c: Run):
    """Shutdown with the I/O queues still there and Writes in flight: SHST reaches 10b
    once they are done; every command posted before it completed successfully; after a
    reset and bring-up the written data reads back."""
    h = c.host
    await up(c, 2)
    h.track_namespace()
    data = [pattern(("shutdown", i), 8 * h.lba_bytes()) for i in range(4)]
    cmds = [await h.submit_write(1 + i % 2, 16 * i, data[i]) for i in range(4)]
    await h.io_wait_all(cmds)
    for i, cmd in enumerate(cmds):
        c.status(f"Write {i} before shutdown", cmd, G.SUCCESS)
    await h.shutdown(delete_queues=False)
    c.equal("SHST", (await csts(c)).shst.value, ShstState.COMPLETE.value)
    await h.disable()
    await up(c, 2)
    for i in range(4):
        _, back = await h.read(1, 16 * i, 8)
        c.equal(f"blocks {16 * i}.. after shutdown and reset", back, data[i])


@scenario("bring-up")
async def interrupt_mask_registers(c: Run):
    """INTMS is write-1-to-set, INTMC write-1-to-clear, both read the mask (MSI-X not
    enabled)."""
    h = c.host
    await h.read_cap()
    await h.write_reg(Reg.INTMS, 0x0000_0005)
    await h.write_reg(Reg.INTMS, 0x8000_0000)
    c.equal("INTMC after two sets", await h.read_reg(Reg.INTMC), 0x8000_0005)
    await h.write_reg(Reg.INTMC, 0x0000_0001)
    c.equal("INTMS after a clear", await h.read_reg(Reg.INTMS), 0x8000_0004)
    await h.write_reg(Reg.INTMC, 0xFFFF_FFFF)
    c.equal("INTMS cleared", await h.read_reg(Reg.INTMS), 0)


# == Admin commands and their status codes ===============================================

@scenario("admin", ci_slice=True)
async def admin_gating(c: Run):
    """An unknown admin opcode: Invalid Opcode + DNR; PSDT ≠ 0 on an admin command:
    Invalid Field + DNR; FUSE ≠ 0: Invalid Field (DNR the controller's choice)."""
    await up(c, 1)
    a = c.host.admin
    c.status("opcode 7Fh", await a(0x7F), G.INVALID_OPCODE, True)
    c.status("PSDT 01b", await a(AdminOpcode.IDENTIFY, cdw10=1, psdt=1, data_len=4096),
             G.INVALID_FIELD, True)
    c.status("FUSE 01b", await a(AdminOpcode.IDENTIFY, cdw10=1, fuse=1, data_len=4096),
             G.INVALID_FIELD)


@scenario("admin", ci_slice=True)
async def identify_controller(c: Run):
    """Identify Controller: SQES 66h, CQES 44h, VER 1.4, AERL 3, MDTS 7 (both are set
    so), CNTRLTYPE 1, VID = the PCI vendor ID. SN, MN, FR, NN and ONCS are the
    controller's own (recorded)."""
    h = c.host
    await up(c, 1)
    ctrl = _decode(IdentifyController, h.id_ctrl)
    c.equal("SQES", h.id_ctrl[512], 0x66)
    c.equal("CQES", h.id_ctrl[513], 0x44)
    c.equal("VER", ctrl.ver, 0x0001_0400)
    c.equal("AERL", ctrl.aerl, 3)
    c.equal("MDTS", ctrl.mdts, 7)
    c.equal("CNTRLTYPE", ctrl.cntrltype, 1)
    pci_vid = getattr(c.t, "pci_ids", None)
    if pci_vid is not None:
        c.equal("VID = PCI vendor ID", ctrl.vid, pci_vid & 0xFFFF)
    nn = int.from_bytes(h.id_ctrl[516:520], "little")
    c.equal("NN", nn, 1, qemu=(256, WHY_NN))
    sn = h.id_ctrl[4:24].decode(errors="replace").strip()
    c.true("SN is printable ASCII", sn and all(0x20 <= b < 0x7F for b in h.id_ctrl[4:64]))


@scenario("admin")
async def identify_namespace(c: Run):
    """Identify Namespace 1: NSZE = NCAP = the image size in blocks, the format in use
    has 512-byte blocks, no metadata; NLBAF is the controller's (recorded)."""
    h = c.host
    await up(c, 1)
    ns = h.namespace()
    lba = h.lba_bytes()
    c.equal("LBA size", lba, 512)
    c.equal("NSZE = image bytes / LBA size", ns.nsze, c.facts["namespace_bytes"] // lba)
    c.equal("NCAP = NSZE", ns.ncap, ns.nsze)
    c.equal("metadata of the format in use", ns.lbaf[ns.flbas & 0xF].ms, 0)
    c.equal("NLBAF", ns.nlbaf, 1, qemu=(7, "QEMU offers 8 LBA formats (with metadata), "
                                          "ours 512 B and 4 KiB"))


@scenario("admin")
async def identify_lists(c: Run):
    """Active NSID list from 0: [1]; from NSID 1: empty. NS descriptors of NSID 1
    include a Command Set Identifier descriptor (type 04h) of NVM (0)."""
    h = c.host
    await up(c, 1)
    _, raw = await h.identify(Cns.ACTIVE_NSID_LIST, nsid=0)
    c.equal("list from 0", int.from_bytes(raw[:8], "little"), 1)
    _, raw = await h.identify(Cns.ACTIVE_NSID_LIST, nsid=1)
    c.equal("list from 1", int.from_bytes(raw[:4], "little"), 0)
    _, raw = await h.identify(Cns.NS_DESCRIPTORS, nsid=1)
    found = None
    at = 0
    while at + 4 <= len(raw) and raw[at]:
        nidt, nidl = raw[at], raw[at + 1]
        if nidt == 4:
            found = raw[at + 4]
        at += 4 + nidl
    c.equal("CSI descriptor", found, 0)


@scenario("admin")
async def identify_errors(c: Run):
    """Identify Namespace with NSID 0 or FFFFFFFFh: Invalid Namespace + DNR; with NSID
    2 (beyond NN here); an unknown CNS (7Fh): Invalid Field + DNR; CNS 06h (I/O command
    set controller): Invalid Field + DNR or success (Linux takes both)."""
    h = c.host
    await up(c, 1)
    for nsid in (0, BROADCAST_NSID):
        c.status(f"CNS 00h NSID {nsid:#x}", await h.identify(Cns.NAMESPACE, nsid=nsid,
                                                             check=False),
                 G.INVALID_NAMESPACE, True)
    c.status("CNS 00h NSID 2", await h.identify(Cns.NAMESPACE, nsid=2, check=False),
             G.INVALID_NAMESPACE, True, qemu=(G.SUCCESS, False, WHY_NN))
    c.status("CNS 7Fh", await h.identify(0x7F, check=False), G.INVALID_FIELD, True)
    status = Status.of((await h.identify(Cns.CS_CONTROLLER, check=False))[0])
    c.true("CNS 06h: Invalid Field + DNR or success",
           status.ok or status.is_(G.INVALID_FIELD, dnr=True))


@scenario("admin")
async def identify_prp_offset(c: Run):
    """Identify Controller into a buffer 0x100 bytes into a page (PRP1 with an offset,
    PRP2 the next page) gives the same 4096 bytes as into an aligned one; PRP2 not page
    aligned: Invalid PRP Offset + DNR."""
    h = c.host
    await up(c, 1)
    _, aligned = await h.identify(Cns.CONTROLLER)
    _, offset = await h.identify(Cns.CONTROLLER, page_offset=0x100)
    c.equal("data through PRP1 + PRP2", offset, aligned)
    base = c.t.alloc(3 * PAGE_BYTES, name="identify")
    c.status("PRP2 + 8", await h.admin(AdminOpcode.IDENTIFY, cdw10=1, prp1=base + 0x200,
                                       prp2=base + PAGE_BYTES + 8),
             G.INVALID_PRP_OFFSET, True)


@scenario("admin", ci_slice=True)
async def create_cq_errors(c: Run):
    """Create I/O CQ refused: QID 0, above the maximum, or existing → Invalid Queue
    Identifier + DNR; QSIZE 0 or above CAP.MQES → Invalid Queue Size + DNR; PRP1 not
    page aligned → Invalid PRP Offset + DNR; IV beyond the MSI-X table → Invalid
    Interrupt Vector + DNR; PC = 0 → Invalid Field + DNR."""
    h = c.host
    await up(c, 1)
    nq = await h.set_features(FeatureId.NUMBER_OF_QUEUES, 0, check=False)
    c.status("Number of Queues after queues exist", nq, G.COMMAND_SEQUENCE_ERROR, True)
    mqes = h.cap.mqes
    base = c.t.alloc(PAGE_BYTES, name="spare")
    op = AdminOpcode.CREATE_IO_CQ
    maxq = await max_queue_id(c)
    for label, cdw10, cdw11, prp1, code, in (
            ("QID 0", 0 | 7 << 16, 0b11, base, C.INVALID_QUEUE_IDENTIFIER),
            ("QID above max", (maxq + 1) | 7 << 16, 0b11, base, C.INVALID_QUEUE_IDENTIFIER),
            ("QID exists", 1 | 7 << 16, 0b11, base, C.INVALID_QUEUE_IDENTIFIER),
            ("QSIZE 0", 2, 0b11, base, C.INVALID_QUEUE_SIZE),
            ("QSIZE > MQES", 2 | (mqes + 1) << 16, 0b11, base, C.INVALID_QUEUE_SIZE),
            ("PRP1 + 64", 2 | 7 << 16, 0b11, base + 64, G.INVALID_PRP_OFFSET),
            ("IV 7FFh", 2 | 7 << 16, 0b11 | 0x7FF << 16, base, C.INVALID_INTERRUPT_VECTOR),
            ("PC 0", 2 | 7 << 16, 0b10, base, G.INVALID_FIELD)):
        c.status(f"Create I/O CQ {label}", await h.admin(op, cdw10=cdw10, cdw11=cdw11,
                                                         prp1=prp1), code, True)


async def max_queue_id(c: Run):
    """The highest I/O queue ID (Get Features Number of Queues)."""
    cqe = await c.host.get_features(FeatureId.NUMBER_OF_QUEUES)
    return min(cqe.dw0 & 0xFFFF, cqe.dw0 >> 16) + 1


@scenario("admin")
async def create_sq_errors(c: Run):
    """Create I/O SQ refused: CQID 0 or missing → Completion Queue Invalid + DNR;
    QID 0, above max or existing → Invalid Queue Identifier + DNR; QSIZE 0 → Invalid
    Queue Size + DNR; PRP1 not page aligned → Invalid PRP Offset + DNR; PC = 0 →
    Invalid Field + DNR."""
    h = c.host
    await up(c, 1)
    base = c.t.alloc(PAGE_BYTES, name="spare")
    op = AdminOpcode.CREATE_IO_SQ
    maxq = await max_queue_id(c)
    for label, cdw10, cdw11, prp1, code in (
            ("on CQ 0", 2 | 7 << 16, 1 | 0 << 16, base, C.COMPLETION_QUEUE_INVALID),
            ("on a missing CQ", 2 | 7 << 16, 1 | 3 << 16, base, C.COMPLETION_QUEUE_INVALID),
            ("QID 0", 0 | 7 << 16, 1 | 1 << 16, base, C.INVALID_QUEUE_IDENTIFIER),
            ("QID above max", (maxq + 1) | 7 << 16, 1 | 1 << 16, base,
             C.INVALID_QUEUE_IDENTIFIER),
            ("QID exists", 1 | 7 << 16, 1 | 1 << 16, base, C.INVALID_QUEUE_IDENTIFIER),
            ("QSIZE 0", 2, 1 | 1 << 16, base, C.INVALID_QUEUE_SIZE),
            ("PRP1 + 8", 2 | 7 << 16, 1 | 1 << 16, base + 8, G.INVALID_PRP_OFFSET),
            ("PC 0", 2 | 7 << 16, 0 | 1 << 16, base, G.INVALID_FIELD)):
        c.status(f"Create I/O SQ {label}", await h.admin(op, cdw10=cdw10, cdw11=cdw11,
                                                         prp1=prp1), code, True)


@scenario("admin")
async def delete_queue_errors(c: Run):
    """Delete I/O SQ 0 or a missing one → Invalid Queue Identifier + DNR; Delete I/O CQ
    still used by an SQ → Invalid Queue Deletion; Delete I/O CQ of a missing queue →
    Invalid Queue Identifier + DNR (spec; QEMU differs)."""
    h = c.host
    await up(c, 1)
    op = AdminOpcode
    c.status("Delete SQ 0", await h.admin(op.DELETE_IO_SQ, cdw10=0),
             C.INVALID_QUEUE_IDENTIFIER, True)
    c.status("Delete missing SQ", await h.admin(op.DELETE_IO_SQ, cdw10=3),
             C.INVALID_QUEUE_IDENTIFIER, True)
    c.status("Delete CQ in use", await h.admin(op.DELETE_IO_CQ, cdw10=1),
             C.INVALID_QUEUE_DELETION)
    c.status("Delete missing CQ", await h.admin(op.DELETE_IO_CQ, cdw10=3),
             C.INVALID_QUEUE_IDENTIFIER, True,
             qemu=(C.COMPLETION_QUEUE_INVALID, True, WHY_DELETE_CQ))


@scenario("admin", ci_slice=True)
async def queue_lifecycle(c: Run):
    """Delete an I/O SQ and CQ and create them again with another size: each step
    succeeds, the new CQ's phase starts at 1 again and commands on it complete."""
    h = c.host
    await up(c, 1, entries=8)
    for _ in range(3):
        await h.flush(1)
    c.status("Delete SQ 1", await h.delete_io_sq(1), G.SUCCESS)
    c.status("Delete CQ 1", await h.delete_io_cq(1), G.SUCCESS)
    c.status("Create CQ 1 of 4", await h.create_io_cq(1, 4), G.SUCCESS)
    c.status("Create SQ 1 of 4", await h.create_io_sq(1, 4), G.SUCCESS)
    cmd = await h.io_wait(await h.submit_flush(1))
    c.status("Flush on the new queue", cmd, G.SUCCESS)
    c.equal("phase of the new CQ's first entry", cmd.cqe.status.p, 1)
    c.equal("SQHD of the new SQ's first entry", cmd.cqe.dw2.sqhd, 1)


@scenario("admin")
async def get_log_page_errors(c: Run):
    """Get Log Page: an unknown LID → Invalid Log Page + DNR (spec; QEMU differs); an
    offset not DWORD aligned, or beyond the log → Invalid Field + DNR."""
    h = c.host
    await up(c, 1)
    c.status("LID 7Fh", await h.get_log_page(0x7F, 16, check=False), C.INVALID_LOG_PAGE,
             True, qemu=(G.INVALID_FIELD, True, WHY_LOG))
    c.status("offset 2", await h.get_log_page(LogPage.SMART_HEALTH.value, 16, offset=2,
                                              check=False), G.INVALID_FIELD, True)
    c.status("offset 512", await h.get_log_page(LogPage.SMART_HEALTH.value, 16, offset=512,
                                                check=False), G.INVALID_FIELD, True)


@scenario("admin")
async def get_log_page_mdts(c: Run):
    """Get Log Page moves at most MDTS like any data transfer (QEMU checks it too): NUMD
    for exactly 2^MDTS pages succeeds (the page's 512 bytes come back), one DWORD more is
    Invalid Field + DNR [NVMe 1.4 §5.14, Figure 106 MDTS]."""
    h = c.host
    await up(c, 1)
    limit = h.mdts_bytes
    page = c.t.alloc(PAGE_BYTES, PAGE_BYTES, name="log")
    c.t.mem_write(page, bytes(PAGE_BYTES))
    cqe, _ = await h.get_log_page(LogPage.SMART_HEALTH.value, limit // 4, prp1=page,
                                  check=False)
    c.status("NUMD = MDTS", cqe, G.SUCCESS)
    smart = c.t.mem_read(page, 512)
    c.equal("SMART log returned (temperature set)", smart[1:3] != bytes(2), True)
    cqe, _ = await h.get_log_page(LogPage.SMART_HEALTH.value, limit // 4 + 1, prp1=page,
                                  check=False)
    c.status("NUMD = MDTS + 1 DWORD", cqe, G.INVALID_FIELD, True)
    c.t.free(page)


@scenario("admin")
async def smart_log(c: Run):
    """SMART / Health: success; the composite temperature a plausible kelvin value;
    Host Read Commands grows by exactly the number of Reads completed; Host Write
    Commands by the number of Writes."""
    h = c.host
    await up(c, 1)
    before = await h.smart_log()
    c.true("composite temperature 250..400 K", 250 <= before.composite_temperature <= 400)
    await h.write(1, 0, pattern("smart", 2 * h.lba_bytes()))
    for _ in range(3):
        await h.read(1, 0, 2)
    after = await h.smart_log()
    c.equal("Host Read Commands delta", after.host_read_commands - before.host_read_commands,
            3)
    c.equal("Host Write Commands delta",
            after.host_write_commands - before.host_write_commands, 1)


@scenario("admin")
async def error_log(c: Run):
    """A command that fails adds an Error Information entry naming its SQID, CID and
    status (spec: the log records errors; QEMU keeps none)."""
    h = c.host
    await up(c, 1)
    cmd = await h.io_wait(await h.submit_read(1, h.namespace_blocks(), 1, name="failing"))
    c.status("Read past the end", cmd, G.LBA_OUT_OF_RANGE, True)
    entries = await h.error_log(4)
    got = None
    if entries:
        e = entries[0]
        got = (e.sqid, e.cid, str(Status.of(e)))
    c.equal("newest error entry (SQID, CID, status)", got, (1, cmd.cid, "0/80+DNR"),
            qemu=(None, WHY_NO_ERROR_LOG))


@scenario("admin")
async def firmware_slot_log(c: Run):
    """Firmware Slot log: success, AFI names an active slot 1..7."""
    h = c.host
    await up(c, 1)
    cqe, raw = await h.get_log_page(LogPage.FIRMWARE_SLOT.value, 128)
    c.status("Get Log Page 03h", cqe, G.SUCCESS)
    c.true("AFI active slot 1..7", 1 <= raw[0] & 7 <= 7)


@scenario("admin")
async def number_of_queues(c: Run):
    """Set Features Number of Queues before any I/O queue: NSQR = FFFFh → Invalid Field
    + DNR; a valid request → success, DW0 = the pairs allocated (0's based), at least
    one; Get returns the same."""
    h = c.host
    await h.read_cap()
    await h.t.pci_config(bus_master=True)
    await h.disable()
    await h.setup_msix(2)
    await h.enable()
    c.status("NSQR FFFFh", await h.set_features(FeatureId.NUMBER_OF_QUEUES, 0xFFFF,
                                                check=False), G.INVALID_FIELD, True)
    cqe = await h.set_features(FeatureId.NUMBER_OF_QUEUES, 1 | 1 << 16)
    c.status("Set 2 pairs", cqe, G.SUCCESS)
    got = await h.get_features(FeatureId.NUMBER_OF_QUEUES)
    c.equal("Get = Set's DW0", got.dw0, cqe.dw0)


@scenario("admin")
async def features_round_trip(c: Run):
    """Set then Get Features returns the value set: Arbitration, Temperature Threshold,
    Interrupt Coalescing, Write Atomicity Normal, Async Event Configuration (SMART
    bits)."""
    h = c.host
    await up(c, 1)
    for fid, value, mask in ((FeatureId.ARBITRATION, 0x0302_0103, 0xFFFF_FFFF),
                             (FeatureId.TEMPERATURE_THRESHOLD, 350, 0xFFFF),
                             (FeatureId.INTERRUPT_COALESCING, 0x0103, 0xFFFF),
                             (FeatureId.WRITE_ATOMICITY_NORMAL, 1, 1),
                             (FeatureId.ASYNC_EVENT_CONFIG, 0x02, 0xFF)):
        alt = None
        if fid in (FeatureId.ARBITRATION, FeatureId.INTERRUPT_COALESCING,
                   FeatureId.WRITE_ATOMICITY_NORMAL):
            alt = (C.FEATURE_NOT_CHANGEABLE, True,
                   f"QEMU 7.2 implements no {fid.name.lower().replace('_', ' ')}: Feature "
                   f"Not Changeable there; ours acts on it (DESIGN.md §11)")
        status = c.status(f"Set {fid.name}", await h.set_features(fid, value, check=False),
                          G.SUCCESS, qemu=alt)
        if not status.ok:
            continue
        got = await h.get_features(fid, check=False)
        c.status(f"Get {fid.name}", got, G.SUCCESS)
        c.equal(f"Get {fid.name} DW0", got.dw0 & mask, value)


@scenario("admin")
async def features_errors(c: Run):
    """Features refused: an unknown FID → Invalid Field + DNR; Set with SV = 1 on a
    feature that is not saveable → Feature Identifier Not Saveable + DNR; Interrupt
    Vector Configuration for a vector beyond the table → Invalid Field + DNR."""
    h = c.host
    await up(c, 1)
    c.status("Set FID 7Eh", await h.set_features(0x7E, 0, check=False), G.INVALID_FIELD,
             True)
    c.status("Get FID 7Eh", await h.get_features(0x7E, check=False), G.INVALID_FIELD, True)
    c.status("Set Arbitration SV", await h.set_features(FeatureId.ARBITRATION, 3, sv=True,
                                                        check=False),
             C.FEATURE_NOT_SAVEABLE, True)
    c.status("Interrupt Vector Config IV 7FFh",
             await h.get_features(FeatureId.INTERRUPT_VECTOR_CONFIG, cdw11=0x7FF,
                                  check=False), G.INVALID_FIELD, True)


@scenario("admin")
async def features_sel_and_cache(c: Run):
    """What the controller may choose: Get Features with SEL = 01b (default value) is
    refused by a controller without ONCS.Save (ours) and answered by one with it
    (QEMU); Volatile Write Cache is refused without a cache (ours, VWC = 0) and
    accepted with one (QEMU)."""
    h = c.host
    await up(c, 1)
    vwc = h.id_ctrl[525] & 1
    oncs = int.from_bytes(h.id_ctrl[520:522], "little")
    cqe = await h.get_features(FeatureId.ARBITRATION, sel=1, check=False)
    if oncs >> 4 & 1:
        c.status("SEL 01b with ONCS.Save", cqe, G.SUCCESS)
    else:
        c.status("SEL 01b without ONCS.Save", cqe, G.INVALID_FIELD, True)
    cqe = await h.set_features(FeatureId.VOLATILE_WRITE_CACHE, 0, check=False)
    if vwc:
        c.status("Volatile Write Cache with VWC", cqe, G.SUCCESS)
    else:
        c.status("Volatile Write Cache without VWC", cqe, G.INVALID_FIELD, True)


# == Asynchronous events and doorbells ======================================================

@scenario("events", ci_slice=True)
async def doorbell_invalid_register(c: Run):
    """A doorbell write to a queue that does not exist completes the held AER: type 0
    (error), info 00h (invalid doorbell register), log 01h."""
    await up(c, 1)
    await c.t.mmio_write(c.host.doorbell(5), 1)
    cqe = await pending_aer(c)
    c.true("AER completed", cqe is not None)
    c.status("AER status", cqe, G.SUCCESS)
    c.equal("event DW0", cqe.dw0 & 0xFFFFFF, 0x01_00_00)


@scenario("events")
async def doorbell_invalid_value(c: Run):
    """An SQ tail doorbell value ≥ the queue size completes the held AER: type 0, info
    01h (invalid doorbell write value), log 01h; the value is ignored (later commands
    on that SQ run)."""
    h = c.host
    await up(c, 1, entries=8)
    await c.t.mmio_write(h.doorbell(1), 8)
    cqe = await pending_aer(c)
    c.true("AER completed", cqe is not None)
    c.equal("event DW0", cqe.dw0 & 0xFFFFFF, 0x01_01_00)
    cmd = await h.io_wait(await h.submit_flush(1))
    c.status("a Flush after the bad doorbell", cmd, G.SUCCESS)


@scenario("events")
async def cq_doorbell_invalid_value(c: Run):
    """A CQ head doorbell value ≥ the CQ size: invalid doorbell write value event."""
    h = c.host
    await up(c, 1, entries=8)
    await c.t.mmio_write(h.doorbell(1, cq=True), 9)
    cqe = await pending_aer(c)
    c.true("AER completed", cqe is not None)
    c.equal("event DW0", cqe.dw0 & 0xFFFFFF, 0x01_01_00)


@scenario("events", ci_slice=True)
async def aer_masked_until_log_read(c: Run):
    """After an error event, the error type is masked: a second invalid doorbell with a
    new AER held completes nothing until the Error Information log is read with RAE =
    0; then the AER completes with the second event."""
    h = c.host
    await up(c, 1)
    await c.t.mmio_write(h.doorbell(5), 1)
    c.true("first event", await pending_aer(c) is not None)
    await h.async_event_request()
    await c.t.mmio_write(h.doorbell(6), 1)
    c.true("masked: no completion", await pending_aer(c, timeout_us=20) is None)
    await h.get_log_page(LogPage.ERROR_INFORMATION.value, 16, rae=False)
    cqe = await pending_aer(c)
    c.true("completed after the log was read", cqe is not None)
    if cqe is not None:
        c.equal("event DW0", cqe.dw0 & 0xFF, 0)


@scenario("events", ci_slice=True)
async def aer_waits_for_bus_master(c: Run):
    """With bus mastering off a function may not write memory [PCIe 4.0 §7.5.1.1.3]: an
    event raised then leaves the held AER held (no completion, no interrupt); it
    completes once bus mastering is back."""
    h = c.host
    await up(c, 1)
    await c.t.pci_config(bus_master=False)
    await c.t.mmio_write(h.doorbell(5), 1)
    await c.settle(20)
    c.true("no AER completion with bus mastering off",
           await pending_aer(c, timeout_us=20) is None)
    await c.t.pci_config(bus_master=True)
    cqe = await pending_aer(c)
    c.equal("AER completed once bus mastering is back", cqe is not None, True,
            qemu=(False, "QEMU 7.2 fails DMA with bus mastering off: the AER's CQ entry "
                         "write fails and sets CSTS.CFS; ours waits for bus mastering "
                         "(DESIGN.md §11)"))
    if cqe is not None:
        c.equal("event DW0", cqe.dw0 & 0xFFFFFF, 0x01_00_00)


@scenario("events")
async def aer_after_shutdown(c: Run):
    """After a shutdown (SHST = 10b) commands run again only after a controller reset
    [NVMe 1.4 §7.6.2]: an event raised then leaves the held AER held, and the reset
    drops it; after a new bring-up a new event completes the new AER."""
    h = c.host
    await up(c, 1)
    await h.shutdown()
    await c.t.mmio_write(h.doorbell(5), 1)
    await c.settle(20)
    c.true("no AER completion after shutdown", await pending_aer(c, timeout_us=20) is None,
           qemu=(False, "QEMU 7.2 keeps completing commands after a shutdown (its "
                        "shutdown only flushes the namespaces); ours stops until a "
                        "controller reset (docs/admin-commands.md)"))
    await h.disable()
    await up(c, 1)
    await c.t.mmio_write(h.doorbell(6), 1)
    cqe = await pending_aer(c)
    c.true("a new event completes the new AER", cqe is not None)


@scenario("events", ci_slice=True)
async def aer_after_fatal_status(c: Run):
    """After a failed SQ fetch sets CSTS.CFS the controller stops [NVMe 1.4 §10.5]: an
    event raised then leaves the held AER held; a controller reset brings it back."""
    c.need("fail_reads", "the transport cannot make host memory reads fail")
    h = c.host
    await up(c, 1)
    sq = h.sqs[1]
    c.t.fail_reads(sq.base, sq.base + 64 * sq.entries)
    await h.submit_flush(1)
    status = await wait_csts(c, lambda s: s.cfs, timeout_us=200)
    c.equal("CSTS.CFS after the failed fetch", status.cfs, 1)
    c.t.clear_faults()
    await c.t.mmio_write(h.doorbell(5), 1)
    await c.settle(20)
    c.true("no AER completion with CFS set", await pending_aer(c, timeout_us=20) is None)
    await h.disable()
    c.equal("CSTS after reset", (await h.read_reg(Reg.CSTS)) & 0xF, 0)
    await up(c, 1)
    c.status("a Flush after the reset", await h.io_wait(await h.submit_flush(1)), G.SUCCESS)


@scenario("events")
async def aer_limit(c: Run):
    """AERL + 1 = 4 AERs may be held; the fifth completes with Asynchronous Event
    Request Limit Exceeded."""
    h = c.host
    await up(c, 1)
    ctrl = _decode(IdentifyController, h.id_ctrl)
    for _ in range(ctrl.aerl):                 # bring-up holds one already
        await h.async_event_request()
    c.status("AER beyond AERL", await h.admin(AdminOpcode.ASYNC_EVENT_REQ),
             C.AER_LIMIT_EXCEEDED)


@scenario("events")
async def aer_temperature(c: Run):
    """With AEC bit 1 set, an over-temperature threshold below the current temperature
    raises a SMART / Health event: type 1, info 01h, log 02h; SMART's critical warning
    bit 1 is set."""
    h = c.host
    await up(c, 1)
    await h.set_features(FeatureId.ASYNC_EVENT_CONFIG, 0x02)
    smart = await h.smart_log()
    await h.set_features(FeatureId.TEMPERATURE_THRESHOLD, smart.composite_temperature - 20)
    cqe = await pending_aer(c, timeout_us=200)
    c.true("AER completed", cqe is not None)
    if cqe is not None:
        c.equal("event DW0", cqe.dw0 & 0xFFFFFF, 0x02_01_01)
    smart = await h.smart_log()
    c.equal("critical warning bit 1", smart.critical_warning.as_value().value >> 1 & 1, 1)


@scenario("events", ci_slice=True)
async def abort_held_aer(c: Run):
    """Abort of a held AER: the Abort succeeds with DW0 bit 0 = 0 and the AER completes
    with Command Abort Requested; Abort of a CID not outstanding: DW0 bit 0 = 1; Abort
    naming a missing SQ: Invalid Field (DNR the controller's)."""
    h = c.host
    await up(c, 1)
    aer = next(iter(h.aer_cids))
    cqe = await h.abort(0, aer)
    aborted = c.equal("Abort DW0 bit 0", cqe.dw0 & 1, 0,
                      qemu=(1, "QEMU 7.2's Abort aborts nothing (DW0 bit 0 = 1 always); "
                               "Abort is best effort [NVMe 1.4 §5.1]"))
    if aborted:
        got = await pending_aer(c)
        c.true("the AER completed", got is not None)
        c.status("the AER's status", got, G.ABORT_REQUESTED)
    cqe = await h.abort(0, 0x4321)
    c.equal("Abort of no command: DW0 bit 0", cqe.dw0 & 1, 1)
    c.status("Abort SQ 9", await h.abort(9, 1, check=False), G.INVALID_FIELD)


# == Queues: SQHD, CID, phase, CQ full ===================================================

@scenario("queues", ci_slice=True)
async def cq_wrap_phase(c: Run):
    """Ten Flushes one after the other on a 4-entry CQ: the phase tag is 1 on the first
    pass and flips at each wrap; SQHD follows the SQ's head; each CID comes back."""
    h = c.host
    await up(c, 1, entries=4)
    for k in range(10):
        cmd = await h.io_wait(await h.submit_flush(1))
        c.equal(f"entry {k} phase", cmd.cqe.status.p, 1 - (k // 4) % 2)
        c.equal(f"entry {k} SQHD", cmd.cqe.dw2.sqhd, (k + 1) % 4)
        c.equal(f"entry {k} SQID", cmd.cqe.dw2.sqid, 1)


@scenario("queues")
async def admin_queue_wrap(c: Run):
    """Forty Get Features on an 8-entry admin queue: the phase flips at each wrap and
    SQHD follows, every command succeeds."""
    h = c.host
    await h.read_cap()
    await h.t.pci_config(bus_master=True)
    await h.disable()
    await h.setup_msix(1)
    await h.enable(admin_entries=8)
    for k in range(40):
        cqe = await h.get_features(FeatureId.ARBITRATION)
        c.equal(f"entry {k} phase", cqe.status.p, 1 - (k // 8) % 2)
        c.equal(f"entry {k} SQHD", cqe.dw2.sqhd, (k + 1) % 8)


@scenario("queues", ci_slice=True)
async def cq_full(c: Run):
    """A 4-entry CQ holds at most 3 unconsumed entries: with 6 Flushes submitted and
    none consumed, exactly 3 entries are posted and none is overwritten; consuming them
    lets the rest complete."""
    h = c.host
    await up(c, 1, entries=8)
    c.status("Delete SQ 1", await h.delete_io_sq(1), G.SUCCESS)
    c.status("Delete CQ 1", await h.delete_io_cq(1), G.SUCCESS)
    await h.create_io_cq(1, 4)
    await h.create_io_sq(1, 8)
    cmds = [await h.submit_flush(1, ring=False) for _ in range(6)]
    await h.ring_sq(1)
    await c.until(lambda: sum(e.status.p for e in raw_cq_now(c, 1)) >= 3)
    await c.settle(20)                  # time for a fourth, if the controller overran
    entries = await raw_cq(c, 1)
    c.equal("entries posted while full", [e.status.p for e in entries], [1, 1, 1, 0])
    # Which three is the controller's choice (completions are unordered).
    cids = [e.cid for e in entries[:3]]
    c.true("three distinct submitted CIDs posted",
           len(set(cids)) == 3 and set(cids) <= {cmd.cid for cmd in cmds})
    await h.io_wait_all(cmds)
    for i, cmd in enumerate(cmds):
        c.status(f"Flush {i}", cmd, G.SUCCESS)


@scenario("queues")
async def cid_echo(c: Run):
    """Commands with chosen CIDs (0, 1234h, FFFEh) on admin and I/O queues: each CQE
    carries its command's CID and SQID."""
    h = c.host
    await up(c, 1)
    for cid in (0, 0x1234, 0xFFFE):
        await h.submit(0, build_sqe(AdminOpcode.GET_FEATURES, 0, cdw10=1), cid=cid)
        cqe = await h.wait_completion(0, cid)
        c.equal(f"admin CID {cid:#x}", (cqe.cid, cqe.dw2.sqid), (cid, 0))
        await h.submit(1, FLUSH, cid=cid)
        cqe = await h.wait_completion(1, cid)
        c.equal(f"I/O CID {cid:#x}", (cqe.cid, cqe.dw2.sqid), (cid, 1))


@scenario("queues")
async def many_queues_in_flight(c: Run):
    """Writes and Reads on four I/O queues at once, all rung before any completion is
    looked at: each completes once, successfully, with its data."""
    h = c.host
    await up(c, 4)
    size = h.lba_bytes()
    data = {q: pattern(("queues", q), 4 * size) for q in range(1, 5)}
    writes = [await h.submit_write(q, 8 * q, data[q], ring=False) for q in range(1, 5)]
    for q in range(1, 5):
        await h.ring_sq(q)
    for cmd in await h.io_wait_all(writes):
        c.status(f"Write on SQ {cmd.qid}", cmd, G.SUCCESS)
    reads = [await h.submit_read(q % 4 + 1, 8 * q, 4) for q in range(1, 5)]
    for q, cmd in zip(range(1, 5), await h.io_wait_all(reads), strict=True):
        c.equal(f"Read of SQ {q}'s blocks", cmd.data, data[q])


@scenario("queues")
async def weighted_round_robin(c: Run):
    """CAP.AMS bit 0: weighted round robin with urgent priority class offered; with
    CC.AMS = 001b the urgent SQ is served first, then high, medium and low by their
    weights (Set Features Arbitration: 4, 2, 1), seen in batches of released CQ slots
    (nvmetb.scenarios.arbitration); CC.AMS = 010b (not offered) fails to enable (CFS)."""
    h = c.host
    cap = await h.read_cap()
    c.equal("CAP.AMS bit 0 (weighted round robin with urgent class)", cap.ams & 1, 1,
            qemu=(0, WHY_WRR))
    cqe, batches = await arbitration_batches(h, timeout_us=200 * c.scale)
    c.status("Set Features Arbitration (weights)", cqe, G.SUCCESS,
             qemu=(C.FEATURE_NOT_CHANGEABLE, True, "QEMU 7.2 implements no arbitration: "
                   "Set Features Arbitration is Feature Not Changeable there"))
    for i, want in enumerate(ARBITRATION_EXPECTED):
        got = batches[i] if i < len(batches) else None
        c.equal(f"batch {i + 1}: commands fetched per SQ", got, want, qemu=(ANY, WHY_WRR))
    await h.disable()
    await set_admin(c, c.t.alloc(PAGE_BYTES, name="asq"), c.t.alloc(PAGE_BYTES, name="acq"))
    await h.write_reg(Reg.CC, _cc(en=1, ams=0b010))
    status = await wait_csts(c, lambda s: s.rdy or s.cfs)
    c.equal("CC.AMS 010b: (CSTS.RDY, CFS)", (status.rdy, status.cfs), (0, 1),
            qemu=((1, 0), "QEMU 7.2 does not check CC.AMS at enable"))
    await h.write_reg(Reg.CC, _cc(en=0))
    status = await wait_csts(c, lambda s: not s.rdy and not s.cfs)
    c.equal("CSTS after CC.EN = 0", (status.rdy, status.cfs), (0, 0))
    await up(c, 1)


# == Interrupts ===========================================================================

@scenario("interrupts", ci_slice=True)
async def msix_per_queue(c: Run):
    """Each I/O CQ's completions raise its own vector (IV = QID): a Flush on SQ 1 fires
    vector 1 and not vector 2, one on SQ 2 fires vector 2."""
    h = c.host
    await up(c, 2)
    await c.settle(5)
    base = {v: vector_count(c, v) for v in (1, 2)}
    await h.flush(1)
    c.true("vector 1 fired", await c.until(lambda: vector_count(c, 1) > base[1]))
    await c.settle(5)
    c.equal("vector 2 silent", vector_count(c, 2), base[2])
    await h.flush(2)
    c.true("vector 2 fired", await c.until(lambda: vector_count(c, 2) > base[2]))


@scenario("interrupts", ci_slice=True)
async def msix_masked_pba(c: Run):
    """A completion on a masked vector sends nothing and sets its PBA bit; unmasking
    sends the message and clears the bit."""
    h = c.host
    await up(c, 1)
    ctrl = MSIX_TABLE_BASE + MSIX_ENTRY_BYTES * 1 + 12
    await c.t.mmio_write(ctrl, 1)
    await c.settle(5)
    before = vector_count(c, 1)
    await h.flush(1)
    await c.settle(5)
    c.equal("masked: no message", vector_count(c, 1), before)
    c.equal("PBA bit 1", (await c.t.mmio_read(MSIX_PBA_BASE, 4)) >> 1 & 1, 1)
    await c.t.mmio_write(ctrl, 0)
    c.true("unmasked: the message", await c.until(lambda: vector_count(c, 1) > before))
    c.equal("PBA bit 1 cleared", (await c.t.mmio_read(MSIX_PBA_BASE, 4)) >> 1 & 1, 0)


@scenario("interrupts")
async def msix_function_mask(c: Run):
    """With the MSI-X function mask set, a completion sends nothing; clearing it sends
    the pending message."""
    h = c.host
    await up(c, 1)
    await c.t.pci_config(msix_function_mask=True)
    await c.settle(5)
    before = vector_count(c, 1)
    await h.flush(1)
    await c.settle(5)
    c.equal("function masked: no message", vector_count(c, 1), before)
    await c.t.pci_config(msix_function_mask=False)
    c.true("unmasked: the message", await c.until(lambda: vector_count(c, 1) > before))


@scenario("interrupts")
async def cq_interrupts_disabled(c: Run):
    """An I/O CQ created with IEN = 0 posts its entries and raises no vector."""
    h = c.host
    await up(c, 1)
    await h.create_io_cq(2, 8, vector=2, ien=False)
    await h.create_io_sq(2, 8)
    await c.settle(5)
    before = vector_count(c, 2)
    cmd = await h.io_wait(await h.submit_flush(2))
    c.status("Flush on the IEN = 0 queue", cmd, G.SUCCESS)
    await c.settle(5)
    c.equal("vector 2 silent", vector_count(c, 2), before)


@scenario("interrupts", ci_slice=True)
async def intx_masking(c: Run):
    """MSI-X disabled: a completion asserts INTx; INTMS masks it; INTMC unmasks it;
    consuming the entries releases it."""
    c.need("intx", "the transport cannot see the INTx level")
    h = c.host
    await h.read_cap()
    await h.t.pci_config(bus_master=True, msix_enable=False)
    await h.disable()
    await h.enable()
    cid = await h.submit(0, build_sqe(AdminOpcode.GET_FEATURES, 0, cdw10=1))
    c.true("INTx after a completion", await c.until(c.t.intx))
    await h.write_reg(Reg.INTMS, 1)
    c.true("INTx masked", await c.until(lambda: not c.t.intx()))
    await h.write_reg(Reg.INTMC, 1)
    c.true("INTx unmasked", await c.until(c.t.intx))
    await h.wait_completion(0, cid)
    c.true("INTx after the CQ is consumed", await c.until(lambda: not c.t.intx()))


# == NVM I/O ==================================================================================

async def io_up(c: Run, queues=2):
    await up(c, queues)
    c.host.track_namespace()
    return c.host


@scenario("io", ci_slice=True)
async def write_read_prp_shapes(c: Run):
    """Write then Read back across PRP shapes: a DWORD offset in PRP1, PRP1 + PRP2, a
    PRP list, a list with an offset, data above 4 GiB; what is read is what was
    written."""
    h = await io_up(c)
    size = h.lba_bytes()
    cases = (("DWORD offset", 1, PrpLayout(offset=4), PrpLayout(offset=PAGE_BYTES - 4)),
             ("PRP1 + PRP2", 2 * PAGE_BYTES // size, PrpLayout(), PrpLayout(offset=0x10)),
             ("PRP list", 3 * PAGE_BYTES // size, PrpLayout(), PrpLayout(offset=0x300)),
             ("list with an offset", 5 * PAGE_BYTES // size, PrpLayout(list_offset=0x7F0),
              PrpLayout(list_offset=8, shuffle=True)),
             ("above 4 GiB", 3 * PAGE_BYTES // size, PrpLayout(data_high=True,
                                                               list_high=True),
              PrpLayout(offset=0x200, data_high="mixed")))
    slba = 0
    for label, blocks, wl, rl in cases:
        data = pattern(("shapes", label), blocks * size)
        c.status(f"Write {label}", await h.write(1, slba, data, layout=wl, check=False),
                 G.SUCCESS)
        cmd = await h.io_wait(await h.submit_read(2, slba, blocks, layout=rl))
        c.status(f"Read {label}", cmd, G.SUCCESS)
        c.equal(f"data {label}", cmd.data, data)
        slba += blocks


@scenario("io")
async def prp_chained_list(c: Run):
    """A transfer whose PRP list fills its page from an offset and chains to a second
    list page (the last entry of the page points to the next list) [NVMe 1.4 §4.3]:
    the data read back is the data written."""
    h = await io_up(c)
    size = h.lba_bytes()
    blocks = 6 * PAGE_BYTES // size
    data = pattern("chained", blocks * size)
    h.shadow = None                     # the data is compared here, whatever came back
    c.status("Write, chained after 2 entries",
             await h.write(1, 0, data, layout=PrpLayout(chain_after=2), check=False),
             G.SUCCESS)
    cmd = await h.io_wait(await h.submit_read(1, 0, blocks, layout=PrpLayout()))
    c.equal("data through a chained list", cmd.data, data)


@scenario("io")
async def prp_invalid_offsets(c: Run):
    """Invalid PRP Offset + DNR: PRP2 of a two-page transfer not page aligned; a PRP
    list entry not page aligned. PRP1 with bits 1:0 set: ours refuses it (the spec
    allows the check), QEMU ignores the bits."""
    h = await io_up(c)
    size = h.lba_bytes()
    two = 2 * PAGE_BYTES // size
    three = 3 * PAGE_BYTES // size
    c.status("PRP2 data page + 8", await h.read(1, 0, two, layout=PrpLayout(bad_prp2=8),
                                                check=False, name="failing"),
             G.INVALID_PRP_OFFSET, True)
    c.status("list entry not aligned", await h.read(1, 0, three,
                                                    layout=PrpLayout(bad_entry=0),
                                                    check=False, name="failing"),
             G.INVALID_PRP_OFFSET, True)
    c.status("PRP1 + 2", await h.read(1, 0, 1, layout=PrpLayout(bad_prp1=2), check=False,
                                      name="failing"),
             G.INVALID_PRP_OFFSET, True,
             qemu=(G.SUCCESS, False, "PRP1 bits 1:0: QEMU ignores them; the spec lets a "
                                     "controller refuse them (ours does)"))


@scenario("io")
async def mdts_limit(c: Run):
    """A Read of MDTS worth of data succeeds; one block more → Invalid Field + DNR."""
    h = await io_up(c)
    size = h.lba_bytes()
    blocks = h.mdts_bytes // size
    blocks = min(blocks, h.namespace_blocks())
    cmd = await h.io_wait(await h.submit_read(1, 0, blocks), timeout_us=None)
    c.status("Read of MDTS", cmd, G.SUCCESS)
    c.status("Read of MDTS + 1 block", await h.read(1, 0, h.mdts_bytes // size + 1,
                                                    check=False, name="failing"),
             G.INVALID_FIELD, True)


@scenario("io", ci_slice=True)
async def lba_out_of_range(c: Run):
    """LBA Out of Range + DNR: a Read, a Write and a Write Zeroes past the end, and a
    Read whose SLBA + NLB overflows 64 bits; the last block itself is fine."""
    h = await io_up(c)
    n = h.namespace_blocks()
    size = h.lba_bytes()
    c.status("Read of the last block", await h.read(1, n - 1, 1, check=False), G.SUCCESS)
    c.status("Read past the end", await h.read(1, n - 1, 2, check=False, name="failing"),
             G.LBA_OUT_OF_RANGE, True)
    c.status("Write past the end", await h.write(1, n, bytes(size), check=False,
                                                 name="failing"),
             G.LBA_OUT_OF_RANGE, True)
    c.status("Write Zeroes past the end", await h.write_zeroes(1, n - 1, 2, check=False),
             G.LBA_OUT_OF_RANGE, True)
    c.status("Read overflowing", await h.read(1, M64, 2, check=False, name="failing"),
             G.LBA_OUT_OF_RANGE, True)


@scenario("io")
async def io_invalid_namespace(c: Run):
    """I/O with NSID 0 or FFFFFFFFh: Invalid Namespace + DNR; NSID 2: ours Invalid
    Namespace (beyond NN); Flush takes FFFFFFFFh."""
    h = await io_up(c)
    c.status("Read NSID 0", await h.read(1, 0, 1, nsid=0, check=False, name="failing"),
             G.INVALID_NAMESPACE, True)
    c.status("Read NSID FFFFFFFFh", await h.read(1, 0, 1, nsid=BROADCAST_NSID, check=False,
                                                 name="failing"),
             G.INVALID_NAMESPACE, True,
             qemu=(G.INVALID_FIELD, True, "the broadcast NSID on a command that does not "
                                          "take it: QEMU 7.2 answers Invalid Field; ours, "
                                          "as NVMe 1.4 for an invalid NSID, Invalid "
                                          "Namespace"))
    c.status("Read NSID 2", await h.read(1, 0, 1, nsid=2, check=False, name="failing"),
             G.INVALID_NAMESPACE, True,
             qemu=(G.INVALID_FIELD, True, WHY_NN + " (QEMU: Invalid Field for an inactive "
                                                   "NSID)"))
    c.status("Flush NSID FFFFFFFFh", await h.flush(1, nsid=BROADCAST_NSID, check=False),
             G.SUCCESS)
    c.status("Flush NSID 0", await h.flush(1, nsid=0, check=False), G.INVALID_NAMESPACE,
             True)


@scenario("io")
async def io_invalid_opcode(c: Run):
    """An unknown I/O opcode (7Fh) → Invalid Opcode + DNR; FUSE ≠ 0 on a Read → Invalid
    Field."""
    h = await io_up(c)
    cmd = await h.io_wait(await h.io_submit(1, 0x7F))
    c.status("opcode 7Fh", cmd, G.INVALID_OPCODE, True)
    c.status("Read with FUSE", await h.read(1, 0, 1, fuse=1, check=False, name="failing"),
             G.INVALID_FIELD)


@scenario("io", ci_slice=True)
async def flush_and_write_zeroes(c: Run):
    """Flush succeeds; Write Zeroes over part of written data: those blocks read as
    zeroes, the blocks around keep their data."""
    h = await io_up(c)
    size = h.lba_bytes()
    data = pattern("zeroes", 16 * size)
    await h.write(1, 0, data)
    c.status("Flush", await h.flush(1, check=False), G.SUCCESS)
    c.status("Write Zeroes 4..7", await h.write_zeroes(1, 4, 4, check=False), G.SUCCESS)
    _, back = await h.read(2, 0, 16)
    c.equal("blocks 0..3", back[:4 * size], data[:4 * size])
    c.equal("blocks 4..7 zero", back[4 * size:8 * size], bytes(4 * size))
    c.equal("blocks 8..15", back[8 * size:], data[8 * size:])


@scenario("io")
async def dataset_management(c: Run):
    """Dataset Management with AD: success; where DLFEAT says deallocated blocks read as
    zeroes (001b), the ranges read as zeroes and the blocks around keep their data.
    Without AD: success."""
    h = await io_up(c)
    size = h.lba_bytes()
    data = pattern("dsm", 32 * size)
    await h.write(1, 0, data)
    c.status("DSM AD", await h.dataset_management(1, [(0, 8), (16, 8)], check=False),
             G.SUCCESS)
    c.status("DSM without AD", await h.dataset_management(1, [(0, 1)], ad=False,
                                                          check=False), G.SUCCESS)
    dlfeat = _decode(Dlfeat, bytes([h.namespace().dlfeat]))
    h.shadow = None                     # deallocated blocks: what DLFEAT says, checked here
    _, back = await h.read(2, 0, 32)
    c.equal("blocks 8..15 kept", back[8 * size:16 * size], data[8 * size:16 * size])
    if dlfeat.read_value == 1:
        c.equal("deallocated 0..7 read zero", back[:8 * size], bytes(8 * size))
        c.equal("deallocated 16..23 read zero", back[16 * size:24 * size], bytes(8 * size))


@scenario("io", ci_slice=True)
async def compare_command(c: Run):
    """Compare with the data stored: success; with one byte different: Compare Failure
    (2/85h)."""
    h = await io_up(c)
    size = h.lba_bytes()
    data = pattern("compare", 4 * size)
    await h.write(1, 0, data)
    c.status("Compare equal", await h.compare(1, 0, data, check=False), G.SUCCESS)
    bad = data[:100] + bytes([data[100] ^ 1]) + data[101:]
    c.status("Compare different", await h.compare(1, 0, bad, check=False),
             M.COMPARE_FAILURE)


@scenario("io")
async def format_nvm(c: Run):
    """Format NVM to the 4 KiB format (found in Identify Namespace): success, the
    namespace reads as zeroes, NSZE = bytes / 4096, 4 KiB I/O works; back to 512 B;
    an LBAF beyond NLBAF → Invalid Format + DNR."""
    h = await io_up(c)
    total = h.namespace_blocks() * h.lba_bytes()
    await h.write(1, 0, pattern("format", 8 * h.lba_bytes()))
    c.status("LBAF 15", await h.format_nvm(15, check=False), C.INVALID_FORMAT, True)
    lbaf = lba_format_index(c, 12)
    c.true("a 4 KiB format offered", lbaf is not None)
    c.status("Format to 4 KiB", await h.format_nvm(lbaf, check=False,
                                                   timeout_us=40 * h.command_timeout_us),
             G.SUCCESS)
    c.equal("LBA size", h.lba_bytes(), 4096)
    c.equal("NSZE", h.namespace_blocks(), total // 4096)
    _, back = await h.read(1, 0, 2)
    c.equal("formatted blocks read zero", back, bytes(2 * 4096))
    data = pattern("4k", 2 * 4096)
    await h.write(2, 1, data)
    _, back = await h.read(1, 1, 2)
    c.equal("4 KiB blocks read back", back, data)
    lbaf = lba_format_index(c, 9)
    c.status("Format back to 512 B", await h.format_nvm(lbaf, check=False,
                                                        timeout_us=40 * h.command_timeout_us),
             G.SUCCESS)
    c.equal("LBA size again", h.lba_bytes(), 512)


@scenario("io")
async def abort_io_command(c: Run):
    """Abort of an I/O command that already completed: success with DW0 bit 0 = 1 (not
    aborted); the queue keeps working."""
    h = await io_up(c)
    cmd = await h.io_wait(await h.submit_flush(1))
    cqe = await h.abort(1, cmd.cid)
    c.equal("Abort DW0 bit 0", cqe.dw0 & 1, 1)
    c.status("a Flush after", await h.flush(1, check=False), G.SUCCESS)


@scenario("io", ci_slice=True)
async def reset_in_traffic(c: Run):
    """CC.EN = 0 with Writes in flight on two queues: RDY clears within CAP.TO; every
    entry posted before names a submitted CID (the driver checks); after bring-up the
    controller works and blocks no Write touched keep their data."""
    h = await io_up(c)
    size = h.lba_bytes()
    keep = pattern("kept", 8 * size)
    await h.write(1, 64, keep)
    for i in range(6):
        await h.submit_write(1 + i % 2, 8 * i, pattern(("traffic", i), 8 * size))
    # Which of them ran before the reset is timing: their blocks are undefined.
    undefined = [r for cmd in h.io_pending.values() if cmd.writes for r in cmd.byte_ranges]
    await h.disable()
    forget = getattr(c.t, "forget_io", None)
    if forget is not None:
        forget(undefined=undefined)
    c.equal("CSTS.RDY after reset", (await csts(c)).rdy, 0)
    await up(c, 2)
    _, back = await h.read(2, 64, 8)
    c.equal("untouched blocks", back, keep)
    await h.verify_io(blocks=2, first_lba=80)


@scenario("io", ci_slice=True)
async def dma_error_data_transfer(c: Run):
    """A Write whose data page cannot be read completes with Data Transfer Error; the
    next commands work."""
    c.need("fail_reads", "the transport cannot make host memory reads fail")
    h = await io_up(c)
    size = h.lba_bytes()
    cmd = await h.submit_write(1, 0, pattern("dte", 8 * size), ring=False, name="failing")
    c.t.fail_reads(cmd.prp.pieces[-1][0], cmd.prp.pieces[-1][0] + cmd.prp.pieces[-1][1])
    await h.ring_sq(1)
    c.status("Write with an unreadable page", await h.io_wait(cmd), G.DATA_TRANSFER_ERROR)
    c.t.clear_faults()
    await h.write(1, 0, pattern("after", 8 * size))


@scenario("io")
async def bus_master_off(c: Run):
    """Bus mastering off: the controller does no DMA, so a submitted command does not
    complete; ours holds it and runs it once bus mastering is back (DESIGN.md §11), QEMU
    fails the SQ fetch (CSTS.CFS)."""
    h = await io_up(c)
    await c.t.pci_config(bus_master=False)
    cmd = await h.submit_flush(1)
    await c.settle(20)
    cq = await raw_cq(c, 1)
    c.equal("nothing posted", sum(e.status.p == h.cqs[1].phase for e in cq[h.cqs[1].head:]),
            0)
    await c.t.pci_config(bus_master=True)
    status = await csts(c)
    c.equal("CSTS.CFS", status.cfs, 0,
            qemu=(1, "QEMU 7.2 fails DMA with bus mastering off and sets CFS on the failed "
                     "fetch; ours waits for bus mastering (DESIGN.md §11)"))
    if not status.cfs:
        c.status("the Flush after bus mastering is back", await h.io_wait(cmd), G.SUCCESS)
