"""Security gates over the built templates: resolved scenarios, IAM policy extraction, scanner gates.

Run by ``tox -e security`` (see the README's "Security" section) and imported by ``tests/test_security_*``.
"""
