"""`python -m soupgan` runs the console script."""
import sys

from soupgan.cli import main

sys.exit(main())
