"""A webhook receiver for PromptOS that checks every delivery's signature with the
`standardwebhooks` package (the Standard Webhooks specification, https://www.standardwebhooks.com).

    pip install standardwebhooks
    PROMPTOS_WEBHOOK_SECRET=whsec_... python3 webhook_receiver.py 8000

Deliveries come at least once: the same `webhook-id` may arrive again after a retry, so
the receiver remembers the ids it has handled.
"""

import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook, WebhookVerificationError


def receiver(secret, on_event):
    """A request handler that verifies each delivery and passes it to ``on_event``."""
    webhook = Webhook(secret)

    class Receive(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            headers = {name.lower(): value for name, value in self.headers.items()}
            try:
                event = webhook.verify(body, headers)  # signature and a fresh timestamp
            except WebhookVerificationError:
                self.send_response(400)
                self.end_headers()
                return
            on_event(headers["webhook-id"], event)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    return Receive


if __name__ == "__main__":
    handled = set()

    def on_event(delivery_id, event):
        if delivery_id in handled:
            return
        handled.add(delivery_id)
        data = event["data"]
        print(event["type"], data.get("prompt"), data.get("environment"), data.get("version_string"), flush=True)

    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
    server = ThreadingHTTPServer(("127.0.0.1", port), receiver(os.environ["PROMPTOS_WEBHOOK_SECRET"], on_event))
    server.serve_forever()
