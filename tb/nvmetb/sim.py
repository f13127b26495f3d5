"""Simulator glue for the cocotb benches: build a Verilog text once, run cocotb tests on it.

A pytest test builds (or reuses) one simulator model of a Verilog text and runs a cocotb
test module against it, in a run directory of its own::

    import pytest
    from nvmetb.sim import build, config_to_env, run, run_dir, sim_params

    @pytest.mark.parametrize("sim", sim_params())
    def test_doorbells(sim, request):
        cfg = CoreConfig(io_queues=4)
        verilog = generate_verilog(cfg)                   # the gateware's Verilog text
        build_dir = build(sim, verilog, "nvmecore")       # shared by all tests and workers
        run(sim, build_dir, "nvmecore", "cocotb_doorbells", None, run_dir(request.node.nodeid),
            env={"NVMECORE_CONFIG": config_to_env(cfg)})

and the cocotb module (``tb/tests/cocotb_doorbells.py``) rebuilds the reference model with
``config_from_env()``.

Builds land in ``sim/build/<sim>-<toplevel>-<hash12>/`` (the hash covers the Verilog text
and the build settings), are made under a file lock so that ``pytest -n auto`` workers
share one build, and are reused across pytest runs until ``make clean``. Waveforms are
opt-in with ``WAVES=1`` and land in the run directory: ``<toplevel>.fst`` from Icarus,
``dump.fst`` from Verilator.

Only ``config_to_env``/``config_from_env`` run inside the simulator process; everything
else imports cocotb's runner lazily.
"""

import dataclasses
import hashlib
import json
import os
import re
import shutil
import sys
import time
import xml.etree.ElementTree as ElementTree
from contextlib import contextmanager
from pathlib import Path

from nvmecore.config import CoreConfig

__all__ = [
    "BUILD_ROOT", "CONFIG_ENV", "REPO_ROOT", "SIMULATORS", "TESTS_DIR",
    "BuildError", "SimulatorMissing",
    "build", "config_from_env", "config_to_env", "run", "run_dir", "sim_params",
    "verilog_for", "waves_enabled",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_ROOT = REPO_ROOT / "sim" / "build"
TESTS_DIR = REPO_ROOT / "tb" / "tests"

SIMULATORS = ("icarus", "verilator")

#: Environment variable that carries the CoreConfig from pytest to the cocotb module.
CONFIG_ENV = "NVMECORE_CONFIG"

TIMESCALE = ("1ns", "1ps")

#: Extra arguments for ``verilator`` (the runner adds ``--vpi --public-flat-rw`` etc.).
#: Amaranth's output trips style warnings that must not stop a build; ``make lint`` is
#: where warnings are judged. The benches reach only the top level's ports, so only the
#: top module is made visible to VPI (``--public-depth 1``) instead of every signal of
#: the design (``--public-flat-rw``, which keeps Verilator from optimising them): the
#: core alone then simulates about four times faster (206k instead of 48k cycles per
#: CPU second with cocotb's C++ clock). A bench that needs an internal signal under
#: Verilator needs a deeper ``--public-depth``.
VERILATOR_BUILD_ARGS = ("-Wno-fatal", "--no-public-flat-rw", "--public-depth", "1")

#: Extra arguments for ``iverilog``, after the runner's own ``-g2012``. Amaranth's Verilog
#: (through Yosys) starts every ``always @*`` block with a dummy read of a register
#: declared ``= 0`` so that the block runs once at time 0. Under ``-g2012`` Icarus 11
#: applies declaration initialisers before any process starts, the event never fires, and
#: a combinational block whose inputs never change (a register held at its reset value)
#: stays X for ever. ``-g2005`` treats the initialiser as an event, as Yosys intends.
ICARUS_BUILD_ARGS = ("-g2005",)

#: Make variables for Verilator's C++ build, overriding ``verilated.mk``: ``-O1`` instead of
#: ``-Os`` for the model's hot code; the runtime library keeps ``-Os`` (at ``-O1`` its VPI
#: file alone compiles in twice the time) and the once-only code ``-O0``. Measured on two
#: busy cores, CPU seconds to build / seconds to run 50k cocotb-driven cycles of a 512-bit
#: 24-stage toy: default 278 / 7.8, this 116 / 5.8, all -O1 147 / 7.9, all -O0 55 / 73,
#: OPT_FAST=-O2 over 11 minutes (abandoned). On today's nvmecore (3k lines of Verilog) all
#: settings build in 25-35 CPU seconds.
VERILATOR_MAKE_VARS = {"OPT_FAST": "-O1"}

#: How long a worker waits for another worker's build of the same model.
BUILD_LOCK_TIMEOUT = 60 * 60

_TRUE = ("1", "yes", "y", "on", "true", "enable")
_FALSE = ("0", "no", "n", "off", "false", "disable", "")


class SimulatorMissing(RuntimeError):
    """A simulator the flow needs is not installed. Never a reason to skip a test."""


class BuildError(RuntimeError):
    """The simulator could not build the Verilog."""


# -- configuration ---------------------------------------------------------------------------

def config_to_env(cfg: CoreConfig) -> str:
    """The JSON form of ``cfg`` for :data:`CONFIG_ENV`."""
    return json.dumps(dataclasses.asdict(cfg), sort_keys=True)


def config_from_env() -> CoreConfig:
    """The CoreConfig that pytest passed in :data:`CONFIG_ENV`; ``CoreConfig()`` if unset."""
    text = os.environ.get(CONFIG_ENV, "").strip()
    if not text:
        return CoreConfig()
    return CoreConfig(**json.loads(text))


def waves_enabled() -> bool:
    """Whether ``WAVES`` asks for waveforms (read the way cocotb's runner reads it)."""
    value = os.environ.get("WAVES", "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"WAVES={value!r}: expected one of {_TRUE + _FALSE[:-1]}")


def sim_params():
    """``pytest.param`` for each simulator, marked ``icarus`` / ``verilator``.

    Use as ``@pytest.mark.parametrize("sim", sim_params())`` so that the test ids carry
    the simulator name and ``-m icarus`` / ``-m verilator`` select a tier.
    """
    import pytest

    return [pytest.param(sim, marks=getattr(pytest.mark, sim), id=sim) for sim in SIMULATORS]


def run_dir(name: str) -> Path:
    """A fresh, empty directory ``sim/build/runs/<name>`` for one test's run.

    ``name`` is usually ``request.node.nodeid``; characters that do not belong in a file
    name are replaced, so the directory is easy to find (waveforms land here).
    """
    safe = re.sub(r"[^A-Za-z0-9_.=+-]+", "_", name).strip("_.") or "run"
    path = BUILD_ROOT / "runs" / safe
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


# -- simulators ------------------------------------------------------------------------------

def _check_simulator(sim: str) -> None:
    if sim not in SIMULATORS:
        raise ValueError(f"simulator {sim!r}: expected one of {', '.join(SIMULATORS)}")
    if sim == "icarus":
        missing = [tool for tool in ("iverilog", "vvp") if shutil.which(tool) is None]
        if missing:
            raise SimulatorMissing(
                f"Icarus Verilog is not installed ({' and '.join(missing)} not on PATH). "
                "Install it with 'apt-get install iverilog' or run 'make setup' as root.")
    else:
        from nvmetb.verilator import VerilatorNotFound, verilator_root

        try:
            verilator_root()
        except VerilatorNotFound as error:
            raise SimulatorMissing(str(error)) from None
        missing = [tool for tool in ("make", "c++", "perl") if shutil.which(tool) is None]
        if missing:
            raise SimulatorMissing(
                f"Verilator builds need {', '.join(missing)} on PATH. Install them with "
                "'apt-get install build-essential perl' or run 'make setup' as root.")


@contextmanager
def _environ(env):
    """Make ``os.environ`` equal ``env`` for the duration (cocotb's runner reads it)."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextmanager
def _sys_path(*paths):
    """Append ``paths`` to ``sys.path`` for the duration (it becomes the sim's PYTHONPATH)."""
    added = [str(p) for p in paths if str(p) not in sys.path]
    sys.path.extend(added)
    try:
        yield
    finally:
        for p in added:
            sys.path.remove(p)


def _sim_environ(sim: str) -> dict:
    env = dict(os.environ)
    if sim == "verilator":
        from nvmetb.verilator import verilator_env

        env = verilator_env(env)
        env["MAKEFLAGS"] += "".join(f" {k}={v}" for k, v in VERILATOR_MAKE_VARS.items())
    return env


def _fst_headers() -> bool:
    """Whether Verilator can write FST: its writer needs lz4.h and zlib.h to compile."""
    dirs = [Path(d) for d in ("/usr/include", "/usr/local/include")]
    dirs += [Path(d) for d in os.environ.get("CPATH", "").split(os.pathsep) if d]
    return all(any((d / h).is_file() for d in dirs) for h in ("lz4.h", "zlib.h"))


def _build_args(sim: str, waves: bool) -> list:
    if sim == "icarus":
        return list(ICARUS_BUILD_ARGS) + (["-s", _WAVES_MODULE] if waves else [])
    args = list(VERILATOR_BUILD_ARGS)
    if waves and _fst_headers():
        args.append("--trace-fst")      # with the runner's --trace; VCD without it
    return args


# cocotb 2.1's own dump module for Icarus declares a `string` in an unnamed block, which
# Icarus 11 rejects; this one is plain Verilog and takes the same +dumpfile_path plusarg.
_WAVES_MODULE = "nvmetb_waves"
_WAVES_VERILOG = """\
module {module};
  reg [8*1024-1:0] path;
  initial begin
    if (!$value$plusargs("dumpfile_path=%s", path))
      path = "{toplevel}.fst";
    $dumpfile(path);
    $dumpvars(0, {toplevel});
  end
endmodule
"""


def _tool_versions(sim: str) -> str:
    """Simulator and cocotb versions: a build made with others is not reused."""
    from cocotb import __version__ as cocotb_version

    if sim == "verilator":
        from nvmetb.verilator import VERSION

        tool = f"verilator {VERSION}"
    else:
        import subprocess

        out = subprocess.run(["iverilog", "-V"], capture_output=True, text=True).stdout
        tool = out.splitlines()[0] if out else "iverilog"
    return f"{tool}; cocotb {cocotb_version}"


# -- Verilog ---------------------------------------------------------------------------------

HDL_ROOT = REPO_ROOT / "hdl" / "nvmecore"
_verilog_memo = {}


def _hdl_digest() -> str:
    """A hash of the gateware's source and the Amaranth release that elaborates it."""
    from importlib.metadata import version

    digest = hashlib.sha256(version("amaranth").encode())
    for path in sorted(HDL_ROOT.rglob("*.py")):
        digest.update(str(path.relative_to(HDL_ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def verilog_for(config: CoreConfig, top: str = "nvmecore") -> str:
    """The Verilog text of ``config``: the core (``top="nvmecore"``) or the FPGA top
    (``nvmecore.cli.USP_TOP_NAME``), as ``nvmecore.cli`` generates it.

    Elaborating a build takes 5-10 s; a regression asks for the same few builds from
    many test modules on every pytest worker, so the text is generated once per source
    tree and kept in ``sim/build/verilog/`` (keyed by the gateware's source, the Amaranth
    release, the top and the config; a file lock lets one worker write it).
    """
    from filelock import FileLock

    from nvmecore.cli import USP_TOP_NAME, generate_usp_verilog, generate_verilog

    generators = {"nvmecore": generate_verilog, USP_TOP_NAME: generate_usp_verilog}
    if top not in generators:
        raise ValueError(f"top must be one of {', '.join(generators)}, not {top!r}")
    key = hashlib.sha256(f"{_hdl_digest()} {top} {config!r}".encode()).hexdigest()[:16]
    if key in _verilog_memo:
        return _verilog_memo[key]
    cache = BUILD_ROOT / "verilog"
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"{top}-{key}.v"
    with FileLock(cache / f"{top}-{key}.lock", timeout=BUILD_LOCK_TIMEOUT):
        if path.is_file():
            text = path.read_text()
        else:
            text = generators[top](config)
            scratch = path.with_suffix(".tmp")
            scratch.write_text(text)
            scratch.replace(path)
    _verilog_memo[key] = text
    return text


# -- build -----------------------------------------------------------------------------------

def build(sim: str, verilog: str, toplevel: str) -> Path:
    """Build ``verilog`` (the text of one design) for ``sim``; return the build directory.

    Each (Verilog text, simulator, top level, build settings) is built once into
    ``sim/build/<sim>-<toplevel>-<hash12>/`` and reused, across pytest workers (a file
    lock serialises them) and across runs (a ``done`` marker; a directory without it is
    rebuilt from scratch). A missing simulator raises :class:`SimulatorMissing`.
    """
    from filelock import FileLock, Timeout

    _check_simulator(sim)
    waves = waves_enabled()
    settings = {"sim": sim, "toplevel": toplevel, "waves": waves, "timescale": TIMESCALE,
                "args": _build_args(sim, waves),
                "make": VERILATOR_MAKE_VARS if sim == "verilator" else {},
                "tools": _tool_versions(sim)}
    digest = hashlib.sha256(verilog.encode())
    digest.update(json.dumps(settings, sort_keys=True).encode())
    name = f"{sim}-{toplevel}-{digest.hexdigest()[:12]}"
    build_dir = BUILD_ROOT / name
    done = build_dir / "done"

    BUILD_ROOT.mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(BUILD_ROOT / f"{name}.lock", timeout=BUILD_LOCK_TIMEOUT):
            if done.is_file():
                return build_dir
            shutil.rmtree(build_dir, ignore_errors=True)
            build_dir.mkdir(parents=True)
            source = build_dir / f"{toplevel}.v"
            source.write_text(verilog)
            started = time.monotonic()
            _build(sim, source, toplevel, build_dir, waves, settings["args"])
            done.write_text(json.dumps(
                {**settings, "seconds": round(time.monotonic() - started, 1)}, indent=1) + "\n")
            return build_dir
    except Timeout:
        raise BuildError(f"waited {BUILD_LOCK_TIMEOUT} s for another process building "
                         f"{build_dir}; remove {BUILD_ROOT / name}.lock if none is") from None


def _build(sim, source, toplevel, build_dir, waves, build_args):
    from cocotb_tools.runner import get_runner

    log = build_dir / "build.log"
    sources = [source]
    env = _sim_environ(sim)
    if sim == "icarus":
        if waves:
            sources.append(build_dir / f"{_WAVES_MODULE}.v")
            sources[-1].write_text(_WAVES_VERILOG.format(module=_WAVES_MODULE,
                                                         toplevel=toplevel))
        # The runner reads WAVES itself; keep it from adding its own dump module.
        env["WAVES"] = "0"
        waves = False
    with _environ(env):
        runner = get_runner(sim)
        try:
            runner.build(
                sources=sources, hdl_toplevel=toplevel, build_dir=build_dir, always=True,
                build_args=build_args, timescale=TIMESCALE, waves=waves, log_file=log)
        except (RuntimeError, SystemExit) as error:
            tail = log.read_text(errors="replace").splitlines()[-40:] if log.is_file() else []
            raise BuildError(f"{sim} could not build {source} ({error}); last lines of {log}:\n"
                             + "\n".join(tail)) from None


# -- run -------------------------------------------------------------------------------------

def run(sim: str, build_dir: Path, toplevel: str, test_module: str, testcase: str | None,
        work_dir: Path, env: dict | None = None, *, seed: int | None = None,
        plusargs=()) -> None:
    """Run the cocotb tests of ``test_module`` on a model that :func:`build` made.

    ``testcase`` selects one cocotb test by name (a string, comma-separated names or a
    list), with all of its ``@cocotb.parametrize`` variants; ``None`` runs them all.
    ``work_dir`` is this run's own directory (cocotb's ``results.xml``, waveforms; see
    :func:`run_dir`); ``env`` is added to the simulator's environment, for
    example ``{CONFIG_ENV: config_to_env(cfg)}``. ``test_module`` is imported by the
    simulator from ``tb/tests`` or anything on ``sys.path``.

    Raises ``AssertionError`` naming the failed cocotb tests if any failed or none ran.
    """
    __tracebackhide__ = True
    from cocotb_tools.runner import get_runner

    _check_simulator(sim)
    build_dir = Path(build_dir).resolve()
    if not (build_dir / "done").is_file():
        raise BuildError(f"{build_dir} is not a finished build; call build() first")
    work_dir = Path(work_dir).resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    results = work_dir / "results.xml"
    results.unlink(missing_ok=True)

    waves = waves_enabled()
    plusargs = list(plusargs)
    if sim == "icarus" and waves:
        # The dump module defaults to a file in the shared build directory.
        plusargs.append(f"+dumpfile_path={work_dir / f'{toplevel}.fst'}")

    test_filter = None
    if testcase is not None:
        names = [n.strip() for n in testcase.split(",")] if isinstance(testcase, str) \
            else list(testcase)
        test_filter = r"\.(" + "|".join(re.escape(n) for n in names if n) + r")(/.*)?$"

    extra_env = dict(env or {})
    # The runner lets os.environ override extra_env; make extra_env win.
    sim_env = {**os.environ, **extra_env}
    failure = None
    with _environ(sim_env), _sys_path(TESTS_DIR):
        runner = get_runner(sim)
        try:
            runner.test(
                test_module=test_module, hdl_toplevel=toplevel, hdl_toplevel_lang="verilog",
                build_dir=build_dir, test_dir=work_dir, results_xml=str(results),
                test_filter=test_filter, seed=seed, plusargs=plusargs, extra_env=extra_env,
                waves=waves, timescale=TIMESCALE)
        except SystemExit as error:
            # The runner exits when a test failed or no results were written (under pytest).
            failure = f"runner exit status {error.code}"
        except RuntimeError as error:
            # The simulator itself returned non-zero.
            failure = str(error)
    _check_results(results, f"{test_module} on {sim}", failure)


def _check_results(results: Path, what: str, failure) -> None:
    __tracebackhide__ = True
    if not results.is_file():
        raise AssertionError(f"{what}: the simulation ended without writing {results} "
                             f"({failure or 'no error reported'}); see the captured output")
    try:
        root = ElementTree.parse(results).getroot()
    except ElementTree.ParseError as error:
        raise AssertionError(f"{what}: {results} is unreadable ({error}; {failure})") from None
    tests, failed = 0, []
    for case in root.iter("testcase"):
        tests += 1
        for problem in (*case.iter("failure"), *case.iter("error")):
            message = problem.get("message") or problem.text or problem.tag
            failed.append(f"{case.get('name')}: {message.strip()}")
            break
    if tests == 0:
        raise AssertionError(f"{what}: no cocotb test ran (wrong module or testcase name?)")
    if failed:
        raise AssertionError(f"{what}: {len(failed)} of {tests} cocotb tests failed:\n  "
                             + "\n  ".join(failed))
    if failure is not None:
        raise AssertionError(f"{what}: all {tests} tests passed but the simulator failed "
                             f"({failure}); see the captured output")
