"""``python -m mmfuse`` is the ``mmfuse`` command."""

import sys

from mmfuse.cli import main

sys.exit(main())
