"""The core's side of the backend interface, one clock edge at a time, independent of the
simulator; and a shadow of the namespace to check a backend against.

:class:`BackendInitiator` plays the core (docs/backend.md): it offers commands on ``cmd``
(explicit :class:`BackendRequest` s, or from a source such as :class:`RandomMix`), sends
every WRITE's data on ``wdata`` in command order, takes ``rdata`` and ``done`` with
random stalls, and raises ``abort`` on request. It checks the backend's side of the
contract and raises :class:`BackendViolation` at the clock edge where a rule breaks:

- ``rdata`` beats only while a READ is accepted with beats to go, in the order the READs
  were accepted, exactly ``length / (W/8)`` of them, ``last`` on the final one only;
- exactly one ``done`` per command, with the tag of a command in flight, offered only
  after (at a later clock edge than) the command's last data beat in either direction
  and, for a FLUSH, ZERO or READ, after the command was accepted; the status expected
  (``expect_error``);
- ``rdata`` and ``done`` hold ``valid`` and their payload until ``ready``
  (``amaranth.lib.stream``), and transfer nothing while ``abort`` is high;
- after an abort, nothing more for the commands it cut short.

Results go to a :class:`Namespace`: a WRITE or ZERO is applied when its ``done`` comes
back OK (the range becomes unknown if it failed or was cut short by an abort); a READ's
data is compared with it when its ``done`` comes back OK. The simulator drivers
(:mod:`.amaranth_port`, :mod:`.cocotb_port`) sample and drive the signals.
"""

import random
from collections import deque
from dataclasses import dataclass, field

from nvmecore.backend.interface import TAG_WIDTH, BackendOp, BackendStatus
from nvmecore.nvm_layouts import SECTOR_BYTES

__all__ = ["BackendViolation", "InitiatorSettings", "INITIATOR_SETTINGS", "BackendRequest",
           "Namespace", "BackendInitiator", "Drive", "RandomMix", "overlaps"]


class BackendViolation(AssertionError):
    """The backend broke the backend interface's contract."""


def overlaps(a_start, a_length, b_start, b_length):
    return a_start < b_start + b_length and b_start < a_start + a_length


@dataclass(frozen=True)
class InitiatorSettings:
    """How the bench's initiator behaves.

    ``cmd_gap``: probability that no new command is offered in a cycle where one could
    be. ``wdata_gap``: probability that no data beat is offered in a cycle where one
    could be (an offered beat is held until taken). ``rdata_stall`` / ``done_stall``:
    probability that ``rdata.ready`` / ``done.ready`` is low in a cycle.
    ``max_in_flight``: commands offered or accepted and not done (the core's ``io_slots``
    + 1). ``data_with_cmd``: offer a WRITE's first beat in the cycle its command is
    offered, rather than after the command was accepted.
    """
    cmd_gap: float = 0.0
    wdata_gap: float = 0.0
    rdata_stall: float = 0.0
    done_stall: float = 0.0
    max_in_flight: int = 33
    data_with_cmd: bool = False
    seed: int = 0


INITIATOR_SETTINGS = {
    "fast": InitiatorSettings(),
    "busy": InitiatorSettings(cmd_gap=0.3, wdata_gap=0.3, rdata_stall=0.4, done_stall=0.4,
                              max_in_flight=6, data_with_cmd=True),
    # dones pile up in the backend while its data keeps moving
    "slow_done": InitiatorSettings(done_stall=0.9, max_in_flight=8),
}


@dataclass(eq=False)
class BackendRequest:
    """One command and, once it ran, its result. ``tag`` None: the initiator picks a free
    one. Clock edges are counted by the initiator (:attr:`BackendInitiator.cycle`)."""
    op: BackendOp
    addr: int = 0
    length: int = 0
    data: bytes | None = None           # WRITE: the bytes to write
    tag: int | None = None
    status: BackendStatus | None = None
    rdata: bytearray = field(default_factory=bytearray)
    offered: int | None = None          # edge after which cmd.valid went high
    accepted: int | None = None         # edge that transferred the command
    first_beat: int | None = None       # edge of the first data beat (either direction)
    data_done: int | None = None        # edge of the last data beat
    finished: int | None = None         # edge of its done
    aborted: bool = False
    beats_sent: int = 0
    _auto_tag: bool = False

    @property
    def done(self):
        return self.status is not None or self.aborted

    @property
    def failed(self):
        return self.status == BackendStatus.ERROR

    def __repr__(self):
        return (f"{self.op.name}(tag={self.tag}, addr={self.addr:#x}, "
                f"length={self.length:#x})")


class Namespace:
    """Shadow of the namespace: bytes and which of them are known. ``known``: whether
    the initial contents (zeroes) are known."""

    def __init__(self, size, *, known=True):
        self.size = size
        self.data = bytearray(size)
        self.known = bytearray(b"\x01" * size if known else size)

    def write(self, addr, data):
        self.data[addr:addr + len(data)] = data
        self.known[addr:addr + len(data)] = b"\x01" * len(data)

    def zero(self, addr, length):
        self.write(addr, bytes(length))

    def forget(self, addr, length):
        self.known[addr:addr + length] = bytes(length)

    def mismatch(self, addr, data):
        """Offset of the first known byte that ``data`` (at ``addr``) gets wrong, or None."""
        expect = self.data[addr:addr + len(data)]
        if expect == data:
            return None
        known = self.known[addr:addr + len(data)]
        for i, (e, got, k) in enumerate(zip(expect, data, known, strict=True)):
            if k and e != got:
                return i
        return None

    def check(self, addr, data, what="namespace"):
        """Raise :class:`BackendViolation` if ``data`` disagrees with a known byte."""
        i = self.mismatch(addr, bytes(data))
        if i is not None:
            raise BackendViolation(
                f"{what}: byte {addr + i:#x} is {data[i]:#04x}, expected "
                f"{self.data[addr + i]:#04x}")


@dataclass(frozen=True)
class Drive:
    """What the initiator drives until the next clock edge. ``cmd`` = (op, tag, addr,
    length) or None; ``wdata`` = (data, last) or None."""
    cmd: tuple | None = None
    wdata: tuple | None = None
    rdata_ready: bool = False
    done_ready: bool = False
    abort: bool = False


class BackendInitiator:
    """The core's side of the backend interface, one clock edge at a time.

    Each clock edge, the driver calls :meth:`step` with what the backend drove during the
    cycle that edge ends (``cmd.ready``, ``wdata.ready``, ``rdata`` and ``done``) and
    drives the returned :class:`Drive` until the next edge.

    ``expect_error(request)`` gives the status a command must end with: True (ERROR),
    False (OK) or None (either); ``error_ranges`` (namespace byte ranges ``(start,
    end)``) is a shorthand: a READ, WRITE or ZERO touching one must fail, any other
    command must succeed. Without either, every command must succeed.
    """

    @classmethod
    def for_bench(cls, config, settings: InitiatorSettings | None, errors, name):
        """An initiator over a fresh, empty namespace of ``config.namespace_bytes`` for a
        backend bench whose backend fails ``errors`` (``(start, end, response)`` namespace
        byte ranges, as the benches' AXI memories take them)."""
        return cls(config.data_width, Namespace(config.namespace_bytes), settings,
                   error_ranges=[(start, end) for start, end, _ in errors], name=name)

    def __init__(self, data_width, namespace: Namespace, settings: InitiatorSettings | None
                 = None, *, rng=None, expect_error=None, error_ranges=(), source=None,
                 name="backend"):
        self.beat_bytes = data_width // 8
        self.namespace = namespace
        self.settings = settings = settings or InitiatorSettings()
        self.rng = rng or random.Random(settings.seed)
        self.name = name
        self.source = source
        if expect_error is None:
            ranges = tuple(error_ranges)

            def expect_error(req):
                return req.op != BackendOp.FLUSH and any(
                    overlaps(req.addr, req.length, lo, hi - lo) for lo, hi in ranges)
        self.expect_error = expect_error
        self.cycle = 0
        self.pending: deque[BackendRequest] = deque()
        self.in_flight: dict[int, list[BackendRequest]] = {}
        self.completed: list[BackendRequest] = []
        self.aborted: list[BackendRequest] = []
        self.accepted_count = 0
        self._cmd: BackendRequest | None = None         # offered, not yet accepted
        self._writes: deque[BackendRequest] = deque()   # WRITEs with data still to send
        self._beat = None                               # (request, data, last) offered
        self._reads: deque[BackendRequest] = deque()    # accepted READs, beats to come
        self._drive = Drive()
        self._held = {"rdata": None, "done": None}
        self._abort_left = 0

    # -- the test's side ------------------------------------------------------------------

    def submit(self, request: BackendRequest) -> BackendRequest:
        """Queue ``request``; it is offered after the ones queued before it."""
        if request.op == BackendOp.WRITE:
            if request.data is None or len(request.data) != request.length:
                raise ValueError(f"{request}: needs {request.length} bytes of data")
        self.pending.append(request)
        return request

    def read(self, addr, length, **kw):
        return self.submit(BackendRequest(BackendOp.READ, addr, length, **kw))

    def write(self, addr, data, **kw):
        return self.submit(BackendRequest(BackendOp.WRITE, addr, len(data), bytes(data),
                                          **kw))

    def zero(self, addr, length, **kw):
        return self.submit(BackendRequest(BackendOp.ZERO, addr, length, **kw))

    def flush(self, **kw):
        return self.submit(BackendRequest(BackendOp.FLUSH, **kw))

    def abort(self, cycles=4):
        """Raise ``abort`` for ``cycles`` clock cycles from the next one: every command
        in flight is forgotten (WRITE and ZERO ranges become unknown); a command offered
        and not yet accepted goes back to the front of the queue."""
        if cycles < 1:
            raise ValueError("abort for at least one cycle")
        self._abort_left = cycles

    @property
    def aborting(self):
        return self._abort_left > 0 or self._drive.abort

    @property
    def idle(self):
        """Nothing queued, offered or in flight, and the source has nothing more."""
        return (not self.pending and self._cmd is None and not self.in_flight
                and not self.aborting
                and (self.source is None or getattr(self.source, "exhausted", True)))

    def conflicts(self, op, addr, length):
        """Whether a command would overlap one in flight in a way whose outcome depends
        on the order they run (docs/backend.md rule 7: the core never sends such)."""
        if op == BackendOp.FLUSH:
            return False
        for reqs in self.in_flight.values():
            for r in reqs:
                if r.op == BackendOp.FLUSH or (op == BackendOp.READ and r.op == BackendOp.READ):
                    continue
                if overlaps(addr, length, r.addr, r.length):
                    return True
        return False

    # -- one clock edge -------------------------------------------------------------------

    def _fail(self, message):
        raise BackendViolation(f"{self.name}, edge {self.cycle}: {message}")

    def step(self, cmd_ready, wdata_ready, rdata_valid, rdata, done_valid, done) -> Drive:
        """``rdata`` = (data, last) and ``done`` = (tag, status) as sampled (ignored while
        their ``valid`` is low). Returns what to drive until the next edge."""
        self.cycle += 1
        d = self._drive
        if d.cmd is not None and cmd_ready:
            self._accepted()
        if d.wdata is not None and wdata_ready:
            self._beat_sent()
        self._check_held("rdata", rdata_valid, rdata, d.rdata_ready, d.abort)
        self._check_held("done", done_valid, done, d.done_ready, d.abort)
        if rdata_valid:
            self._rdata(rdata, d.rdata_ready, d.abort)
        if done_valid:
            self._done(*done, d.done_ready, d.abort)
        self._drive = self._next()
        return self._drive

    def _check_held(self, name, valid, payload, ready, abort):
        held = self._held[name]
        if held is not None and not abort and not (valid and payload == held):
            self._fail(f"{name}: {'valid dropped' if not valid else 'payload changed'} "
                       f"before ready ({held} → {payload if valid else None})")
        self._held[name] = payload if valid and not ready and not abort else None

    def _accepted(self):
        req, self._cmd = self._cmd, None
        req.accepted = self.cycle
        self.accepted_count += 1
        if req.op == BackendOp.READ:
            self._reads.append(req)
        elif req.op == BackendOp.WRITE and not self.settings.data_with_cmd:
            self._writes.append(req)

    def _beat_sent(self):
        req, _, last = self._beat
        self._beat = None
        if req.first_beat is None:
            req.first_beat = self.cycle
        req.beats_sent += 1
        if last:
            req.data_done = self.cycle
            self._writes.popleft()

    def _rdata(self, beat, ready, abort):
        data, last = beat
        if abort:
            if ready:
                self._fail("rdata transferred while abort was high")
            return
        req = self._reads[0] if self._reads else None
        if req is None or req.accepted >= self.cycle:
            self._fail(f"rdata offered ({'last' if last else 'not last'}) with no READ "
                       f"in flight")
        if not ready:
            return
        beats = req.length // self.beat_bytes
        index = len(req.rdata) // self.beat_bytes
        if bool(last) != (index == beats - 1):
            self._fail(f"{req}: beat {index} of {beats} has last={int(last)}")
        if req.first_beat is None:
            req.first_beat = self.cycle
        req.rdata += int(data).to_bytes(self.beat_bytes, "little")
        if index == beats - 1:
            req.data_done = self.cycle
            self._reads.popleft()

    def _done(self, tag, status, ready, abort):
        if abort:
            if ready:
                self._fail(f"done (tag {tag}) transferred while abort was high")
            return
        reqs = self.in_flight.get(tag)
        if not reqs or reqs[0].accepted is None:
            self._fail(f"done offered for tag {tag}, which has no command in flight")
        req = reqs[0]
        if req.op in (BackendOp.READ, BackendOp.WRITE):
            if req.data_done is None or req.data_done >= self.cycle:
                self._fail(f"{req}: done offered before its last data beat was "
                           f"transferred (at an earlier edge)")
        elif req.accepted >= self.cycle:
            self._fail(f"{req}: done offered before the command was accepted")
        if not ready:
            return
        status = BackendStatus(status)
        expect = self.expect_error(req)
        if expect is not None and (status == BackendStatus.ERROR) != expect:
            self._fail(f"{req} ended {status.name}, expected "
                       f"{'ERROR' if expect else 'OK'}")
        reqs.pop(0)
        if not reqs:
            del self.in_flight[tag]
        req.status = status
        req.finished = self.cycle
        self.completed.append(req)
        ns = self.namespace
        if req.op == BackendOp.READ and status == BackendStatus.OK:
            ns.check(req.addr, req.rdata, f"{self.name}: {req} read")
        elif req.op == BackendOp.WRITE:
            (ns.write(req.addr, req.data) if status == BackendStatus.OK
             else ns.forget(req.addr, req.length))
        elif req.op == BackendOp.ZERO:
            (ns.zero(req.addr, req.length) if status == BackendStatus.OK
             else ns.forget(req.addr, req.length))

    def _drop_all(self):
        """An abort starts: forget everything in flight."""
        if self._cmd is not None:
            req, self._cmd = self._cmd, None
            self._unregister(req)
            req.offered, req.beats_sent, req.first_beat = None, 0, None
            self.pending.appendleft(req)
        for reqs in self.in_flight.values():
            for req in reqs:
                req.aborted = True
                self.aborted.append(req)
                if req.op in (BackendOp.WRITE, BackendOp.ZERO):
                    self.namespace.forget(req.addr, req.length)
        self.in_flight.clear()
        self._writes.clear()
        self._reads.clear()
        self._beat = None

    def _unregister(self, req):
        reqs = self.in_flight[req.tag]
        reqs.remove(req)
        if not reqs:
            del self.in_flight[req.tag]
        if req._auto_tag:
            req.tag = None

    def _next(self) -> Drive:
        s, rng = self.settings, self.rng
        if self._abort_left:
            if not self._drive.abort:
                self._drop_all()
            self._abort_left -= 1
            return Drive(rdata_ready=rng.random() >= s.rdata_stall,
                         done_ready=rng.random() >= s.done_stall, abort=True)
        if self._cmd is None and rng.random() >= s.cmd_gap:
            self._offer()
        cmd = None
        if self._cmd is not None:
            r = self._cmd
            cmd = (r.op, r.tag, r.addr, r.length)
        if self._beat is None and self._writes and rng.random() >= s.wdata_gap:
            req = self._writes[0]
            i = req.beats_sent
            chunk = req.data[i * self.beat_bytes:(i + 1) * self.beat_bytes]
            self._beat = (req, int.from_bytes(chunk, "little"),
                          i == req.length // self.beat_bytes - 1)
        wdata = self._beat[1:] if self._beat is not None else None
        return Drive(cmd, wdata, rng.random() >= s.rdata_stall, rng.random() >= s.done_stall)

    def _offer(self):
        if sum(len(v) for v in self.in_flight.values()) >= self.settings.max_in_flight:
            return
        req = self.pending.popleft() if self.pending else (
            self.source(self) if self.source is not None else None)
        if req is None:
            return
        if req.tag is None:
            free = next((t for t in range(1 << TAG_WIDTH) if t not in self.in_flight), None)
            if free is None:
                self.pending.appendleft(req)
                return
            req.tag, req._auto_tag = free, True
        elif req.tag in self.in_flight and not (req.op == BackendOp.ZERO and all(
                r.op == BackendOp.ZERO for r in self.in_flight[req.tag])):
            raise ValueError(f"{req}: tag {req.tag} is in flight (only ZEROs share a tag)")
        req.offered = self.cycle
        self.in_flight.setdefault(req.tag, []).append(req)
        self._cmd = req
        if req.op == BackendOp.WRITE and self.settings.data_with_cmd:
            self._writes.append(req)


class RandomMix:
    """A source of random commands for :class:`BackendInitiator`: ``count`` commands in
    ``[start, end)`` of the namespace, ops weighted by ``weights``, lengths in
    ``SECTOR_BYTES`` units up to ``max_bytes``, never overlapping a command in flight in
    a way that depends on their order."""

    DEFAULT_WEIGHTS = {BackendOp.READ: 4, BackendOp.WRITE: 4, BackendOp.ZERO: 1,
                       BackendOp.FLUSH: 1}

    def __init__(self, rng, count, start, end, *, weights=None, max_bytes=8192):
        self.rng = rng
        self.left = count
        self.start, self.end = start, end
        weights = weights or self.DEFAULT_WEIGHTS
        self.ops = list(weights)
        self.weights = [weights[op] for op in self.ops]
        self.max_sectors = max(1, min(max_bytes, end - start) // SECTOR_BYTES)

    @property
    def exhausted(self):
        return self.left == 0

    def __call__(self, initiator) -> BackendRequest | None:
        if self.left == 0:
            return None
        rng = self.rng
        op = rng.choices(self.ops, self.weights)[0]
        if op == BackendOp.FLUSH:
            self.left -= 1
            return BackendRequest(op)
        for _ in range(8):
            sectors = rng.randint(1, self.max_sectors)
            if rng.random() < 0.2:
                sectors = min(self.max_sectors, 8 * rng.randint(1, 2))  # 4 KiB, 8 KiB
            length = sectors * SECTOR_BYTES
            addr = self.start + SECTOR_BYTES * rng.randrange(
                (self.end - self.start - length) // SECTOR_BYTES + 1)
            if not initiator.conflicts(op, addr, length):
                break
        else:
            return None                 # try again in a later cycle
        self.left -= 1
        data = rng.randbytes(length) if op == BackendOp.WRITE else None
        return BackendRequest(op, addr, length, data)
