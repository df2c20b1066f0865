"""The SAVP repository's experiment files (hparams/<dataset>/<variant>/model_hparams.json) against specs/savp.md §3.9.

The table holds the values the spec lists: the files shipped at the original's
HEAD and those its train_all.sh / pretrained models referenced that commit
dcdfb42 deleted (values from its parent).  A key the original file did not hold
is absent here too, so the model default applies.  One deliberate addition:
``multi_latent: true`` in the two ``sv2p_time_variant`` files, which the
original left out (so the file alone trained a time-INVARIANT model; the
original's pretrained time-variant checkpoints carry their own hparams).
"""

import json
import os

import pytest

from video_prediction.hparams import resolve_hparams
from video_prediction.models import get_model_class

HPARAMS_ROOT = os.path.join(os.path.dirname(__file__), "..", "hparams")

# Column order of the spec table; "-" there = key absent = None here.
COLUMNS = ("batch_size", "lr", "beta1", "beta2", "l1_weight", "l2_weight", "kl_weight", "video_sn_vae_gan_weight",
           "video_sn_gan_weight", "vae_gan_feature_cdist_weight", "gan_feature_cdist_weight", "state_weight", "nz")
_ = None
ROWS = {
    # shipped at HEAD (spec §3.9 table)
    "bair_action_free/ours_deterministic_l1": (32, 0.001, 0.9, 0.999, 1.0, 0.0, 0.0, 0.0, 0.0, _, _, 0.0, 0),
    "bair_action_free/ours_deterministic_l2": (32, 0.001, 0.9, 0.999, 0.0, 1.0, 0.0, 0.0, 0.0, _, _, 0.0, 0),
    "bair_action_free/ours_gan": (16, 0.0002, 0.5, 0.999, 100.0, 0.0, 0.0, 0.0, 0.1, 0.0, 10.0, 0.0, _),
    "bair_action_free/ours_savp": (16, 0.0002, 0.5, 0.999, 100.0, 0.0, 1.0, 0.1, 0.1, 10.0, 0.0, 0.0, _),
    "bair_action_free/ours_vae_l1": (32, 0.001, 0.9, 0.999, 1.0, 0.0, 0.001, 0.0, 0.0, _, _, 0.0, _),
    "bair_action_free/sv2p_time_invariant": (32, 0.001, 0.9, 0.999, 0.0, 1.0, 0.001, 0.0, 0.0, _, _, 0.0, _),
    "kth/ours_deterministic_l1": (32, 0.001, 0.9, 0.999, 1.0, 0.0, 0.0, 0.0, 0.0, _, _, 0.0, 0),
    "kth/ours_deterministic_l2": (32, 0.001, 0.9, 0.999, 0.0, 1.0, 0.0, 0.0, 0.0, _, _, 0.0, 0),
    "kth/ours_gan": (16, 0.0002, 0.5, 0.999, 100.0, 0.0, 0.0, 0.0, 0.1, 0.0, 10.0, 0.0, 32),
    "kth/ours_savp": (16, 0.0002, 0.5, 0.999, 100.0, 0.0, 0.01, 0.1, 0.1, 10.0, 0.0, 0.0, 32),
    "kth/ours_vae_l1": (32, 0.001, 0.9, 0.999, 1.0, 0.0, 1e-05, 0.0, 0.0, _, _, 0.0, 32),
    # deleted in dcdfb42, values from its parent (spec §3.9, paragraph below the table)
    "bair_action_free/ours_vae_l2": (32, 0.001, 0.9, 0.999, 0.0, 1.0, 0.001, 0.0, 0.0, _, _, 0.0, _),
    "bair/ours_deterministic_l1": (32, 0.001, 0.9, 0.999, 1.0, 0.0, 0.0, 0.0, 0.0, _, _, 0.0001, 0),
    "bair/ours_deterministic_l2": (32, 0.001, 0.9, 0.999, 0.0, 1.0, 0.0, 0.0, 0.0, _, _, 0.0001, 0),
    "bair/ours_gan": (16, 0.0002, 0.5, 0.999, 100.0, 0.0, 0.0, 0.0, 1.0, _, _, 0.001, _),
    "bair/ours_savp": (16, 0.0002, 0.5, 0.999, 100.0, 0.0, 0.1, 1.0, 1.0, _, _, 0.001, _),
    "bair/ours_vae_l1": (32, 0.001, 0.9, 0.999, 1.0, 0.0, 0.001, 0.0, 0.0, _, _, 0.0001, _),
    "bair/ours_vae_l2": (32, 0.001, 0.9, 0.999, 0.0, 1.0, 0.001, 0.0, 0.0, _, _, 0.0001, _),
    "bair/sna_l1": (32, 0.001, 0.9, 0.999, 1.0, 0.0, 0.0, 0.0, 0.0, _, _, 0.0001, _),
    "bair/sna_l2": (32, 0.001, 0.9, 0.999, 0.0, 1.0, 0.0, 0.0, 0.0, _, _, 0.0001, _),
    "bair/sv2p_time_variant": (32, 0.001, 0.9, 0.999, 0.0, 1.0, 0.008, 0.0, 0.0, _, _, 0.0001, _),
    "kth/sv2p_time_invariant": (16, 0.001, 0.9, 0.999, 0.0, 1.0, 0.008, 0.0, 0.0, _, _, 0.0, _),
    "kth/sv2p_time_variant": (16, 0.001, 0.9, 0.999, 0.0, 1.0, 0.008, 0.0, 0.0, _, _, 0.0, _),
}
# Keys outside the table's columns.  The old action-conditioned deterministic/GAN files carry the
# original's e_net="none" (a key its HEAD drops as deprecated, as our savp does).
EXTRA_KEYS = {
    "bair/ours_deterministic_l1": {"e_net": "none"},
    "bair/ours_deterministic_l2": {"e_net": "none"},
    "bair/ours_gan": {"e_net": "none"},
    "bair/sv2p_time_variant": {"multi_latent": True},
    "kth/sv2p_time_variant": {"multi_latent": True},
}
# Dataset of each experiment directory (bair = action-conditioned BAIR: use_state=True).
DATASETS = {"bair_action_free": dict(context_frames=2, sequence_length=12),
            "bair": dict(context_frames=2, sequence_length=12),
            "kth": dict(context_frames=10, sequence_length=20)}


def expected_values(experiment):
    values = {key: value for key, value in zip(COLUMNS, ROWS[experiment]) if value is not None}
    values.update(EXTRA_KEYS.get(experiment, {}))
    return values


def model_name(experiment):
    variant = experiment.split("/")[1]
    return "sv2p" if variant.startswith("sv2p") else "sna" if variant.startswith("sna") else "savp"


def experiment_path(experiment):
    return os.path.join(HPARAMS_ROOT, experiment, "model_hparams.json")


def test_every_original_experiment_has_a_file_and_no_other_savp_file_exists():
    # Experiment directories of this repository's SAVP datasets that are not in the table
    # (other model families, e.g. kth/mspred, are left out).
    found = set()
    for dataset in DATASETS:
        for variant in os.listdir(os.path.join(HPARAMS_ROOT, dataset)):
            if model_name(f"{dataset}/{variant}") != "savp" or variant.startswith("ours_"):
                found.add(f"{dataset}/{variant}")
    assert found == set(ROWS)


@pytest.mark.parametrize("experiment", sorted(ROWS))
def test_file_matches_spec(experiment):
    with open(experiment_path(experiment)) as f:
        values = json.load(f)
    expected = expected_values(experiment)
    assert values == expected
    # exact types too: 1.0 vs 1 matters to nobody at runtime, but ints stay ints (batch_size, nz)
    for key, value in expected.items():
        assert type(values[key]) is type(value), key


@pytest.mark.parametrize("experiment", sorted(ROWS))
def test_file_resolves_against_model_defaults(experiment):
    model_class = get_model_class(model_name(experiment))
    defaults = model_class.default_hparams()
    path = experiment_path(experiment)
    # No unknown keys (deprecated ones are dropped as the original did) ...
    resolved = resolve_hparams(defaults, path, deprecated=model_class.deprecated_hparams).values()
    for key, value in expected_values(experiment).items():
        if key in model_class.deprecated_hparams:
            assert key not in resolved
        else:
            assert resolved[key] == value, key
    # ... and the model accepts the combination (e.g. no GAN weight for a model without discriminator).
    dataset = DATASETS[experiment.split("/")[0]]
    model = model_class(hparams_dict=path, hparams=dataset)
    assert model.hparams.batch_size == expected_values(experiment)["batch_size"]


def test_variants_mean_what_their_names_say():
    def build(experiment):
        dataset = DATASETS[experiment.split("/")[0]]
        return get_model_class(model_name(experiment))(hparams_dict=experiment_path(experiment), hparams=dataset)

    for experiment in ROWS:
        model = build(experiment)
        if "deterministic" in experiment or "sna" in experiment:
            assert not model.stochastic, experiment
        else:
            assert model.stochastic, experiment
        if experiment.endswith(("ours_gan", "ours_savp")):
            assert model.has_gan, experiment
    assert not build("kth/sv2p_time_invariant").hparams.multi_latent
    assert not build("bair_action_free/sv2p_time_invariant").hparams.multi_latent
    assert build("kth/sv2p_time_variant").hparams.multi_latent
    assert build("bair/sv2p_time_variant").hparams.multi_latent
    # defaults the files rely on (spec §3.9): nz 8 for BAIR SAVP files without nz, sv2p's own schedule
    assert build("bair_action_free/ours_savp").hparams.nz == 8
    sv2p = build("kth/sv2p_time_invariant").hparams
    assert (sv2p.kl_anneal_steps, sv2p.num_iterations_1st_stage, sv2p.max_steps) == ((100000, 120000), 50000, 200000)
