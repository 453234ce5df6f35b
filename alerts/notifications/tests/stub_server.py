"""A local HTTP server in a thread (127.0.0.1, a random port) that records each request and
answers from a script: what a provider would receive, checked without the network."""

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    method: str
    path: str
    headers: object  # the request's headers (http.client.HTTPMessage): names are case-insensitive
    body: bytes


class StubServer:
    def __init__(self):
        self.requests: list[Received] = []
        self.answers: list[tuple[int, bytes, dict]] = []  # (status, body, headers), in order; then 200
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length", 0))
                stub.requests.append(Received("POST", self.path, self.headers, self.rfile.read(length)))
                status, body, headers = stub.answers.pop(0) if stub.answers else (200, b"{}", {})
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
