"""A stand-in toxiproxy-server reporting version ``git``: what ``go install`` makes without -X.

Serves just enough of the API for a stack to start and stop (version, create and delete a
proxy, reset); proxies carry no traffic. Run as ``fake_toxiproxy.py [--version] [-host H]
[-port P]``, like the real one.
"""

from __future__ import annotations

import argparse
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = "git"


class _Api(BaseHTTPRequestHandler):
    def _answer(self, status: int, body: object = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/version":
            self._answer(200, {"version": VERSION})
        elif self.path == "/proxies":
            self._answer(200, {})
        else:
            self._answer(404, {"error": "proxy not found", "status": 404})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        if self.path == "/proxies":
            self._answer(201, {**body, "enabled": True, "toxics": []})
        else:
            self._answer(204)

    def do_DELETE(self) -> None:
        self._answer(204)

    def log_message(self, format: str, *args: object) -> None:
        print(format % args, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--version", action="store_true")
    parser.add_argument("-host", default="127.0.0.1")
    parser.add_argument("-port", type=int, default=8474)
    args = parser.parse_args()
    if args.version:
        print(f"toxiproxy-server version {VERSION}")
        return
    print(f"API HTTP server starting host={args.host} port={args.port}", flush=True)
    with ThreadingHTTPServer((args.host, args.port), _Api) as server:
        server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
