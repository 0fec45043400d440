"""`python -m server.start`: the documented flags, invalid combinations, how flags become settings, several models
side by side, and (with a CUDA GPU) serving on the GPU."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import grpc
import httpx
import numpy as np
import orjson
import pytest
from helpers import child_env, run_convert
from servers import free_port, start_server

from segcore.proto.general_model_service_pb2 import Request, Response, Tensor
from server.cli import MiB, build_parser, settings_from_args
from server.paddle_flags import LEGACY
from server.workers import pool
from server.workers.process import WorkerSpec

FLAGS = ("--model", "--repository", "--port", "--host", "--thread", "--gpu_ids", "--ir_optim", "--use_mkl",
         "--no_mkl", "--use_trt", "--precision", "--mem_optim_off", "--max_body_size", "--workdir", "--engine",
         "--batch_size", "--batch_timeout_ms", "--max_queue", "--request_timeout_ms", "--cpu_threads",
         "--max_image_pixels", "--drain_timeout_ms", "--max_header_bytes", "--header_timeout_ms", "--api_key_file",
         "--metrics_auth", "--cors_origins", "--ssl_certfile", "--ssl_keyfile", "--ssl_ca_certs", "--rate_limit",
         "--max_connections", "--direct_http", "--cpu_math_thread_num", "--runtime_thread_num", "--batch_infer_size",
         "--enable_prometheus", "--prometheus_port", "--op", *(legacy.flag for legacy in LEGACY))  # fmt: skip
GRPC_METHOD = "/baidu.paddle_serving.predictor.general_model.GeneralModelService/inference"


def start_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`python -m server.start ARGS` on 127.0.0.1 and a free port, output captured."""
    return subprocess.run(
        [sys.executable, "-m", "server.start", "--host", "127.0.0.1", "--port", str(free_port()), *args],
        env=child_env(), capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def settings(*args: str | Path):
    parser = build_parser()
    return settings_from_args(parser.parse_args([str(a) for a in args]), parser)


def png(height: int, width: int) -> bytes:
    return cv2.imencode(".png", np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8))[
        1
    ].tobytes()


@pytest.fixture(scope="module")
def softmax_model(converted: Callable[[str], Path]) -> Path:
    """A second model (repository entry dir of the tiny 2-class softmax model, named 'pir_softmax')."""
    return converted("pir_softmax")


# ----- help and invalid flags -----


def test_help_documents_every_flag() -> None:
    result = subprocess.run([sys.executable, "-m", "server.start", "--help"], env=child_env(), capture_output=True,
                            text=True, timeout=120, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    for flag in FLAGS:
        assert flag in result.stdout, f"{flag} missing from --help"
    documented = {opt: action.help for action in build_parser()._actions for opt in action.option_strings}
    for flag in FLAGS:
        assert documented.get(flag), f"{flag} has no help text"
    assert set(documented) - {"-h", "--help"} == set(FLAGS), "a flag is not in this test's list"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        pytest.param(["--gpu_ids", "-1,0"], ["--gpu_ids", "'-1,0' mixes -1 (CPU) with GPU ids"], id="cpu-and-gpu"),
        pytest.param(["--gpu_ids", "0,a"], ["'0,a' is not a comma-separated list of integers"], id="gpu-not-int"),
        pytest.param(["--model", "portrait", "portrait"], ["same name"], id="same-model-twice"),
        pytest.param(["--thread", "0"], ["--thread must be positive"], id="thread-0"),
        pytest.param(["--batch_size", "0"], ["--batch_size must be positive"], id="batch-0"),
        pytest.param(["--max_queue", "-3"], ["--max_queue must be positive"], id="queue-negative"),
        pytest.param(["--engine", "tensorrt"], ["--engine", "invalid choice: 'tensorrt'"], id="engine"),
        pytest.param(["--use_mkl", "--no_mkl"], ["--no_mkl", "not allowed with argument --use_mkl"], id="mkl"),
    ],
)
def test_invalid_flags_exit_nonzero_with_a_message(args: list[str], words: list[str]) -> None:
    result = start_cli(*args)
    assert result.returncode != 0
    assert "usage: python -m server.start" in result.stderr
    for word in words:
        assert word in result.stderr, result.stderr
    assert "Uvicorn running" not in result.stderr + result.stdout


def test_a_model_that_cannot_be_served_as_asked_is_one_line(build_model: Callable[[str], Path],
                                                            tmp_path: Path) -> None:  # fmt: skip
    entry = tmp_path / "no_onnx"
    proc = run_convert("--dirname", build_model("pir_softmax"), "--serving_server", entry / "serving_server",
                       "--serving_client", entry / "serving_client", "--no-onnx")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    cases = [
        (["--model", "nosuch"], ["no model 'nosuch'", "available: portrait"]),
        (["--engine", "onnxruntime", "--model", str(entry)], ["'no_onnx' has no ONNX copy", "--engine paddle"]),
    ]
    for args, words in cases:
        result = start_cli(*args)
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
        assert all(word in lines[0] for word in words), lines[0]


def test_a_model_without_onnx_says_why_at_start(build_model: Callable[[str], Path], tmp_path: Path) -> None:
    """The converter's reason (legacy adaptive pooling) reaches the --engine onnxruntime refusal and the auto log."""
    entry = tmp_path / "legacy_adaptive"
    proc = run_convert("--dirname", build_model("legacy_adaptive"), "--serving_server", entry / "serving_server",
                       "--serving_client", entry / "serving_client")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = start_cli("--engine", "onnxruntime", "--model", str(entry))
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert "'legacy_adaptive' has no ONNX copy (" in lines[0] and "adaptive pooling" in lines[0], lines[0]
    with start_server(tmp_path, "--model", entry, "--thread", "1") as server:
        ready = [line for line in server.log().splitlines() if "model legacy_adaptive ready on paddle" in line]
        assert len(ready) == 1 and "auto: the model has no ONNX copy (" in ready[0], server.log()[-2000:]
        assert "adaptive pooling" in ready[0]


# ----- flags -> settings (in process) -----


def test_defaults() -> None:
    s = settings()
    (model,) = s.models
    assert model.spec.name == "portrait" and model.engine == "auto"
    assert model.workers == (os.cpu_count() or 1) and model.gpu_ids == ()
    assert (model.batch.batch_size, model.batch.batch_timeout_s, model.batch.max_queue) == (8, 0.0, 256)
    assert model.options.device == "cpu" and model.options.cpu_threads == 1 and model.options.mem_optim
    assert (model.options.use_trt, model.options.precision) == (False, "fp32")
    assert (s.host, s.port, s.max_body_size, s.workdir) == ("0.0.0.0", 9393, 512 * MiB, "workdir")
    assert (s.request_timeout_s, s.drain_timeout_s, s.limits.max_pixels) == (30.0, 20.0, 40_000_000)


def test_flags_map_to_settings() -> None:
    s = settings("--thread", "3", "--batch_size", "4", "--batch_timeout_ms", "25", "--max_queue", "7",
                 "--request_timeout_ms", "1500", "--cpu_threads", "2", "--max_image_pixels", "1234",
                 "--drain_timeout_ms", "500", "--max_body_size", "999", "--mem_optim_off", "--engine", "paddle",
                 "--workdir", "wd", "--host", "127.0.0.1", "--port", "8080")  # fmt: skip
    (model,) = s.models
    assert model.workers == 3 and model.engine == "paddle"
    assert (model.batch.batch_size, model.batch.batch_timeout_s, model.batch.max_queue) == (4, 0.025, 7)
    assert model.options.cpu_threads == 2 and not model.options.mem_optim
    assert (s.request_timeout_s, s.drain_timeout_s, s.max_body_size, s.limits.max_pixels) == (1.5, 0.5, 999, 1234)
    assert (s.host, s.port, s.workdir) == ("127.0.0.1", 8080, "wd")


def test_flag_files_expand_in_place_and_later_flags_win(tmp_path: Path) -> None:
    flags = tmp_path / "server.flags"
    flags.write_text("# the ConfigMap's flags\n--thread 3   --batch_size 4  # inline comment\n\n"
                     "--workdir '/tmp/a dir'\n--port 8080\n")  # fmt: skip
    s = settings("--port", "1", f"@{flags}", "--thread", "5")
    (model,) = s.models
    assert (model.workers, model.batch.batch_size, s.workdir, s.port) == (5, 4, "/tmp/a dir", 8080)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        pytest.param(None, ["flag file @", "cannot read it (FileNotFoundError)"], id="missing"),
        pytest.param("--thread 'open quote", ["line 1: No closing quotation"], id="quote"),
        pytest.param("--thread 2\n@other.flags", ["line 2: flag files do not nest"], id="nested"),
        pytest.param(b"--thread \xff", ["not UTF-8 text"], id="binary"),
    ],
)
def test_a_bad_flag_file_is_one_line(tmp_path: Path, text: str | bytes | None, words: list[str]) -> None:
    flags = tmp_path / "server.flags"
    if isinstance(text, bytes):
        flags.write_bytes(text)
    elif text is not None:
        flags.write_text(text)
    result = start_cli(f"@{flags}")
    assert result.returncode == 2 and "Uvicorn running" not in result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


def test_mkl_and_ir_optim_flags() -> None:
    (forced,) = settings("--use_mkl").models
    assert forced.options.use_mkldnn and forced.options.ir_optim  # oneDNN on the CPU implies IR optimisation
    (plain,) = settings("--no_mkl").models
    assert not plain.options.use_mkldnn and not plain.options.ir_optim
    (plain_ir,) = settings("--no_mkl", "--ir_optim").models
    assert not plain_ir.options.use_mkldnn and plain_ir.options.ir_optim


def test_gpu_ids_cycle_over_models(softmax_model: Path) -> None:
    two = ("--model", "portrait", softmax_model)
    one_list = settings(*two, "--gpu_ids", "0,1")
    assert [m.spec.name for m in one_list.models] == ["portrait", "pir_softmax"]
    assert [m.gpu_ids for m in one_list.models] == [(0, 1), (0, 1)]
    # without --thread: one worker per CPU (the decoding and encoding run in the workers), at least one per id
    assert [m.workers for m in one_list.models] == [max(2, os.cpu_count() or 1)] * 2
    assert [m.batch.batch_size for m in one_list.models] == [1, 1]  # GPU default (README → GPU)
    assert [m.batch.batch_size for m in settings(*two, "--gpu_ids", "0", "--batch_size", "8").models] == [8, 8]
    assert [m.gpu_ids for m in settings(*two, "--gpu_ids", "0,1", "2").models] == [(0, 1), (2,)]
    assert [m.gpu_ids for m in settings(*two, "--gpu_ids", "1", "-1").models] == [(1,), ()]
    assert [m.gpu_ids for m in settings(*two, "--gpu_ids", "3", "2", "1").models] == [(3,), (2,)]
    cpu = settings(*two, "--gpu_ids", "-1")
    assert [m.gpu_ids for m in cpu.models] == [(), ()]
    assert [m.workers for m in cpu.models] == [os.cpu_count() or 1] * 2


def test_use_trt_without_gpu_ids_means_gpu_0(softmax_model: Path) -> None:
    s = settings("--model", "portrait", softmax_model, "--use_trt", "--precision", "fp16")
    for model in s.models:
        assert model.gpu_ids == (0,) and model.workers == (os.cpu_count() or 1)
        assert model.options.use_trt and model.options.precision == "fp16" and model.options.ir_optim
    (explicit,) = settings("--use_trt", "--gpu_ids", "2").models
    assert explicit.gpu_ids == (2,)


def worker_specs(model, s) -> list[WorkerSpec]:
    return pool.worker_specs(model, s.limits, s.max_body_size)


def test_worker_specs_round_robin_over_gpu_ids() -> None:
    s = settings("--thread", "5", "--gpu_ids", "0,1", "--max_body_size", "4096", "--max_image_pixels", "777")
    (model,) = s.models
    specs = worker_specs(model, s)
    assert [w.index for w in specs] == [0, 1, 2, 3, 4]
    assert [(w.options.device, w.options.gpu_id) for w in specs] == [("gpu", i) for i in (0, 1, 0, 1, 0)]
    assert all(w.model_name == "portrait" and w.max_body_size == 4096 and w.limits.max_pixels == 777 for w in specs)
    assert all(Path(w.model_dir) == model.spec.server_dir for w in specs)
    (cpu,) = settings("--thread", "3").models
    assert [w.options.device for w in worker_specs(cpu, s)] == ["cpu"] * 3


# ----- several models on one server -----


def test_two_models_are_served_by_name(tmp_path: Path, softmax_model: Path) -> None:
    with start_server(tmp_path, "--model", "portrait", softmax_model, "--thread", "1") as server:
        listing = httpx.get(f"{server.url}/v1/models").json()
        assert listing["default"] == "portrait"
        by_name = {m["name"]: m for m in listing["models"]}
        assert set(by_name) == {"portrait", "pir_softmax"}
        assert (by_name["portrait"]["output_op"], by_name["pir_softmax"]["output_op"]) == ("sigmoid", "softmax")
        assert all(m["ready"] and len(m["workers"]) == 1 for m in by_name.values())
        assert "model portrait ready on onnxruntime (auto: the model has an ONNX copy verified against Paddle)" in (
            server.log()
        )
        pids = {m["workers"][0]["pid"] for m in by_name.values()}
        assert len(pids) == 2, "each model has its own worker process"

        for name, (height, width) in (("portrait", (40, 30)), ("pir_softmax", (50, 70))):
            response = httpx.post(f"{server.url}/v1/models/{name}/segment", content=png(height, width), timeout=60)
            assert response.status_code == 200, response.text
            label = cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_UNCHANGED)
            assert label.shape == (height, width) and label.max() <= 1
            assert httpx.get(f"{server.url}/v2/models/{name}/ready").status_code == 200
        inputs = {name: httpx.get(f"{server.url}/v2/models/{name}").json()["inputs"][0]["name"] for name in by_name}
        assert inputs == {"portrait": "image", "pir_softmax": "x"}

        # the tensor API picks a model with ?model= (HTTP) or the `model` metadata key (gRPC); default: the first
        x = Tensor(elem_type=1, shape=[1, 3, 24, 32], name="x", alias_name="x", float_data=np.zeros(3 * 24 * 32))
        request = Request(tensor=[x], fetch_var_names=["fetch_name_0"])
        entry = {"float_data": list(x.float_data), "elem_type": 1, "shape": [1, 3, 24, 32], "name": "x"}
        body = orjson.dumps({"tensor": [entry], "fetch_var_names": ["fetch_name_0"]})
        chosen = httpx.post(f"{server.url}/GeneralModelService/inference?model=pir_softmax", content=body, timeout=60)
        assert chosen.status_code == 200, chosen.text
        assert chosen.json()["outputs"][0]["tensor"][0]["shape"] == [1, 2, 24, 32]
        default = httpx.post(f"{server.url}/GeneralModelService/inference", content=body, timeout=60)
        assert default.status_code == 400 and "this model's inputs: image" in default.json()["err_msg"]
        with grpc.insecure_channel(server.address) as channel:
            call = channel.unary_unary(GRPC_METHOD)
            reply = Response.FromString(call(request.SerializeToString(), metadata=(("model", "pir_softmax"),)))
            assert reply.err_no == 0 and list(reply.outputs[0].tensor[0].shape) == [1, 2, 24, 32]
            with pytest.raises(grpc.RpcError) as info:
                call(request.SerializeToString(), metadata=(("model", "nosuch"),), timeout=60)
            assert info.value.code() == grpc.StatusCode.NOT_FOUND
            assert "models: portrait, pir_softmax" in info.value.details()


# ----- GPU (skipped without a usable CUDA GPU) -----


def cuda_usable() -> bool:
    if shutil.which("nvidia-smi") is None:
        return False
    import onnxruntime

    return "CUDAExecutionProvider" in onnxruntime.get_available_providers()


needs_cuda = pytest.mark.skipif(not cuda_usable(), reason="needs nvidia-smi and onnxruntime with CUDA")


def check_gpu_server(tmp_path: Path, *flags: str, engine: str) -> None:
    with start_server(tmp_path, "--gpu_ids", "0", *flags) as server:
        info = httpx.get(f"{server.url}/v1/models/portrait").json()
        assert [(w["device"], w["engine"]) for w in info["workers"]] == [("gpu:0", engine)]
        image = png(300, 200)
        response = httpx.post(f"{server.url}/v1/models/portrait/segment?output=json", content=image, timeout=120)
        assert response.status_code == 200, response.text
        doc = response.json()
        assert (doc["height"], doc["width"], doc["model"]) == (300, 200, "portrait")
        assert set(doc["classes_present"]) <= {0, 1}


@pytest.mark.gpu
@needs_cuda
def test_serves_on_gpu_with_onnxruntime(tmp_path: Path) -> None:
    check_gpu_server(tmp_path, engine="onnxruntime")


@pytest.mark.gpu
@needs_cuda
def test_serves_on_gpu_with_paddle_inference(tmp_path: Path) -> None:
    probe = subprocess.run([sys.executable, "-c", "import paddle; print(paddle.device.is_compiled_with_cuda())"],
                           env=child_env(), capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    if probe.stdout.strip().splitlines()[-1:] != ["True"]:
        pytest.skip("this paddlepaddle build has no CUDA")
    check_gpu_server(tmp_path, "--engine", "paddle", engine="paddle")


def _paddle_has_cuda() -> bool:
    probe = subprocess.run([sys.executable, "-c", "import paddle; print(paddle.device.is_compiled_with_cuda())"],
                           env=child_env(), capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    return probe.stdout.strip().splitlines()[-1:] == ["True"]


@pytest.mark.parametrize(
    "engine,words",
    [("paddle", "this paddlepaddle build has no CUDA"), ("onnxruntime", "has no CUDAExecutionProvider")],
)
def test_gpu_ids_on_a_cpu_only_build_refuse_to_start(tmp_path: Path, engine: str, words: str) -> None:
    """Asked for a GPU it cannot use, the server exits 1 naming why, instead of reporting gpu:0 while on the CPU."""
    import onnxruntime

    if engine == "paddle" and _paddle_has_cuda():
        pytest.skip("this paddlepaddle build has CUDA")
    if engine == "onnxruntime" and "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime build has CUDA")
    command = [sys.executable, "-m", "server.start", "--gpu_ids", "0", "--engine", engine, "--host", "127.0.0.1",
               "--port", str(free_port()), "--workdir", str(tmp_path / "run")]  # fmt: skip
    proc = subprocess.run(command, env=child_env(), capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert words in proc.stderr and "Traceback" not in proc.stderr
