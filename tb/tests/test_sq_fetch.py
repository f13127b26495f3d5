"""The SQ fetch engine alone (Amaranth simulation): what no core-level scenario can time
exactly — an SQ deleted while its fetch waits for the DMA read port, how many reads are
in flight, and a failed read of several entries whose error flag is on one beat only."""

from dataclasses import replace

import pytest

from nvmecore import CoreConfig
from nvmecore.nvme.sq_fetch import FETCH_BATCH, SQE_BYTES, FetchEngine
from nvmetb.amaranth_sim import simulate

pytestmark = pytest.mark.quick

CONFIG = CoreConfig(io_queues=2, max_queue_entries=64, data_width=128)
BEATS_PER_SQE = SQE_BYTES * 8 // CONFIG.data_width
SQ_PAGE = 0x1234


def _bench(testbench, config=CONFIG, **kwargs):
    dut = FetchEngine(config, **kwargs)

    async def run(ctx):
        await testbench(ctx, dut)
    simulate(dut, run)


async def _start(ctx, dut, mrrs=2):
    """Fetching enabled (max read request size ``128 << mrrs`` bytes, no burst limit) and
    SQ 1 created."""
    ctx.set(dut.run, 1)
    ctx.set(dut.bus_master_enable, 1)
    ctx.set(dut.max_read_request_size, mrrs)
    ctx.set(dut.burst_log2, 7)
    await _setup(ctx, dut, create=1)


async def _setup(ctx, dut, *, create, qid=1, base=SQ_PAGE, prio=0):
    ctx.set(dut.setup.valid, 1)
    ctx.set(dut.setup.qid, qid)
    ctx.set(dut.setup.cq, 0)
    ctx.set(dut.setup.create, create)
    ctx.set(dut.setup.base, base)
    ctx.set(dut.setup.prio, prio)
    ctx.set(dut.setup.size_m1, 15)
    ctx.set(dut.setup.cqid, 1)
    await ctx.tick()
    ctx.set(dut.setup.valid, 0)


def _sq1_has_work(ctx, dut, entries=4):
    """SQ 1 (16 entries, CQ 1 with room) holds ``entries`` commands."""
    ctx.set(dut.sq_work, 0b010 if entries else 0)
    ctx.set(dut.queues.head, 0)
    ctx.set(dut.queues.tail, entries)
    ctx.set(dut.queues.size_m1, 15)
    ctx.set(dut.queues.cqid, 1)
    ctx.set(dut.queues.credit, 15)


async def _until_offered(ctx, dut, limit=20):
    for _ in range(limit):
        if ctx.get(dut.dma.req.valid):
            return
        await ctx.tick()
    raise AssertionError("no SQ read offered")


async def _answer(ctx, dut, sqes, errors=(), fatal=None, when=None):
    """Return ``sqes`` entries of read data, with ``error`` on the beats numbered in
    ``errors``; the commands handed on (SQIDs). ``fatal``: a list that gets the cycle
    numbers (from the first beat) in which ``fatal`` was high; ``when``: one that gets
    the cycle numbers in which a command was offered."""
    ctx.set(dut.cmd.ready, 1)
    handed = []
    beats = sqes * BEATS_PER_SQE
    cycle = 0

    async def tick():
        nonlocal cycle
        if fatal is not None and ctx.get(dut.fatal):
            fatal.append(cycle)
        await ctx.tick()
        cycle += 1
        if ctx.get(dut.cmd.valid):
            handed.append(ctx.get(dut.cmd.p.sqid))
            if when is not None:
                when.append(cycle)

    for i in range(beats):
        ctx.set(dut.dma.data.valid, 1)
        ctx.set(dut.dma.data.p.data, i)
        ctx.set(dut.dma.data.p.last, i == beats - 1)
        ctx.set(dut.dma.data.p.error, i in errors)
        while True:
            ready = ctx.get(dut.dma.data.ready)
            await tick()
            if ready:
                break
    ctx.set(dut.dma.data.valid, 0)
    ctx.set(dut.dma.data.p.error, 0)
    for _ in range(40):
        await tick()
    return handed


@pytest.mark.parametrize("when", ["offered", "choosing"])
def test_sq_deleted_while_fetching(when):
    """Delete SQ 1 while its read waits for the DMA port (``offered``; before the fix
    the read was taken as if nothing had happened: SQ head and CQ slots moved and four
    commands of the deleted SQ were handed on) or in the cycle the arbiter chooses it
    (``choosing``): the SQ's head and its CQ's slots are left alone, nothing of it is
    handed on, and a new SQ 1 is fetched as usual."""

    async def testbench(ctx, dut):
        await _start(ctx, dut)
        _sq1_has_work(ctx, dut)
        if when == "offered":
            await _until_offered(ctx, dut)
            for _ in range(5):                         # the port is busy
                await ctx.tick()
            await _setup(ctx, dut, create=0)
        else:
            # The engine chooses SQ 1 at the next edge: delete it at that same edge.
            await _setup(ctx, dut, create=0)
        _sq1_has_work(ctx, dut, entries=0)
        ctx.set(dut.dma.req.ready, 1)
        offered = bool(ctx.get(dut.dma.req.valid))
        # The edge that takes the request moves neither the SQ's head nor the CQ's slots.
        assert not ctx.get(dut.queues.advance.valid) and not ctx.get(dut.queues.reserve.valid)
        await ctx.tick()
        if when == "offered":
            assert offered, "an offered request stays valid until taken"
            assert await _answer(ctx, dut, 4) == [], "a deleted SQ's commands were handed on"
        else:
            for _ in range(5):
                assert not ctx.get(dut.dma.req.valid), "a read of a deleted SQ was offered"
                await ctx.tick()
        # A new SQ 1 is fetched and handed on as usual.
        ctx.set(dut.dma.req.ready, 0)
        await _setup(ctx, dut, create=1)
        _sq1_has_work(ctx, dut, entries=2)
        await _until_offered(ctx, dut)
        ctx.set(dut.dma.req.ready, 1)
        assert ctx.get(dut.queues.advance.valid) and ctx.get(dut.queues.advance.n) == 2
        assert ctx.get(dut.dma.req.p.addr) == SQ_PAGE << 12
        await ctx.tick()
        ctx.set(dut.dma.req.ready, 0)
        _sq1_has_work(ctx, dut, entries=0)
        assert await _answer(ctx, dut, 2) == [1, 1]

    _bench(testbench)


@pytest.mark.parametrize("reads", [2, 6])
def test_reads_in_flight(reads):
    """With ``sq_fetch_reads`` = N and a host that never answers, exactly N SQ reads are
    taken (two entries each at a 128 B max read request size, the SQ's head moved by
    each), then none until data comes back."""

    async def testbench(ctx, dut):
        await _start(ctx, dut, mrrs=0)
        head, tail = 0, 15
        _sq1_has_work(ctx, dut, entries=tail)
        ctx.set(dut.dma.req.ready, 1)
        taken = []
        for _ in range(16 * reads + 32):
            if ctx.get(dut.dma.req.valid):
                taken.append(ctx.get(dut.dma.req.p.addr))
            advance = ctx.get(dut.queues.advance.n) if ctx.get(dut.queues.advance.valid) else 0
            await ctx.tick()
            head += advance
            ctx.set(dut.queues.head, head)
            ctx.set(dut.sq_work, 0b010 if head != tail else 0)
        assert len(taken) == reads, f"{len(taken)} SQ reads in flight, {reads} configured"
        assert taken == [(SQ_PAGE << 12) + 128 * i for i in range(reads)]
        assert head == 2 * reads

    _bench(testbench, replace(CONFIG, sq_fetch_reads=reads))


def test_busy_engine_is_fed_in_batches():
    """With the I/O engine full (8 slots, none returned) and 15 entries in SQ 1, one slot
    coming back fetches nothing: the fetch waits until a batch (FETCH_BATCH) of room is
    back, then reads that many entries at once; with fewer entries than a batch left, it
    waits for room for all of them."""
    config = replace(CONFIG, io_slots=8)

    async def testbench(ctx, dut):
        await _start(ctx, dut)  # MRRS 512 B: 8 entries per read
        head, tail = 0, 15
        _sq1_has_work(ctx, dut, entries=tail)
        ctx.set(dut.dma.req.ready, 1)
        ctx.set(dut.cmd.ready, 1)
        reads = []
        beats_due = []                                  # per read taken, in order

        async def run(cycles, returns=0):
            nonlocal head
            for i in range(cycles):
                ctx.set(dut.io_returned, i < returns)
                if ctx.get(dut.dma.req.valid):
                    n = ctx.get(dut.dma.req.p.length) // SQE_BYTES
                    reads.append(n)
                    beats_due.append(n * BEATS_PER_SQE)
                ctx.set(dut.dma.data.valid, bool(beats_due))
                ctx.set(dut.dma.data.p.last, bool(beats_due) and beats_due[0] == 1)
                if beats_due and ctx.get(dut.dma.data.ready):
                    beats_due[0] -= 1
                    if not beats_due[0]:
                        beats_due.pop(0)
                advance = (ctx.get(dut.queues.advance.n)
                           if ctx.get(dut.queues.advance.valid) else 0)
                await ctx.tick()
                head += advance
                ctx.set(dut.queues.head, head)
                ctx.set(dut.queues.tail, tail)
                ctx.set(dut.sq_work, 0b010 if head != tail else 0)
            ctx.set(dut.io_returned, 0)

        await run(60)
        assert reads == [8], "the empty engine takes a whole read's worth"
        await run(40, returns=1)
        assert reads == [8], "one slot back: no read of one entry"
        await run(40, returns=FETCH_BATCH - 1)
        assert reads == [8, FETCH_BATCH]
        await run(40, returns=2)
        assert reads == [8, FETCH_BATCH], "3 entries left, room for 2: wait"
        await run(40, returns=1)
        assert reads == [8, FETCH_BATCH, 3]

    _bench(testbench, config)


@pytest.mark.parametrize("error_beats, every_beat", [
    ("none", False), ("last", False), ("first", False), ("middle", False), ("all", False),
    ("none", True), ("all", True)])
def test_failed_read_hands_on_no_entry(error_beats, every_beat):
    """A read of four entries that fails — whichever of its beats carry ``error`` (the
    DMA read port's rule: an error on any beat means none of the request's data is to be
    trusted; a bus may flag only the last beat) — hands on none of them and pulses
    ``fatal``. (Before the fix, with the error on the last beat only, the three
    entries before it were handed on as commands: host memory's poison bytes run as
    admin commands. Seen at core level in the fetch_error scenario once two SQ tail
    doorbells could land in consecutive cycles and be fetched by one read.) A read
    without error hands on all four, in order. With ``error_on_every_beat`` (the port
    flags every beat of a failed read, as the UltraScale+ read engine does) each entry
    leaves as its last beat comes in; without it, only after the read's last beat."""
    entries = 4
    beats = entries * BEATS_PER_SQE
    errors = {"none": (), "last": (beats - 1,), "first": (0,), "middle": (beats // 2,),
              "all": tuple(range(beats))}[error_beats]

    async def testbench(ctx, dut):
        await _start(ctx, dut)
        _sq1_has_work(ctx, dut, entries)
        await _until_offered(ctx, dut)
        ctx.set(dut.dma.req.ready, 1)
        assert ctx.get(dut.dma.req.p.length) == entries * SQE_BYTES, "one read of four"
        await ctx.tick()
        ctx.set(dut.dma.req.ready, 0)
        _sq1_has_work(ctx, dut, entries=0)
        fatal, when = [], []
        handed = await _answer(ctx, dut, entries, errors, fatal, when)
        if errors:
            assert handed == [], f"{len(handed)} entries of a failed read handed on"
            assert fatal, "no fatal pulse"
            assert ctx.get(dut.idle), "not idle after a failed read"
        else:
            assert handed == [1] * entries
            assert fatal == []
            if every_beat:
                assert when[0] < beats - 1, f"the first entry waited for the read: {when}"
            else:
                assert when[0] >= beats, f"an entry left before the read's last beat: {when}"

    _bench(testbench, error_on_every_beat=every_beat)


@pytest.mark.parametrize("at", range(5))
def test_slots_back_while_choosing(at):
    """A CQ's slots come back (``unblock``) in the cycle its SQ is chosen: the credit the
    engine then weighs was read before they came, so the SQ is skipped, but it must not
    stay blocked, since the unblock that would clear the block has already gone by. With
    no other event to clear it, an SQ blocked that way was never fetched again (the
    host, waiting for its completions, rings no doorbell: a hang). The pulse is tried in
    each of the first cycles, one of which is the choosing one; credit is back two
    cycles after it."""

    async def testbench(ctx, dut):
        await _start(ctx, dut)
        _sq1_has_work(ctx, dut)
        ctx.set(dut.queues.credit, 0)                   # CQ 1 full
        ctx.set(dut.dma.req.ready, 1)
        offered = False
        for cycle in range(40):
            ctx.set(dut.unblock, cycle == at)
            if cycle == at + 2:
                ctx.set(dut.queues.credit, 15)
            offered |= bool(ctx.get(dut.dma.req.valid))
            await ctx.tick()
        assert offered, f"SQ 1 never fetched after its CQ's slots came back at cycle {at}"

    _bench(testbench)


@pytest.mark.parametrize("gap", [0, 1])
@pytest.mark.parametrize("at", range(2, 8))
def test_weighted_order_when_slots_come_back(at, gap):
    """Weighted round robin: a high SQ is blocked (its CQ full) when a low SQ gets work;
    the CQ's slots come back ``gap`` cycles later. Whatever the timing, the high SQ is
    fetched first: a low SQ chosen while the high one was blocked, with the slots back
    in that very cycle, is chosen again rather than fetched (before, it could be, and
    the weighted round's order changed with the timing of a doorbell)."""
    from nvmecore.admin_layouts import Arbitration, QueuePriority

    bases = {1: 0x1000, 2: 0x2000}

    async def testbench(ctx, dut):
        ctx.set(dut.run, 1)
        ctx.set(dut.bus_master_enable, 1)
        ctx.set(dut.max_read_request_size, 2)
        ctx.set(dut.burst_log2, 7)
        ctx.set(dut.wrr, 1)
        ctx.set(dut.weights, Arbitration.const({"ab": 7, "lpw": 0, "mpw": 0, "hpw": 0}))
        for qid, prio in ((1, QueuePriority.HIGH), (2, QueuePriority.LOW)):
            await _setup(ctx, dut, create=1, qid=qid, base=bases[qid], prio=prio.value)
        _sq1_has_work(ctx, dut)
        ctx.set(dut.queues.credit, 0)                   # CQ 1 full
        ctx.set(dut.dma.req.ready, 1)
        first = None
        for cycle in range(60):
            if cycle == at:
                ctx.set(dut.sq_work, 0b110)             # the low SQ gets work
            ctx.set(dut.unblock, cycle == at + gap)
            if cycle == at + gap + 1:
                # the queue state is read as an SQ is chosen: the credit is there the
                # cycle after the slots came back
                ctx.set(dut.queues.credit, 15)
            if first is None and ctx.get(dut.dma.req.valid):
                first = ctx.get(dut.dma.req.p.addr) >> 12
            await ctx.tick()
        assert first == bases[1], f"first fetch from {first:#x}, not the high SQ's page"

    _bench(testbench)
