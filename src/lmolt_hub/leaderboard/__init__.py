"""The community leaderboard: records, submission validation, review via Hub PRs, and the static page.

Modules: ``layout`` (the repo's id, folders, card, reading it), ``protocol`` (the review
comment on a PR and whose comments count), ``submit`` / ``review`` (with ``ReviewPolicy``) /
``status`` (pull requests on ``<org>/lmolt-leaderboard``), ``validate`` (checks on one
submission, with the spot check's generation), ``records`` (data model), ``aggregate`` (aggregate score and CI ranks), ``build``
(``leaderboard.json``, page, plots), ``plots`` (the paper's Figures 1-2), ``report`` (verified
rows next to the paper's tables), ``sandbox`` (child processes for every step that touches a
submitted model), ``run`` (the stage's entry: review then build), ``space`` (the page as a static
Hub Space), ``schedule`` (the scheduled reviewer: its commands, the Hugging Face scheduled Job),
``cli``.
"""

from __future__ import annotations

from lmolt_hub.leaderboard.layout import create_leaderboard_repo, leaderboard_repo
from lmolt_hub.leaderboard.protocol import REVIEW_MARK, STATES
from lmolt_hub.leaderboard.review import Outcome, ReviewPolicy, accepted_records, review, review_one
from lmolt_hub.leaderboard.status import status
from lmolt_hub.leaderboard.submit import Submitted, submit_request, submit_results

__all__ = [
    "REVIEW_MARK",
    "STATES",
    "Outcome",
    "ReviewPolicy",
    "Submitted",
    "accepted_records",
    "create_leaderboard_repo",
    "leaderboard_repo",
    "review",
    "review_one",
    "status",
    "submit_request",
    "submit_results",
]
