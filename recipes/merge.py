"""Merge models with a mergekit-schema recipe (same as `lmolt-hub merge`).

python recipes/merge.py --config recipes/meditron-7b/merges/slerp.yaml --push-to <org>/lmolt-slerp
"""

import sys

from lmolt_hub.cli import Parser  # no abbreviated options; did-you-mean
from lmolt_hub.hub.errors import user_errors
from lmolt_hub.merging import cli

if __name__ == "__main__":
    parser = Parser(prog="recipes/merge.py", description=__doc__)
    cli.add_arguments(parser)
    args = parser.parse_args()
    with user_errors("recipes/merge.py"):  # no Hub server: one line naming HF_ENDPOINT
        sys.exit(cli.main(args))
