"""Build (and optionally push) a dataset from a data recipe; same as `lmolt-hub data build`.

python recipes/build_data.py --config recipes/data/triples.yaml --push-to <org>/lmolt-triples
"""

import argparse
import sys

from lmolt_hub.data import cli

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_build_arguments(parser)
    args = parser.parse_args()
    args.action = "build"
    sys.exit(cli.main(args))
