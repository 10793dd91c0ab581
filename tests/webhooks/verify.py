"""Verifies deliveries with the Standard Webhooks reference library.

Reads one JSON object per line on stdin: {"secret": "whsec_...", "headers": {...}, "body": "..."};
prints one JSON line per input: {"ok": true, "payload": {...}} or {"ok": false, "error": "..."}.
"""
import json
import sys

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

for line in sys.stdin:
    item = json.loads(line)
    try:
        payload = Webhook(item["secret"]).verify(item["body"], item["headers"])
        print(json.dumps({"ok": True, "payload": payload}))
    except WebhookVerificationError as e:
        print(json.dumps({"ok": False, "error": str(e)}))
    sys.stdout.flush()
