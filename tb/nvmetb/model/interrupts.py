"""Interrupt aggregation (coalescing) per vector [NVMe 1.4 §5.21.1.8, §5.21.1.9].

Applies to I/O CQs whose vector has Coalescing Disable = 0 (the admin CQ is never
coalesced). A vector fires when THR + 1 completions are pending on it, or once
TIME × 100 µs have passed since the first pending one; TIME = 0 allows no delay
(docs/admin-commands.md "Interrupts").

Time in the model: the model is transaction level and has no clock of its own. It keeps
a cycle count that only :meth:`ControllerModel.advance_time` moves, at the core's 250 MHz
(100 µs = :data:`CYCLES_PER_TIME_UNIT` cycles). The count threshold is exact; the time
limit fires when the test says that much time has passed, so a comparison with the RTL
can only check that a time-fired message arrives within the window, not the exact cycle.
"""

__all__ = ["CYCLES_PER_TIME_UNIT", "Aggregation"]

#: 100 µs at 250 MHz (DESIGN.md §1: one clock domain, 250 MHz target).
CYCLES_PER_TIME_UNIT = 25_000


class Aggregation:
    def __init__(self, vectors):
        self.vectors = vectors
        self.reset()

    def reset(self):
        self.pending = [0] * self.vectors        # completions not yet signalled
        self.since = [0] * self.vectors          # cycle of the first pending one

    def completion(self, vector, now, threshold):
        """A completion on ``vector`` at cycle ``now``: True when the vector fires
        (``threshold`` is THR, 0's based)."""
        if self.pending[vector] == 0:
            self.since[vector] = now
        self.pending[vector] += 1
        if self.pending[vector] >= threshold + 1:
            self.pending[vector] = 0
            return True
        return False

    def expired(self, now, time):
        """The vectors whose aggregation time (TIME, 100 µs units; 0 = no limit) has run
        out by cycle ``now``, lowest first; they fire and start over."""
        if time == 0:
            return []
        fired = [v for v in range(self.vectors)
                 if self.pending[v] and now - self.since[v] >= time * CYCLES_PER_TIME_UNIT]
        for v in fired:
            self.pending[v] = 0
        return fired
