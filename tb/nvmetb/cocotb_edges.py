"""Clock-edge work of a cocotb bench in one task, and cheap signal access.

A bench has many things to do at every rising edge: monitors sample taps, DMA port
drivers sample ``valid`` / ``ready`` and drive their outputs for the next cycle. Each
as a coroutine of its own costs a task switch per edge; each ``int(handle.value)`` builds
a ``LogicArray`` first. Here they are plain functions (*steps*) that one
:class:`EdgeLoop` task calls at every rising edge, in the order they were added, reading
signals through :func:`reader` and writing them through :class:`Output`::

    edges = EdgeLoop(dut.clk)
    valid = reader(dut.dma_wr__cmd__valid)
    ready = Output(dut.dma_wr__cmd__ready)

    def step():                 # called right after every rising edge
        if valid() and ready.value:
            ...                 # a transfer at this edge
        ready.set(1)

    edges.add(step)
    edges.start()               # a cocotb Task; edges.stop() ends it

All steps of a loop see the values sampled at the same edge (writes from cocotb are
applied after the callbacks of that edge have run, as for separate coroutines), and a step
added at time *t* first runs at the first rising edge after *t*, as a coroutine started
with ``cocotb.start_soon`` at *t* would.

``await edges.wait(n)`` is ``for _ in range(n): await RisingEdge(clock)`` for the price of
one wake-up: the loop counts the edges.
"""

import cocotb
from cocotb.simtime import get_sim_time
from cocotb.triggers import Event, NullTrigger, RisingEdge

__all__ = ["EdgeLoop", "Output", "reader"]


class EdgeLoop:
    """Calls its steps (functions of no argument) at every rising edge of ``clock``."""

    def __init__(self, clock):
        self.clock = clock
        self._steps = []
        self._pending = []        # (sim time of add, step): run from the next edge on
        self._calls = []          # (sim time, edges, Event): wait() calls not yet counting
        self._waiters = []        # [edges to go, Event]
        self._task = None

    def add(self, step):
        self._pending.append((get_sim_time(), step))

    def remove(self, step):
        self._steps = [s for s in self._steps if s != step]
        self._pending = [(t, s) for t, s in self._pending if s != step]

    def start(self):
        """Start the loop's task (once); returns it."""
        if self._task is None:
            self._task = cocotb.start_soon(self._run())
        return self._task

    def stop(self):
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self._calls, self._waiters = [], []

    async def wait(self, cycles):
        """Return right after the ``cycles``-th rising edge from now, before the loop's
        steps run at that edge: what ``for _ in range(cycles): await RisingEdge(clock)``
        does in a task that waits on the clock ahead of the loop's task (cocotb resumes
        tasks waiting on one edge in the order they started waiting). A task woken
        here runs before the steps because the loop yields to it
        (``await NullTrigger()``) — cocotb 2.1 runs tasks it wakes in order; if that
        changed, a woken task would see the steps of its last edge already done, a
        cycle's difference in when it notices what they recorded, never a wrong value."""
        if self._task is None:
            for _ in range(cycles):
                await RisingEdge(self.clock)
            return
        if cycles <= 0:
            return
        event = Event()
        self._calls.append((get_sim_time(), cycles, event))
        await event.wait()

    async def _run(self):
        edge = RisingEdge(self.clock)
        while True:
            await edge
            if self._calls:
                self._start_counting()
            if self._waiters and self._count_down():
                await NullTrigger()          # let the woken tasks run first
            if self._pending:
                self._activate()
            for step in self._steps:
                step()

    def _start_counting(self):
        """Waits called before this edge count it (not those called at this edge)."""
        now = get_sim_time()
        self._waiters += [[cycles, event] for t, cycles, event in self._calls if t < now]
        self._calls = [call for call in self._calls if call[0] >= now]

    def _count_down(self):
        """Count this edge for every waiter; wake those that are done. True if any."""
        woken = False
        for waiter in self._waiters:
            waiter[0] -= 1
            if waiter[0] == 0:
                waiter[1].set()
                woken = True
        if woken:
            self._waiters = [w for w in self._waiters if w[0]]
        return woken

    def _activate(self):
        now = get_sim_time()
        self._steps += [step for t, step in self._pending if t < now]
        self._pending = [(t, step) for t, step in self._pending if t >= now]


def reader(handle):
    """A function returning ``int(handle.value)``, about ten times faster.

    It reads the simulator's binary string and converts it directly, skipping the
    ``LogicArray`` that ``handle.value`` builds (``_handle`` is cocotb's own low-level
    object; without it the public API is used). A value with X or Z bits raises the
    ``ValueError`` that ``int(handle.value)`` raises.
    """
    try:
        get = handle._handle.get_signal_val_binstr
    except AttributeError:
        return lambda: int(handle.value)

    def read():
        try:
            return int(get(), 2)
        except ValueError:
            return int(handle.value)
    return read


class Output:
    """A signal this bench alone drives: :meth:`set` writes only when the value changes,
    and :attr:`value` is the value last written (what the design sees from the next
    edge on), so the bench never needs to read it back."""

    def __init__(self, handle, value=None):
        self.handle = handle
        self.value = None
        if value is not None:
            self.set(value)

    def set(self, value):
        value = int(value)
        if value != self.value:
            self.handle.value = value
            self.value = value
