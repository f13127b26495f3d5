"""The SQ arbiter alone (Amaranth simulation) against the reference model's arbiters:
the share of commands each weighted class gets with every SQ busy, the urgent class and
the admin SQ ahead of them, round robin within a class, QPRIO ignored in round robin mode,
and random candidate sets pick by pick [NVMe 1.4 §4.11]."""

import random
from collections import Counter

import pytest

from nvmecore import CoreConfig
from nvmecore.admin_layouts import Arbitration, QueuePriority
from nvmecore.nvme.sq_arbiter import NO_LIMIT, SqArbiter
from nvmetb.amaranth_sim import simulate
from nvmetb.model.queues import WEIGHTED, RoundRobin, WeightedRoundRobin

pytestmark = pytest.mark.quick

U, H, M, L = QueuePriority.URGENT, QueuePriority.HIGH, QueuePriority.MEDIUM, QueuePriority.LOW
#: SQ 1..8: two of each class.
PRIO = {1: H, 2: H, 3: M, 4: M, 5: L, 6: L, 7: U, 8: U}
CONFIG = CoreConfig(io_queues=len(PRIO))


def _weights(low, medium, high):
    """The Arbitration feature's weights (0's based) for 1's-based ``low`` .. ``high``."""
    return {"ab": 0b111, "lpw": low - 1, "mpw": medium - 1, "hpw": high - 1}


async def _create(ctx, dut, prio):
    """Create the SQs of ``prio`` ({SQID: class}), one a cycle, as the admin engine does."""
    for qid, cls in prio.items():
        ctx.set(dut.setup, {"valid": 1, "qid": qid, "create": 1, "prio": cls.value})
        await ctx.tick()
    ctx.set(dut.setup.valid, 0)


def _simulate(steps, *, wrr=True, weights=(1, 2, 4), burst=1, prio=PRIO):
    """Run the arbiter as the fetch engine does: each step (a set of candidate queue IDs)
    takes the pick, then fetches min(limit, burst) commands from it. Returns the picks
    as (queue ID or None, limit) and the number of commands each fetch took."""
    dut = SqArbiter(CONFIG)
    picks = []

    async def bench(ctx):
        await _create(ctx, dut, prio)
        ctx.set(dut.wrr, wrr)
        ctx.set(dut.weights, Arbitration.const(_weights(*weights)))
        for candidates in steps:
            ctx.set(dut.candidates, sum(1 << q for q in candidates))
            await ctx.tick()                # a change of class waits a cycle
            if not ctx.get(dut.found):
                picks.append((None, None, 0))
                continue
            qid = ctx.get(dut.pick)
            ctx.set(dut.take, 1)
            await ctx.tick()
            ctx.set(dut.take, 0)
            limit = ctx.get(dut.limit)
            n = min(limit, burst)
            picks.append((qid, limit, n))
            ctx.set(dut.fetched, {"valid": 1, "n": n})
            await ctx.tick()
            ctx.set(dut.fetched.valid, 0)

    simulate(dut, bench)
    return picks


def _model(steps, *, wrr=True, weights=(1, 2, 4), burst=1, prio=PRIO):
    """The same through the reference model's arbiters."""
    rr, wrr_model = RoundRobin(), WeightedRoundRobin()
    rr.last = 0                              # the gateware's pointer resets to SQ 0
    w = dict(zip((L, M, H), weights, strict=True))
    picks = []
    for candidates in steps:
        if wrr:
            qid, limit = wrr_model.pick({q: prio.get(q, U) for q in candidates}, w)
        else:
            qid, limit = rr.pick(list(candidates)), None
        if qid is None:
            picks.append((None, None, 0))
            continue
        limit = NO_LIMIT if limit is None else limit
        n = min(limit, burst)
        if wrr:
            wrr_model.fetched(n)
        picks.append((qid, limit, n))
    return picks


def _commands_by_class(picks, prio=PRIO):
    counts = Counter()
    for qid, _, n in picks:
        counts[prio[qid]] += n
    return counts


@pytest.mark.parametrize("weights,burst", [((1, 2, 4), 1), ((1, 2, 4), 2), ((3, 5, 8), 3)])
def test_weighted_shares(weights, burst):
    """Every weighted SQ busy: low, medium and high get their weights' share of the
    commands (whole rounds: exactly; any prefix: within one round), and the two SQs of a
    class take turns."""
    busy = [q for q, c in PRIO.items() if c in WEIGHTED]
    picks = _simulate([busy] * 150, weights=weights, burst=burst)
    assert picks == _model([busy] * 150, weights=weights, burst=burst)
    total = sum(weights)
    counts = _commands_by_class(picks)
    fetched = sum(counts.values())
    for cls, weight in zip((L, M, H), weights, strict=True):
        share, want = counts[cls] / fetched, weight / total
        assert abs(share - want) <= total / fetched, (cls, counts, weights)
    # Whole rounds give exactly the weights.
    done, rounds = 0, Counter()
    for qid, _, n in picks:
        rounds[PRIO[qid]] += n
        done += n
        if done == 4 * total:
            break
    assert [rounds[c] for c in (L, M, H)] == [4 * w for w in weights], rounds
    # Round robin within a class: each class's fetches alternate between its two SQs.
    for cls in WEIGHTED:
        order = [q for q, _, _ in picks if PRIO[q] == cls]
        assert all(a != b for a, b in zip(order, order[1:], strict=False)), (cls, order[:10])


def test_urgent_and_admin_first():
    """Urgent SQs with work go before every weighted one (and take turns); the admin SQ
    goes before all; when they run dry the weighted classes resume their round."""
    weighted = [q for q, c in PRIO.items() if c in WEIGHTED]
    steps = ([[0, 7, 8, *weighted]] * 3 + [[7, 8, *weighted]] * 6 + [[8, *weighted]] * 2
             + [weighted] * 7)
    picks = _simulate(steps)
    assert picks == _model(steps)
    qids = [q for q, _, _ in picks]
    assert qids[:3] == [0, 0, 0]
    assert qids[3:9] == [7, 8, 7, 8, 7, 8]
    assert qids[9:11] == [8, 8]
    assert Counter(PRIO[q] for q in qids[11:]) == {H: 4, M: 2, L: 1}
    assert all(limit == NO_LIMIT for _, limit, _ in picks[:11])


def test_round_robin_ignores_priority():
    """CC.AMS = round robin: every SQ in turn, the admin SQ included, whatever QPRIO."""
    everyone = [0, *PRIO]
    picks = _simulate([everyone] * 27, wrr=False)
    assert picks == _model([everyone] * 27, wrr=False)
    qids = [q for q, _, _ in picks]
    assert qids[:10] == [1, 2, 3, 4, 5, 6, 7, 8, 0, 1]
    assert Counter(qids) == {q: 3 for q in everyone}
    assert all(limit == NO_LIMIT for _, limit, _ in picks)


def test_random_against_model():
    """Random candidate sets, weights and bursts: the gateware and the model pick the
    same SQ with the same limit every time."""
    rng = random.Random(10)
    for trial in range(3):
        weights = tuple(rng.randint(1, 6) for _ in range(3))
        burst = rng.choice((1, 2, 4))
        steps = [sorted(rng.sample(range(len(PRIO) + 1), rng.randint(0, 5)))
                 for _ in range(120)]
        for step in steps:
            if 0 in step and rng.random() < 0.8:
                step.remove(0)                     # the admin SQ seldom has work
        got = _simulate(steps, weights=weights, burst=burst)
        assert got == _model(steps, weights=weights, burst=burst), (trial, weights, burst)


def test_class_change_waits_a_cycle():
    """The one priority encoder serves the class chosen in the cycle before; when the
    class to serve changes (the admin SQ gets work beside a low one, a class runs dry,
    another gets work) there is no pick for a cycle, then the pick the class logic asks
    for. Round robin mode has one class: every candidate set is served in its cycle."""
    dut = SqArbiter(CONFIG)
    seen = []

    async def bench(ctx):
        await _create(ctx, dut, PRIO)
        ctx.set(dut.weights, Arbitration.const(_weights(1, 2, 4)))
        for wrr, steps in ((1, [{5}, {5}, {0, 5}, {0, 5}, set(), {1}, {1}]),
                           (0, [set(), {3}, {0, 3}, {6}])):
            ctx.set(dut.wrr, wrr)
            for candidates in steps:
                ctx.set(dut.candidates, sum(1 << q for q in candidates))
                seen.append((wrr, ctx.get(dut.pick) if ctx.get(dut.found) else None))
                await ctx.tick()

    simulate(dut, bench)
    wrr = [p for w, p in seen if w]
    rr = [p for w, p in seen if not w]
    # weighted: each change of class (round robin → low, low → admin, admin → none →
    # high) costs the cycle it happens in
    assert wrr == [None, 5, None, 0, None, None, 1], wrr
    # round robin (nothing taken, so the pointer stays at 0: SQ 3 is above it, SQ 0 is
    # not); its first cycle still has the weighted class
    assert rr == [None, 3, 3, 6], rr
