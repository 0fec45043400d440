"""The inference worker process: loads one model on one engine, warms it up, then serves job batches."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import uvloop

from segcore.allocator import tune_malloc
from segcore.engines import Engine, EngineOptions, create_engine
from segcore.images import ImageLimits
from segcore.repository import ModelSpec, load_spec, paddle_files
from segcore.samples import shaped_feeds, synthetic_image
from server.errors import Unavailable
from server.jobs import Job, JobKind
from server.settings import BatchPolicy, ServerSettings
from server.workers import channel
from server.workers.handler import JobHandler
from server.workers.messages import Drain, Drained, Flush, Reply
from server.workers.serving import WorkQueue
from server.workers.telemetry import FrontCalls, FrontPool, Recorder

if TYPE_CHECKING:
    from server.dataplane import Submitter
    from server.workers.direct_http import DirectHttp

log = logging.getLogger("server.worker")


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker needs, picklable for the spawn start method."""

    model_dir: str
    model_name: str
    engine: str
    options: EngineOptions
    limits: ImageLimits
    index: int
    max_body_size: int = 512 * 2**20
    warm_batches: int = 1  # warm up every batch size up to this
    server: ServerSettings | None = None  # with --direct_http: serve client connections too, with these settings


@dataclass(frozen=True)
class WorkerReady:
    pid: int
    engine: str
    device: str


@dataclass(frozen=True)
class WorkerFailed:
    message: str


def _warm_up(handler: JobHandler, batches: int = 1) -> None:
    """Run the path a real request takes at every batch size up to `batches`, so that no request pays for lazy
    initialisation (on a GPU: the kernel choice for each new input shape)."""
    if handler.images is not None:
        import cv2

        limits = handler.images.limits
        scale = min(1.0, (limits.max_pixels / (320 * 240)) ** 0.5)  # stay inside --max_image_pixels
        _, encoded = cv2.imencode(".png", synthetic_image(max(1, int(240 * scale)), max(1, int(320 * scale)), 0))
        for size in range(1, batches + 1):
            results = handler.handle([Job(i, JobKind.IMAGE, encoded.tobytes()) for i in range(size)])
            failed = next((r for r in results if r.status != 200), None)
            if failed is not None:
                raise RuntimeError(f"warm-up request failed: {failed.message}")
        if handler.id_photos is not None:  # the ID-photo face models (~0.3 s to load), so no photo waits for them
            from idphoto.face import finder

            finder()
        return
    if not handler.input_shape:
        # Paddle Serving's conf drops dynamic dims ([-1,3,-1,-1] -> [3]), so no valid input can be made up.
        log.info("no input shape recorded (convert the model with SegServing to get one): skipping warm-up")
        return
    dims = {handler.spec.conf.feeds[0].name: [-1 if d is None else d for d in handler.input_shape]}
    for size in range(1, batches + 1):
        handler.engine.run(shaped_feeds(handler.spec.conf, dims, batch=size))


def tune_process(options: EngineOptions) -> None:
    """The allocator tuning, and as many OpenCV threads as the engine has CPU threads. OpenCV's default pool, one
    thread per core, only adds CPU beside one worker per core: after each parallel op its threads spin-wait, 0.5-0.6
    ms of CPU per op on a 640x480 image on the 2-core benchmark VM, for no gain in latency. GPU workers too (one
    per CPU by default): on a 16-core H200 machine, 4 GPU workers with OpenCV's default pools used 3.6 cores for
    74 img/s."""
    tune_malloc()
    cv2.setNumThreads(options.cpu_threads)


def worker_main(sock: socket.socket, spec: WorkerSpec, lane: socket.socket | None = None) -> None:
    """Entry point of the worker process. The front stops it by closing the channel."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the front drains first, then closes our channel
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s worker[{spec.model_name}#{spec.index}] %(message)s")
    tune_process(spec.options)
    try:
        model = load_spec(Path(spec.model_dir), spec.model_name)
        engine = _engine(model, spec)
        handler = JobHandler(model, engine, spec.limits, spec.max_body_size)
        _warm_up(handler, spec.warm_batches)
    except Exception as exc:  # any load failure is reported, not raised into multiprocessing
        with contextlib.suppress(ConnectionError):
            channel.send(sock, WorkerFailed(f"{type(exc).__name__}: {exc}"))
        return
    device = "cpu" if spec.options.device == "cpu" else f"gpu:{spec.options.gpu_id}"
    try:
        channel.send(sock, WorkerReady(os.getpid(), engine.name, device))
    except ConnectionError:  # the front closed the channel while we loaded: shutdown
        return
    uvloop.run(_serve(sock, spec, handler, lane))


async def _serve(sock: socket.socket, spec: WorkerSpec, handler: JobHandler, lane: socket.socket | None) -> None:
    """Serve until the front closes the channel."""
    loop = asyncio.get_running_loop()
    settings = spec.server
    model = next((m for m in settings.models if m.spec.name == spec.model_name), None) if settings else None
    policy, workers = (model.batch, model.workers) if model else (None, 1)
    queue = WorkQueue(handler, spec.model_name, policy or BatchPolicy(), workers)
    gone: asyncio.Future[None] = loop.create_future()
    http: DirectHttp | None = None

    def on_message(message: Any) -> None:
        if isinstance(message, list):
            queue.put_batch(message)
        elif isinstance(message, Reply):
            calls.replied(message)
        elif isinstance(message, Flush):
            recorder.flush()
        elif isinstance(message, Drain) and http is not None:
            http.drain()

    def on_lost(exc: Exception | None) -> None:
        if not gone.done():
            gone.set_result(None)

    _, frames = await loop.create_connection(lambda: channel.Frames(on_message, on_lost), sock=sock)
    queue.reply = frames.send
    calls = FrontCalls(frames.send)
    recorder = Recorder(frames.send)
    if settings is not None and lane is not None:
        from server.dataplane import DataPlane  # only a worker that serves HTTP needs the routes
        from server.workers.direct_http import DirectHttp

        queue.recorder = recorder
        pools: dict[str, Submitter] = {m.spec.name: FrontPool(calls, m.spec.name) for m in settings.models}
        pools[spec.model_name] = queue
        plane = DataPlane(settings, pools=pools, counters=recorder)
        http = DirectHttp(settings, plane, calls, recorder, lane, lambda: frames.send(Drained()))
        queue.alone = http.alone
    runner = loop.create_task(queue.run())
    await gone
    runner.cancel()
    queue.fail_all(Unavailable("server is shutting down"))
    calls.close()
    if http is not None:
        await http.close(grace_s=1.0)


def _engine(model: ModelSpec, spec: WorkerSpec) -> Engine:
    if model.config is not None:
        return create_engine(model.server_dir, model.config, spec.engine, spec.options)
    # A plain Paddle Serving serving_server dir: Paddle Inference on the files found by suffix.
    from segcore.engines.paddle_inference import PaddleEngine

    program, params = paddle_files(model.server_dir)
    return PaddleEngine(program, params, spec.options)
