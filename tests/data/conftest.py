"""Shared by the data tests: nothing here touches the network or the real cache. Every test gets
its own book root and cache; ``no_network`` makes any connection attempt fail the test."""

from __future__ import annotations

import socket

import pytest


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own book root and cache, so no test sees another's files."""
    monkeypatch.setenv("REPRO_ROOT", str(tmp_path / "book"))
    monkeypatch.setenv("REPRO_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
