"""A StatsD server for tests: a UDP socket on loopback that keeps every line it receives.

Airflow's components send their metrics (and asyncpod's, through
:mod:`asyncpod.airflow.stats`) to ``[metrics] statsd_host``/``statsd_port`` when
``statsd_on`` is set; a test points those at :attr:`StatsdListener.port` and reads
:meth:`lines`. The receiving thread is stopped and joined by :meth:`close`.
"""

from __future__ import annotations

import socket
import threading
import time

__all__ = ["StatsdListener"]


class StatsdListener:
    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.settimeout(0.2)
        self.port: int = self._socket.getsockname()[1]
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._receive, name="statsd-listener")
        self._thread.start()

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                data = self._socket.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._lines += data.decode(errors="replace").splitlines()

    def lines(self) -> list[str]:
        with self._lock:
            return list(self._lines)

    def names(self) -> set[str]:
        """The metric names received so far (``name`` of ``name:value|type``)."""
        return {line.split(":", 1)[0] for line in self.lines()}

    def wait_for(self, names: set[str], *, limit: float = 60.0) -> set[str]:
        """Until every name in ``names`` has been received (or ``limit`` seconds); the
        names still missing."""
        deadline = time.monotonic() + limit
        while (missing := names - self.names()) and time.monotonic() < deadline:
            time.sleep(0.2)
        return missing

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._socket.close()
