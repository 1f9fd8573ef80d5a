import sys

from ckls.cli import main

sys.exit(main())
