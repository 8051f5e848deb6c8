"""Merge models with a mergekit-schema recipe (same as `lmolt-hub merge`).

python recipes/merge.py --config recipes/meditron-7b/merges/slerp.yaml --push-to <org>/lmolt-slerp
"""

import argparse
import sys

from lmolt_hub.merging import cli

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="recipes/merge.py", description=__doc__)
    cli.add_arguments(parser)
    sys.exit(cli.main(parser.parse_args()))
