"""Helpers for the offline-cache tests: no network, and Hugging Face hub caches
laid out as ``huggingface_hub`` lays them out."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

REVISION = "0123456789abcdef0123456789abcdef01234567"


class NetworkDisabled(OSError):
    pass


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every socket connection fails, as on a machine without internet (whose
    Hugging Face libraries are told so with ``HF_HUB_OFFLINE=1``, as the hub
    documents, instead of retrying)."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise NetworkDisabled("network disabled by the test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    try:
        from huggingface_hub import constants
    except ImportError:
        return
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


def hf_snapshot(cache: Path, repo_id: str) -> Path:
    """The snapshot folder of ``repo_id`` at ``main`` in a hub cache (created)."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snap = repo / "snapshots" / REVISION
    snap.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(REVISION)
    return snap
