"""Every `paddle_serving_server.serve` 0.9 flag: accepted (working, or with one warning line) or refused with one
line and exit 1, never an argparse usage error; docs/serve-flags.md lists them all; a whole Paddle Serving start
command line serves, its Prometheus port answers, and `stop --port` drains it."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from helpers import TOOLS_PYTHON, child_env
from servers import ServerProcess, free_port

from server.cli import build_parser, settings_from_args
from server.paddle_flags import LEGACY
from server.settings import ServerSettings

ROOT = Path(__file__).resolve().parents[2]
PORTRAIT = ROOT / "serving_models" / "portrait" / "serving_server"

# paddle_serving_server/serve.py 0.9.0's flags, each with a value a start script would pass.
PADDLE_09: dict[str, list[str]] = {
    "--thread": ["10"], "--port": ["9393"], "--device": ["cpu"], "--gpu_ids": [""], "--runtime_thread_num": ["2"],
    "--batch_infer_size": ["4"], "--model": [str(PORTRAIT)], "--op": ["GeneralReaderOp", "GeneralInferOp"],
    "--workdir": ["workdir"], "--use_mkl": [], "--precision": ["fp32"], "--use_calib": [], "--mem_optim_off": [],
    "--ir_optim": [], "--max_body_size": ["536870912"], "--use_encryption_model": [],
    "--encryption_rpc_port": ["12000"], "--use_trt": [], "--use_lite": [], "--use_xpu": [], "--use_ascend_cl": [],
    "--product_name": ["p"], "--container_id": ["c"], "--gpu_multi_stream": [], "--enable_prometheus": [],
    "--prometheus_port": ["19393"], "--request_cache_size": ["1024"], "--use_dist_model": [],
    "--dist_carrier_id": ["inference"], "--dist_cfg_file": ["dist.cfg"], "--dist_endpoints": ["127.0.0.1:9000"],
    "--dist_nranks": ["2"], "--dist_subgraph_index": ["0"], "--dist_worker_serving_endpoints": ["127.0.0.1:9001"],
    "--dist_master_serving": [], "--min_subgraph_size": ["3"], "--gpu_memory_mb": ["50"],
    "--cpu_math_thread_num": ["1"], "--trt_workspace_size": ["33554432"], "--trt_use_static": [],
}  # fmt: skip
REFUSED = {"--use_encryption_model", "--dist_master_serving"}
# need hardware or a package this machine may not have: checked up to the flag check, not to a running server
NEEDS_GPU = {"--use_trt"}


def _settings(*args: str) -> ServerSettings:
    parser = build_parser()
    return settings_from_args(parser.parse_args(list(args)), parser)


def test_the_doc_lists_every_flag_with_what_it_does_here() -> None:
    doc = (ROOT / "docs" / "serve-flags.md").read_text()
    rows = [line for line in doc.splitlines() if line.startswith("| `")]
    for flag in PADDLE_09:
        row = next((r for r in rows if re.search(rf"`{re.escape(flag)}[` ]", r.split("|")[1])), None)
        assert row is not None, f"{flag} is not in docs/serve-flags.md"
        verdict = row.split("|")[2].strip()
        if flag in REFUSED:
            assert verdict == "refused", row
        elif any(flag == legacy.flag for legacy in LEGACY):
            assert verdict == "warning", row
        else:
            assert verdict in ("works", "warning / refused"), row
    for command in ("start", "stop", "kill", "check"):
        assert any(r.startswith(f"| `{command}") for r in rows), command


@pytest.mark.parametrize("flag", sorted(set(PADDLE_09) - REFUSED - NEEDS_GPU))
def test_each_flag_is_accepted(flag: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="server.cli"):
        settings = _settings(flag, *PADDLE_09[flag])
    assert settings.models
    warned = [m for r in caplog.records if "has no effect here" in (m := r.getMessage())]
    if any(flag == legacy.flag for legacy in LEGACY) or flag == "--op":
        assert len(warned) == 1 and warned[0].startswith(flag), warned
    else:
        assert not warned, warned


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--use_encryption_model"], "encrypted models are not supported"),
        (["--dist_master_serving", "--dist_worker_serving_endpoints", "127.0.0.1:9001"], "distributed master"),
        (["--op", "GeneralDetectionOp", "GeneralInferOp"], "--op GeneralDetectionOp: custom C++ ops"),
        (["--precision", "int4"], "--precision 'int4': use fp32, fp16 or int8"),
        (["--runtime_thread_num", "-1"], "--runtime_thread_num values must be >= 0"),
        (["--enable_prometheus", "--metrics_auth", "--api_key_file", "keys.txt"], "--enable_prometheus serves"),
    ],
)
def test_refusals_are_one_line_and_exit_1(tmp_path: Path, args: list[str], words: str) -> None:
    (tmp_path / "keys.txt").write_text("a-key-of-at-least-sixteen-chars\n")
    proc = subprocess.run([sys.executable, "-m", "server.start", "--port", str(free_port()), *args], cwd=tmp_path,
                          env=child_env(), capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("error: ") and words in lines[-1], proc.stderr
    assert "usage:" not in proc.stderr


def test_per_model_lists_and_renamed_flags_map_onto_settings(converted: Callable[[str], Path],
                                                             caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    two = _settings("--model", "portrait", str(converted("pir_softmax")), "--runtime_thread_num", "3", "0",
                    "--batch_infer_size", "2", "--thread", "5", "--cpu_math_thread_num", "2")  # fmt: skip
    assert [(m.workers, m.batch.batch_size, m.options.cpu_threads) for m in two.models] == [(3, 2, 2), (5, 2, 2)]
    assert _settings("--batch_infer_size", "2", "--batch_size", "6").models[0].batch.batch_size == 6
    assert _settings("--cpu_math_thread_num", "3", "--cpu_threads", "1").models[0].options.cpu_threads == 1
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="server.cli"):
        for value in ("fp16", "bf16"):
            assert _settings("--precision", value).models[0].options.precision == "fp32"
    assert [r.getMessage().split(" has")[0] for r in caplog.records] == ["--precision fp16", "--precision bf16"]


def test_a_paddle_serving_command_line_serves_and_stop_drains_it(tmp_path: Path) -> None:
    port, metrics_port = free_port(), free_port()
    workdir = str(tmp_path / "workdir")
    command = ["start", "--model", str(PORTRAIT), "--port", str(port), "--thread", "4", "--workdir", workdir,
               "--use_mkl", "--mem_optim_off", "--ir_optim", "--max_body_size", "536870912", "--device", "cpu",
               "--runtime_thread_num", "1", "--batch_infer_size", "4", "--gpu_memory_mb", "50",
               "--op", "GeneralReaderOp", "GeneralInferOp", "GeneralResponseOp", "--enable_prometheus",
               "--prometheus_port", str(metrics_port), "--product_name", "seg", "--container_id", "c1"]  # fmt: skip
    log_path = tmp_path / "server.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen([TOOLS_PYTHON, "-m", "server.start", *command], stdout=log,
                                   stderr=subprocess.STDOUT, env=child_env(), text=True)  # fmt: skip
    server = ServerProcess(process, port, log_path)
    try:
        server.wait_ready()
        answer = httpx.post(f"{server.url}/GeneralModelService/inference", json={"tensor": []}, timeout=30)
        assert answer.status_code == 400  # Paddle Serving's route, refusing an empty request in its own format
        metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10)
        assert metrics.status_code == 200 and "segserving_requests_total" in metrics.text
        assert (tmp_path / f"workdir_{port}" / "server.pid").read_text().strip() == str(process.pid)
        stop = subprocess.run([TOOLS_PYTHON, "-m", "server.start", "stop", "--port", str(port), "--workdir", workdir],
                              env=child_env(), capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
        assert stop.returncode == 0, stop.stderr
        assert f"stopped server pid {process.pid}" in stop.stdout
        assert process.wait(10) == 0
    finally:
        server.stop()
    text = log_path.read_text()
    for flag in ("--device", "--gpu_memory_mb", "--op", "--product_name", "--container_id"):
        assert f"{flag} has no effect here" in text or f"{flag} GeneralReaderOp" in text, flag
    assert not (tmp_path / f"workdir_{port}" / "server.pid").exists()
    again = subprocess.run([TOOLS_PYTHON, "-m", "server.start", "stop", "--workdir", workdir], env=child_env(),
                           capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert again.returncode == 1 and "no running server found" in again.stderr


def test_check_reports_the_engines() -> None:
    proc = subprocess.run([TOOLS_PYTHON, "-m", "server.start", "check"], env=child_env(), capture_output=True,
                          text=True, timeout=120, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^onnxruntime \d", proc.stdout, re.M) and "CPUExecutionProvider" in proc.stdout
