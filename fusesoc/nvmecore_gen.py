#!/usr/bin/env python3
"""FuseSoC generator for nvmecore (see nvmecore.core): reads the generator's YAML input
(FuseSoC's GAPI: files_root, parameters, vlnv), writes the Verilog with nvmecore's CLI
into the working directory, and a .core file naming it for FuseSoC."""

import os
import subprocess
import sys
from pathlib import Path

import yaml

OPTIONS = ("top", "data_width", "io_queues", "msix_vectors", "max_queue_entries",
           "rq_straddle")


def main(gapi_file):
    gapi = yaml.safe_load(Path(gapi_file).read_text())
    root = Path(gapi["files_root"])
    params = gapi.get("parameters") or {}
    unknown = set(params) - set(OPTIONS)
    if unknown:
        sys.exit(f"nvmecore_gen: unknown parameters {sorted(unknown)}; known: {OPTIONS}")
    top = params.get("top", "usp")
    name = "nvmecore_usp" if top == "usp" else "nvmecore"
    out = Path(f"{name}.v").resolve()
    args = [sys.executable, "-m", "nvmecore", "generate", "--top", top, "-o", str(out)]
    for key in OPTIONS[1:]:
        if key in params:
            args += [f"--{key.replace('_', '-')}", str(params[key])]
    # nvmecore from this checkout, unless the Python running FuseSoC has it installed
    path = os.pathsep.join(filter(None, [str(root / "hdl"), os.environ.get("PYTHONPATH")]))
    subprocess.run(args, check=True, env={**os.environ, "PYTHONPATH": path})
    vlnv = gapi["vlnv"]
    core = {
        "name": vlnv,
        "filesets": {"rtl": {"files": [{out.name: {"file_type": "verilogSource"}}]}},
        "targets": {"default": {"filesets": ["rtl"]}},
    }
    Path(vlnv.split(":")[2] + ".core").write_text("CAPI=2:\n" + yaml.safe_dump(core))


if __name__ == "__main__":
    main(sys.argv[1])
