"""The namespace as the backend keeps it (docs/backend.md, docs/io-commands.md "The
namespace"): its bytes, its LBA format, the media faults a test injects, and the bytes a
failed command left undefined.

This is the backend's state, not the controller's: it survives a controller reset and a
function-level reset or link down (the RAM disk's block RAM is never cleared, the format
register sits in a reset-less domain); only a new model starts it afresh.

The backend commands (:meth:`NamespaceStore.read`, ``write``, ``zero``, ``flush``) act as
the backend interface's READ, WRITE, ZERO and FLUSH do, on byte ranges. A command whose
range overlaps a failing range (:meth:`NamespaceStore.fail`) reports a media error, as
the AXI backend does when the bench answers its bursts there with SLVERR. A WRITE or
ZERO that fails leaves its whole range undefined (some of its bursts may have landed):
the image keeps the old bytes, and comparisons with an RTL image skip them
(:meth:`NamespaceStore.mismatch`). A later successful WRITE or ZERO defines them again.
"""

from nvmecore.nvm_layouts import lba_bytes

__all__ = ["RangeSet", "NamespaceStore"]


class RangeSet:
    """A set of bytes held as sorted, disjoint, non-adjacent half-open ranges
    ``[start, stop)``."""

    def __init__(self, ranges=()):
        self._ranges: list[tuple[int, int]] = []
        for start, stop in ranges:
            self.add(start, stop)

    def add(self, start, stop):
        if start >= stop:
            return
        kept = []
        for a, b in self._ranges:
            if b < start or stop < a:               # apart (touching ranges merge)
                kept.append((a, b))
            else:
                start, stop = min(a, start), max(b, stop)
        kept.append((start, stop))
        self._ranges = sorted(kept)

    def remove(self, start, stop):
        if start >= stop:
            return
        kept = []
        for a, b in self._ranges:
            if b <= start or stop <= a:
                kept.append((a, b))
                continue
            if a < start:
                kept.append((a, start))
            if stop < b:
                kept.append((stop, b))
        self._ranges = kept

    def overlaps(self, start, stop):
        return any(a < stop and start < b for a, b in self._ranges)

    def clear(self):
        self._ranges = []

    def __iter__(self):
        return iter(list(self._ranges))

    def __bool__(self):
        return bool(self._ranges)

    def __len__(self):
        return len(self._ranges)

    def __repr__(self):
        return f"RangeSet({self._ranges!r})"


class NamespaceStore:
    """The namespace image (``data``, ``size`` bytes, zero at first) and its LBA format
    (``lba_format``, an index into the LBA formats of ``nvm_layouts``)."""

    def __init__(self, size, lba_format):
        self.size = size
        self.data = bytearray(size)
        self.lba_format = lba_format
        self.faults = RangeSet()        # media faults injected by a test
        self.flush_fails = False        # FLUSH reports a media error
        self.undefined = RangeSet()     # bytes a failed command may have changed

    @property
    def lba_bytes(self):
        """Bytes per logical block in the current format."""
        return lba_bytes(self.lba_format)

    @property
    def blocks(self):
        """NSZE = NCAP = NUSE: the namespace in logical blocks of the current format."""
        return self.size // self.lba_bytes

    def _check(self, start, stop):
        # Backend interface rule 1: whole 512-byte units inside the namespace.
        assert 0 <= start < stop <= self.size, (start, stop)

    # -- Backend commands (docs/backend.md) --------------------------------------------------

    def read(self, start, stop):
        """READ: ``(bytes, ok)``. A failing READ still delivers its bytes (rule 6)."""
        self._check(start, stop)
        return bytes(self.data[start:stop]), not self.faults.overlaps(start, stop)

    def write(self, start, payload):
        """WRITE ``payload`` at ``start``: True on success; a failure leaves the range
        undefined."""
        stop = start + len(payload)
        self._check(start, stop)
        if self.faults.overlaps(start, stop):
            self.undefined.add(start, stop)
            return False
        self.data[start:stop] = payload
        self.undefined.remove(start, stop)
        return True

    def zero(self, start, stop):
        """ZERO: the range reads as zeroes; a failure leaves it undefined."""
        return self.write(start, bytes(stop - start))

    def flush(self):
        """FLUSH: True unless a test made flushes fail (no range: FLUSH carries none)."""
        return not self.flush_fails

    # -- Test inputs and checks ------------------------------------------------------------

    def fail(self, start, stop):
        """Backend commands overlapping ``[start, stop)`` fail from now on."""
        assert 0 <= start < stop <= self.size, (start, stop)
        self.faults.add(start, stop)

    def clear_faults(self):
        self.faults.clear()
        self.flush_fails = False

    def mark_undefined(self, start, stop):
        self.undefined.add(start, stop)

    def mismatch(self, image):
        """None if ``image`` (an RTL namespace image, bytes-like) equals the model's
        everywhere but in undefined bytes; otherwise a description of the first
        difference."""
        if len(image) != self.size:
            return f"image is {len(image)} bytes, the namespace {self.size}"
        at = 0
        for start, stop in [*self.undefined, (self.size, self.size)]:
            if image[at:start] != self.data[at:start]:
                first = next(i for i in range(at, start) if image[i] != self.data[i])
                differ = sum(1 for i in range(first, start) if image[i] != self.data[i])
                return (f"byte {first:#x} (LBA {first // self.lba_bytes} of "
                        f"{self.lba_bytes} B): RTL {image[first]:#04x}, model "
                        f"{self.data[first]:#04x}; {differ} bytes differ in "
                        f"[{at:#x}, {start:#x})")
            at = stop
        return None
