"""Serve `answer` over HTTP for the `http:` target: `python -m ragapp.server [PORT]`.

POST /answer with {"question": "..."} answers {"text": ..., "metadata": {...}}.
"""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .answer import answer

PORT = 8765


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802  (the stdlib's name)
        request = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)))
        body = json.dumps(answer({"vars": {"question": request["question"]}})).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def serve(port: int = PORT) -> ThreadingHTTPServer:
    return ThreadingHTTPServer(("127.0.0.1", port), Handler)


if __name__ == "__main__":
    server = serve(int(sys.argv[1]) if len(sys.argv) > 1 else PORT)
    print(f"ragapp serving on http://127.0.0.1:{server.server_address[1]}/answer", flush=True)
    server.serve_forever()
