"""Weighted round robin with urgent priority class, seen from the host [NVMe 1.4 §4.11.2]:
written once against the host driver, run as a queue scenario (model in lock step with
the RTL: :mod:`.queues`) and as a conformance scenario (model, RTL, QEMU).

Which commands the controller fetches first is not visible on a CQ whose entries may be
posted in any order — unless the CQ's room decides how many are fetched: CQ 1 has
``CQ_ENTRIES`` slots, so the controller fetches at most ``CQ_ENTRIES - 1`` commands for
it before the host consumes entries. The scenario fills CQ 1 with Flushes from SQ 1 and
leaves them there (no credit: nothing more is fetched), puts Flushes in four SQs of CQ 1
(urgent, high, medium, low), then consumes CQ 1 a batch at a time: each batch releases
``CQ_ENTRIES - 1`` slots, so each batch's entries are exactly the next commands the
arbiter chose, whatever order they complete in. With weights high 4, medium 2, low 1 and
an Arbitration Burst of 2 the batches hold ``EXPECTED``; plain round robin (QPRIO
ignored) would give 2, 2, 2, 1 of the four SQs in the first batch.
"""

from collections import Counter

from nvmecore.admin_layouts import Arbitration, FeatureId, QueuePriority
from nvmecore.layouts import ArbitrationMechanism, NvmOpcode
from nvmetb.host import NvmeHost
from nvmetb.host.driver import CQE_BYTES, decode_cqe

__all__ = ["CQ_ENTRIES", "PRIORITIES", "COMMANDS", "EXPECTED", "arbitration_batches"]

CQ_ENTRIES = 8
#: The SQs on CQ 1 and their classes (SQ 1, urgent, also fills the CQ first). Four I/O
#: queues: the smallest builds the benches use have that many.
PRIORITIES = {1: QueuePriority.URGENT, 2: QueuePriority.HIGH, 3: QueuePriority.MEDIUM,
              4: QueuePriority.LOW}
COMMANDS = {1: 3, 2: 8, 3: 4, 4: 2}
#: Set Features Arbitration: AB = 1 (2 commands per fetch), HPW 3, MPW 1, LPW 0
#: (weights 4, 2, 1).
ARBITRATION = Arbitration.const({"ab": 1, "hpw": 3, "mpw": 1, "lpw": 0}).as_bits()
#: Per batch of released slots: commands of each SQ. The urgent SQ first; then a round
#: (high 4, medium 2, low 1 — high first), and the next round.
EXPECTED = [{1: 3, 2: 4}, {3: 2, 4: 1, 2: 4}, {3: 2, 4: 1}]
FLUSH = {"cdw0": {"opc": NvmOpcode.FLUSH.value}, "nsid": 1}


async def _visible(host: NvmeHost, cqid, count, timeout_us):
    """Wait until ``count`` new entries are in CQ ``cqid`` (without consuming them);
    returns their SQIDs (fewer if ``timeout_us`` passed first)."""
    cq = host.cqs[cqid]
    waited = 0.0
    while True:
        sqids = []
        for i in range(count):
            slot = cq.head + i
            phase = cq.phase ^ (slot >= cq.entries)
            cqe = decode_cqe(host.t.mem_read(cq.base + slot % cq.entries * CQE_BYTES,
                                             CQE_BYTES))
            if cqe.status.p != phase:
                break
            sqids.append(cqe.dw2.sqid)
        if len(sqids) == count or waited >= timeout_us:
            return sqids
        await host.t.wait(host.poll_us)
        waited += host.poll_us


async def arbitration_batches(host: NvmeHost, timeout_us=200):
    """Bring the controller up with CC.AMS = weighted round robin with urgent class, run
    the batches (module doc); returns Set Features Arbitration's CQE and what each batch
    held, as {SQID: commands}. A batch that does not fill within ``timeout_us`` is
    returned as it stands, and is the last."""
    await host.bring_up(io_queues=1, queue_entries=CQ_ENTRIES,
                        ams=ArbitrationMechanism.WRR_URGENT)
    arbitration = await host.set_features(FeatureId.ARBITRATION, ARBITRATION, check=False)
    await host.delete_io_sq(1)                # SQ 1 again, with room for fill and work
    for qid, cls in PRIORITIES.items():
        await host.create_io_sq(qid, 16, cqid=1, qprio=cls.value)
    batch = CQ_ENTRIES - 1
    for _ in range(batch):
        await host.submit(1, FLUSH)
    if len(await _visible(host, 1, batch, timeout_us)) != batch:
        return arbitration, []
    for qid, count in COMMANDS.items():
        for _ in range(count):
            await host.submit(qid, FLUSH)
    await host.process_completions(1)        # the fill: one head doorbell, slots released
    batches = []
    left = sum(COMMANDS.values())
    while left > 0:
        want = min(batch, left)
        sqids = await _visible(host, 1, want, timeout_us)
        batches.append(dict(Counter(sqids)))
        if len(sqids) != want:
            break
        left -= await host.process_completions(1)
    return arbitration, batches
