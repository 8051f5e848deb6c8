"""The evaluation-set contract: its columns, the FCD reference statistics and the metric config.

The data stage writes an eval-set repo (``lmolt-hub data build``); the harness and the leaderboard
reviewer read it. Layout of the repo::

    data/test-*.parquet              EVAL_COLUMNS
    fcd_stats/<stats file>.npz       ChemNet statistics of the references (FCD_STATS_DIR)
    metric_config.json               how results on this set are scored (METRIC_CONFIG_FILE)
"""

from __future__ import annotations

EVAL_COLUMNS = ("id", "molecule", "caption", "inchikey")  # what the data stage writes
REQUIRED_COLUMNS = ("id", "molecule", "caption")  # what the harness needs of any eval set
# Accepted spellings of the required columns in other files (ChEBI-20 / MolT5 files, L+M-24).
COLUMN_ALIASES = {
    "id": ("id", "CID", "cid"),
    "molecule": ("molecule", "SMILES", "smiles"),
    "caption": ("caption", "description"),
}
FCD_STATS_DIR = "fcd_stats"
METRIC_CONFIG_FILE = "metric_config.json"


def fcd_stats_path(filename: str) -> str:
    """The repo path of a statistics file (``metrics.fcd.stats_filename``)."""
    return f"{FCD_STATS_DIR}/{filename}"


def is_fcd_stats_path(name: str) -> bool:
    """Whether a repo path is a statistics file (not the optional activations beside it)."""
    return (
        name.startswith(FCD_STATS_DIR + "/")
        and name.endswith(".npz")
        and not name.endswith(".activations.npz")
    )
