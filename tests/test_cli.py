"""`medr1` dispatch: unknown commands, and the log a command runs under."""

import logging
import types

from medr1 import cli


def test_unknown_command_is_a_usage_error(capsys):
    assert cli.main(["no-such-stage"]) == 2
    assert "unknown command 'no-such-stage'" in capsys.readouterr().err


def test_commands_run_without_one_log_line_per_http_request(monkeypatch):
    seen = {}

    def fake_main(argv):
        seen["argv"] = argv
        seen["levels"] = {name: logging.getLogger(name).getEffectiveLevel() for name in ("httpx", "openai")}
        return 0

    monkeypatch.setattr(cli.importlib, "import_module", lambda name: types.SimpleNamespace(main=fake_main))
    monkeypatch.setattr(logging.getLogger(), "level", logging.DEBUG)  # so the quieting, not the root, decides
    for name in cli.QUIET_LOGGERS:
        monkeypatch.setattr(logging.getLogger(name), "level", logging.NOTSET)
    assert cli.main(["eval", "--model", "m"]) == 0
    assert seen["argv"] == ["--model", "m"]
    assert seen["levels"]["httpx"] == seen["levels"]["openai"] == logging.WARNING
    assert logging.getLogger("medr1").level == logging.NOTSET  # the project's own lines follow the root (INFO)
