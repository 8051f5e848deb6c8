"""Build (and optionally push) a dataset from a data recipe; same as `lmolt-hub data build`.

python recipes/build_data.py --config recipes/data/triples.yaml --push-to <org>/lmolt-triples
"""

import sys

from lmolt_hub.cli import Parser  # no abbreviated options; did-you-mean
from lmolt_hub.data import cli
from lmolt_hub.hub.errors import user_errors

if __name__ == "__main__":
    parser = Parser(description=__doc__.splitlines()[0])
    cli.add_build_arguments(parser)
    args = parser.parse_args()
    args.action = "build"
    with user_errors("recipes/build_data.py"):  # no Hub server: one line naming HF_ENDPOINT
        sys.exit(cli.main(args))
