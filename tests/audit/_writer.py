"""A writer process for the crash and concurrency tests.

``python -m tests.audit._writer STORE COUNT TAG [BATCH]``: appends COUNT events and prints
``seq rec_hash`` on stdout after each append returns (flushed), so a parent that kills this
process knows exactly which records must have survived.
"""

from __future__ import annotations

import sys
from pathlib import Path

from claudesec.audit import AuditEvent, AuditStore
from claudesec.audit.secrets import AuditKeys


def main(argv: list[str]) -> int:
    path = Path(argv[0])
    count = int(argv[1])
    tag = argv[2]
    batch = int(argv[3]) if len(argv) > 3 else 1
    store = AuditStore.open(path, checkpoint_every=25, keys=AuditKeys(path.parent))
    out = sys.stdout
    i = 0
    while i < count:
        size = min(batch, count - i)
        events = [
            AuditEvent(type="call", user=tag, request_id=f"{tag}-{i + j}", input_tokens=i + j)
            for j in range(size)
        ]
        records = store.append_many(events) if size > 1 else [store.append(events[0])]
        out.write("".join(f"{r.seq} {r.rec_hash}\n" for r in records))
        out.flush()
        i += size
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
