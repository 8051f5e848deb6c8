"""formats.eval_set: the eval-set columns, the FCD-statistics path and the metric config name."""

from __future__ import annotations


def test_eval_set_contract_has_one_home():
    from lmolt_hub.data import eval_set as data_eval_set
    from lmolt_hub.formats import eval_set
    from lmolt_hub.metrics import metric_config

    assert set(eval_set.REQUIRED_COLUMNS) <= set(eval_set.EVAL_COLUMNS) == set(data_eval_set.EVAL_FEATURES)
    assert metric_config.METRIC_CONFIG_FILE is eval_set.METRIC_CONFIG_FILE
    path = eval_set.fcd_stats_path("fcd_stats_fcd_1.1_abc.npz")
    assert path == "fcd_stats/fcd_stats_fcd_1.1_abc.npz" and eval_set.is_fcd_stats_path(path)
    assert not eval_set.is_fcd_stats_path("fcd_stats/fcd_stats_fcd_1.1_abc.activations.npz")
    assert not eval_set.is_fcd_stats_path("data/fcd_stats_fcd_1.1_abc.npz")
