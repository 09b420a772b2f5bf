"""The "IAM at run time" gate: every AWS call each project role makes, evaluated against its policies.

* :mod:`.roles` -- the roles (one table entry each) and where their policies come from;
* :mod:`.operations` -- API operation -> IAM action, resource ARN and context (fails on an unknown one);
* :mod:`.recordings` -- calls recorded while the real code ran (``tests/runtime_recorded_calls.json``);
* :mod:`.service_calls` -- calls AWS services make with the roles, listed with their AWS documents;
* :mod:`.gate` -- the evaluation over every condition scenario, and the per-role table.

``python -m security.runtime_iam --build build`` prints the table and every denied call.
"""
