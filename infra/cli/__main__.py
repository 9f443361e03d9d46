"""``python -m syncbackbone.infra.cli``: the ``syncbackbone`` command."""

import sys

from .main import main

sys.exit(main())
