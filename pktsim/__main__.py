import sys

from pktsim.cli import main

sys.exit(main())
