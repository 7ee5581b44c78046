import sys

from bench.tpch.runner import cli

sys.exit(cli())
