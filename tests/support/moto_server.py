"""moto's server, as test.sh starts it, with one fix for the emulator.

moto numbers a DynamoDB stream record from the length of its shard's list, outside any lock,
while its server handles requests on several threads: two concurrent writes to one table can
get the same SequenceNumber (seen: 2 of 3,000 puts from 16 threads). A reader that resumes
AFTER_SEQUENCE_NUMBER then gets one record again, which real DynamoDB Streams never does, and
the deployment test saw two events twice in the lake. Appending under a lock gives every record
its own number, as AWS does; nothing else about moto changes.

Usage: python moto_server.py [moto_server's arguments]
"""

import sys
import threading

from moto.dynamodb.models.table import StreamShard
from moto.server import main

_append = StreamShard.add
_lock = threading.Lock()


def _add_serialized(self, old, new):
    with _lock:
        _append(self, old, new)


StreamShard.add = _add_serialized

if __name__ == "__main__":
    sys.exit(main())
