"""An HTTP/1.1 proxy between Lakegate and the S3 server that the tests control:
it counts requests by kind and injects faults (throttling with 503 SlowDown,
connection resets, slow responses) into the next requests, or resets uploads
(PUTs of objects and of multipart parts) alone, to kill a write midway.

Requests are forwarded unchanged (the Host header included, so SigV4
signatures stay valid), one upstream connection per request; each response
ends its client connection, which real S3 clients handle by reconnecting.
"""

import asyncio
import collections
import socket
import struct
import threading
import urllib.parse

SLOW_DOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
)


class FaultProxy:
    """Runs on its own event loop thread; `port` is where clients connect."""

    def __init__(self, upstream_host, upstream_port):
        self.upstream = (upstream_host, upstream_port)
        self.counts = collections.Counter()
        self.faults_served = collections.Counter()
        self._faults = collections.deque()
        # Uploads to let through, then uploads to reset.
        self._uploads_spared = 0
        self._uploads_reset = 0
        self._tasks = set()
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(10)

    # ── control ──────────────────────────────────────────────────────────────

    def throttle(self, times):
        """The next `times` requests get 503 SlowDown."""
        self._add("throttle", times)

    def reset(self, times):
        """The next `times` requests have their connection reset."""
        self._add("reset", times)

    def delay(self, times, seconds):
        """The next `times` requests are held `seconds` before forwarding."""
        self._add(("delay", seconds), times)

    def reset_uploads(self, times, after=0):
        """After `after` more uploads (PUT) pass, the next `times` have their
        connection reset; other requests pass."""
        with self._lock:
            self._uploads_spared, self._uploads_reset = after, times

    def clear(self):
        with self._lock:
            self._faults.clear()
            self._uploads_spared = self._uploads_reset = 0

    def reset_counts(self):
        with self._lock:
            self.counts.clear()
            self.faults_served.clear()

    def snapshot(self):
        with self._lock:
            return dict(self.counts)

    def _add(self, fault, times):
        with self._lock:
            self._faults.extend([fault] * times)

    def _next_fault(self):
        with self._lock:
            return self._faults.popleft() if self._faults else None

    # ── serving ──────────────────────────────────────────────────────────────

    def _run(self):
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._spawn, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    def _spawn(self, reader, writer):
        # The tasks are held here until done: the event loop keeps only weak
        # references, and a connection's task must not be collected mid-way.
        task = self._loop.create_task(self._client(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    def kind(method, target, headers):
        """GET (ranged or not), HEAD, LIST, PUT, POST, DELETE."""
        query = urllib.parse.urlsplit(target).query
        if method == "GET" and ("list-type" in query or "delimiter" in query or "prefix=" in query):
            return "LIST"
        if method == "GET" and "range" in headers:
            return "GET_RANGE"
        return method

    async def _client(self, reader, writer):
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        body = await self._read_body(reader, headers)
        kind = self.kind(method, target, headers)
        with self._lock:
            self.counts[kind] += 1
        fault = self._next_fault()
        if kind == "PUT":
            with self._lock:
                if self._uploads_spared:
                    self._uploads_spared -= 1
                elif self._uploads_reset:
                    self._uploads_reset -= 1
                    fault = "reset"
        try:
            if fault == "throttle":
                with self._lock:
                    self.faults_served["throttle"] += 1
                writer.write(
                    b"HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\n"
                    + f"Content-Length: {len(SLOW_DOWN)}\r\nConnection: close\r\n\r\n".encode()
                    + SLOW_DOWN
                )
                await writer.drain()
                return
            if fault == "reset":
                with self._lock:
                    self.faults_served["reset"] += 1
                sock = writer.get_extra_info("socket")
                # SO_LINGER 0: close with a TCP RST, not a clean FIN.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()
                return
            if isinstance(fault, tuple):
                with self._lock:
                    self.faults_served["delay"] += 1
                await asyncio.sleep(fault[1])
            await self._forward(head, body, writer)
        except (ConnectionError, OSError):
            pass
        finally:
            if not writer.transport.is_closing():
                writer.close()

    @staticmethod
    async def _read_body(reader, headers):
        if "content-length" in headers:
            return await reader.readexactly(int(headers["content-length"]))
        if headers.get("transfer-encoding", "").lower() == "chunked":
            raw = b""
            while True:
                size_line = await reader.readuntil(b"\r\n")
                raw += size_line
                size = int(size_line.split(b";")[0].strip(), 16)
                chunk = await reader.readexactly(size + 2)
                raw += chunk
                if size == 0:
                    return raw
        return b""

    async def _forward(self, head, body, writer):
        # One upstream connection per request, closed by the upstream after
        # its response, which is passed through byte for byte.
        text = head.decode("latin-1")
        lines = [line for line in text.split("\r\n") if line and not line.lower().startswith("connection:")]
        head = ("\r\n".join(lines) + "\r\nConnection: close\r\n\r\n").encode("latin-1")
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        try:
            up_writer.write(head + body)
            await up_writer.drain()
            while True:
                data = await up_reader.read(256 * 1024)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        finally:
            up_writer.close()
