"""Bytecode for the package, as an installation writes it, before a bench times the CLI.

`pip install` of a wheel (and the container image's build) compiles every module of the
package to `__pycache__/*.pyc`, so a user's `reconciler` never compiles Python source at
start-up. An editable install in development writes them on first import, except where
`PYTHONDONTWRITEBYTECODE` is set (as on this project's machines and in its image): there
every process would compile the whole package again, about 60-100 ms of a 0.5 s CLI run
that no installed copy pays. The benches that time whole `reconciler` processes call
`compile_package()` first, so they time the CLI as it is installed; the figure they print
says so.
"""

from __future__ import annotations

import compileall
import importlib.util
from pathlib import Path


def compile_package(name: str = "reconciler") -> str:
    """Compile `name`'s modules (the interpreter that runs the bench is the venv's, so the
    bytecode matches the CLI's); a one-line description of what was done."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        return f"{name}: not importable; bytecode not compiled"
    root = Path(spec.origin).parent
    ok = compileall.compile_dir(str(root), quiet=1)
    return f"bytecode of {root} compiled{'' if ok else ' (with errors)'}, as pip does at install"
