"""The two ways ingestion stops short; every module of this folder raises them, the entry point decides."""


class JobError(Exception):
    """The job cannot start (no such feature group, unusable arguments, input or manifest): exit status 2.
    The message says why."""


class FileError(Exception):
    """One input file cannot be ingested at all (not a CSV file with a header row, unreadable in S3): the
    other files are still ingested and the exit status is 1. The message says why."""
