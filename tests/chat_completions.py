"""A real OpenAI-compatible chat-completions server on localhost, for the judge and trace tests."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ChatCompletionsServer:
    """Answers POST /v1/chat/completions with `respond(messages)`.

    `delays` (seconds, one per request in order, then `hold`) and `statuses` (HTTP codes to send first) shape its
    behaviour; `requests` keeps every request body, `hits` counts them, `peak` is the most in flight at once.
    """

    def __init__(self, respond, delays=(), statuses=(), hold=0.0):
        self.respond, self.delays, self.statuses, self.hold = respond, list(delays), list(statuses), hold
        self.requests, self.hits, self.in_flight, self.peak = [], 0, 0, 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.requests.append(body)
                    server.hits += 1
                    server.in_flight += 1
                    server.peak = max(server.peak, server.in_flight)
                    delay = server.delays.pop(0) if server.delays else server.hold
                    status = server.statuses.pop(0) if server.statuses else 200
                try:
                    time.sleep(delay)
                    if status != 200:
                        self._send(status, {"error": {"message": "judge overloaded", "type": "server_error"}})
                        return
                    content = server.respond(body["messages"])
                    self._send(200, {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                                     "choices": [{"index": 0, "finish_reason": "stop",
                                                  "message": {"role": "assistant", "content": content}}]})
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout)
                    pass
                finally:
                    with server.lock:
                        server.in_flight -= 1

            def _send(self, status, payload):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
