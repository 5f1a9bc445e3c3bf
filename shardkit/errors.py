"""One exception type for problems a user can fix.

The CLI prints these as a single line (what, where, what to do) instead of a traceback; anything else that
escapes is a bug in shardkit and keeps its traceback.
"""


class ShardkitError(Exception):
    """A user-facing error whose message is one line naming the file/line/value and the fix."""
