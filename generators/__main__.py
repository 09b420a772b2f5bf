"""``python -m generators``. The cyclic garbage collector is off while the modules load and while a one-shot
command (``build``, ``parameters``) runs: they allocate tens of thousands of small objects that live until
the process ends, and each collection pass would only walk them again (about 10% of a build). Commands that
talk to AWS and may wait for minutes turn it back on (:func:`generators.cli.main`)."""

import gc
import sys

gc.disable()

from .cli import main  # noqa: E402 (after gc.disable(): the imports are most of the allocations)

status = main()
# The process ends here: what is left dies with it. Freezing it spares the interpreter's last full collection
# pass over every template object at exit (files are closed and streams flushed by then).
gc.freeze()
sys.exit(status)
