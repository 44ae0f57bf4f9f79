"""Stub chat-completions server for the ChatNamer tests, bound to 127.0.0.1 on a free port."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

API_KEY = "sk-test-secret-0123456789"
GOOD_REPLY = {"name": "Astronomy", "description": "Planets, comets and orbits."}


def completion(content: str) -> bytes:
    """Chat-completions response body whose message text is ``content``."""
    message = {"role": "assistant", "content": content}
    return json.dumps({"choices": [{"message": message}]}).encode()


class StubServer:
    """Chat-completions stub whose behaviour the test sets through ``mode``."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.requests: list[dict] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                stub.requests.append(
                    {
                        "path": self.path,
                        "authorization": self.headers.get("Authorization"),
                        "body": json.loads(self.rfile.read(length)),
                    }
                )
                stub.respond(self)

            def log_message(self, format, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        # A short poll interval lets shutdown() return in about 50 ms instead of 500 ms.
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def respond(self, handler: BaseHTTPRequestHandler) -> None:
        if self.mode == "error500":
            self.send(handler, 500, b'{"error": "internal"}')
        elif self.mode == "slow":
            time.sleep(1.0)
            self.send(handler, 200, completion(json.dumps(GOOD_REPLY)))
        elif self.mode == "malformed":
            self.send(handler, 200, b'{"choices": [ not json')
        elif self.mode == "missing_field":
            self.send(handler, 200, completion(json.dumps({"name": "Astronomy"})))
        elif self.mode == "empty_name":
            self.send(handler, 200, completion(json.dumps({"name": " ", "description": "x"})))
        elif self.mode == "long_name":
            self.send(handler, 200, completion(json.dumps({"name": "x" * 61, "description": "y"})))
        elif self.mode == "prose":
            self.send(handler, 200, completion("Sure! I would call it Astronomy."))
        elif self.mode == "fenced":
            self.send(handler, 200, completion(f"```json\n{json.dumps(GOOD_REPLY)}\n```"))
        elif self.mode == "echo_key":
            self.send(handler, 200, completion(f"Your key is {API_KEY}"))
        elif self.mode == "redirect":
            handler.send_response(302)
            handler.send_header("Location", "http://127.0.0.1:9/elsewhere")
            handler.send_header("Content-Length", "0")
            handler.end_headers()
        elif self.mode == "unauthorized":
            self.send(handler, 401, f'{{"error": "bad key {API_KEY}"}}'.encode())
        else:
            self.send(handler, 200, completion(json.dumps(GOOD_REPLY)))

    @staticmethod
    def send(handler: BaseHTTPRequestHandler, status: int, body: bytes) -> None:
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up after its timeout.
            pass


@contextmanager
def running_stub() -> Iterator[StubServer]:
    """Serve a StubServer in a background thread and stop it on exit."""
    server = StubServer()
    server.thread.start()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()
        server.thread.join(timeout=5)
