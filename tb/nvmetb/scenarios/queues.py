"""Queue-engine and admin-command scenarios: the host driver (``nvmetb.host``) on the
core-level bench, with the reference model in lock step (``BenchTransport``). Written
once, run in the Amaranth simulator and on the Verilog under Icarus and Verilator.

Each is ``async def name(host: NvmeHost, bench: BenchTransport)``; the runner calls
``bench.compare()`` at the end, and the driver checks SQHD, phase and CIDs as it goes.
"""

from nvmecore.layouts import (
    DOORBELL_BASE,
    AdminOpcode,
    CommandSpecificStatus,
    GenericStatus,
    LogPage,
    NvmOpcode,
)
from nvmetb.bench.harness import Mismatch
from nvmetb.host import NvmeHost, Status

from . import arbitration

__all__ = ["QUEUE_SCENARIOS"]

G, C = GenericStatus, CommandSpecificStatus


def expect(cqe, code, dnr=None, what=""):
    status = Status.of(cqe)
    if not status.is_(code, dnr=dnr):
        raise Mismatch(f"{what}: got {status}, expected {code.name}"
                       f"{'' if dnr is None else ' +DNR' if dnr else ' no DNR'}")


async def bring_up(host: NvmeHost, bench):
    """The Linux-like bring-up: every I/O queue pair this build has, one AER posted."""
    n = bench.core.config.io_queues
    pairs = await host.bring_up(io_queues=n, queue_entries=16)
    if pairs != n:
        raise Mismatch(f"{pairs} I/O queue pairs created, {n} wanted")
    ctrl = host.id_ctrl
    if ctrl is None or len(ctrl) != 4096:
        raise Mismatch("no Identify Controller data")


async def admin_status_paths(host: NvmeHost, bench):
    """Every refusal of the queue-management and data commands (docs/admin-commands.md)."""
    n = bench.core.config.io_queues
    mqes = bench.core.config.max_queue_entries - 1
    await host.bring_up(io_queues=1, queue_entries=8)
    a = host.admin
    op = AdminOpcode
    # Gating
    expect((await a(0x7F))[0], G.INVALID_OPCODE, True, "unknown opcode")
    expect((await a(op.IDENTIFY, cdw10=1, psdt=1))[0], G.INVALID_FIELD, True, "PSDT")
    expect((await a(op.IDENTIFY, cdw10=1, fuse=1))[0], G.INVALID_FIELD, False, "FUSE")
    # Create I/O CQ
    base = bench.alloc(4096, name="spare")
    cq = dict(cdw11=0b11, prp1=base)
    expect((await a(op.CREATE_IO_CQ, cdw10=0 | 7 << 16, **cq))[0], C.INVALID_QUEUE_IDENTIFIER,
           True, "CQ 0")
    expect((await a(op.CREATE_IO_CQ, cdw10=(n + 1) | 7 << 16, **cq))[0],
           C.INVALID_QUEUE_IDENTIFIER, True, "CQ > max")
    expect((await a(op.CREATE_IO_CQ, cdw10=1 | 7 << 16, **cq))[0], C.INVALID_QUEUE_IDENTIFIER,
           True, "CQ exists")
    expect((await a(op.CREATE_IO_CQ, cdw10=2, **cq))[0], C.INVALID_QUEUE_SIZE, True, "size 1")
    expect((await a(op.CREATE_IO_CQ, cdw10=2 | (mqes + 1) << 16, **cq))[0],
           C.INVALID_QUEUE_SIZE, True, "size > MQES")
    expect((await a(op.CREATE_IO_CQ, cdw10=2 | 7 << 16, cdw11=0b11, prp1=base + 64))[0],
           G.INVALID_PRP_OFFSET, True, "CQ base misaligned")
    expect((await a(op.CREATE_IO_CQ, cdw10=2 | 7 << 16, cdw11=0b11 | 0xFFF << 16,
                    prp1=base))[0], C.INVALID_INTERRUPT_VECTOR, True, "vector")
    expect((await a(op.CREATE_IO_CQ, cdw10=2 | 7 << 16, cdw11=0b10, prp1=base))[0],
           G.INVALID_FIELD, True, "PC = 0")
    # Create I/O SQ
    expect((await a(op.CREATE_IO_SQ, cdw10=2 | 7 << 16, cdw11=1 | 0 << 16, prp1=base))[0],
           C.COMPLETION_QUEUE_INVALID, True, "SQ on CQ 0")
    expect((await a(op.CREATE_IO_SQ, cdw10=2 | 7 << 16, cdw11=1 | 3 << 16, prp1=base))[0],
           C.COMPLETION_QUEUE_INVALID, True, "SQ on a missing CQ")
    expect((await a(op.CREATE_IO_SQ, cdw10=1 | 7 << 16, cdw11=1 | 1 << 16, prp1=base))[0],
           C.INVALID_QUEUE_IDENTIFIER, True, "SQ exists")
    expect((await a(op.CREATE_IO_SQ, cdw10=2 | 0 << 16, cdw11=1 | 1 << 16, prp1=base))[0],
           C.INVALID_QUEUE_SIZE, True, "SQ size 1")
    expect((await a(op.CREATE_IO_SQ, cdw10=2 | 7 << 16, cdw11=1 | 1 << 16,
                    prp1=base + 8))[0], G.INVALID_PRP_OFFSET, True, "SQ base misaligned")
    expect((await a(op.CREATE_IO_SQ, cdw10=2 | 7 << 16, cdw11=0 | 1 << 16, prp1=base))[0],
           G.INVALID_FIELD, True, "SQ PC = 0")
    # Delete
    expect((await a(op.DELETE_IO_SQ, cdw10=0))[0], C.INVALID_QUEUE_IDENTIFIER, True, "del SQ 0")
    expect((await a(op.DELETE_IO_SQ, cdw10=2))[0], C.INVALID_QUEUE_IDENTIFIER, True,
           "del missing SQ")
    expect((await a(op.DELETE_IO_CQ, cdw10=5))[0], C.INVALID_QUEUE_IDENTIFIER, True,
           "del missing CQ (spec, not QEMU)")
    expect((await a(op.DELETE_IO_CQ, cdw10=1))[0], C.INVALID_QUEUE_DELETION, False,
           "del CQ in use")
    # Identify
    for cns in (0x06, 0x08, 0x10):
        expect((await host.identify(cns, nsid=1, check=False))[0], G.INVALID_FIELD, True,
               f"CNS {cns:#x}")
    for nsid in (0, 2, 0xFFFF_FFFF):
        expect((await host.identify(0x00, nsid=nsid, check=False))[0], G.INVALID_NAMESPACE,
               True, f"namespace {nsid:#x}")
    expect((await host.identify(0x02, nsid=0xFFFF_FFFE, check=False))[0],
           G.INVALID_NAMESPACE, True, "NS list from FFFFFFFEh")
    await host.identify(0x02, nsid=1, check=False)              # empty list
    await host.identify(0x01, page_offset=0x100, check=False)   # PRP1 + PRP2
    # Get Log Page
    expect((await host.get_log_page(0x7F, 16, check=False))[0], C.INVALID_LOG_PAGE, True,
           "unknown log")
    expect((await host.get_log_page(LogPage.SMART_HEALTH.value, 16, offset=2,
                                    check=False))[0], G.INVALID_FIELD, True, "offset")
    expect((await host.get_log_page(LogPage.SMART_HEALTH.value, 16, offset=512,
                                    check=False))[0], G.INVALID_FIELD, True, "offset > log")
    for lid in LogPage:
        await host.get_log_page(lid.value, 1024, check=False)
    await host.get_log_page(LogPage.ERROR_INFORMATION.value, 32, offset=64, check=False)
    # Features
    for fid, cdw11, code, dnr in (
            (0x06, 1, G.INVALID_FIELD, True), (0x7E, 0, G.INVALID_FIELD, True),
            (0x02, 1, G.INVALID_FIELD, True), (0x07, 1, G.COMMAND_SEQUENCE_ERROR, True),
            (0x09, 0, G.INVALID_FIELD, True), (0x05, 1 << 16, G.INVALID_FIELD, True),
            (0x04, 1 << 16, G.INVALID_FIELD, True)):
        expect(await host.set_features(fid, cdw11, check=False), code, dnr,
               f"Set Features {fid:#x}")
    expect((await a(op.SET_FEATURES, cdw10=0x01 | 1 << 31, cdw11=3))[0],
           C.FEATURE_NOT_SAVEABLE, True, "SV")
    expect((await a(op.GET_FEATURES, cdw10=0x01 | 1 << 8))[0], G.INVALID_FIELD, True, "SEL")
    for fid, cdw11 in ((0x01, 0), (0x02, 0), (0x04, 0), (0x04, 1 << 20), (0x05, 0), (0x07, 0),
                       (0x08, 0), (0x09, 1), (0x0A, 0), (0x0B, 0)):
        await host.get_features(fid, cdw11=cdw11, check=False)
    for fid, cdw11 in ((0x01, 0x0302_0106), (0x02, 0x20), (0x04, 350), (0x05, 100),
                       (0x08, 0x0103), (0x09, 1 | 1 << 16), (0x0A, 1), (0x0B, 0x02)):
        expect(await host.set_features(fid, cdw11, check=False), G.SUCCESS, False,
               f"Set Features {fid:#x}")
    # Abort: a bad SQ, a command already done
    expect(await host.abort(9, 1, check=False), G.INVALID_FIELD, False, "abort SQ")
    await host.abort(0, 0x1234, check=False)


async def io_queue_laps(host: NvmeHost, bench):
    """Commands on I/O queues over several laps of a 4-entry CQ (phase flips), with the
    host slow to consume: a full CQ holds back its own SQ only."""
    await host.bring_up(io_queues=2, queue_entries=4)
    cids = []
    for i in range(14):
        qid = 1 + i % 2
        cid = await host.submit(qid, {"cdw0": {"opc": NvmOpcode.FLUSH.value}, "nsid": 1})
        cids.append((qid, cid))
        if i % 3 == 2:
            for q, c in cids:
                cqe = await host.wait_completion(q, c)
                expect(cqe, G.SUCCESS, False, "Flush")
            cids.clear()
    for q, c in cids:
        await host.wait_completion(q, c)


async def async_events(host: NvmeHost, bench):
    """An invalid doorbell completes the held AER; the type stays masked until the
    Error Information log is read with RAE = 0; AERL + 1 limit."""
    await host.bring_up(io_queues=1, queue_entries=8)
    await bench.mmio_write(DOORBELL_BASE + 8 * 5, 1)         # no such queue
    await bench.wait(2)
    await host.process_completions(0)
    await bench.mmio_write(DOORBELL_BASE + 8 * 5, 1)         # masked now: held
    for _ in range(4):                                       # AERL + 1 = 4 held
        await host.async_event_request()
    cqe, _ = await host.admin(AdminOpcode.ASYNC_EVENT_REQ)  # the fifth: limit
    expect(cqe, C.AER_LIMIT_EXCEEDED, False, "AER limit")
    await host.get_log_page(LogPage.ERROR_INFORMATION.value, 16, rae=False, check=False)
    await bench.wait(2)
    await host.process_completions(0)


async def reset_in_traffic(host: NvmeHost, bench):
    """Controller reset with commands in flight, then bring-up again; shutdown."""
    await host.bring_up(io_queues=2, queue_entries=8)
    for i in range(6):
        await host.submit(1 + i % 2, {"cdw0": {"opc": NvmOpcode.FLUSH.value}, "nsid": 1})
    await host.disable()
    bench.forget_io()
    await host.bring_up(io_queues=2, queue_entries=8)
    await host.shutdown()


async def coalescing(host: NvmeHost, bench):
    """Interrupt aggregation, counted in MSI-X messages: THR = 2 (every third completion
    of an I/O CQ fires its vector), then coalescing disabled on one vector, then TIME = 0
    (no delay: every completion fires). The admin CQ is never aggregated."""
    await host.bring_up(io_queues=2, queue_entries=16)
    flush = {"cdw0": {"opc": NvmOpcode.FLUSH.value}, "nsid": 1}

    async def burst(qid, count):
        cids = [await host.submit(qid, flush) for _ in range(count)]
        for cid in cids:
            await host.wait_completion(qid, cid)

    def io_messages():
        # The admin CQ's message for Set Features may land after its entry has been seen:
        # count the I/O vectors only.
        vectors = [bench.msix_vector_of(*m) for m in bench.msix_messages()]
        return [vectors.count(1), vectors.count(2)]

    expect(await host.set_features(0x08, 255 << 8 | 2, check=False), G.SUCCESS, False, "THR")
    before = io_messages()
    await burst(1, 7)
    await burst(2, 3)
    await bench.wait(1)
    sent = [n - b for n, b in zip(io_messages(), before, strict=True)]
    if sent != [2, 1]:
        raise Mismatch(f"{sent} messages on vectors 1 and 2 for 7 and 3 completions")
    expect(await host.set_features(0x09, 2 | 1 << 16, check=False), G.SUCCESS, False, "CD")
    await burst(2, 2)
    expect(await host.set_features(0x08, 2, check=False), G.SUCCESS, False, "TIME 0")
    await burst(1, 2)


async def more_status_paths(host: NvmeHost, bench):
    """Abort of a held AER (it completes with Abort Requested), Create I/O CQ while CC
    has the wrong entry sizes, and Identify data whose PRP2 is not page aligned."""
    await host.bring_up(io_queues=1, queue_entries=8)
    aer = next(iter(host.aer_cids)) if host.aer_cids else await host.async_event_request()
    cqe = await host.abort(0, aer, check=False)
    expect(cqe, G.SUCCESS, False, "abort of a held AER")
    if cqe.dw0 & 1:
        raise Mismatch("the held AER was not aborted (DW0 bit 0 set)")
    await bench.wait(1)
    await host.process_completions(0)
    base = bench.alloc(4096, name="spare")
    expect((await host.admin(AdminOpcode.IDENTIFY, cdw10=1, prp1=base + 0x200,
                             prp2=base + 8))[0], G.INVALID_PRP_OFFSET, True, "PRP2 offset")
    cc = await host.read_reg(0x14)
    await host.write_reg(0x14, cc & ~(0xF << 20) | 3 << 20)       # IOCQES = 3
    expect((await host.admin(AdminOpcode.CREATE_IO_CQ, cdw10=2 | 7 << 16, cdw11=0b11,
                             prp1=base))[0], C.INVALID_QUEUE_SIZE, True, "IOCQES")
    await host.write_reg(0x14, cc)


async def fetch_error(host: NvmeHost, bench):
    """An SQ entry read that fails sets CSTS.CFS and stops fetching; a controller reset
    recovers, and the controller comes up again."""
    await host.bring_up(io_queues=1, queue_entries=8)
    asq = host.sqs[0]
    bench.fail_reads(asq.base, asq.base + 64 * asq.entries)
    await host.submit(0, {"cdw0": {"opc": AdminOpcode.GET_FEATURES.value}, "cdw10": 7})
    await bench.wait(2)
    csts = await bench.core.read_settled(0x1C)
    if not csts >> 1 & 1:
        raise Mismatch(f"CSTS {csts:#x}: CFS not set after a failed SQ fetch")
    bench.clear_faults()
    await host.disable()
    bench.forget_io()
    await host.bring_up(io_queues=1, queue_entries=8)


async def fetch_timeout(host: NvmeHost, bench):
    """An SQ entry read answered later than the fetch engine's time-out
    (``dma_read_timeout`` cycles with no data moving on the read port) is fatal like a
    failed one: CSTS.CFS, nothing more fetched; its data, when it comes, is dropped; a
    controller reset recovers. (Behind the UltraScale+ adapter the late read is one the
    hard IP never answers: the adapter's completion time-out fails it first.)"""
    config = bench.core.config
    # The first time-out to fire: the fetch engine's, or a PCIe adapter's.
    timeout = min(config.dma_read_timeout, config.completion_timeout)
    if timeout > 1_000_000:
        raise Mismatch(f"dma_read_timeout {timeout}: too long to simulate; the benches' "
                       f"builds set a short one")
    await host.bring_up(io_queues=1, queue_entries=8)
    asq = host.sqs[0]
    bench.fail_reads(asq.base, asq.base + 64 * asq.entries, kind="late", delay=timeout + 1000)
    await host.submit(0, {"cdw0": {"opc": AdminOpcode.GET_FEATURES.value}, "cdw10": 7})
    waited_us, limit_us = 0, timeout // 250 + 20
    while True:
        await bench.wait(2)
        waited_us += 2
        csts = await bench.core.read(0x1C, compare=False)   # the model failed at once
        if csts >> 1 & 1 or waited_us > limit_us:
            break
    if not csts >> 1 & 1:
        raise Mismatch(f"CSTS {csts:#x}: CFS not set {waited_us} us after an SQ read that "
                       f"the port did not answer")
    if waited_us < timeout // 250:
        raise Mismatch(f"CFS set after {waited_us} us, before the {timeout} cycle time-out")
    await bench.core.read_settled(0x1C)
    bench.clear_faults()
    await bench.wait(1000 // 250 + 10)            # the late data arrives and is dropped
    await host.disable()
    bench.forget_io()
    await host.bring_up(io_queues=1, queue_entries=8)
    await host.flush(1)


async def temperature_event(host: NvmeHost, bench):
    """The temperature input crossing the over-temperature threshold, with AEC bit 1 set,
    completes the held AER with a SMART / Health event; SMART / Health reports it."""
    await host.bring_up(io_queues=1, queue_entries=8)
    expect(await host.set_features(0x0B, 0x02, check=False), G.SUCCESS, False, "AEC")
    expect(await host.set_features(0x04, 330, check=False), G.SUCCESS, False, "threshold")
    await bench.core.set_temperature(340)
    await bench.wait(2)
    await host.process_completions(0)
    cqe, smart = await host.get_log_page(LogPage.SMART_HEALTH.value, 128, check=False)
    if not smart[0] & 0x02 or int.from_bytes(smart[1:3], "little") != 340:
        raise Mismatch(f"SMART / Health: critical warning {smart[0]:#x}, "
                       f"temperature {int.from_bytes(smart[1:3], 'little')}")
    await bench.core.set_temperature(313)


async def bus_mastering_off(host: NvmeHost, bench):
    """With bus mastering disabled nothing is fetched or written; set again, the command
    waiting in the SQ runs."""
    await host.bring_up(io_queues=1, queue_entries=8)
    await bench.pci_config(bus_master=False)
    reads, writes = len(bench.memory.reads), len(bench.memory.writes)
    cid = await host.submit(0, {"cdw0": {"opc": AdminOpcode.GET_FEATURES.value}, "cdw10": 7})
    await bench.wait(3)
    if (len(bench.memory.reads), len(bench.memory.writes)) != (reads, writes):
        raise Mismatch("DMA while bus mastering was disabled")
    await bench.pci_config(bus_master=True)
    expect(await host.wait_completion(0, cid), G.SUCCESS, False, "after bus mastering")


async def delete_sq_beside_busy_sq(host: NvmeHost, bench, *, in_flight=6, blocks=4):
    """Delete I/O SQ 1 while SQ 2, on the same CQ, is kept busy with Reads (each one that
    completes is replaced at once): the Delete completes after the commands already
    fetched for that CQ, the queue is gone, and SQ 2's Reads all succeed. Before, the
    Delete waited until its CQ had no command in flight at all, which a busy sibling SQ
    never allows: it starved."""
    await host.bring_up(io_queues=2, queue_entries=32)
    await host.delete_io_sq(2)
    await host.create_io_sq(2, 32, cqid=1)
    span = host.namespace_blocks() - blocks
    issued = 0

    async def read():
        nonlocal issued
        issued += 1
        return await host.submit_read(2, issued * blocks % span, blocks)

    for _ in range(in_flight):
        await read()
    cid = await host.submit(0, {"cdw0": {"opc": AdminOpcode.DELETE_IO_SQ.value},
                                "cdw10": 1})
    # The Delete may wait for every Read fetched before it, but not for Reads that come
    # after: a few times the number in flight is plenty.
    allowed = 3 * in_flight
    completed = []
    while (0, cid) not in host.completions:
        done = await host.io_reap()
        completed += done
        if len(completed) > allowed:
            raise Mismatch(f"Delete I/O SQ 1 not complete after {len(completed)} Reads of "
                           f"SQ 2 (its CQ's sibling) completed")
        for _ in done:
            await read()
        await host.process_completions(0)
    expect(host.completions.pop((0, cid)), G.SUCCESS, False, "Delete I/O SQ 1")
    host.t.free(host.sqs.pop(1).base)
    completed += await host.io_wait_all(list(host.io_pending.values()))
    for cmd in completed:
        expect(cmd.cqe, G.SUCCESS, False, str(cmd))
    cqe = await host.delete_io_sq(1, check=False)
    expect(cqe, C.INVALID_QUEUE_IDENTIFIER, True, "Delete I/O SQ 1 again")


async def weighted_round_robin(host: NvmeHost, bench):
    """CC.AMS = weighted round robin with urgent class: urgent SQ first, then high,
    medium and low by their weights (4, 2, 1), seen in batches of CQ slots
    (:mod:`.arbitration`)."""
    cqe, batches = await arbitration.arbitration_batches(host)
    expect(cqe, G.SUCCESS, False, "Set Features Arbitration")
    if batches != arbitration.EXPECTED:
        raise Mismatch(f"commands per SQ in each batch: {batches}, expected "
                       f"{arbitration.EXPECTED}")


QUEUE_SCENARIOS = {f.__name__: f for f in (
    bring_up, admin_status_paths, more_status_paths, io_queue_laps, async_events,
    reset_in_traffic, coalescing, fetch_error, temperature_event, bus_mastering_off,
    delete_sq_beside_busy_sq, fetch_timeout, weighted_round_robin,
)}
