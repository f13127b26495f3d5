"""The queue state alone (Amaranth simulation): the hazards of keeping it in memories
with synchronous reads — a doorbell in the cycle its SQ is drained or found empty, posts
back to back to one CQ, a queue created while its engine writes — and the slot
accounting against the credit formula of nvme/queue_state.py."""

import pytest

from nvmecore import CoreConfig
from nvmecore.nvme.queue_state import QueueState
from nvmetb.amaranth_sim import simulate

pytestmark = pytest.mark.quick

CONFIG = CoreConfig(io_queues=4, max_queue_entries=64, data_width=128)


def _bench(testbench):
    dut = QueueState(CONFIG)

    async def run(ctx):
        await testbench(ctx, dut)
    simulate(dut, run)


async def _create(ctx, dut, qid, *, cq, size_m1=7, cqid=1):
    s = dut.setup
    for sig, v in ((s.valid, 1), (s.qid, qid), (s.cq, cq), (s.create, 1),
                   (s.size_m1, size_m1), (s.cqid, cqid), (s.ien, 1), (s.iv, 0)):
        ctx.set(sig, v)
    await ctx.tick()
    ctx.set(s.valid, 0)


async def _strobe(ctx, port, **fields):
    ctx.set(port.valid, 1)
    for k, v in fields.items():
        ctx.set(getattr(port, k), v)
    await ctx.tick()
    ctx.set(port.valid, 0)


def test_doorbell_wins_over_drain_and_empty():
    """A tail doorbell in the cycle the fetch engine drains its SQ (advance up to the
    tail it read) or finds it empty keeps the SQ's work bit; without one the bit goes."""

    async def testbench(ctx, dut):
        f = dut.fetch
        await _create(ctx, dut, 1, cq=True)
        await _create(ctx, dut, 1, cq=False)
        ctx.set(f.sq, 1)
        await _strobe(ctx, dut.sq_tail, qid=1, value=2)
        assert ctx.get(dut.sq_work) == 0b10
        await ctx.tick()
        assert (ctx.get(f.head), ctx.get(f.tail)) == (0, 2)
        assert ctx.get(f.credit) == 7
        # Drain it while a new doorbell arrives: the bit stays.
        ctx.set(dut.sq_tail.valid, 1)
        ctx.set(dut.sq_tail.qid, 1)
        ctx.set(dut.sq_tail.value, 3)
        await _strobe(ctx, f.advance, qid=1, n=2)
        ctx.set(dut.sq_tail.valid, 0)
        assert ctx.get(dut.sq_work) == 0b10, "a doorbell lost to a drain"
        await ctx.tick()
        assert (ctx.get(f.head), ctx.get(f.tail)) == (2, 3)
        # Drain it with no doorbell: the bit goes.
        await _strobe(ctx, f.advance, qid=1, n=1)
        assert ctx.get(dut.sq_work) == 0
        # A doorbell that adds nothing, found empty while another comes: the bit stays.
        await _strobe(ctx, dut.sq_tail, qid=1, value=3)
        ctx.set(dut.sq_tail.valid, 1)
        ctx.set(dut.sq_tail.value, 3)
        await _strobe(ctx, f.empty, qid=1)
        ctx.set(dut.sq_tail.valid, 0)
        assert ctx.get(dut.sq_work) == 0b10, "a doorbell lost to an empty SQ"
        await _strobe(ctx, f.empty, qid=1)
        assert ctx.get(dut.sq_work) == 0

    _bench(testbench)


def test_posts_back_to_back_and_credit():
    """Posts to one CQ on consecutive cycles advance its tail and flip its phase on the
    wrap; the credit follows reservations, posts and head doorbells exactly."""

    async def testbench(ctx, dut):
        f, p = dut.fetch, dut.post
        await _create(ctx, dut, 2, cq=True, size_m1=3)
        await _create(ctx, dut, 1, cq=False, cqid=2)
        ctx.set(f.sq, 1)
        ctx.set(p.cq, 2)
        await ctx.tick()
        assert ctx.get(f.credit) == 3
        await _strobe(ctx, f.reserve, qid=2, n=3)
        await ctx.tick()
        assert ctx.get(f.credit) == 0
        tails = []
        for _ in range(3):                      # three posts, one per cycle
            tails.append((ctx.get(p.tail), ctx.get(p.phase)))
            await _strobe(ctx, p.post, qid=2)
        await ctx.tick()
        assert tails == [(0, 1), (1, 1), (2, 1)]
        assert ctx.get(f.credit) == 0, "posted entries hold their slots until the head moves"
        await _strobe(ctx, dut.cq_head, qid=2, value=3)
        await ctx.tick()
        assert ctx.get(f.credit) == 3
        await _strobe(ctx, f.reserve, qid=2, n=1)
        await _strobe(ctx, p.post, qid=2)
        await ctx.tick()
        assert (ctx.get(p.tail), ctx.get(p.phase)) == (0, 0), "no wrap to phase 0"

    _bench(testbench)


def test_create_meets_engine_writes():
    """A CQ created in the cycle the poster writes another CQ's tail, and an SQ created
    in the cycle the fetch engine moves another SQ's head, still start at zero."""

    async def testbench(ctx, dut):
        f, p = dut.fetch, dut.post
        await _create(ctx, dut, 1, cq=True)
        await _create(ctx, dut, 1, cq=False)
        await _strobe(ctx, dut.sq_tail, qid=1, value=5)
        ctx.set(f.sq, 1)
        ctx.set(p.cq, 1)
        await _strobe(ctx, f.reserve, qid=1, n=1)
        # Fill queue 2's memories with leftovers, as a deleted queue leaves them.
        ctx.set(p.post.valid, 1)
        ctx.set(p.post.qid, 1)
        ctx.set(f.advance.valid, 1)
        ctx.set(f.advance.qid, 1)
        ctx.set(f.advance.n, 3)
        await _create(ctx, dut, 2, cq=True)
        ctx.set(p.post.valid, 0)
        ctx.set(f.advance.valid, 0)
        ctx.set(f.advance.n, 1)
        ctx.set(f.advance.valid, 1)
        await _create(ctx, dut, 2, cq=False, cqid=2)
        ctx.set(f.advance.valid, 0)
        ctx.set(f.sq, 2)
        ctx.set(p.cq, 2)
        await ctx.tick()
        await ctx.tick()
        assert (ctx.get(p.tail), ctx.get(p.phase)) == (0, 1)
        assert (ctx.get(f.head), ctx.get(f.tail), ctx.get(f.credit)) == (0, 0, 7)
        ctx.set(f.sq, 1)
        ctx.set(p.cq, 1)
        await ctx.tick()
        await ctx.tick()
        assert ctx.get(f.head) == 4 and ctx.get(p.tail) == 1

    _bench(testbench)


def test_cq_users():
    """Delete I/O CQ's check: a CQ has users while an SQ completes to it."""

    async def testbench(ctx, dut):
        a = dut.admin
        await _create(ctx, dut, 3, cq=True)
        ctx.set(a.users_cq, 3)
        assert not ctx.get(a.cq_users)
        await _create(ctx, dut, 1, cq=False, cqid=3)
        await _create(ctx, dut, 2, cq=False, cqid=3)
        assert ctx.get(a.cq_users)
        for qid in (1, 2):
            assert ctx.get(a.cq_users)
            s = dut.setup
            ctx.set(s.create, 0)
            await _strobe(ctx, s, qid=qid, cq=0)
        assert not ctx.get(a.cq_users)

    _bench(testbench)
