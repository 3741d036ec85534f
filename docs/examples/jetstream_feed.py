#!/usr/bin/env python3
"""Read EdgeFleet's retraining feed from NATS JetStream (stream EF_FEED) [EF-9.13].

Each message is one record of the NDJSON feed (GET /api/v1/feed), the same
JSON line byte for byte; its headers carry the feed cursor (Ef-Cursor) and the
model (Ef-Model). Start anywhere: a stream sequence (--start-seq), a time
(--start-time, ISO 8601), or the beginning. Prints one record per line.

    pip install nats-py
    python jetstream_feed.py --servers nats://n1:4222,nats://n2:4222 \
        --user stream --password "$NATS_PASSWORD" --model wake --start-seq 1000

A pipeline that must not reprocess a record keeps the last sequence it
handled (msg.metadata.sequence.stream) and passes it + 1 next time.
"""
import argparse
import asyncio
import datetime
import re
import sys

import nats
from nats.js.api import ConsumerConfig, DeliverPolicy

STREAM = "EF_FEED"


def subject_token(s: str) -> str:
    """The hub's subject token for a model name: [A-Za-z0-9_-] kept, other UTF-8 bytes as ~hh."""
    out = "".join(
        chr(b) if re.match(r"[A-Za-z0-9_-]", chr(b)) else "~%02x" % b for b in s.encode("utf-8")
    )
    return out or "~"


def consumer_config(args) -> ConsumerConfig:
    if args.start_seq:
        return ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=args.start_seq)
    if args.start_time:
        start = datetime.datetime.fromisoformat(args.start_time).astimezone(datetime.timezone.utc)
        return ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_TIME,
            opt_start_time=start.isoformat().replace("+00:00", "Z"),
        )
    return ConsumerConfig(deliver_policy=DeliverPolicy.ALL)


async def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--servers", required=True, help="comma-separated nats:// URLs")
    p.add_argument("--user")
    p.add_argument("--password")
    p.add_argument("--model", help="only this model's records (default: every model)")
    p.add_argument("--start-seq", type=int, help="first stream sequence to read")
    p.add_argument("--start-time", help="first record at or after this time (ISO 8601)")
    p.add_argument("--idle", type=float, default=0, help="exit after this many seconds without a record (0: follow)")
    args = p.parse_args()

    nc = await nats.connect(servers=args.servers.split(","), user=args.user, password=args.password)
    js = nc.jetstream()
    subject = "ef.feed." + (subject_token(args.model) if args.model else ">")
    # An ordered consumer: ephemeral, in stream order, recreated by the client after a gap.
    sub = await js.subscribe(subject, stream=STREAM, ordered_consumer=True, config=consumer_config(args))
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout=args.idle if args.idle > 0 else None)
            except nats.errors.TimeoutError:
                break
            sys.stdout.write(msg.data.decode("utf-8") + "\n")
            sys.stdout.flush()
    finally:
        await sub.unsubscribe()
        await nc.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
