"""The genuine reporter of scripts/abuse (leak-reports attack): while the flood of junk
signatures runs, posts N genuine, correctly signed leak reports (bodies and signatures made
beforehand with openssl, in DIR) about 5 a second from one address (GitHub's), and prints how
many were answered 200 and their latency (p50, p99, max). Target: every one answered, within
a second."""
import os
import sys
import time
import urllib.error
import urllib.request

base, folder, duration = sys.argv[1], sys.argv[2], float(sys.argv[3])
names = sorted(n for n in os.listdir(folder) if n.endswith(".json"))
gap = min(0.2, duration * 0.8 / max(len(names), 1))
time.sleep(duration * 0.1)
codes, latencies = {}, []
for name in names:
    body = open(os.path.join(folder, name), "rb").read()
    signature = open(os.path.join(folder, name[:-5] + ".sig")).read().strip()
    request = urllib.request.Request(
        f"{base}/iam/secret-scanning/report", data=body, method="POST",
        headers={"Content-Type": "application/json", "X-Forwarded-For": "140.82.115.10",
                 "Github-Public-Key-Identifier": "abuse-key",
                 "Github-Public-Key-Signature": signature})
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            code = r.status
    except urllib.error.HTTPError as e:
        code = e.code
    except Exception:
        code = 0
    latencies.append(time.perf_counter() - start)
    codes[code] = codes.get(code, 0) + 1
    time.sleep(gap)
latencies.sort()
pick = lambda q: latencies[min(len(latencies) - 1, int(len(latencies) * q))] * 1000
print(f"genuine reports {codes.get(200, 0)}/{len(names)} answered 200 "
      f"(statuses {dict(sorted(codes.items()))}), p50 {pick(0.5):.1f} ms, p99 {pick(0.99):.1f} ms, "
      f"max {latencies[-1] * 1000:.1f} ms")
