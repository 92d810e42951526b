"""Sending one output to a subscriber: a webhook POST and/or a Kafka record.

The outbox (:mod:`analytics.outbox`) decides what is due and keeps what was sent;
this is only the channel. A webhook gets the JSON payload with ``Idempotency-Key``
= the output id (2xx = delivered); a Kafka channel gets the payload keyed by the id.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable

from streams.subscriptions import Delivery

Producer = Callable[[str, bytes, bytes], None]
"""``producer(topic, key, value)``: sends one Kafka record, raising on failure."""


def send(
    channel: Delivery, output_id: str, payload: bytes, producer: Producer | None
) -> str | None:
    """Deliver one payload on every channel of a subscriber; the error, or None."""
    if channel.kafka_topic is not None:
        if producer is None:
            return f"kafka_topic {channel.kafka_topic}: no Kafka bootstrap configured"
        try:
            producer(channel.kafka_topic, output_id.encode(), payload)
        except Exception as e:  # noqa: BLE001 - any producer failure is a retry
            return f"kafka {channel.kafka_topic}: {e}"
    if channel.webhook is not None:
        request = urllib.request.Request(
            channel.webhook,
            data=payload,
            method="POST",
            headers={"Content-Type": "application/json", "Idempotency-Key": output_id},
        )
        try:
            with urllib.request.urlopen(request, timeout=channel.timeout) as response:
                if not 200 <= response.status < 300:
                    return f"webhook {channel.webhook}: HTTP {response.status}"
        except urllib.error.HTTPError as e:
            return f"webhook {channel.webhook}: HTTP {e.code}"
        except (urllib.error.URLError, OSError) as e:
            return f"webhook {channel.webhook}: {getattr(e, 'reason', e)}"
    return None
