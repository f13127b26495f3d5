"""Queue state: submission and completion queues, completion entries, and the fetch
arbiter, as docs/admin-commands.md ("Queues") fixes them [NVMe 1.4 §4.1, §4.6, §4.11].

Nothing here touches host memory: the controller model moves the bytes; these objects
keep heads, tails, phase tags and CQ credit, and decide how many entries one fetch takes.
"""

from dataclasses import dataclass

from amaranth.lib import data

from nvmecore.admin_layouts import QueuePriority
from nvmecore.layouts import Cqe, Sqe, StatusCodeType

from .commands import Status, encode, fields

__all__ = [
    "SQE_BYTES", "CQE_BYTES", "FETCH_BOUNDARY", "CompletionEntry", "SubmissionQueue",
    "CompletionQueue", "RoundRobin", "WeightedRoundRobin", "WEIGHTED", "fetch_count",
]

SQE_BYTES = data.Layout.cast(Sqe).size // 8          # 64
CQE_BYTES = data.Layout.cast(Cqe).size // 8          # 16
#: No DMA request crosses a 4 KiB boundary [PCIe 4.0 §2.2.7].
FETCH_BOUNDARY = 4096


@dataclass(frozen=True)
class CompletionEntry:
    """A completion queue entry, decoded [NVMe 1.4 Figure 121]."""
    cid: int
    sqid: int
    sqhd: int
    status: Status
    phase: int
    dw0: int = 0
    dw1: int = 0

    def to_bytes(self):
        return encode(Cqe, {
            "dw0": self.dw0, "dw1": self.dw1,
            "dw2": {"sqhd": self.sqhd, "sqid": self.sqid},
            "cid": self.cid,
            "status": {"p": self.phase, "sc": self.status.sc, "sct": self.status.sct,
                       "dnr": int(self.status.dnr)},
        }).to_bytes(CQE_BYTES, "little")

    @classmethod
    def from_bytes(cls, raw):
        cqe = fields(Cqe, int.from_bytes(raw, "little"))
        status = Status(StatusCodeType(cqe.status.sct), cqe.status.sc, bool(cqe.status.dnr))
        return cls(cid=cqe.cid, sqid=cqe.dw2.sqid, sqhd=cqe.dw2.sqhd, status=status,
                   phase=cqe.status.p, dw0=cqe.dw0, dw1=cqe.dw1)


@dataclass
class SubmissionQueue:
    """An SQ: the host moves ``tail`` (doorbell), the controller ``head`` (fetch).
    ``sqhd`` is the head just after the last command executed: what its completions
    report [NVMe 1.4 §4.6, docs/admin-commands.md "Posting"]."""
    qid: int
    base: int
    size: int
    cqid: int
    qprio: int = 0
    head: int = 0
    tail: int = 0
    sqhd: int = 0

    @property
    def available(self):
        """Entries the host has submitted and the controller not yet fetched."""
        return (self.tail - self.head) % self.size

    def slot_addr(self, index):
        return self.base + index * SQE_BYTES


@dataclass
class CompletionQueue:
    """A CQ: the controller moves ``tail`` (posting), the host ``head`` (doorbell).
    ``reserved`` counts commands fetched for this CQ and not yet completed: each holds
    a slot, so posting never has to wait for one."""
    qid: int
    base: int
    size: int
    vector: int
    ien: bool
    head: int = 0
    tail: int = 0
    phase: int = 1            # the phase tag starts at 1 [NVMe 1.4 §4.6]
    reserved: int = 0

    @property
    def used(self):
        """Entries posted and not yet consumed by the host."""
        return (self.tail - self.head) % self.size

    @property
    def credit(self):
        """Slots free for new commands: a CQ is full with size − 1 entries
        [NVMe 1.4 §4.1.2], less those reserved for commands in flight."""
        return self.size - 1 - self.used - self.reserved

    @property
    def empty(self):
        return self.used == 0

    def advance(self):
        """Take the slot at the tail for an entry: its address; the tail moves on and
        the phase tag flips each time it wraps."""
        addr = self.base + self.tail * CQE_BYTES
        self.tail += 1
        if self.tail == self.size:
            self.tail = 0
            self.phase ^= 1
        return addr


class RoundRobin:
    """Round robin over the queue IDs with work [NVMe 1.4 §4.11.1]: the search starts
    just after the queue served last."""

    def __init__(self):
        self.last = -1

    def pick(self, candidates):
        """The next of ``candidates`` (queue IDs) after the last one served, or None."""
        if not candidates:
            return None
        after = [qid for qid in sorted(candidates) if qid > self.last]
        self.last = after[0] if after else min(candidates)
        return self.last


#: The weighted classes, in the order a round serves them.
WEIGHTED = (QueuePriority.HIGH, QueuePriority.MEDIUM, QueuePriority.LOW)


class WeightedRoundRobin:
    """Weighted round robin with urgent priority class [NVMe 1.4 §4.11.2], as
    docs/admin-commands.md ("Arbitration") fixes it: the admin SQ first, then the urgent
    SQs, then the high, medium and low classes, each served while it holds credit
    (commands; its weight at the start of a round); a round starts when no class with
    work has credit left. Round robin within each class."""

    def __init__(self):
        self.turns = {cls: RoundRobin() for cls in QueuePriority}
        self.credit = dict.fromkeys(WEIGHTED, 0)
        self.taken = None                 # the weighted class of the SQ picked last

    def pick(self, candidates, weights):
        """``candidates``: {queue ID: QueuePriority} (the admin SQ's is ignored);
        ``weights``: {class: weight, 1's based}. Returns the queue ID picked (or None)
        and the most commands it may give now (None: no limit)."""
        self.taken = None
        if 0 in candidates:
            return 0, None
        by_class = {cls: [q for q, c in candidates.items() if c == cls]
                    for cls in QueuePriority}
        if by_class[QueuePriority.URGENT]:
            return self.turns[QueuePriority.URGENT].pick(by_class[QueuePriority.URGENT]), None
        if not any(by_class[c] and self.credit[c] for c in WEIGHTED):
            if not any(by_class[c] for c in WEIGHTED):
                return None, None
            self.credit = {c: weights[c] for c in WEIGHTED}      # a new round
        cls = next(c for c in WEIGHTED if by_class[c] and self.credit[c])
        self.taken = cls
        return self.turns[cls].pick(by_class[cls]), self.credit[cls]

    def fetched(self, n):
        """``n`` commands were fetched from the SQ picked last."""
        if self.taken is not None:
            assert n <= self.credit[self.taken]
            self.credit[self.taken] -= n


def fetch_count(sq: SubmissionQueue, cq: CompletionQueue, burst_log2, max_read_request):
    """How many entries one fetch takes from ``sq`` (docs/admin-commands.md "Fetching"):
    what is available, what its CQ has credit for, the Arbitration Burst (2^AB, no limit
    for 111b) [NVMe 1.4 §4.11], the max read request size (bytes), the entries before
    the ring wraps and those before a 4 KiB boundary."""
    addr = sq.slot_addr(sq.head)
    limits = [
        sq.available,
        cq.credit,
        max_read_request // SQE_BYTES,
        sq.size - sq.head,
        (FETCH_BOUNDARY - addr % FETCH_BOUNDARY) // SQE_BYTES,
    ]
    if burst_log2 != 0b111:
        limits.append(1 << burst_log2)
    return max(0, min(limits))
