"""The community leaderboard: records, submission validation, review via Hub PRs, and the static page.

Modules: ``records`` (data model), ``aggregate`` (aggregate score and CI ranks),
``validate`` (checks on one submission), ``submissions`` (submit / review /
status through pull requests on ``<org>/lmolt-leaderboard``), ``build``
(``leaderboard.json``, page, plots), ``plots`` (the paper's Figures 1-2),
``harness`` (spot check / evaluation hooks), ``cli``.
"""
