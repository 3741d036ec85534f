# Reads an EdgeFleet dataset export (edgefleet feed export MODEL --out dataset.tar)
# with the standard library and NumPy only. hub/test/feed/feed.test.ts runs this
# file against a real export, so the example in docs/RETRAINING.md stays true.
import io
import json
import tarfile

import numpy as np


def load(path):
    """Returns (records, tensors): the feed records in cursor order, and every
    .npy member of the archive as a NumPy array keyed by its path."""
    records, tensors = [], {}
    with tarfile.open(path) as tar:
        for member in tar:
            if not member.isfile():
                continue
            data = tar.extractfile(member).read()
            if member.name == "index.jsonl":
                records = [json.loads(line) for line in data.decode("utf-8").splitlines() if line]
            elif member.name.endswith(".npy"):
                tensors[member.name] = np.load(io.BytesIO(data), allow_pickle=False)
    return records, tensors


if __name__ == "__main__":
    import sys

    records, tensors = load(sys.argv[1])
    samples = [r for r in records if r["kind"] == "sample"]
    print(f"{len(records)} records, {len(samples)} samples, {len(tensors)} tensors; resume with --since {records[-1]['cursor'] if records else 0}")
    for r in samples[:3]:
        x = tensors[next(iter(r["files"]["inputs"].values()))]
        print(r["cursor"], r["deviceId"], r["reason"], x.dtype, x.shape)
