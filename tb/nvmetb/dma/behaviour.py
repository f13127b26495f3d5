"""How the bench's DMA ports behave, one clock edge at a time, independent of the simulator.

:class:`ReadResponder` answers the core's ``dma_rd`` requests and :class:`WriteSink` takes
its ``dma_wr`` writes, both over a :class:`~nvmetb.hostmem.HostMemory` and tuned by
:class:`DmaSettings`; :class:`StreamRule` checks that the core holds what it offers. The
simulator drivers (:mod:`.amaranth_ports`, :mod:`.cocotb_ports`) are thin wrappers that
sample and drive signals.
"""

import random
from collections import deque
from dataclasses import dataclass, field

from nvmetb.hostmem import HostMemory

__all__ = ["DmaSettings", "DMA_SETTINGS", "ReadResponder", "WriteSink", "StreamRule"]


@dataclass(frozen=True)
class DmaSettings:
    """How the bench's DMA ports behave.

    ``read_latency``: cycles from the clock edge that accepts a read request to the
    earliest edge that can transfer its first data beat (at least 1).
    ``read_req_stall``: probability that ``dma_rd.req.ready`` is low in a cycle.
    ``read_gap``: probability that no data beat is offered in a cycle where one could be
    (``valid`` never drops while a beat waits for ``ready``).
    ``max_outstanding_reads``: requests accepted and not fully answered before
    ``dma_rd.req.ready`` stays low (0: no limit).
    ``read_error_beats``: which beats of a failed read carry ``error``: "all", "first"
    or "last".
    ``write_stall``: probability that ``dma_wr.cmd.ready`` / ``dma_wr.data.ready`` is low.
    ``write_data_after_cmd``: accept data beats only for a command already accepted (an
    adapter that needs the header first); otherwise both streams are independent.
    """
    read_latency: int = 8
    read_req_stall: float = 0.0
    read_gap: float = 0.0
    max_outstanding_reads: int = 0
    read_error_beats: str = "all"
    write_stall: float = 0.0
    write_data_after_cmd: bool = False
    seed: int = 0

    def __post_init__(self):
        if self.read_latency < 1:
            raise ValueError("read_latency must be at least 1 cycle")
        if self.read_error_beats not in ("all", "first", "last"):
            raise ValueError(f"read_error_beats={self.read_error_beats!r}")


DMA_SETTINGS = {
    "fast": DmaSettings(read_latency=1),
    "busy": DmaSettings(read_latency=24, read_req_stall=0.3, read_gap=0.3,
                        max_outstanding_reads=4, read_error_beats="last", write_stall=0.5,
                        write_data_after_cmd=True),
}


def _beat_count(length, beat_bytes):
    return max(1, -(-length // beat_bytes))


class StreamRule:
    """Checks the core's side of one of its output streams: once ``valid`` is high, it
    stays high with the same payload until ``ready`` (``amaranth.lib.stream``'s rule). A
    breach is a "stream" violation in ``memory``."""

    def __init__(self, memory: HostMemory, name):
        self.memory = memory
        self.name = name
        self.cycle = 0
        self._held = None

    def step(self, valid, ready, payload):
        """Call at every clock edge with the sampled signals (payload as an integer)."""
        self.cycle += 1
        if self._held is not None and not (valid and payload == self._held):
            what = "valid dropped" if not valid else "payload changed"
            self.memory._violation("stream", self.name, 0, 0,
                                   f"{what} before ready (edge {self.cycle})")
        self._held = payload if valid and not ready else None


@dataclass
class _InFlightRead:
    ready_cycle: int
    beats: deque = field(default_factory=deque)    # (data, tag, last, error)


class ReadResponder:
    """The completer side of ``dma_rd``, one clock edge at a time.

    Each edge, the driver calls :meth:`step` with the request transferred at that edge (or
    None), whether the offered data beat was transferred, and the core's current max read
    request size; it drives the returned ``req.ready`` and beat (``valid`` = beat is not
    None) until the next edge. Data is read from memory when the request is accepted.
    """

    def __init__(self, memory: HostMemory, width, settings: DmaSettings | None = None,
                 rng=None):
        self.memory = memory
        self.beat_bytes = width // 8
        self.settings = settings = settings or DmaSettings()
        self.rng = rng or random.Random(settings.seed)
        self.cycle = 0
        self._queue: deque[_InFlightRead] = deque()
        self._offer = None
        self.requests = 0

    @property
    def outstanding(self):
        return len(self._queue)

    def flush(self):
        """Forget every read in flight (function-level reset: completions discarded)."""
        self._queue.clear()
        self._offer = None

    def step(self, request=None, beat_taken=False, max_read_request_size=None):
        """``request`` = (addr, length, tag). Returns (req_ready, beat or None) with
        beat = (data, tag, last, error)."""
        self.cycle += 1
        s = self.settings
        if beat_taken:
            if self._offer is None:
                raise AssertionError("dma_rd.data transferred a beat that was not offered")
            current = self._queue[0]
            current.beats.popleft()
            if not current.beats:
                self._queue.popleft()
            self._offer = None
        if request is not None:
            self._accept(*request, max_read_request_size)
        if self._offer is None and self._queue and self._queue[0].ready_cycle <= self.cycle \
                and not self.rng.random() < s.read_gap:
            self._offer = self._queue[0].beats[0]
        req_ready = not self.rng.random() < s.read_req_stall and (
            not s.max_outstanding_reads or len(self._queue) < s.max_outstanding_reads)
        return req_ready, self._offer

    def _accept(self, addr, length, tag, mrrs):
        self.requests += 1
        data, error = self.memory.device_read(addr, length, mrrs)
        n = _beat_count(length, self.beat_bytes)
        data = data.ljust(n * self.beat_bytes, b"\0")
        fault = self.memory.last_fault
        late = fault.delay if error and fault is not None and fault.kind == "late" else 0
        read = _InFlightRead(self.cycle + self.settings.read_latency - 1 + late)
        where = {"all": range(n), "first": range(1), "last": range(n - 1, n)}
        flagged = where[self.settings.read_error_beats] if error else range(0)
        for i in range(n):
            chunk = data[i * self.beat_bytes:(i + 1) * self.beat_bytes]
            read.beats.append((int.from_bytes(chunk, "little"), tag, i == n - 1,
                               i in flagged))
        self._queue.append(read)


class WriteSink:
    """The completer side of ``dma_wr``, one clock edge at a time: assembles each command
    with its data beats and hands it to :meth:`HostMemory.device_write`. A command whose
    beat count is not ⌈length / beat bytes⌉ is a violation ("beats")."""

    def __init__(self, memory: HostMemory, width, settings: DmaSettings | None = None,
                 rng=None):
        self.memory = memory
        self.beat_bytes = width // 8
        self.settings = settings = settings or DmaSettings()
        self.rng = rng or random.Random(settings.seed + 1)
        self._cmds: deque = deque()        # (addr, length, mps) accepted
        self._groups: deque = deque()      # beat lists that ended with last
        self._beats: list[int] = []
        self.commands = 0

    @property
    def idle(self):
        """No command or data waiting for its other half."""
        return not (self._cmds or self._groups or self._beats)

    def flush(self):
        """Drop half-received writes (function-level reset)."""
        self._cmds.clear()
        self._groups.clear()
        self._beats = []

    def step(self, cmd=None, beat=None, max_payload_size=None):
        """``cmd`` = (addr, length) transferred at this edge, ``beat`` = (data, last).
        Returns (cmd_ready, data_ready) for the next cycle."""
        if cmd is not None:
            self._cmds.append((*cmd, max_payload_size))
            self.commands += 1
        if beat is not None:
            value, last = beat
            self._beats.append(value)
            if last:
                self._groups.append(self._beats)
                self._beats = []
        while self._cmds and self._groups:
            self._complete(*self._cmds.popleft(), self._groups.popleft())
        stall = self.settings.write_stall
        cmd_ready = not self.rng.random() < stall
        data_ready = not self.rng.random() < stall
        if self.settings.write_data_after_cmd and not self._cmds:
            data_ready = False
        return cmd_ready, data_ready

    def _complete(self, addr, length, mps, beats):
        want = _beat_count(length, self.beat_bytes)
        if len(beats) != want:
            self.memory._violation("beats", "write", addr, length,
                                   f"{len(beats)} data beats, expected {want}")
        raw = b"".join(b.to_bytes(self.beat_bytes, "little") for b in beats)
        self.memory.device_write(addr, raw[:length], mps)
