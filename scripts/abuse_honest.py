"""The honest client of scripts/abuse: GET /iam/auth/check with a valid APIKey 100 times a
second, and /readyz twice a second with a 1 s deadline; prints success rates and p99."""
import sys
import threading
import time
import urllib.error
import urllib.request

base, token, duration = sys.argv[1], sys.argv[2], float(sys.argv[3])


def call(url, headers, timeout):
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as r:
            code = r.status
    except urllib.error.HTTPError as e:
        code = e.code
    except Exception:
        code = 0
    return code, time.perf_counter() - start


ready = {"ok": 0, "n": 0}


def readiness():
    end = time.time() + duration
    while time.time() < end:
        code, _ = call(f"{base}/readyz", {}, 1.0)
        ready["n"] += 1
        ready["ok"] += code == 200
        time.sleep(0.5)


watcher = threading.Thread(target=readiness)
watcher.start()
latencies, ok, n = [], 0, 0
start = time.time()
while time.time() - start < duration:
    slot = start + n * 0.01
    if time.time() < slot:
        time.sleep(max(0.0, slot - time.time()))
    code, took = call(f"{base}/iam/auth/check", {"Authorization": f"APIKey {token}"}, 5.0)
    latencies.append(took)
    n += 1
    ok += code == 204
watcher.join()
latencies.sort()
p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000 if latencies else 0
print(f"honest {ok}/{n} ok ({100 * ok / max(n, 1):.2f}%), p99 {p99:.1f} ms; "
      f"/readyz {ready['ok']}/{ready['n']} ok")
