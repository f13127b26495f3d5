"""Verilog output: Amaranth's converter, with one thing it cannot do by itself.

Memories marked with :data:`NO_INIT` (the RAM disk's namespace, which zeroes itself at
power-on) are written without initial contents. Amaranth emits every memory's initial
contents bit by bit, which for a namespace of megabytes takes minutes and makes the
Verilog a line per word; the block RAMs and UltraRAMs it becomes need none.
"""

import threading

from amaranth.back import rtlil, verilog

__all__ = ["NO_INIT", "convert"]

#: ``attrs`` for an ``amaranth.lib.memory.Memory`` whose initial contents are never used.
NO_INIT = {"nvmecore_no_init": 1}

_lock = threading.Lock()


def _install():
    """Make Amaranth's RTLIL emitter skip the contents of memories marked NO_INIT, once for
    the process. Installed for good rather than around each conversion: patching and
    restoring per call raced when two threads converted at once (``make synth`` builds both
    widths in parallel), and the loser wrote a namespace of megabytes as initial contents."""
    with _lock:
        emitter = rtlil.ModuleEmitter
        if getattr(emitter.emit_memory, "_nvmecore", False):
            return
        original = emitter.emit_memory

        def emit_memory(self, cell_idx, cell):
            if "nvmecore_no_init" in cell.attributes:
                if any(cell.init):
                    raise ValueError(f"memory {cell.name} has initial contents and NO_INIT")
                return
            original(self, cell_idx, cell)

        emit_memory._nvmecore = True
        emitter.emit_memory = emit_memory


def convert(component, *, name):
    """The Verilog of ``component``, reproducibly (no source locations)."""
    _install()
    return verilog.convert(component, name=name, emit_src=False)
