"""Drives the real analytics SDKs from PyPI against a running server: Segment's
(segment-analytics-python, gzip on) and RudderStack's (rudder-sdk-python), in sync mode so each
call is a request. Usage: segment_sdks.py BASE_URL WRITE_KEY. Prints the messages it sent:
[{"sdk", "call", "message_id", ...}], and fails on any error the SDKs report.
"""

import json
import sys

from rudderstack.analytics.client import Client as Rudder
from segment.analytics.client import Client as Segment


def main():
    base, key = sys.argv[1], sys.argv[2]
    errors = []
    sent = []

    def on_error(e, batch):
        errors.append(f"{e}: {batch}")

    for name, make in [("segment", Segment), ("rudderstack", Rudder)]:
        client = make(key, host=base, gzip=(name == "segment"), sync_mode=True, on_error=on_error, max_retries=1)
        p = f"{name}-"
        client.identify(user_id=f"{p}user", traits={"plan": "pro", "seats": 3}, message_id=p + "identify")
        client.track(user_id=f"{p}user", event="Song Played", properties={"title": "Hey"},
                     context={"app": {"version": "1.2.3"}}, message_id=p + "track")
        client.track(anonymous_id=f"{p}anon", event="Experiment Viewed",
                     properties={"experiment_id": f"{p}checkout", "variation_id": "b"}, message_id=p + "exposure")
        client.page(user_id=f"{p}user", name="Pricing", properties={"path": "/pricing"}, message_id=p + "page")
        client.screen(user_id=f"{p}user", name="Home", message_id=p + "screen")
        client.group(user_id=f"{p}user", group_id=f"{p}acme", traits={"employees": 42}, message_id=p + "group")
        client.alias(previous_id=f"{p}anon", user_id=f"{p}user", message_id=p + "alias")
        # An SDK's retry of a message it thinks was lost: the same messageId again.
        client.track(user_id=f"{p}user", event="Song Played", properties={"title": "Hey"},
                     context={"app": {"version": "1.2.3"}}, message_id=p + "track")
        client.flush()
        for call in ["identify", "track", "exposure", "page", "screen", "group", "alias"]:
            sent.append({"sdk": name, "call": call, "message_id": p + call})
    if errors:
        sys.exit("the SDKs reported errors:\n" + "\n".join(errors))
    print(json.dumps(sent))


if __name__ == "__main__":
    main()
