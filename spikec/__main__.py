import sys

from spikec.cli import main

sys.exit(main())
