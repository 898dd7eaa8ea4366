"""`cxrkit serve` on the command line."""

from __future__ import annotations

import pytest

from cxrkit.cli import build_parser, main

from .conftest import NO_SERVE_EXTRA

pytest.importorskip("uvicorn", reason=NO_SERVE_EXTRA)


def test_serve_parser_defaults():
    args = build_parser().parse_args(["serve", "model-dir"])
    assert (args.model, args.host, args.port, args.token) == ("model-dir", "127.0.0.1", 8000, None)
    assert args.max_upload_mb == 50 and args.max_batch == 16 and args.cors_origin == []


def test_binding_beyond_loopback_needs_a_token(model_dir, capsys, monkeypatch):
    monkeypatch.delenv("CXRKIT_SERVE_TOKEN", raising=False)
    assert main(["serve", str(model_dir), "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert (
        "--host 0.0.0.0 makes the model reachable from other machines; give a token with "
        "--token or $CXRKIT_SERVE_TOKEN" in err
    )


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.2"])
def test_loopback_hosts(host):
    from cxrkit.serve._cli import _is_loopback

    assert _is_loopback(host)
    assert not _is_loopback("0.0.0.0") and not _is_loopback("192.168.1.4")
