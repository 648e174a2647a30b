"""Run a function once a module has been imported, without importing it ourselves.

``import hf_binarize`` must stay lean, yet some glue has to be installed into a library the user may import later
(peft's LoRA dispatch, :mod:`hf_binarize.integrations.peft`). :func:`when_imported` runs the callback at once if
the module is already loaded, else right after its first import finishes.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from collections.abc import Callable
from types import ModuleType


class _AfterImport(importlib.abc.MetaPathFinder):
    def __init__(self, name: str, callback: Callable[[ModuleType], None]):
        self.name, self.callback = name, callback
        self._searching = False

    def find_spec(self, fullname, path, target=None):
        # Not consumed by a mere lookup: transformers asks importlib.util.find_spec("peft") to learn whether peft is
        # installed, without importing it; the hook must still be there when peft is imported for real.
        if fullname != self.name or self._searching:
            return None
        self._searching = True
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self._searching = False
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module, callback = spec.loader.exec_module, self.callback

        def exec_then_call(module: ModuleType) -> None:
            exec_module(module)
            if self in sys.meta_path:
                sys.meta_path.remove(self)
            callback(module)

        spec.loader.exec_module = exec_then_call
        return spec


def when_imported(name: str, callback: Callable[[ModuleType], None]) -> None:
    """Call ``callback(module)`` now if ``name`` is imported, else once its first import completes."""
    module = sys.modules.get(name)
    if module is not None:
        callback(module)
    else:
        sys.meta_path.insert(0, _AfterImport(name, callback))
