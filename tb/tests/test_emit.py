"""nvmecore.emit: memories marked NO_INIT are written without initial contents, also when
several threads convert at once (``make synth`` converts both widths in parallel); other
memories keep theirs."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from amaranth import Module
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from nvmecore.emit import NO_INIT, convert

pytestmark = pytest.mark.quick


class _Two(wiring.Component):
    addr: In(10)
    a: Out(32)
    b: Out(32)

    def elaborate(self, platform):
        m = Module()
        m.submodules.bare = bare = memory.Memory(shape=32, depth=1024, init=[], attrs=NO_INIT)
        m.submodules.kept = kept = memory.Memory(shape=32, depth=1024, init=[7] * 1024)
        for mem, out in ((bare, self.a), (kept, self.b)):
            port = mem.read_port()
            m.d.comb += [port.addr.eq(self.addr), out.eq(port.data)]
        return m


def _inits(text):
    """How many initial words the NO_INIT memory and the other one were written with."""
    return text.count("    bare["), text.count("    kept[")


def test_no_init_memory_has_no_contents():
    zeros, sevens = _inits(convert(_Two(), name="two"))
    assert (zeros, sevens) == (0, 1024)


class _Gated(_Two):
    """_Two whose elaboration (inside the conversion) first sets one event, then waits for
    another."""

    def __init__(self, entered=None, wait=None):
        super().__init__()
        self._entered, self._wait = entered, wait

    def elaborate(self, platform):
        if self._entered is not None:
            self._entered.set()
        if self._wait is not None:
            assert self._wait.wait(timeout=30)
        return super().elaborate(platform)


def test_no_init_when_conversions_overlap():
    """The first conversion to start ends while the second is still converting (the order
    in which ``make synth``'s two widths lost the RAM disk's NO_INIT)."""
    second_in, first_done = threading.Event(), threading.Event()
    with ThreadPoolExecutor(max_workers=2) as pool:
        first = pool.submit(convert, _Gated(wait=second_in), name="two")
        second = pool.submit(convert, _Gated(entered=second_in, wait=first_done), name="two")
        first_text = first.result(timeout=60)
        first_done.set()
        second_text = second.result(timeout=60)
    assert _inits(first_text) == (0, 1024)
    assert _inits(second_text) == (0, 1024)


def test_no_init_holds_across_threads():
    with ThreadPoolExecutor(max_workers=8) as pool:
        texts = list(pool.map(lambda _: convert(_Two(), name="two"), range(16)))
    assert [_inits(t) for t in texts] == [(0, 1024)] * 16
