"""Validation and loading of NNI-format search spaces."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from nni.search_space import SearchSpaceError, load_search_space, validate_search_space

VALID = {
    "lr": {"_type": "loguniform", "_value": [1e-4, 1e-1]},
    "dropout": {"_type": "uniform", "_value": [0.0, 0.5]},
    "batch": {"_type": "choice", "_value": [16, 32, 64]},
    "layers": {"_type": "randint", "_value": [1, 5]},
    "units": {"_type": "quniform", "_value": [32, 512, 32]},
    "wd": {"_type": "qloguniform", "_value": [1e-5, 1e-1, 1e-5]},
    "n": {"_type": "normal", "_value": [0, 1]},
    "qn": {"_type": "qnormal", "_value": [0, 1, 0.1]},
    "ln": {"_type": "lognormal", "_value": [0, 1]},
    "qln": {"_type": "qlognormal", "_value": [0, 1, 1]},
    "model": {"_type": "choice", "_value": [
        {"_name": "svm", "C": {"_type": "loguniform", "_value": [0.01, 10]},
         "kernel": {"_type": "choice", "_value": ["rbf", "linear"]}},
        {"_name": "tree", "depth": {"_type": "randint", "_value": [1, 10]}},
        "none",
    ]},
}


def test_valid_space_passes():
    validate_search_space(VALID)
    validate_search_space({})


def _err(space) -> str:
    with pytest.raises(SearchSpaceError) as info:
        validate_search_space(space)
    return str(info.value)


def test_error_is_value_error():
    assert issubclass(SearchSpaceError, ValueError)


@pytest.mark.parametrize("space", [[1, 2], "x", None, 3])
def test_space_must_be_dict(space):
    assert "must be a dict" in _err(space)


def test_parameter_spec_must_be_dict():
    msg = _err({"lr": [0.1, 0.2]})
    assert "'lr'" in msg and "expected a dict" in msg


@pytest.mark.parametrize("spec,missing", [({"_value": [0, 1]}, "'_type'"), ({"_type": "uniform"}, "'_value'"),
                                          ({}, "'_type' and '_value'")])
def test_missing_keys(spec, missing):
    msg = _err({"x": spec})
    assert "'x'" in msg and f"missing {missing}" in msg


def test_unknown_type_suggests_closest():
    msg = _err({"x": {"_type": "loguniformm", "_value": [1, 2]}})
    assert "'x'" in msg and "unknown _type 'loguniformm'" in msg and "did you mean 'loguniform'" in msg
    msg = _err({"x": {"_type": "zzz", "_value": [1, 2]}})
    assert "did you mean" not in msg and "valid types" in msg


@pytest.mark.parametrize("type_,value", [
    ("uniform", [0]), ("uniform", [0, 1, 2]), ("quniform", [0, 1]), ("loguniform", [1]),
    ("qloguniform", [1, 2]), ("normal", [0]), ("qnormal", [0, 1]), ("lognormal", [0, 1, 2]),
    ("qlognormal", [0, 1]), ("randint", [5]),
])
def test_wrong_arity(type_, value):
    msg = _err({"p": {"_type": type_, "_value": value}})
    assert "'p'" in msg and "needs" in msg and "values" in msg


@pytest.mark.parametrize("value", [["a", 1], [0, None], [True, 2], [0, float("nan")], [0, float("inf")]])
def test_non_numeric_bounds(value):
    msg = _err({"p": {"_type": "uniform", "_value": value}})
    assert "'p'" in msg and "finite numbers" in msg


def test_value_must_be_list():
    assert "must be a list" in _err({"p": {"_type": "uniform", "_value": "0,1"}})


@pytest.mark.parametrize("type_,value", [("uniform", [2, 1]), ("quniform", [5, 1, 1]),
                                         ("loguniform", [1, 0.5]), ("qloguniform", [11, 10, 1])])
def test_low_above_high(type_, value):
    msg = _err({"p": {"_type": type_, "_value": value}})
    assert "'p'" in msg and "low <= high" in msg


@pytest.mark.parametrize("type_,value", [("uniform", [1, 1]), ("quniform", [5, 5, 1]),
                                         ("loguniform", [0.5, 0.5]), ("qloguniform", [10, 10, 1])])
def test_degenerate_range_is_a_constant_as_in_nni(type_, value):
    """NNI accepts low == high for the uniform family; every tuner then gives that value."""
    space = {"p": {"_type": type_, "_value": value}}
    validate_search_space(space)
    from nni.search_space._flat import decode, flatten, space_size
    dims = flatten(space)
    assert space_size(dims) == 1
    got = decode(dims, [0])["p"]
    assert isinstance(got, float) and got == pytest.approx(value[0])


@pytest.mark.parametrize("value", [[1.0, 2.0], [1, 2.5]])
def test_randint_float_bounds_refused_as_in_nni(value):
    msg = _err({"p": {"_type": "randint", "_value": value}})
    assert "'p'" in msg and "int bounds" in msg


def test_choice_options_must_be_json_values():
    msg = _err({"p": {"_type": "choice", "_value": [1, object()]}})
    assert "'p'" in msg and "option #1 is not a JSON value" in msg
    msg = _err({"p": {"_type": "choice", "_value": [float("nan")]}})
    assert "option #0" in msg
    validate_search_space({"p": {"_type": "choice", "_value": [[1, 2], {"a": 1}, None, "s"]}})


def test_json_file_with_trailing_comma_loads_through_yaml_as_in_nni(tmp_path):
    path = tmp_path / "space.json"
    path.write_text('{"lr": {"_type": "choice", "_value": [0.1, 0.01,]},\n}\n')
    assert load_search_space(path) == {"lr": {"_type": "choice", "_value": [0.1, 0.01]}}


def test_randint_empty_range():
    msg = _err({"p": {"_type": "randint", "_value": [3, 3]}})
    assert "'p'" in msg and "lower < upper" in msg


@pytest.mark.parametrize("type_,value", [("loguniform", [0, 1]), ("loguniform", [-1, 1]), ("qloguniform", [0, 10, 1])])
def test_log_bounds_positive(type_, value):
    msg = _err({"p": {"_type": type_, "_value": value}})
    assert "'p'" in msg and "low > 0" in msg


@pytest.mark.parametrize("type_,value", [("quniform", [0, 10, 0]), ("quniform", [0, 10, -1]),
                                         ("qloguniform", [1, 10, 0]), ("qnormal", [0, 1, 0]),
                                         ("qlognormal", [0, 1, -0.5])])
def test_q_positive(type_, value):
    msg = _err({"p": {"_type": type_, "_value": value}})
    assert "'p'" in msg and "q > 0" in msg


@pytest.mark.parametrize("type_,value", [("normal", [0, 0]), ("lognormal", [0, -1]), ("qnormal", [0, 0, 1]),
                                         ("qlognormal", [1, 0, 1])])
def test_sigma_positive(type_, value):
    msg = _err({"p": {"_type": type_, "_value": value}})
    assert "'p'" in msg and "sigma > 0" in msg


def test_empty_choice():
    msg = _err({"p": {"_type": "choice", "_value": []}})
    assert "'p'" in msg and "non-empty" in msg


def test_nested_path_in_message():
    space = {"model": {"_type": "choice", "_value": [
        {"_name": "svm", "C": {"_type": "loguniform", "_value": [0, 1]}}]}}
    assert _err(space) == "search space parameter 'model/svm/C': 'loguniform' needs low > 0, got [0, 1]"


def test_deeply_nested_path():
    space = {"a": {"_type": "choice", "_value": [
        {"_name": "b", "c": {"_type": "choice", "_value": [
            {"_name": "d", "e": {"_type": "normal", "_value": [0, -1]}}]}}]}}
    msg = _err(space)
    assert "'a/b/c/d/e'" in msg and "sigma > 0" in msg


def test_nested_name_missing():
    space = {"m": {"_type": "choice", "_value": [
        {"_name": "a", "x": {"_type": "uniform", "_value": [0, 1]}},
        {"y": {"_type": "uniform", "_value": [0, 1]}}]}}
    msg = _err(space)
    assert "'m'" in msg and "#1" in msg and "no '_name'" in msg
    # a lone sub-space without _name is refused too
    msg = _err({"m": {"_type": "choice", "_value": [{"y": {"_type": "uniform", "_value": [0, 1]}}]}})
    assert "no '_name'" in msg


def test_nested_name_duplicated():
    space = {"m": {"_type": "choice", "_value": [
        {"_name": "a", "x": {"_type": "uniform", "_value": [0, 1]}},
        {"_name": "a", "y": {"_type": "uniform", "_value": [0, 1]}}]}}
    msg = _err(space)
    assert "'m'" in msg and "same '_name' 'a'" in msg


def test_plain_dict_options_allowed():
    validate_search_space({"m": {"_type": "choice", "_value": [{"a": 1}, {"a": 2}]}})


def test_non_string_parameter_name():
    assert "names must be strings" in _err({1: {"_type": "uniform", "_value": [0, 1]}})


# ---- loading ------------------------------------------------------------------------------

def test_load_dict_is_deep_copy():
    loaded = load_search_space(VALID)
    assert loaded == VALID
    loaded["batch"]["_value"].append(128)
    assert VALID["batch"]["_value"] == [16, 32, 64]


def test_load_json(tmp_path):
    path = tmp_path / "space.json"
    path.write_text(json.dumps(VALID))
    assert load_search_space(path) == VALID
    assert load_search_space(str(path)) == VALID


def test_load_yaml(tmp_path):
    text = "lr:\n  _type: loguniform\n  _value: [0.0001, 0.1]\nact:\n  _type: choice\n  _value: [relu, tanh]\n"
    for name in ("space.yaml", "space.yml"):
        path = tmp_path / name
        path.write_text(text)
        space = load_search_space(path)
        assert space == {"lr": {"_type": "loguniform", "_value": [0.0001, 0.1]},
                         "act": {"_type": "choice", "_value": ["relu", "tanh"]}}
        validate_search_space(space)


def test_load_unknown_extension_json_then_yaml(tmp_path):
    p1 = tmp_path / "space.txt"
    p1.write_text(json.dumps(VALID))
    assert load_search_space(p1) == VALID
    p2 = tmp_path / "space.conf"
    p2.write_text("x:\n  _type: uniform\n  _value: [0, 1]\n")
    assert load_search_space(p2) == {"x": {"_type": "uniform", "_value": [0, 1]}}


def test_load_missing_file(tmp_path):
    with pytest.raises(SearchSpaceError, match="nope.json.*not found"):
        load_search_space(tmp_path / "nope.json")


def test_load_parse_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(SearchSpaceError, match="cannot parse search space file .*bad.json"):
        load_search_space(bad)
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("a: [1, 2\nb: }")
    with pytest.raises(SearchSpaceError, match="bad.yaml"):
        load_search_space(bad_yaml)
    not_dict = tmp_path / "list.json"
    not_dict.write_text("[1, 2]")
    with pytest.raises(SearchSpaceError, match="list.json.*must contain an object"):
        load_search_space(not_dict)


def test_load_rejects_other_types():
    with pytest.raises(SearchSpaceError):
        load_search_space(42)


def test_search_space_module_is_numpy_free():
    code = ("import sys; import nni.search_space, nni.search_space._flat; "
            "sys.exit(1 if 'numpy' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
