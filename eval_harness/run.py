"""Evaluate a checkpoint on the 3k unseen pairs, or score a predictions file.

    python eval_harness/run.py --model <hub-id-or-path> [--limit 100] [--directions caption2smiles]
    accelerate launch eval_harness/run.py --model <hub-id>        # shard generation over GPUs
    python eval_harness/run.py --predictions preds.txt --direction smiles2caption

Same as ``lmolt-hub eval``; see ``--help`` and docs/evaluation.md.
"""

from __future__ import annotations

import argparse
import sys

from lmolt_hub.evaluation import cli
from lmolt_hub.hub.errors import user_errors

if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, allow_abbrev=False, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    cli.add_arguments(parser)
    args = parser.parse_args()
    with user_errors("eval_harness/run.py"):  # no Hub server: one line naming HF_ENDPOINT
        sys.exit(cli.main(args))
