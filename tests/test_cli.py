"""The top-level command line: its subcommands exist, and a broken one is never hidden."""

import importlib
import json

import pytest

from spkernels import cli


def test_parser_has_every_subcommand():
    p = cli.build_parser()
    sub = next(a for a in p._actions if a.dest == "command")
    assert {"info", "mtip", "bench"} <= set(sub.choices)


def test_info_json(capsys):
    assert cli.main(["info", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert "numpy" in d["backends"] and "version" in d


def test_broken_plugin_is_an_error(monkeypatch):
    # a plugin module that exists but fails to import must surface, naming the module
    real_import = importlib.import_module

    def fake_import(name, *args, **kwargs):
        if name == "spk_test_broken_cli":
            raise ImportError("No module named 'some_missing_dependency'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(cli, "_PLUGINS", cli._PLUGINS + ("spk_test_broken_cli",))
    monkeypatch.setattr(cli.importlib, "import_module", fake_import)
    with pytest.raises(ImportError, match="spk_test_broken_cli.*some_missing_dependency"):
        cli.build_parser()
