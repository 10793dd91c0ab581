"""The webhook benchmark's client and receiver (scripts/webhooks-bench runs it against a
release server). Prints, in one run:

- the latency of a write that sends an event (create a token, then delete it: two events),
  with no endpoint, with one that wants other events (the subscribers' read alone), then with
  one subscribed to everything (queued and delivered meanwhile on the same cores; p50/p99 and
  the ratio to the first);
- the delivery throughput: N test events queued while the endpoints are off, then the time
  from turning them on until a local receiver has them all (events/s), to one endpoint
  (delivered in order, one at a time) and spread over 4.

Usage: webhooks_bench.py BASE ADMIN_EMAIL PASSWORD [ROUNDS] [EVENTS]
"""
import http.server
import json
import statistics
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

BASE, EMAIL, PASSWORD = sys.argv[1], sys.argv[2], sys.argv[3]
ROUNDS = int(sys.argv[4]) if len(sys.argv) > 4 else 200
EVENTS = int(sys.argv[5]) if len(sys.argv) > 5 else 2000

received = []
lock = threading.Lock()


class Receiver(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        with lock:
            received.append((time.monotonic(), self.headers.get("webhook-id"), len(body)))
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
threading.Thread(target=server.serve_forever, daemon=True).start()
HOOK = f"http://127.0.0.1:{server.server_address[1]}/hook"


def call(method, path, body=None, auth=None):
    req = urllib.request.Request(BASE + path, method=method)
    if auth:
        req.add_header("Authorization", auth)
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        req.add_header("content-type", "application/json")
    with urllib.request.urlopen(req, data) as r:
        text = r.read()
        return json.loads(text) if text else None


jwt = call("POST", "/iam/auth/jwt/login", {"username": EMAIL, "password": PASSWORD})["access"]
account = call("GET", "/iam/users/me", auth=f"Bearer {jwt}")["client"]
token = call("POST", f"/iam/v2/clients/{account}/tokens",
             {"name": "bench", "exp_date": None, "client_user": {"role": {"id": 1}}},
             auth=f"Bearer {jwt}")["token"]
AUTH = f"APIKey {token}"


def writes(rounds):
    """Create then delete a token, `rounds` times: the latency of each request, ms."""
    took = []
    for i in range(rounds):
        t0 = time.perf_counter()
        made = call("POST", f"/iam/v2/clients/{account}/tokens",
                    {"name": f"w{i}", "exp_date": None, "client_user": {"role": {"id": 5}}}, auth=AUTH)
        t1 = time.perf_counter()
        call("DELETE", f"/iam/v2/clients/{account}/tokens/{made['id']}", auth=AUTH)
        t2 = time.perf_counter()
        took += [(t1 - t0) * 1000, (t2 - t1) * 1000]
    return took


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


writes(20)  # warm up
off = writes(ROUNDS)
# An endpoint that wants none of these events: the cost of looking for subscribers alone.
quiet = call("POST", f"/iam/clients/{account}/webhooks", {"url": HOOK, "events": ["ping"]}, auth=AUTH)
looked = writes(ROUNDS)
call("DELETE", f"/iam/clients/{account}/webhooks/{quiet['id']}", auth=AUTH)
hook = call("POST", f"/iam/clients/{account}/webhooks", {"url": HOOK}, auth=AUTH)
start = len(received)
on = writes(ROUNDS)
deadline = time.monotonic() + 60
while len(received) - start < 2 * ROUNDS and time.monotonic() < deadline:
    time.sleep(0.01)
print(f"write latency, webhooks off: p50 {statistics.median(off):.2f} ms  p99 {pct(off, 0.99):.2f} ms  ({len(off)} requests)")
print(f"write latency, an endpoint that wants other events: p50 {statistics.median(looked):.2f} ms  p99 {pct(looked, 0.99):.2f} ms  ratio p50 {statistics.median(looked) / statistics.median(off):.2f}")
print(f"write latency, webhooks on (queued and delivered meanwhile, same 2 cores):  p50 {statistics.median(on):.2f} ms  p99 {pct(on, 0.99):.2f} ms  ratio p50 {statistics.median(on) / statistics.median(off):.2f}, p99 {pct(on, 0.99) / pct(off, 0.99):.2f}")
print(f"events delivered during the 'on' writes: {len(received) - start} of {2 * ROUNDS}")


def throughput(endpoints):
    """EVENTS messages queued while the endpoints are off, then all turned on at once: the
    time until the receiver has them all is the delivery's own."""
    ids = [call("POST", f"/iam/clients/{account}/webhooks", {"url": HOOK, "events": ["ping"]}, auth=AUTH)["id"]
           for _ in range(endpoints)]
    for i in ids:
        call("PATCH", f"/iam/clients/{account}/webhooks/{i}", {"enabled": False}, auth=AUTH)
    per = EVENTS // endpoints
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: call("POST", f"/iam/clients/{account}/webhooks/{ids[n % endpoints]}/test", {}, auth=AUTH),
                      range(per * endpoints)))
    with lock:
        received.clear()
    t0 = time.monotonic()
    for i in ids:
        call("PATCH", f"/iam/clients/{account}/webhooks/{i}", {"enabled": True}, auth=AUTH)
    deadline = t0 + 120
    while len(received) < per * endpoints and time.monotonic() < deadline:
        time.sleep(0.005)
    done = time.monotonic()
    n = len(received)
    print(f"throughput, {endpoints} endpoint(s): {n} queued events delivered in {done - t0:.2f} s = {n / (done - t0):.0f} events/s")
    for i in ids:
        call("DELETE", f"/iam/clients/{account}/webhooks/{i}", auth=AUTH)


call("DELETE", f"/iam/clients/{account}/webhooks/{hook['id']}", auth=AUTH)
throughput(1)
throughput(4)
