import sys

from popek.cli import main

sys.exit(main())
