import json

import pytest

from video_prediction.hparams import parse_hparams_string, resolve_hparams

DEFAULTS = dict(lr=0.001, batch_size=16, nz=8, use_state=False, gan_loss_type="LSGAN",
                kl_anneal_steps=(50000, 100000), schedule_sampling_steps=(0, 100000), name=None)


def test_defaults_then_dict_then_string():
    hp = resolve_hparams(DEFAULTS, {"lr": 0.0002, "batch_size": 32}, "batch_size=8,use_state=true")
    assert hp.lr == 0.0002 and hp.batch_size == 8 and hp.use_state is True and hp.nz == 8


def test_json_file(tmp_path):
    path = tmp_path / "model_hparams.json"
    path.write_text(json.dumps({"nz": 0, "kl_anneal_steps": [1, 2]}))
    hp = resolve_hparams(DEFAULTS, str(path))
    assert hp.nz == 0 and hp.kl_anneal_steps == (1, 2)


def test_unknown_key_names_key_and_lists_valid_keys():
    with pytest.raises(ValueError, match=r"unknown hparam 'lrr'.*batch_size.*lr"):
        resolve_hparams(DEFAULTS, None, "lrr=0.1")


def test_wrong_type_names_key():
    with pytest.raises(ValueError, match="hparam 'batch_size' expects a value of type int"):
        resolve_hparams(DEFAULTS, {"batch_size": "big"})
    with pytest.raises(ValueError, match="hparam 'use_state'"):
        resolve_hparams(DEFAULTS, {"use_state": 3})
    with pytest.raises(ValueError, match=r"hparam 'kl_anneal_steps\[1\]'"):
        resolve_hparams(DEFAULTS, {"kl_anneal_steps": [1, "x"]})


def test_int_promoted_to_float_and_whole_float_to_int():
    hp = resolve_hparams(DEFAULTS, {"lr": 1, "batch_size": 4.0})
    assert isinstance(hp.lr, float) and hp.batch_size == 4 and isinstance(hp.batch_size, int)


def test_deprecated_keys_dropped():
    hp = resolve_hparams(DEFAULTS, {"num_gpus": 4, "lr": 0.5}, deprecated=("num_gpus",))
    assert hp.lr == 0.5 and "num_gpus" not in hp


def test_string_parsing_keeps_brackets_together():
    assert parse_hparams_string("a=(1,2),b=[3, 4],c=cdna,d=1e-3") == {
        "a": (1, 2), "b": [3, 4], "c": "cdna", "d": 0.001}
    with pytest.raises(ValueError, match="malformed hparam assignment 'oops'"):
        parse_hparams_string("a=1,oops")


def test_missing_or_invalid_file(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        resolve_hparams(DEFAULTS, str(tmp_path / "nope.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        resolve_hparams(DEFAULTS, str(bad))


def test_read_only_and_values_copy():
    hp = resolve_hparams(DEFAULTS)
    with pytest.raises(AttributeError):
        hp.lr = 1.0
    values = hp.values()
    values["lr"] = 5.0
    assert hp.lr == 0.001
    with pytest.raises(AttributeError, match="no hparam 'missing'"):
        hp.missing
