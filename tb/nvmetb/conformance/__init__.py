"""Conformance suite: scenarios written once against the host driver (``nvmetb.host``)
and run on every controller we can reach — the reference model, the RTL at core level,
the RTL through the cocotbext-pcie stack, and QEMU's NVMe device (a controller we did not
write).

A scenario is ``async def name(c: Run)``, registered with :func:`scenario`. It drives
``c.host`` (an :class:`~nvmetb.host.NvmeHost` on the target's transport ``c.t``) and
names every outcome the NVMe specification decides through the checks of :class:`Run`:
:meth:`Run.status` (status code and DNR), :meth:`Run.equal` (a value: CSTS bits, DW0,
data, phase, SQHD, CID, a register). Where QEMU and we legitimately differ (identify
strings, CAP limits, MDTS, NN, a choice the spec leaves open, or a place where QEMU
departs from the spec), the check names QEMU's outcome and why (``qemu=(value,
reason)``): on QEMU that outcome makes the scenario *differ* (with the reason) instead
of failing. Checks on values the spec leaves open are not made (or made with
``informative=True``, which records and never fails).

A scenario that needs what a target cannot do (inject a DMA fault, see INTx) calls
:meth:`Run.need`, and is *skipped* there with the reason. A scenario that checked
nothing fails: a comparison that finds nothing to compare is not a pass.

:func:`run_scenario` runs one scenario on one transport and returns a :class:`Result`;
:mod:`nvmetb.conformance.targets` builds the transports and runs the lists;
:mod:`nvmetb.conformance.report` makes the table.
"""

import logging
import time
import traceback
from dataclasses import asdict, dataclass, field

from nvmetb.host import NvmeHost, Status

__all__ = ["ANY", "SCENARIOS", "Scenario", "Run", "Result", "Skip", "Failure", "scenario",
           "run_scenario", "TARGETS"]

log = logging.getLogger("tb")

#: Every target, in table order.
TARGETS = ("model", "rtl-icarus", "rtl-verilator", "pcie-icarus", "qemu")


#: In a ``qemu=`` alternative: whatever QEMU gives is the stated difference.
ANY = object()


class Skip(Exception):
    """The target cannot run this scenario (the message says why)."""


class Failure(AssertionError):
    """An outcome the specification decides came out wrong."""


@dataclass(frozen=True)
class Scenario:
    name: str
    func: object
    area: str
    doc: str
    #: In CI's slice for the slow targets (Icarus at core level and through the PCIe
    #: stack); every scenario runs in CI on the model, QEMU and Verilator, and on every
    #: target with ``make conformance``.
    ci_slice: bool = False


SCENARIOS: dict[str, Scenario] = {}


def scenario(area, *, ci_slice=False):
    """Register ``async def name(c: Run)`` as a conformance scenario of ``area``."""
    def register(func):
        doc = " ".join((func.__doc__ or "").split())
        SCENARIOS[func.__name__] = Scenario(func.__name__, func, area, doc, ci_slice)
        return func
    return register


@dataclass
class Result:
    scenario: str
    target: str
    result: str               # pass, differ, fail, skipped
    detail: str = ""
    checks: int = 0
    seconds: float = 0.0
    differences: list = field(default_factory=list)

    def as_dict(self):
        return asdict(self)


class Run:
    """What a scenario sees: the host driver, the transport, the target's name and
    capabilities, and the checks."""

    def __init__(self, host: NvmeHost, target: str, caps=frozenset(), facts=None):
        self.host = host
        #: What the scenario may know of the target: ``namespace_bytes``, ``time_scale``.
        self.facts = dict(facts or {})
        self.t = host.t
        self.target = target
        self.caps = frozenset(caps)
        self.checks = 0
        self.differences: list[str] = []
        self.notes: list[str] = []

    @property
    def qemu(self):
        return self.target == "qemu"

    def need(self, cap, why):
        """Skip unless the target has capability ``cap``."""
        if cap not in self.caps:
            raise Skip(why)

    def _outcome(self, label, ok, want, got_text, want_text, qemu, informative=False):
        self.checks += 1
        if ok(want):
            return True
        if qemu is not None and self.qemu:
            value, reason = qemu
            if value is ANY or ok(value):
                self.differences.append(f"{label}: {reason}")
                return False
        if informative:
            self.notes.append(f"{label}: {got_text}")
            return False
        raise Failure(f"{label}: got {got_text}, expected {want_text}"
                      + (f" (QEMU: {qemu[0]})" if qemu is not None and self.qemu else ""))

    def status(self, label, what, code, dnr=None, *, qemu=None):
        """``what`` (a CQE, an IoCommand or a ``(cqe, data)`` pair) completed with
        ``code`` and, when ``dnr`` is not None, that DNR. ``qemu``: ``(code, dnr,
        reason)`` QEMU legitimately answers instead."""
        if isinstance(what, tuple):
            what = what[0]
        cqe = getattr(what, "cqe", what)
        status = Status.of(cqe)

        def ok(want):
            c, d = want
            return status.is_(c, dnr=d)
        alt = None if qemu is None else (
            ANY if qemu[0] is ANY else (qemu[0], qemu[1]), qemu[2])
        self._outcome(label, ok, (code, dnr), str(status), f"{_name(code)}{_dnr(dnr)}", alt)
        return status

    def equal(self, label, got, want, *, qemu=None, informative=False):
        """``got == want``; ``qemu``: ``(value, reason)`` QEMU legitimately gives."""
        return self._outcome(label, lambda w: got == w, want, _show(got), _show(want), qemu,
                             informative)

    def true(self, label, condition, *, qemu=None):
        """A condition the spec decides; ``qemu``: ``(False, reason)`` where QEMU does
        not meet it legitimately."""
        return self._outcome(label, lambda w: bool(condition) == w, True, bool(condition),
                             "True", qemu)

    @property
    def scale(self):
        """How much longer than a simulation this target may take to act: QEMU runs in
        real time on a machine shared with other work (``facts["time_scale"]``)."""
        return self.facts.get("time_scale", 1)

    async def settle(self, us=5):
        """Let the controller act (a posted doorbell, an event) before looking."""
        await self.t.wait(us * self.scale)

    async def until(self, condition, timeout_us=20):
        """Poll ``condition()`` until it holds (True) or ``timeout_us`` (scaled) passed
        (False): for outcomes that come some time after their cause."""
        waited, limit = 0.0, timeout_us * self.scale
        while not condition():
            if waited >= limit:
                return False
            await self.t.wait(self.host.poll_us)
            waited += self.host.poll_us
        return True


def _name(code):
    return getattr(code, "name", str(code))


def _dnr(dnr):
    return "" if dnr is None else " +DNR" if dnr else " no DNR"


def _show(value):
    if isinstance(value, (bytes, bytearray)):
        return f"{len(value)} bytes {bytes(value[:16]).hex()}..."
    if isinstance(value, int) and value > 9:
        return f"{value:#x}"
    return repr(value)


async def run_scenario(scn: Scenario, host: NvmeHost, target: str, caps=frozenset(),
                       facts=None, after=None) -> Result:
    """Run ``scn`` with ``host`` on ``target``; ``after()`` (a coroutine function) runs
    when the scenario passed, for the target's own comparison (model against RTL), and
    may raise. Never raises for a scenario's failure: the :class:`Result` says it."""
    run = Run(host, target, caps, facts)
    start = time.monotonic()
    try:
        await scn.func(run)
        if run.checks == 0:
            raise Failure("the scenario checked nothing")
        if after is not None:
            await after()
    except Skip as skip:
        return Result(scn.name, target, "skipped", str(skip), run.checks,
                      time.monotonic() - start)
    except Exception as error:         # noqa: BLE001 (every failure is a table entry)
        log.error("conformance %s on %s: %s\n%s", scn.name, target, error,
                  traceback.format_exc())
        detail = f"{type(error).__name__}: {error}".replace("\n", " ")
        return Result(scn.name, target, "fail", detail[:300], run.checks,
                      time.monotonic() - start, run.differences)
    result = "differ" if run.differences else "pass"
    return Result(scn.name, target, result, "; ".join(run.differences), run.checks,
                  time.monotonic() - start, run.differences)


from . import scenarios  # noqa: E402,F401  (registers the scenarios)
