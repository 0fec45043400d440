"""segcore.repository: listing and resolving models in a tiny on-disk repository (no real model files)."""

from __future__ import annotations

from pathlib import Path

import pytest

from segcore.modelconfig import ModelConfig, ModelFiles
from segcore.repository import ModelRepository, load_spec
from segcore.servingconf import SERVER_CONF, SERVER_STREAM, ServingConf, VarSpec, write_conf

CONF = ServingConf(
    feeds=(VarSpec("x", "x", 1, (3,)),),
    fetches=(VarSpec("fetch_name_0", "output", 2),),
)


def _entry(root: Path, name: str, config_name: str | None = None, client: bool = True) -> Path:
    """<root>/<name>/serving_server (+ serving_client) with conf files; segserving.yaml if config_name."""
    server = root / name / "serving_server"
    server.mkdir(parents=True)
    write_conf(CONF, server, client=False)
    if client:
        (root / name / "serving_client").mkdir()
        write_conf(CONF, root / name / "serving_client", client=True)
    if config_name is not None:
        ModelConfig(
            name=config_name,
            files=ModelFiles(model_file="model.json", params_file="model.pdiparams", format="pir"),
            input_name="x",
        ).save(server)
    return root / name


@pytest.fixture
def repo(tmp_path: Path) -> ModelRepository:
    root = tmp_path / "models"
    root.mkdir()
    _entry(root, "zeta_seg", config_name="zeta_seg")
    _entry(root, "alpha_seg", client=False)
    # A stream-only server dir still counts.
    stream_only = root / "beta_seg" / "serving_server"
    stream_only.mkdir(parents=True)
    write_conf(CONF, stream_only, client=False)
    (stream_only / SERVER_CONF).unlink()
    # Not models: an empty serving_server, a dir without one, a client-only entry, a stray file.
    (root / "empty_seg" / "serving_server").mkdir(parents=True)
    (root / "docs").mkdir()
    (root / "client_only" / "serving_client").mkdir(parents=True)
    write_conf(CONF, root / "client_only" / "serving_client", client=True)
    (root / "README.md").write_text("not a model")
    return ModelRepository(root)


def test_names_lists_only_entries_with_server_conf(repo: ModelRepository):
    assert repo.names() == ["alpha_seg", "beta_seg", "zeta_seg"]


def test_names_of_missing_root_is_empty(tmp_path: Path):
    assert ModelRepository(tmp_path / "nowhere").names() == []


def test_load_unknown_name_lists_available(repo: ModelRepository):
    with pytest.raises(KeyError) as exc:
        repo.load("empty_seg")
    message = exc.value.args[0]
    assert "no model 'empty_seg'" in message
    assert "available: alpha_seg, beta_seg, zeta_seg" in message


def test_load_unknown_in_empty_repository(tmp_path: Path):
    with pytest.raises(KeyError) as exc:
        ModelRepository(tmp_path).load("x")
    assert exc.value.args[0].endswith("available: none")


def test_load_by_name(repo: ModelRepository):
    spec = repo.load("zeta_seg")
    assert spec.name == "zeta_seg"
    assert spec.server_dir == repo.root / "zeta_seg" / "serving_server"
    assert spec.client_dir == repo.root / "zeta_seg" / "serving_client"
    assert spec.conf == CONF
    assert spec.config is not None
    assert spec.config.files.model_file == "model.json"


def test_load_without_segserving_yaml_has_no_config(repo: ModelRepository):
    spec = repo.load("alpha_seg")
    assert spec.config is None
    assert spec.client_dir is None  # no serving_client dir
    assert spec.conf == CONF


def test_load_stream_only(repo: ModelRepository):
    spec = repo.load("beta_seg")
    assert not (spec.server_dir / SERVER_CONF).exists()
    assert (spec.server_dir / SERVER_STREAM).is_file()
    assert spec.conf == CONF


def test_resolve_entry_dir_server_dir_and_name(repo: ModelRepository):
    by_entry = repo.resolve(str(repo.root / "alpha_seg"))
    by_server = repo.resolve(str(repo.root / "alpha_seg" / "serving_server"))
    by_name = repo.resolve("alpha_seg")
    for spec in (by_entry, by_server, by_name):
        assert spec.name == "alpha_seg"
        assert spec.server_dir == repo.root / "alpha_seg" / "serving_server"
        assert spec.conf == CONF
        assert spec.config is None


def test_resolve_unknown_name_is_key_error(repo: ModelRepository):
    with pytest.raises(KeyError, match="no model 'no_such_model_xyz'"):
        repo.resolve("no_such_model_xyz")


def test_load_spec_name_comes_from_config_then_dir(tmp_path: Path):
    entry = _entry(tmp_path, "dir_name", config_name="configured_name")
    assert load_spec(entry).name == "configured_name"
    assert load_spec(entry, name="explicit").name == "explicit"
    plain = _entry(tmp_path, "plain_dir")
    assert load_spec(plain).name == "plain_dir"
    assert load_spec(plain / "serving_server").name == "plain_dir"


def test_load_spec_bare_server_dir_named_after_itself(tmp_path: Path):
    # A dir holding the conf directly (not called serving_server) is named after itself.
    bare = tmp_path / "bare_model"
    bare.mkdir()
    write_conf(CONF, bare, client=False)
    spec = load_spec(bare)
    assert spec.name == "bare_model"
    assert spec.server_dir == bare
    assert spec.client_dir is None
    assert spec.config is None


def test_load_spec_not_a_model_dir(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="not a model dir"):
        load_spec(tmp_path)


def test_resolve_name_equals_dir_serves_the_dir_under_that_name(repo: ModelRepository, tmp_path: Path):
    # KServe mounts the model at /mnt/models and names it after the InferenceService: --model NAME=DIR
    mounted = _entry(tmp_path, "mnt_models", config_name="configured_name")
    spec = repo.resolve(f"sky-seg={mounted}")
    assert (spec.name, spec.server_dir) == ("sky-seg", mounted / "serving_server")
    assert repo.resolve(f"plain={mounted / 'serving_server'}").name == "plain"
    with pytest.raises(FileNotFoundError, match=r"--model x=.*nowhere is not a directory"):
        repo.resolve(f"x={tmp_path / 'nowhere'}")
    # not a NAME (empty, or not one URL path segment): an ordinary repository name, which does not exist
    for ref in (f"={mounted}", f"a/b={mounted}"):
        with pytest.raises(KeyError, match="no model"):
            repo.resolve(ref)
