# Test support for e2e/tests/contrib_notify.rs: a real HTTP server on
# 127.0.0.1:PORT playing a Slack or Mattermost incoming webhook. Every POST
# is saved as DIR/N.txt, decoded for the test to read:
#
#   method: POST
#   path: /hook
#   content-type: application/json
#   keys: text                   (the JSON object's keys, sorted)
#   <empty line>
#   the value of "text"
#
# It answers 200 "ok" as Slack does, except on /status/NNN, which answers
# NNN with the body "no_service" (a hook that was removed). A body that is
# not a JSON object is answered 400 "invalid_payload" and saved with
# "keys: (not a JSON object)". Runs until killed.
#
# Usage: python3 webhook_receiver.py PORT DIR

import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FOLDER = sys.argv[2] if len(sys.argv) > 2 else "."
COUNT = [0]
LOCK = threading.Lock()


def save(text):
    with LOCK:
        COUNT[0] += 1
        n = COUNT[0]
    tmp = os.path.join(FOLDER, "%d.tmp" % n)
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.rename(tmp, os.path.join(FOLDER, "%d.txt" % n))


class Hook(BaseHTTPRequestHandler):
    def answer(self, code, body):
        data = body.encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        head = "method: POST\npath: %s\ncontent-type: %s\n" % (
            self.path,
            self.headers.get("Content-Type", ""),
        )
        try:
            payload = json.loads(raw.decode("utf-8"))
            if not isinstance(payload, dict):
                raise ValueError("not an object")
        except ValueError:
            save(head + "keys: (not a JSON object)\n\n" + raw.decode("utf-8", "replace"))
            self.answer(400, "invalid_payload")
            return
        save(head + "keys: %s\n\n%s" % (" ".join(sorted(payload)), payload.get("text", "")))
        if self.path.startswith("/status/"):
            self.answer(int(self.path.split("/")[2]), "no_service")
        else:
            self.answer(200, "ok")

    def log_message(self, fmt, *args):
        sys.stderr.write("webhook_receiver: " + (fmt % args) + "\n")


def main():
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Hook)
    print("webhook_receiver: listening on 127.0.0.1:%s" % sys.argv[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
