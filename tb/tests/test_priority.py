"""The priority encoders (nvmecore/priority.py) against a plain Python statement of what they
compute: every input at small widths, random inputs at the widths of the queue arbiter's
largest build, and a size check that keeps the trees linear."""

import random

import pytest
from amaranth import Module, Signal
from amaranth.back import rtlil
from amaranth.sim import Simulator

from nvmecore.priority import FLAT_MAX, lowest_set, round_robin

pytestmark = pytest.mark.quick


def expected_lowest(bits):
    return (bits & -bits).bit_length() - 1 if bits else 0


def expected_round_robin(mask, last):
    above = mask >> (last + 1) << (last + 1)
    return expected_lowest(above if above else mask), mask != 0


def _dut(n, width, flat_max=FLAT_MAX):
    m = Module()
    mask = Signal(n)
    last = Signal(width)
    low = Signal(width)
    pick = Signal(width)
    found = Signal()
    rr_pick, rr_found = round_robin(m, mask, last, width, flat_max=flat_max)
    m.d.comb += [low.eq(lowest_set(m, mask, width, flat_max=flat_max)), pick.eq(rr_pick),
                 found.eq(rr_found)]
    return m, mask, last, low, pick, found


def _check(n, cases, flat_max):
    width = max(1, (n - 1).bit_length())
    m, mask, last, low, pick, found = _dut(n, width, flat_max)
    sim = Simulator(m)

    async def bench(ctx):
        for value, at in cases:
            ctx.set(mask, value)
            ctx.set(last, at)
            assert ctx.get(found) == (value != 0), (n, value)
            if value:           # (with no bit set, the index is any below n)
                assert ctx.get(low) == expected_lowest(value), (n, value)
                got = ctx.get(pick)
                assert got == expected_round_robin(value, at)[0], (n, value, at, got)
            else:
                assert ctx.get(low) < n and ctx.get(pick) < n

    sim.add_testbench(bench)
    sim.run()


FORMS = pytest.mark.parametrize("flat_max", [0, FLAT_MAX], ids=["tree", "flat"])


@FORMS
@pytest.mark.parametrize("n", [1, 2, 3, 5, 6, 7, 8])
def test_every_input(n, flat_max):
    _check(n, [(value, at) for value in range(1 << n) for at in range(n)], flat_max)


@FORMS
@pytest.mark.parametrize("n", [17, 33, 64, 100, 512])
def test_random_inputs(n, flat_max):
    rng = random.Random(n)
    cases = []
    for _ in range(300):
        density = rng.choice([1, 2, 8, n])
        value = sum(1 << q for q in range(n) if rng.randrange(density) == 0)
        cases.append((value, rng.randrange(n)))
    cases += [(0, n - 1), (1 << (n - 1), n - 1), (1, 0), ((1 << n) - 1, n - 1)]
    _check(n, cases, flat_max)


def test_size_grows_linearly():
    """The netlists of a 512-bit round robin and lowest-set encoder are under 16 cells
    per bit (the flat form has a reduction of every shorter prefix: 4.7 million cells)."""
    sizes = {}
    for n in (64, 512):
        m, *ports = _dut(n, (n - 1).bit_length())
        text = rtlil.convert(m, ports=ports)
        sizes[n] = text.count("\n  cell ")
    assert sizes[512] < 16 * 512, sizes
    assert sizes[512] < 10 * sizes[64], sizes
