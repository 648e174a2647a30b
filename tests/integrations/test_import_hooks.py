"""when_imported: a callback after a module's first import, or at once if it is already loaded."""

import sys

from hf_binarize.integrations.import_hooks import when_imported


def test_callback_runs_after_the_first_import_only(tmp_path, monkeypatch):
    (tmp_path / "hfb_hook_probe.py").write_text("VALUE = 41\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "hfb_hook_probe", raising=False)
    seen = []
    when_imported("hfb_hook_probe", lambda module: seen.append(module.VALUE + 1))
    assert seen == []
    import hfb_hook_probe

    assert seen == [42]
    import importlib

    importlib.reload(hfb_hook_probe)
    assert seen == [42]
    assert not any(type(finder).__name__ == "_AfterImport" and finder.name == "hfb_hook_probe" for finder in sys.meta_path)


def test_callback_runs_at_once_for_a_loaded_module():
    seen = []
    when_imported("json", lambda module: seen.append(module.__name__))
    assert seen == ["json"]
