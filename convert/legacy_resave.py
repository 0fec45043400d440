"""Re-save a fluid model (`__model__` + one file per parameter) as model.pdmodel + params.pdiparams.

Runs in its own process (`python -m convert.legacy_resave SRC_DIR PROGRAM OUT_DIR`) because it needs
Paddle's legacy static mode, which is chosen by FLAGS_enable_pir_api=0 before paddle is imported.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from convert.child import run_module
from convert.loader import ConvertError

MODEL_NAME, PARAMS_NAME = "model.pdmodel", "params.pdiparams"


def resave_combined(src_dir: Path, program: Path, out_dir: Path) -> tuple[Path, Path]:
    """Write out_dir/model.pdmodel + out_dir/params.pdiparams from a fluid model dir."""
    proc = run_module(
        "convert.legacy_resave", [str(src_dir), program.name, str(out_dir)], env={"FLAGS_enable_pir_api": "0"}
    )
    if proc.returncode != 0:
        tail = " ".join(proc.stderr.strip().splitlines()[-1:]) or f"exit code {proc.returncode}"
        raise ConvertError(f"{src_dir}: cannot load the fluid model with its parameter files: {tail}")
    return out_dir / MODEL_NAME, out_dir / PARAMS_NAME


def _main(src_dir: str, program_name: str, out_dir: str) -> None:
    import paddle

    paddle.enable_static()
    exe = paddle.static.Executor(paddle.CPUPlace())
    prog, feeds, fetches = paddle.static.load_inference_model(
        src_dir, exe, model_filename=program_name, params_filename=None
    )
    feed_vars = [prog.global_block().var(name) for name in feeds]
    tmp_prefix = Path(out_dir) / "resaved"
    paddle.static.save_inference_model(str(tmp_prefix), feed_vars, fetches, exe, program=prog)
    os.replace(f"{tmp_prefix}.pdmodel", Path(out_dir) / MODEL_NAME)
    os.replace(f"{tmp_prefix}.pdiparams", Path(out_dir) / PARAMS_NAME)


if __name__ == "__main__":
    _main(*sys.argv[1:4])
