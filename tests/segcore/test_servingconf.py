"""segcore.servingconf: Paddle Serving GeneralModelConfig text/stream files (paddle-serving-compat.md 1.3)."""

from __future__ import annotations

from pathlib import Path

import pytest

from segcore.servingconf import (
    CLIENT_CONF,
    CLIENT_STREAM,
    SERVER_CONF,
    SERVER_STREAM,
    ServingConf,
    VarSpec,
    conf_shape,
    read_conf,
    write_conf,
)

# --- Example 1: PaddleSeg 2.x export, x float32 [-1,3,-1,-1], argmax int32 output [-1,-1,-1] -------------

SEG_FETCH = "save_infer_model/scale_0.tmp_1"
SEG_CONF = ServingConf(
    feeds=(VarSpec("x", "x", 1, conf_shape([-1, 3, -1, -1], False)),),
    fetches=(VarSpec(SEG_FETCH, SEG_FETCH, 2, conf_shape([-1, -1, -1], False)),),
)
SEG_TEXT = """\
feed_var {
  name: "x"
  alias_name: "x"
  is_lod_tensor: false
  feed_type: 1
  shape: 3
}
fetch_var {
  name: "save_infer_model/scale_0.tmp_1"
  alias_name: "save_infer_model/scale_0.tmp_1"
  is_lod_tensor: false
  fetch_type: 2
}
"""
_SEG_NAME_HEX = SEG_FETCH.encode().hex()  # 30 bytes = 0x1e
# feed_var: 0a 0c | name 0a 01 'x' | alias 12 01 'x' | lod 18 00 | type 20 01 | shape 28 03   (12 = 0x0c bytes)
# fetch_var: 12 44 | name 0a 1e <30> | alias 12 1e <30> | lod 18 00 | type 20 02   (2+30+2+30+2+2 = 68 = 0x44)
SEG_STREAM = bytes.fromhex(
    "0a0c0a0178120178180020012803" + "1244" + "0a1e" + _SEG_NAME_HEX + "121e" + _SEG_NAME_HEX + "18002002"
)

# --- Example 2: uci_housing_model, fetch alias "price" for fc_0.tmp_1 --------------------------------------

HOUSING_CONF = ServingConf(
    feeds=(VarSpec("x", "x", 1, (13,)),),
    fetches=(VarSpec("fc_0.tmp_1", "price", 1, (1,)),),
)
HOUSING_TEXT = """\
feed_var {
  name: "x"
  alias_name: "x"
  is_lod_tensor: false
  feed_type: 1
  shape: 13
}
fetch_var {
  name: "fc_0.tmp_1"
  alias_name: "price"
  is_lod_tensor: false
  fetch_type: 1
  shape: 1
}
"""
HOUSING_STREAM = bytes.fromhex("0a0c0a017812017818002001280d12190a0a66635f302e746d705f3112057072696365180020012801")


def test_seg_stream_constant_matches_doc_prefix():
    # The doc prints the first 50 bytes and elides the repeated name; check our constant against them.
    doc_head = (
        "0a 0c 0a 01 78 12 01 78 18 00 20 01 28 03 12 44 0a 1e 73 61 76 65 5f 69 6e 66 65 72 5f 6d 6f 64 65 6c 2f "
        "73 63 61 6c 65 5f 30 2e 74 6d 70 5f 31 12 1e"
    )
    assert SEG_STREAM.startswith(bytes.fromhex(doc_head))
    assert SEG_STREAM.endswith(bytes.fromhex("18 00 20 02"))
    assert len(SEG_STREAM) == 2 + 12 + 2 + 68


@pytest.mark.parametrize(
    ("conf", "text", "stream"),
    [(SEG_CONF, SEG_TEXT, SEG_STREAM), (HOUSING_CONF, HOUSING_TEXT, HOUSING_STREAM)],
    ids=["paddleseg", "uci_housing"],
)
@pytest.mark.parametrize("client", [False, True], ids=["server", "client"])
def test_write_conf_exact_text_and_stream(tmp_path: Path, conf, text, stream, client):
    write_conf(conf, tmp_path, client=client)
    text_name, stream_name = (CLIENT_CONF, CLIENT_STREAM) if client else (SERVER_CONF, SERVER_STREAM)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([text_name, stream_name])
    assert (tmp_path / text_name).read_text() == text
    assert (tmp_path / stream_name).read_bytes() == stream


def test_housing_stream_is_41_bytes():
    assert len(HOUSING_STREAM) == 41
    assert HOUSING_CONF.to_proto().SerializeToString() == HOUSING_STREAM


@pytest.mark.parametrize(
    ("conf", "text", "stream"),
    [(SEG_CONF, SEG_TEXT, SEG_STREAM), (HOUSING_CONF, HOUSING_TEXT, HOUSING_STREAM)],
    ids=["paddleseg", "uci_housing"],
)
def test_read_doc_literals(tmp_path: Path, conf, text, stream):
    (tmp_path / "a.prototxt").write_text(text)
    (tmp_path / "a.stream.prototxt").write_bytes(stream)
    assert read_conf(tmp_path / "a.prototxt") == conf
    assert read_conf(tmp_path / "a.stream.prototxt") == conf


def test_housing_alias_and_name_kept_apart(tmp_path: Path):
    (tmp_path / SERVER_CONF).write_text(HOUSING_TEXT)
    fetch = read_conf(tmp_path / SERVER_CONF).fetches[0]
    assert fetch == VarSpec(name="fc_0.tmp_1", alias="price", type_code=1, shape=(1,), is_lod=False)


def test_missing_alias_defaults_to_name(tmp_path: Path):
    (tmp_path / "c.prototxt").write_text('feed_var { name: "img" feed_type: 7 }\n')
    conf = read_conf(tmp_path / "c.prototxt")
    assert conf.feeds == (VarSpec("img", "img", 7, (), False),)
    assert conf.fetches == ()


def test_round_trip_text_stream_and_directory(tmp_path: Path):
    conf = ServingConf(
        feeds=(VarSpec("x", "image", 1, (3, 512, 512)), VarSpec("ids", "ids", 0, (-1,), True)),
        fetches=(VarSpec("fetch_name_0", "output", 2, (1, 512, 1024)), VarSpec("p", "p", 5)),
    )
    server, client = tmp_path / "serving_server", tmp_path / "serving_client"
    server.mkdir()
    client.mkdir()
    write_conf(conf, server, client=False)
    write_conf(conf, client, client=True)
    assert read_conf(server / SERVER_CONF) == conf
    assert read_conf(server / SERVER_STREAM) == conf
    assert read_conf(client / CLIENT_CONF) == conf
    assert read_conf(client / CLIENT_STREAM) == conf
    assert read_conf(server) == conf
    assert read_conf(client) == conf
    # Server and client stream files are byte-identical.
    assert (server / SERVER_STREAM).read_bytes() == (client / CLIENT_STREAM).read_bytes()
    assert (server / SERVER_CONF).read_text() == (client / CLIENT_CONF).read_text()


def test_directory_prefers_server_text_then_falls_back_to_stream(tmp_path: Path):
    write_conf(HOUSING_CONF, tmp_path, client=False)
    (tmp_path / SERVER_CONF).write_text(SEG_TEXT)  # text now differs from the stream
    assert read_conf(tmp_path) == SEG_CONF
    (tmp_path / SERVER_CONF).unlink()
    assert read_conf(tmp_path) == HOUSING_CONF


def test_directory_without_conf(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match=r"serving_server_conf\.prototxt"):
        read_conf(tmp_path)


@pytest.mark.parametrize(
    ("dims", "is_lod", "expected"),
    [
        ([-1, 3, 512, 512], False, (3, 512, 512)),
        ([-1, 3, -1, -1], False, (3,)),
        ([-1, -1, -1], False, ()),
        ([1, 512, 1024], False, (1, 512, 1024)),  # a fixed batch dim of 1 is kept
        ((-1, 13), False, (13,)),
        ([-1, 3, 512, 512], True, (-1,)),  # lod vars always get [-1]
        ([], True, (-1,)),
    ],
)
def test_conf_shape(dims, is_lod, expected):
    assert conf_shape(dims, is_lod) == expected


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("bad.prototxt", b"this is { not a config"),
        ("bad.prototxt", b"\xff\xfe\x00garbage"),
        ("bad.prototxt", b'unknown_field: "x"\n'),
        ("bad.stream.prototxt", b"\xff\xff\xff\xff\xff"),
        ("bad.stream.prototxt", b"garbage text"),
    ],
)
def test_read_conf_garbage_is_value_error(tmp_path: Path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError, match="not a valid GeneralModelConfig"):
        read_conf(path)


def test_read_conf_without_feed_var_is_value_error(tmp_path: Path):
    (tmp_path / "f.prototxt").write_text('fetch_var { name: "y" }\n')
    with pytest.raises(ValueError, match="no feed_var"):
        read_conf(tmp_path / "f.prototxt")
    (tmp_path / "e.stream.prototxt").write_bytes(b"")
    with pytest.raises(ValueError, match="no feed_var"):
        read_conf(tmp_path / "e.stream.prototxt")
