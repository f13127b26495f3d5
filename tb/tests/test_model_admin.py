"""The reference model's queue engine and admin command set, against
docs/admin-commands.md and the NVMe 1.4 specification.

The host of ``model_host`` (plain Python, no simulator) allocates queues in a sparse
memory, builds SQEs with the layouts, rings doorbells through ``model.write`` and reads
the completions back from memory. Data the controller returns is checked against the builders of
``nvmecore.nvme.identify`` and, for the fields the contract fixes, against the spec's byte
offsets read with ``struct``.
"""

import pytest
from amaranth.lib import data

from model_host import (
    CONFIG,
    MSIX_ADDR,
    MSIX_DATA,
    OK,
    PAGE,
    A,
    C,
    G,
    Host,
    S,
    dnr,
    u16,
    u32,
    u64,
)
from nvmecore import CoreConfig
from nvmecore.layouts import (
    DOORBELL_BASE,
    MSIX_TABLE_BASE,
    Cc,
    Csts,
    NvmOpcode,
    Reg,
    ShnType,
    ShstState,
)
from nvmecore.nvme import identify
from nvmetb.model import CYCLES_PER_TIME_UNIT, CompletionEntry, ControllerModel, DmaRead

pytestmark = pytest.mark.quick


@pytest.fixture
def host():
    h = Host()
    h.enable()
    return h


# -- Posting, phase, SQHD ----------------------------------------------------------------

def test_identify_controller_completion_and_interrupt(host):
    buf = host.alloc()
    e = host.cmd(A.IDENTIFY, prp1=buf, cdw10=0x01)
    assert e == CompletionEntry(cid=0x100, sqid=0, sqhd=1, status=OK, phase=1, dw0=0)
    assert host.mem.read(buf, PAGE) == identify.identify_controller(CONFIG, host.model.device_id)
    # The MSI-X message of vector 0, the admin CQ's, follows the entry.
    assert [(w.addr, w.payload) for w in host.model.dma_writes] == \
        [(MSIX_ADDR, (MSIX_DATA).to_bytes(4, "little"))]
    assert host.model.posted[0] == [e]
    assert host.model.dma_reads == [DmaRead(host.sqs[0].base, 64)]


def test_cq_wrap_and_phase_over_several_laps():
    host = Host()
    host.enable(sq_entries=5, cq_entries=3)       # 2 usable CQ slots
    k = 0
    for burst in (1, 2, 1, 2, 2, 1, 2, 2, 2, 1, 1, 2):
        cids = [host.submit(0, A.GET_FEATURES, cdw10=0x01, ring=False) for _ in range(burst)]
        host.ring_sq(0)
        entries = host.reap(0)
        assert [e.cid for e in entries] == cids
        for e in entries:
            assert e.phase == 1 - (k // 3) % 2             # flips every lap of 3 slots
            assert e.sqhd == (k + 1) % 5                   # head just after the command
            assert e.status == OK and e.dw0 == 0b111       # Arbitration: AB = 111b
            k += 1
    assert k == 19 and host.cqs[0].phase == 1 - (19 // 3) % 2


def test_full_cq_holds_back_only_its_sqs(host):
    host.pair(1, entries=8, cq_entries=4)        # CQ 1: 3 usable slots
    host.pair(2, entries=8, cq_entries=4)
    sq1 = host.io_burst(1, 6)
    sq2 = host.io_burst(2, 3)
    # CQ 1 is full after three; SQ 2 is not held back by it.
    assert [e.cid for e in host.model.posted[1]] == sq1[:3]
    assert [e.cid for e in host.model.posted[2]] == sq2
    assert host.model.sqs[1].head == 3
    # Reading the entries returns no credit; the CQ head doorbell does.
    assert len(host.reap(1, ring=False)) == 3
    assert len(host.model.posted[1]) == 3
    host.ring_cq(1)
    assert [e.cid for e in host.model.posted[1]] == sq1
    e = host.model.posted[1][-1]
    assert e.status == OK and e.sqid == 1 and e.sqhd == 6


def test_round_robin_and_arbitration_burst(host):
    """Two SQs sharing a CQ: with AB = 0 they alternate one command at a time; with no
    burst limit each turn takes all that is there."""
    assert host.create_cq(1, 32).status == OK
    assert host.create_sq(1, 8, 1).status == OK
    assert host.create_sq(2, 8, 1).status == OK
    for ab in (0, 0b111):
        assert host.set_feature(0x01, ab).status == OK
        host.model.set_cfg(bus_master_enable=False)      # hold fetching while both fill
        a = host.io_burst(1, 3)
        b = host.io_burst(2, 3)
        host.model.set_cfg(bus_master_enable=True)
        got = [(e.sqid, e.cid) for e in host.reap(1)]
        if ab == 0:
            assert got == [(1, a[0]), (2, b[0]), (1, a[1]), (2, b[1]), (1, a[2]), (2, b[2])]
        else:
            assert got == [(1, c) for c in a] + [(2, c) for c in b]


def test_fetch_burst_limits(host):
    model = host.model
    # Ring wrap and CQ credit: SQ of 8, CQ of 4 (3 credits).
    host.pair(1, entries=8, cq_entries=4)
    host.io_burst(1, 6, ring=False)
    host.ring_sq(1)
    sq = host.sqs[1]
    assert model.dma_reads[-1:] == [DmaRead(sq.base, 3 * 64)]          # credit 3
    host.reap(1)
    assert model.dma_reads[-1:] == [DmaRead(sq.base + 3 * 64, 3 * 64)]
    host.reap(1)
    before = len(model.dma_reads)
    host.io_burst(1, 5, ring=False)         # tail 6 -> 3: wraps after two entries
    host.ring_sq(1)
    host.reap(1)
    host.reap(1)
    assert model.dma_reads[before:] == [DmaRead(sq.base + 6 * 64, 2 * 64),   # ring end
                                        DmaRead(sq.base, 64),                # credit 1
                                        DmaRead(sq.base + 64, 2 * 64)]       # the rest
    # Max read request size 128 B: two entries per read.
    model.set_cfg(max_read_request_size=0)
    before = len(model.dma_reads)
    host.io_burst(1, 3, ring=False)
    host.ring_sq(1)
    assert [r.length for r in model.dma_reads[before:]] == [128, 64]
    host.reap(1)


def test_fetch_never_crosses_4k():
    host = Host(CoreConfig(io_queues=1, max_queue_entries=256))
    host.enable()
    host.pair(1, entries=128, cq_entries=128)     # the SQ spans two 4 KiB pages
    host.model.set_cfg(max_read_request_size=5)
    host.io_burst(1, 60, ring=False)
    host.ring_sq(1)
    host.reap(1)
    before = len(host.model.dma_reads)
    host.io_burst(1, 8, ring=False)               # entries 60..67: 64 × 64 B = 4 KiB
    host.ring_sq(1)
    base = host.sqs[1].base
    assert host.model.dma_reads[before:] == [DmaRead(base + 60 * 64, 4 * 64),
                                             DmaRead(base + 64 * 64, 4 * 64)]
    assert [e.sqhd for e in host.reap(1)] == list(range(61, 69))


# -- Command gating ---------------------------------------------------------------------

@pytest.mark.parametrize("opc", [0x03, 0x07, 0x0B, 0x0D, 0x10, 0x11, 0x7C, 0x81, 0xFF])
def test_invalid_admin_opcode(host, opc):
    assert host.cmd(opc).status == dnr(G.INVALID_OPCODE)


@pytest.mark.parametrize("opc,fuse,psdt,status", [
    (A.IDENTIFY, 0, 1, dnr(G.INVALID_FIELD)),
    (A.IDENTIFY, 0, 2, dnr(G.INVALID_FIELD)),
    (A.GET_FEATURES, 1, 0, S(G.INVALID_FIELD)),          # FUSE: no DNR
    (A.GET_FEATURES, 2, 0, S(G.INVALID_FIELD)),
    (A.GET_FEATURES, 1, 1, dnr(G.INVALID_FIELD)),        # PSDT is checked first
    (0x03, 1, 1, dnr(G.INVALID_OPCODE)),                 # the opcode before both
])
def test_gating_order(host, opc, fuse, psdt, status):
    buf = host.alloc()
    assert host.cmd(opc, fuse=fuse, psdt=psdt, prp1=buf, cdw10=1).status == status
    assert host.mem.read(buf, 4) == bytes(4)             # nothing transferred


def test_io_queue_unknown_opcodes(host):
    """An I/O SQ runs the NVM command set (test_model_io.py); opcodes outside it are
    refused there, not by the admin gating."""
    host.pair(1)
    for opc in (0x04, 0x06, 0x0C, 0x7F):
        cid = host.submit(1, opc, nsid=1)
        (e,) = host.reap(1)
        assert (e.cid, e.sqid, e.status) == (cid, 1, dnr(G.INVALID_OPCODE))
    assert host.model.error_log.count == 4
    cid = host.submit(1, NvmOpcode.FLUSH, nsid=1)
    assert host.reap(1)[0].status == OK


# -- Create / Delete I/O queues ------------------------------------------------------------

MQES = CONFIG.max_queue_entries - 1
NQ = CONFIG.io_queues


@pytest.mark.parametrize("case,status", [
    (dict(), OK),
    (dict(qsize=MQES), OK),
    (dict(qid=NQ), OK),
    (dict(iv=0, msix=False), OK),
    (dict(ien=0, iv=4), OK),
    (dict(cc={"iosqes": 0}), dnr(C.INVALID_QUEUE_SIZE)),
    (dict(cc={"iocqes": 5}), dnr(C.INVALID_QUEUE_SIZE)),
    (dict(qid=0), dnr(C.INVALID_QUEUE_IDENTIFIER)),
    (dict(qid=NQ + 1), dnr(C.INVALID_QUEUE_IDENTIFIER)),
    (dict(qid=0xFFFF), dnr(C.INVALID_QUEUE_IDENTIFIER)),
    (dict(existing=True), dnr(C.INVALID_QUEUE_IDENTIFIER)),
    (dict(qsize=0), dnr(C.INVALID_QUEUE_SIZE)),
    (dict(qsize=MQES + 1), dnr(C.INVALID_QUEUE_SIZE)),
    (dict(offset=0x800), dnr(G.INVALID_PRP_OFFSET)),
    (dict(offset=4), dnr(G.INVALID_PRP_OFFSET)),
    (dict(iv=CONFIG.msix_vectors), dnr(C.INVALID_INTERRUPT_VECTOR)),
    (dict(iv=1, msix=False), dnr(C.INVALID_INTERRUPT_VECTOR)),
    (dict(iv=1, ien=0, msix=False), dnr(C.INVALID_INTERRUPT_VECTOR)),
    (dict(pc=0), dnr(G.INVALID_FIELD)),
    # The first check that applies decides.
    (dict(cc={"iosqes": 0}, qid=0), dnr(C.INVALID_QUEUE_SIZE)),
    (dict(qid=0, qsize=0), dnr(C.INVALID_QUEUE_IDENTIFIER)),
    (dict(qsize=0, offset=0x800), dnr(C.INVALID_QUEUE_SIZE)),
    (dict(offset=0x800, iv=99), dnr(G.INVALID_PRP_OFFSET)),
    (dict(iv=99, pc=0), dnr(C.INVALID_INTERRUPT_VECTOR)),
])
def test_create_io_cq(case, status):
    host = Host(msix=case.get("msix", True))
    host.enable(**case.get("cc", {}))
    qid = case.get("qid", 1)
    if case.get("existing"):
        assert host.create_cq(qid, 4).status == OK
    base = host.alloc() + case.get("offset", 0)
    model = host.model
    got = host.cmd(A.CREATE_IO_CQ, prp1=base,
                   cdw10=case.get("qsize", 7) << 16 | qid,
                   cdw11=case.get("iv", 1) << 16 | case.get("ien", 1) << 1 | case.get("pc", 1))
    assert got.status == status
    created = qid in model.cqs and model.cqs[qid].base == base
    assert created == (status == OK)
    if status == OK:
        cq = model.cqs[qid]
        assert (cq.size, cq.head, cq.tail, cq.phase) == (case.get("qsize", 7) + 1, 0, 0, 1)
        assert (cq.vector, cq.ien) == (case.get("iv", 1), bool(case.get("ien", 1)))
        assert model.queue_size(qid, True) == cq.size      # the doorbell decoder knows it


@pytest.mark.parametrize("case,status", [
    (dict(), OK),
    (dict(qsize=MQES, qprio=3), OK),
    (dict(cqid=0), dnr(C.COMPLETION_QUEUE_INVALID)),
    (dict(cqid=2), dnr(C.COMPLETION_QUEUE_INVALID)),
    (dict(cqid=NQ + 1), dnr(C.COMPLETION_QUEUE_INVALID)),
    (dict(qid=0), dnr(C.INVALID_QUEUE_IDENTIFIER)),
    (dict(qid=NQ + 1), dnr(C.INVALID_QUEUE_IDENTIFIER)),
    (dict(existing=True), dnr(C.INVALID_QUEUE_IDENTIFIER)),
    (dict(qsize=0), dnr(C.INVALID_QUEUE_SIZE)),
    (dict(qsize=MQES + 1), dnr(C.INVALID_QUEUE_SIZE)),
    (dict(offset=0x40), dnr(G.INVALID_PRP_OFFSET)),
    (dict(pc=0), dnr(G.INVALID_FIELD)),
    (dict(cqid=0, qid=0), dnr(C.COMPLETION_QUEUE_INVALID)),
    (dict(qid=0, qsize=0), dnr(C.INVALID_QUEUE_IDENTIFIER)),
    (dict(qsize=0, offset=0x40), dnr(C.INVALID_QUEUE_SIZE)),
    (dict(offset=0x40, pc=0), dnr(G.INVALID_PRP_OFFSET)),
])
def test_create_io_sq(host, case, status):
    assert host.create_cq(1, 8).status == OK
    qid = case.get("qid", 3)
    if case.get("existing"):
        assert host.create_sq(qid, 4, 1).status == OK
    base = host.alloc() + case.get("offset", 0)
    got = host.cmd(A.CREATE_IO_SQ, prp1=base, cdw10=case.get("qsize", 7) << 16 | qid,
                   cdw11=(case.get("cqid", 1) << 16 | case.get("qprio", 0) << 1
                          | case.get("pc", 1)))
    assert got.status == status
    if status == OK:
        sq = host.model.sqs[qid]
        assert (sq.base, sq.size, sq.cqid, sq.qprio) == (base, case.get("qsize", 7) + 1, 1,
                                                         case.get("qprio", 0))
    else:                                                 # nothing created or changed
        assert host.model.sqs.get(qid) is None or host.model.sqs[qid].base != base


def test_delete_io_sq(host):
    for qid in (0, NQ + 1, 2):
        assert host.cmd(A.DELETE_IO_SQ, cdw10=qid).status == dnr(C.INVALID_QUEUE_IDENTIFIER)
    host.pair(2)
    assert host.cmd(A.DELETE_IO_SQ, cdw10=2).status == OK
    assert 2 not in host.model.sqs and host.model.queue_size(2, False) is None
    events = len(host.model.events)
    host.model.write(DOORBELL_BASE + 16, 1)                # SQ 2 is gone
    assert len(host.model.events) == events + 1
    assert host.cmd(A.DELETE_IO_SQ, cdw10=2).status == dnr(C.INVALID_QUEUE_IDENTIFIER)
    assert host.create_sq(2, 4, 2).status == OK            # the ID can be used again


def test_delete_io_cq(host):
    for qid in (0, NQ + 1, 1):
        assert host.cmd(A.DELETE_IO_CQ, cdw10=qid).status == dnr(C.INVALID_QUEUE_IDENTIFIER)
    host.pair(1)
    assert host.cmd(A.DELETE_IO_CQ, cdw10=1).status == S(C.INVALID_QUEUE_DELETION)   # no DNR
    assert host.cmd(A.DELETE_IO_SQ, cdw10=1).status == OK
    assert host.cmd(A.DELETE_IO_CQ, cdw10=1).status == OK
    assert 1 not in host.model.cqs and host.model.queue_size(1, True) is None
    assert host.cmd(A.DELETE_IO_CQ, cdw10=1).status == dnr(C.INVALID_QUEUE_IDENTIFIER)


# -- Identify -----------------------------------------------------------------------------

@pytest.mark.parametrize("cns,nsid,build", [
    (0x00, 1, lambda c, d: identify.identify_namespace(c, d)),
    (0x01, 0, lambda c, d: identify.identify_controller(c, d)),
    (0x01, 0xFFFF_FFFF, lambda c, d: identify.identify_controller(c, d)),
    (0x02, 0, lambda c, d: identify.active_namespace_list(c, 0)),
    (0x02, 1, lambda c, d: identify.active_namespace_list(c, 1)),
    (0x02, 0xFFFF_FFFD, lambda c, d: bytes(PAGE)),
    (0x03, 1, lambda c, d: identify.namespace_descriptors(c, d)),
])
def test_identify_data(host, cns, nsid, build):
    buf = host.alloc()
    host.mem.write(buf, b"\xAA" * PAGE)
    assert host.cmd(A.IDENTIFY, prp1=buf, nsid=nsid, cdw10=cns).status == OK
    page = host.mem.read(buf, PAGE)
    assert page == build(CONFIG, host.model.device_id)
    if cns == 0x02:
        assert u32(page, 0) == (1 if nsid == 0 else 0)       # NSIDs above CDW1.NSID
    if cns == 0x01:
        assert page[4:24] == b"NVC0123456789ABCDEF "          # SN from device_id
        assert (page[77], u16(page, 78), u32(page, 80)) == (7, 1, 0x00010400)  # MDTS CNTLID VER
        assert (page[259], page[262], u16(page, 266), u16(page, 268)) == (3, 63, 343, 358)


@pytest.mark.parametrize("cns,nsid", [
    (0x00, 0), (0x00, 2), (0x00, 0xFFFF_FFFF), (0x03, 0), (0x03, 0xFFFF_FFFF), (0x03, 7),
    (0x02, 0xFFFF_FFFE), (0x02, 0xFFFF_FFFF),
])
def test_identify_invalid_namespace(host, cns, nsid):
    buf = host.alloc()
    e = host.cmd(A.IDENTIFY, prp1=buf, nsid=nsid, cdw10=cns)
    assert e.status == dnr(G.INVALID_NAMESPACE)
    assert host.mem.read(buf, PAGE) == bytes(PAGE)


@pytest.mark.parametrize("cns", [0x04, 0x05, 0x06, 0x07, 0x08, 0x10, 0x13, 0xFF])
def test_identify_unsupported_cns(host, cns):
    assert host.cmd(A.IDENTIFY, prp1=host.alloc(), nsid=1, cdw10=cns).status == \
        dnr(G.INVALID_FIELD)


def test_identify_prp1_offset_and_prp2(host):
    want = identify.identify_controller(CONFIG, host.model.device_id)
    first, second = host.alloc(), host.alloc()
    e = host.cmd(A.IDENTIFY, prp1=first + 0x104, prp2=second, cdw10=1)
    assert e.status == OK
    assert host.mem.read(first + 0x104, PAGE - 0x104) == want[:PAGE - 0x104]
    assert host.mem.read(second, 0x104) == want[PAGE - 0x104:]
    assert host.mem.read(second + 0x104, 4) == bytes(4)
    # PRP1 page aligned: PRP2 is not used, whatever it holds.
    assert host.cmd(A.IDENTIFY, prp1=host.alloc(), prp2=0x123, cdw10=1).status == OK


@pytest.mark.parametrize("prp1_offset,prp2_offset", [(0x100, 0x10), (0x100, 0x800),
                                                     (0x102, 0), (0x1, 0)])
def test_identify_invalid_prp_offset(host, prp1_offset, prp2_offset):
    first, second = host.alloc(), host.alloc()
    e = host.cmd(A.IDENTIFY, prp1=first + prp1_offset, prp2=second + prp2_offset, cdw10=1)
    assert e.status == dnr(G.INVALID_PRP_OFFSET)
    assert host.mem.read(first, PAGE) == bytes(PAGE)      # checked before any data moves


def test_data_transfer_error(host):
    first, second = host.alloc(), host.alloc()
    host.mem.bad_writes.append((second, second + PAGE))
    e = host.cmd(A.IDENTIFY, prp1=first + 0x200, prp2=second, cdw10=1)
    assert e.status == S(G.DATA_TRANSFER_ERROR)           # no DNR
    e, _ = host.get_log(0x01, 64)
    assert u16(host.mem.read(_, 64), 12) >> 1 == S(G.DATA_TRANSFER_ERROR).field() >> 1


# -- Get Log Page ---------------------------------------------------------------------------

def test_error_log_entries_newest_first(host):
    host.pair(1)
    failures = [
        (0, host.submit(0, 0x03, nsid=5), dnr(G.INVALID_OPCODE), 5),
        (0, host.submit(0, A.GET_FEATURES, fuse=1), S(G.INVALID_FIELD), 0),
        (1, host.submit(1, 0x04, nsid=1), dnr(G.INVALID_OPCODE), 1),
        (0, host.submit(0, A.DELETE_IO_CQ, cdw10=1), S(C.INVALID_QUEUE_DELETION), 0),
    ]
    host.reap(0)
    host.reap(1)
    e, buf = host.get_log(0x01, PAGE)
    assert e.status == OK
    log = host.mem.read(buf, PAGE)
    assert log == host.model.error_log.page()
    for i, (sqid, cid, status, nsid) in enumerate(reversed(failures)):
        entry = log[64 * i:64 * i + 64]
        assert u64(entry, 0) == len(failures) - i                       # error count
        assert (u16(entry, 8), u16(entry, 10)) == (sqid, cid)
        assert u16(entry, 12) == status.field(phase=0)                  # phase tag 0
        assert u16(entry, 14) == 0xFFFF and u64(entry, 16) == 0         # location, LBA
        assert u32(entry, 24) == nsid
    assert log[64 * len(failures):] == bytes(PAGE - 64 * len(failures))


def test_error_log_keeps_64_newest(host):
    for _ in range(66):
        host.cmd(0xC5)
    e, buf = host.get_log(0x01, PAGE)
    log = host.mem.read(buf, PAGE)
    assert [u64(log, 64 * i) for i in (0, 1, 63)] == [66, 65, 3]
    # SMART reports the error count.
    e, buf = host.get_log(0x02, 512)
    assert int.from_bytes(host.mem.read(buf + 176, 16), "little") == 66


def test_log_page_offset_and_length(host):
    smart = identify.smart_log(temperature=313, error_log_entries=0)
    for offset, nbytes in [(0, 512), (4, 8), (508, 4), (500, 64), (0, 8192)]:
        buf = host.alloc(2 * PAGE)
        host.mem.write(buf, b"\xAA" * 2 * PAGE)
        e, _ = host.get_log(0x02, nbytes, offset=offset, buf=buf, prp2=buf + PAGE)
        assert e.status == OK
        n = min(nbytes, 512 - offset)                        # never past the log
        assert host.mem.read(buf, n) == smart[offset:offset + n]
        assert host.mem.read(buf + n, 4) == b"\xAA" * 4


@pytest.mark.parametrize("lid,offset,status", [
    (0x02, 2, dnr(G.INVALID_FIELD)),                   # not DWORD aligned
    (0x02, 512, dnr(G.INVALID_FIELD)),                 # beyond the log
    (0x01, 4096, dnr(G.INVALID_FIELD)),
    (0x03, 1 << 32, dnr(G.INVALID_FIELD)),             # CDW13 holds the upper half
    (0x00, 0, dnr(C.INVALID_LOG_PAGE)),
    (0x04, 0, dnr(C.INVALID_LOG_PAGE)),
    (0x05, 0, dnr(C.INVALID_LOG_PAGE)),
    (0xC0, 0, dnr(C.INVALID_LOG_PAGE)),
    (0x04, 8192, dnr(C.INVALID_LOG_PAGE)),             # no size to be beyond
    (0x04, 2, dnr(G.INVALID_FIELD)),                   # the offset is checked first
])
def test_log_page_refused(host, lid, offset, status):
    e, buf = host.get_log(lid, 64, offset=offset)
    assert e.status == status
    assert host.mem.read(buf, 64) == bytes(64)


def test_smart_and_firmware_slot_logs(host):
    host.model.temperature = 320
    e, buf = host.get_log(0x02, 512)
    log = host.mem.read(buf, 512)
    assert log == identify.smart_log(temperature=320)
    assert (log[0], u16(log, 1), log[3], log[4]) == (0, 320, 100, 10)
    host.model.temperature = 343                            # at the over threshold
    e, buf = host.get_log(0x02, 512)
    assert host.mem.read(buf, 1) == b"\x02"                 # critical warning: temperature
    e, buf = host.get_log(0x03, 512)
    log = host.mem.read(buf, 512)
    assert log == identify.firmware_slot_log(CONFIG)
    assert log[0] == 1 and log[8:16] == CONFIG.firmware_revision.encode().ljust(8)


# -- Features ----------------------------------------------------------------------------

@pytest.mark.parametrize("fid,default,value,readback", [
    (0x01, 0b111, 0xFFFF_FFFF, 0xFFFF_FF07),           # AB, LPW, MPW, HPW
    (0x02, 0, 0xE0, 0xE0),                             # WH; PS = 0
    (0x05, 0, 0x1234, 0x1234),                         # TLER
    (0x08, 0, 0xFFFF_FFFF, 0xFFFF),                    # THR, TIME
    (0x0A, 0, 0xFFFF_FFFF, 1),                         # DN
    (0x0B, 0, 0xFFFF_FFFF, 0xFF),                      # SMART warnings; notices ignored
])
def test_feature_set_get(host, fid, default, value, readback):
    assert host.get_feature(fid) == CompletionEntry(cid=0x100, sqid=0, sqhd=1, status=OK,
                                                    phase=1, dw0=default)
    assert host.set_feature(fid, value).status == OK
    assert host.get_feature(fid).dw0 == readback
    host.reset()
    host.enable()
    assert host.get_feature(fid).dw0 == default           # not persistent across resets


def test_feature_common_checks(host):
    for fid in (0x00, 0x01, 0x07, 0x80):
        assert host.set_feature(fid, 0, sv=1).status == dnr(C.FEATURE_NOT_SAVEABLE)
    for sel in range(1, 8):
        assert host.get_feature(0x01, sel=sel).status == dnr(G.INVALID_FIELD)
    for fid in (0x00, 0x03, 0x0C, 0x0D, 0x0E, 0x80, 0xC0, 0xFF):
        assert host.set_feature(fid, 0).status == dnr(G.INVALID_FIELD)
        assert host.get_feature(fid).status == dnr(G.INVALID_FIELD)


@pytest.mark.parametrize("fid,cdw11", [
    (0x02, 1),                      # PS 1: only power state 0
    (0x02, 0x1F),
    (0x04, 1 << 16 | 300),          # TMPSEL 1
    (0x04, 0xF << 16 | 300),
    (0x04, 2 << 20 | 300),          # THSEL 10b
    (0x04, 3 << 20 | 300),
    (0x05, 1 << 16),                # DULBE
    (0x06, 0), (0x06, 1),           # no volatile write cache
    (0x07, 0xFFFF),                 # NSQR 65536
    (0x07, 0xFFFF << 16),
    (0x09, CONFIG.msix_vectors),    # IV beyond the vectors
    (0x09, 0),                      # IV 0 (admin) without CD
])
def test_feature_set_refused(host, fid, cdw11):
    before = {f: host.get_feature(f, cdw11=0).dw0 for f in (0x01, 0x02, 0x05)}
    assert host.set_feature(fid, cdw11).status == dnr(G.INVALID_FIELD)
    assert {f: host.get_feature(f, cdw11=0).dw0 for f in before} == before


def test_temperature_threshold_feature(host):
    assert host.get_feature(0x04).dw0 == 343                 # over: WCTEMP
    assert host.get_feature(0x04, 1 << 20).dw0 == 0         # under
    assert host.set_feature(0x04, 1 << 20 | 250).status == OK
    assert host.set_feature(0x04, 400).status == OK
    assert host.get_feature(0x04, 1 << 20).dw0 == 250
    assert host.get_feature(0x04).dw0 == 400
    for cdw11 in (1 << 16, 2 << 20, 3 << 20):
        assert host.get_feature(0x04, cdw11).status == dnr(G.INVALID_FIELD)
    assert host.get_feature(0x06).status == dnr(G.INVALID_FIELD)


def test_interrupt_vector_configuration(host):
    assert host.get_feature(0x09, 0).dw0 == 1 << 16          # vector 0: CD = 1
    assert host.get_feature(0x09, 2).dw0 == 2                # others: CD = 0
    assert host.get_feature(0x09, CONFIG.msix_vectors).status == dnr(G.INVALID_FIELD)
    assert host.set_feature(0x09, 1 << 16 | 2).status == OK
    assert host.get_feature(0x09, 2).dw0 == 1 << 16 | 2
    assert host.set_feature(0x09, 1 << 16 | 0).status == OK  # vector 0 with CD


def test_number_of_queues(host):
    allocated = (NQ - 1) << 16 | (NQ - 1)
    for asked in (0, 1 << 16 | 1, 0xFFFE << 16 | 0xFFFE):
        e = host.set_feature(0x07, asked)
        assert (e.status, e.dw0) == (OK, allocated)           # whatever was asked
    assert host.get_feature(0x07).dw0 == allocated
    assert host.create_cq(1, 4).status == OK
    # Once an I/O queue exists, the sequence is wrong; Get still answers.
    assert host.set_feature(0x07, 0).status == dnr(G.COMMAND_SEQUENCE_ERROR)
    assert host.set_feature(0x07, 0xFFFF).status == dnr(G.COMMAND_SEQUENCE_ERROR)
    assert host.get_feature(0x07).dw0 == allocated
    assert host.create_sq(1, 4, 1).status == OK
    assert host.cmd(A.DELETE_IO_SQ, cdw10=1).status == OK
    assert host.set_feature(0x07, 0).status == dnr(G.COMMAND_SEQUENCE_ERROR)  # CQ 1 left
    assert host.cmd(A.DELETE_IO_CQ, cdw10=1).status == OK
    assert host.set_feature(0x07, 0).status == OK


# -- Asynchronous events --------------------------------------------------------------------

def error_event(info):
    return 0 | info << 8 | 0x01 << 16


INVALID_REGISTER, INVALID_VALUE = 0x00, 0x01


def test_aer_held_then_completed_by_an_event(host):
    cid = host.submit(0, A.ASYNC_EVENT_REQ)
    assert host.reap(0) == []                                # held: no completion
    host.model.write(DOORBELL_BASE + 8 * 3, 0)               # SQ 3 does not exist
    (e,) = host.reap(0)
    assert (e.cid, e.status, e.dw0, e.sqhd) == (cid, OK, error_event(INVALID_REGISTER), 1)
    # Fetched commands after it report the head as usual.
    assert host.cmd(A.GET_FEATURES, cdw10=1).sqhd == 2


def test_event_pending_before_the_request(host):
    host.model.write(DOORBELL_BASE + 4, 8)                   # CQ 0 head = size: bad value
    host.model.write(DOORBELL_BASE + 8 * 3, 0)               # another error: merges
    e = host.cmd(A.ASYNC_EVENT_REQ)
    assert (e.status, e.dw0) == (OK, error_event(INVALID_VALUE))
    host.submit(0, A.ASYNC_EVENT_REQ)
    assert host.reap(0) == []                                # nothing left to report


def test_aer_limit(host):
    for _ in range(4):
        host.submit(0, A.ASYNC_EVENT_REQ)
    assert host.reap(0) == []
    assert host.cmd(A.ASYNC_EVENT_REQ).status == S(C.AER_LIMIT_EXCEEDED)   # no DNR
    assert len(host.model.aer.held) == 4


def test_aer_masking_and_rae(host):
    first = host.submit(0, A.ASYNC_EVENT_REQ)
    second = host.submit(0, A.ASYNC_EVENT_REQ)
    host.model.write(DOORBELL_BASE + 8 * 3, 0)
    assert [e.cid for e in host.reap(0)] == [first]
    # The error type is masked: new error events wait.
    host.model.write(DOORBELL_BASE, 9)                       # SQ 0 tail = size
    host.model.write(DOORBELL_BASE + 8 * 4, 0)               # merges with it
    assert host.reap(0) == []
    e, _ = host.get_log(0x01, 64, rae=1)                     # RAE = 1: still masked
    assert e.status == OK
    e, _ = host.get_log(0x02, 64, rae=0)                     # another type's log
    assert e.status == OK
    entries, _ = host.get_log(0x01, 64, rae=0, then=True)   # re-armed: the AER follows
    assert [(e.cid, e.status, e.dw0) for e in entries[1:]] == [
        (second, OK, error_event(INVALID_VALUE))]
    assert entries[0].status == OK


def test_abort(host):
    aer = host.submit(0, A.ASYNC_EVENT_REQ)
    assert host.reap(0) == []
    e = host.cmd(A.ABORT, cdw10=0x7777 << 16 | 0)            # no such command held
    assert (e.status, e.dw0) == (OK, 1)
    host.pair(1)
    e = host.cmd(A.ABORT, cdw10=aer << 16 | 1)               # SQ 1, same CID: not the AER
    assert (e.status, e.dw0) == (OK, 1)
    for sqid in (2, NQ + 1, 0xFFFF):                         # no such SQ
        assert host.cmd(A.ABORT, cdw10=aer << 16 | sqid).status == S(G.INVALID_FIELD)
    abort = host.submit(0, A.ABORT, cdw10=aer << 16 | 0)
    entries = host.reap(0)
    assert [(e.cid, e.status, e.dw0) for e in entries] == [      # QEMU's order
        (aer, S(G.ABORT_REQUESTED), 0), (abort, OK, 0)]
    assert host.model.aer.held == type(host.model.aer.held)()
    assert u16(host.mem.read(host.get_log(0x01, 64)[1], 64), 10) == aer   # logged as error
    host.model.write(DOORBELL_BASE + 8 * 3, 0)               # nothing held any more
    assert host.reap(0) == []


def test_aer_waits_for_an_admin_cq_slot():
    host = Host()
    host.enable(sq_entries=8, cq_entries=2)                  # one usable slot
    aer = host.submit(0, A.ASYNC_EVENT_REQ)
    assert host.reap(0) == []
    cid = host.submit(0, A.GET_FEATURES, cdw10=1)            # takes the slot
    host.model.write(DOORBELL_BASE + 8 * 3, 0)               # event, but the CQ is full
    assert [e.cid for e in host.reap(0, ring=False)] == [cid]
    assert len(host.model.posted[0]) == 1
    host.ring_cq(0)
    (e,) = host.reap(0)
    assert (e.cid, e.dw0) == (aer, error_event(INVALID_REGISTER))


def test_temperature_events(host):
    model = host.model
    aers = [host.submit(0, A.ASYNC_EVENT_REQ) for _ in range(3)]
    model.temperature = 350                                   # AEC bit 1 clear: no event
    assert host.reap(0) == [] and model.events == []
    model.temperature = 313
    assert host.set_feature(0x0B, 0x02).status == OK
    model.temperature = 343                                   # crosses the over threshold
    smart = 1 | 0x01 << 8 | 0x02 << 16
    (e,) = host.reap(0)
    assert (e.cid, e.dw0) == (aers[0], smart)
    model.temperature = 360                                   # still over: no new crossing
    model.temperature = 300
    model.temperature = 345                                   # crossing, but masked
    assert host.reap(0) == []
    entries, _ = host.get_log(0x02, 512, rae=0, then=True)
    assert [(x.cid, x.dw0) for x in entries[1:]] == [(aers[1], smart)]
    # Under threshold; and a threshold change is compared too.
    model.temperature = 300
    assert host.set_feature(0x04, 1 << 20 | 300).status == OK      # under = 300: at it
    assert len(model.events) == 3 and host.reap(0) == []          # SMART still masked
    entries, _ = host.get_log(0x02, 512, rae=0, then=True)
    assert [(x.cid, x.dw0) for x in entries[1:]] == [(aers[2], smart)]


# -- Interrupts ----------------------------------------------------------------------------

def test_coalescing_threshold_counts_completions(host):
    host.pair(1, entries=16, cq_entries=16, iv=1)
    assert host.set_feature(0x08, 255 << 8 | 2).status == OK  # THR 2: every 3rd; TIME long
    admin = host.messages(0)
    host.io_burst(1, 7)
    assert host.messages(1) == 2                             # after the 3rd and the 6th
    host.reap(1)
    assert host.get_feature(0x08).status == OK
    assert host.messages(0) == admin + 1                     # the admin CQ is not coalesced
    host.io_burst(1, 2)
    assert host.messages(1) == 3                             # 7th, 8th, 9th
    assert host.set_feature(0x08, 2).status == OK            # TIME = 0: no delay allowed
    host.io_burst(1, 2)
    assert host.messages(1) == 5                             # every completion fires


def test_coalescing_time(host):
    host.pair(1, entries=16, cq_entries=16, iv=1)
    assert host.set_feature(0x08, 2 << 8 | 9).status == OK   # THR 9, TIME 200 µs
    host.io_burst(1, 3)
    assert host.messages(1) == 0
    host.model.advance_time(2 * CYCLES_PER_TIME_UNIT - 1)
    assert host.messages(1) == 0
    host.model.advance_time(1)
    assert host.messages(1) == 1
    host.model.advance_time(10 * CYCLES_PER_TIME_UNIT)
    assert host.messages(1) == 1                             # nothing pending


def test_coalescing_disable_and_ien(host):
    host.pair(1, iv=1)
    host.pair(2, iv=2, ien=0)
    assert host.set_feature(0x08, 5).status == OK
    assert host.set_feature(0x09, 1 << 16 | 1).status == OK  # vector 1: CD
    host.io_burst(1, 3)
    host.io_burst(2, 3)
    assert (host.messages(1), host.messages(2)) == (3, 0)


def test_msix_message_follows_the_completion_and_masking(host):
    host.pair(1, iv=3)
    host.model.write(MSIX_TABLE_BASE + 16 * 3 + 12, 1)       # mask vector 3
    host.io_burst(1, 1)
    assert host.messages(3) == 0 and host.model.pba[3]
    host.model.write(MSIX_TABLE_BASE + 16 * 3 + 12, 0)
    assert host.messages(3) == 1 and not host.model.pba[3]


def test_intx():
    host = Host(msix=False)
    host.enable()
    cid = host.submit(0, A.GET_FEATURES, cdw10=1)
    assert host.model.intx
    host.model.write(Reg.INTMS, 1)
    assert not host.model.intx
    host.model.write(Reg.INTMC, 1)
    assert host.model.intx
    assert [e.cid for e in host.reap(0)] == [cid]           # the head doorbell empties it
    assert not host.model.intx
    assert host.model.dma_writes == []


# -- Faults, bus mastering, shutdown and resets ---------------------------------------------

def test_fetch_error_is_fatal(host):
    host.pair(1)
    host.mem.bad_reads.append((host.sqs[1].base, host.sqs[1].base + 64))
    host.io_burst(1, 2)
    assert host.model.read(Reg.CSTS) == 0b11                  # RDY, CFS
    assert host.model.posted[1] == [] and host.model.sqs[1].head == 0
    host.mem.bad_reads.clear()
    host.submit(0, A.GET_FEATURES, cdw10=1)                   # fetching stays stopped
    assert host.reap(0) == []
    host.reset()
    assert host.model.read(Reg.CSTS) == 0
    host.enable()
    assert host.cmd(A.GET_FEATURES, cdw10=1).status == OK


def test_bus_master_enable_holds_fetching(host):
    host.model.set_cfg(bus_master_enable=False)
    cid = host.submit(0, A.GET_FEATURES, cdw10=1)
    assert host.reap(0) == [] and host.model.dma_reads == []
    host.model.set_cfg(bus_master_enable=True)
    assert [e.cid for e in host.reap(0)] == [cid]


def test_shutdown_stops_fetching(host):
    host.write_cc(en=1, shn=ShnType.NORMAL)
    csts = data.Layout.cast(Csts).from_bits(host.model.read(Reg.CSTS))
    assert csts.shst == ShstState.COMPLETE and csts.rdy
    host.submit(0, A.GET_FEATURES, cdw10=1)
    host.write_cc(en=1)                                       # SHN back to 0: still stopped
    assert host.reap(0) == []
    host.reset()
    host.enable()
    assert host.cmd(A.GET_FEATURES, cdw10=1).status == OK


def test_controller_reset_with_queues_then_enable(host):
    model = host.model
    host.pair(1)
    host.pair(2)
    assert host.set_feature(0x0B, 0x02).status == OK
    host.submit(0, A.ASYNC_EVENT_REQ)
    host.cmd(0xC1)                                            # one error logged
    host.reset()
    assert model.read(Reg.CSTS) == 0 and model.sqs == {} and model.cqs == {}
    assert model.read(Reg.ASQ, 8) != 0                        # admin registers kept
    model.write(DOORBELL_BASE + 8, 1)                         # queues are gone
    assert model.events[-1] >> 8 & 0xFF == INVALID_REGISTER
    host.enable()
    # The held AER was dropped; the event raised after the reset is pending and goes to
    # the first new request. A second one stays held.
    (e,) = host.cmd_then(A.ASYNC_EVENT_REQ)
    assert e.dw0 == error_event(INVALID_REGISTER)
    aer = host.submit(0, A.ASYNC_EVENT_REQ)
    assert host.reap(0) == []
    assert host.set_feature(0x07, 0).status == OK             # no I/O queue now
    host.pair(1)
    host.io_burst(1, 2)
    assert len(host.reap(1)) == 2
    assert model.error_log.count == 1                         # the log survives
    assert host.get_feature(0x0B).dw0 == 0                    # features do not
    host.get_log(0x01, 64, rae=0)                             # re-arm the error type
    host.model.write(DOORBELL_BASE + 8 * 3, 0)
    (e,) = host.reap(0)
    assert e.cid == aer


def test_bus_reset_drops_everything(host):
    host.pair(1)
    host.cmd(0xC1)
    host.submit(0, A.ASYNC_EVENT_REQ)
    host.model.bus_reset()
    model = host.model
    assert model.read(Reg.CSTS) == 0 and model.read(Reg.ASQ, 8) == 0
    assert model.sqs == {} and model.error_log.count == 0 and not model.aer.held
    assert model.read(MSIX_TABLE_BASE + 12) == 1              # the vector is masked again


def test_register_level_model_without_memory():
    model = ControllerModel(CONFIG)
    model.write(Reg.AQA, 0x0007_0007)
    model.write(Reg.ASQ, 0x1000, 8)
    model.write(Reg.ACQ, 0x2000, 8)
    model.write(Reg.CC, Cc.const({"en": 1, "iosqes": 6, "iocqes": 4}).as_bits())
    model.write(DOORBELL_BASE, 3)
    assert model.read(Reg.CSTS) == 1 and model.posted == {} and model.dma_reads == []
