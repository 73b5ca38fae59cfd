import sys

from raidsim.cli import main

sys.exit(main())
