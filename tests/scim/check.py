"""Runs scim2-tester (RFC 7643/7644 compliance checks) against a running apitokens server.

Usage: check.py BASE_URL TOKEN. Prints every check; exits 1 if any ended in an error.
"""
import sys

from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

base, token = sys.argv[1], sys.argv[2]
client = SyncSCIMClient(Client(base_url=f"{base}/scim/v2", headers={"Authorization": f"Bearer {token}"}, timeout=30))
results = check_server(client)
failed = [r for r in results if r.status in (Status.ERROR, Status.CRITICAL)]
for r in results:
    line = f"{r.status.name:8} {r.resource_type or '-':5} {r.title}: {r.reason or ''}"
    print(line[:400])
counts = {}
for r in results:
    counts[r.status.name] = counts.get(r.status.name, 0) + 1
print(f"scim2-tester: {len(results)} checks, " + ", ".join(f"{v} {k.lower()}" for k, v in sorted(counts.items())))
if not any(r.status == Status.SUCCESS and r.resource_type == "User" for r in results):
    print("no User check succeeded: the server's description was not understood")
    sys.exit(1)
sys.exit(1 if failed else 0)
