"""The suite runs offline: pytest-socket blocks TCP (``--disable-socket`` in pyproject)."""

import socket

import pytest
from pytest_socket import SocketBlockedError


def test_tcp_is_blocked():
    # SocketBlockedError warns as it is built; record that warning so `filterwarnings = error`
    # does not turn it into a UserWarning raised in place of the SocketBlockedError.
    with (
        pytest.warns(UserWarning, match="tried to use socket"),
        pytest.raises(SocketBlockedError),
    ):
        socket.create_connection(("1.1.1.1", 80), timeout=1)


def test_tcp_fails_under_the_suite_warning_filter():
    # With the project's `filterwarnings = error`, a blocked connection surfaces as the
    # UserWarning (raised from SocketBlockedError.__init__); either way no packet is sent.
    with pytest.raises((SocketBlockedError, UserWarning), match="tried to use socket"):
        socket.create_connection(("1.1.1.1", 80), timeout=1)


def test_raw_socket_is_blocked():
    with (
        pytest.warns(UserWarning, match="tried to use socket"),
        pytest.raises(SocketBlockedError),
    ):
        socket.socket(socket.AF_INET, socket.SOCK_STREAM)


def test_unix_sockets_still_allowed():
    a, b = socket.socketpair(socket.AF_UNIX)
    try:
        a.sendall(b"ok")
        assert b.recv(2) == b"ok"
    finally:
        a.close()
        b.close()
