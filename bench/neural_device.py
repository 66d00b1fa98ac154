"""The neural forecaster on CPU and on CUDA, in the same run: fit time, accuracy, latency.

Both devices train the same model (same data, seed and hyper-parameters, a fixed number of
epochs: no early stopping, so both do the same work) on simulated crowds, then predict the
same held-out windows. Reported per device: fit seconds and seconds per epoch, ADE/FDE on the
held-out scenes, predict latency for request sizes 1, 64 and 1000 agents (median of repeats,
CUDA timings synchronised), and a model saved on CUDA loaded on the CPU (the API's case when a
GPU-trained model is served without a GPU) giving the same forecast.

    python bench/neural_device.py                 # needs a CUDA GPU; --cpu-only runs the CPU half
    python bench/neural_device.py --epochs 2 --scenes 4 --cpu-only   # a smoke run

Writes bench/results/neural_device.json (or the file given with --out). Imports only numpy,
pandas and torch from outside the project, so it runs on a machine with PyTorch and the
source tree alone (PYTHONPATH=src).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from trajops.data.simulator import SimulationConfig, simulate  # noqa: E402
from trajops.data.windows import WindowSet, make_windows  # noqa: E402
from trajops.evaluation.metrics import ade, fde  # noqa: E402
from trajops.models.neural import NeuralConfig, NeuralForecaster  # noqa: E402

SIZES = (1, 64, 1000)


def split_by_scene(windows: WindowSet, n_scenes: int) -> tuple[WindowSet, WindowSet, WindowSet]:
    """Scenes 0..n-3 train, n-2 validation, n-1 held out (never used to choose anything)."""
    scene = np.asarray(windows.scene)
    names = sorted(set(scene.tolist()))
    assert len(names) == n_scenes, (len(names), n_scenes)
    return (
        windows.subset(np.isin(scene, names[:-2])),
        windows.subset(scene == names[-2]),
        windows.subset(scene == names[-1]),
    )


def latency_ms(model: NeuralForecaster, obs: np.ndarray, repeats: int) -> float:
    """Median wall time of ``model.predict(obs)`` in ms (CUDA work included: predict returns
    NumPy arrays, which waits for the GPU)."""
    model.predict(obs)  # warm-up: kernels, allocator
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model.predict(obs)
        times.append((time.perf_counter() - t0) * 1e3)
    return round(statistics.median(times), 3)


def run_device(
    device: str, config: NeuralConfig, train: WindowSet, val: WindowSet, test: WindowSet
) -> tuple[NeuralForecaster, dict[str, Any]]:
    model = NeuralForecaster(replace(config, device=device))  # type: ignore[arg-type]
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    history = model.fit(train, val)
    fit_s = time.perf_counter() - t0
    pred = model.predict(test.obs, neighbours=test.neighbours)
    epochs = len(history["train_loss"])
    result: dict[str, Any] = {
        "device": device,
        "fit_seconds": round(fit_s, 2),
        "epochs": epochs,
        "seconds_per_epoch": round(fit_s / max(epochs, 1), 3),
        "test_ade": round(ade(pred, test.fut), 4),
        "test_fde": round(fde(pred, test.fut), 4),
        "predict_ms": {
            str(n): latency_ms(model, np.resize(test.obs, (n, *test.obs.shape[1:])), 20)  # no
            # neighbours: one agent per request, as the API's smallest case
            for n in SIZES
        },
    }
    print(json.dumps(result), flush=True)
    return model, result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=12, help="simulated scenes (>= 4)")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--cpu-only", action="store_true", help="no CUDA half (a smoke run)")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "results" / "neural_device.json"
    )
    args = parser.parse_args(argv)
    if args.scenes < 4:
        parser.error("--scenes must be at least 4 (train, validation and a held-out scene)")
    if not args.cpu_only and not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU here (torch.cuda.is_available() is False); use --cpu-only")

    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    tracks = simulate(replace(SimulationConfig.pedestrians(), n_scenes=args.scenes, seed=7))
    windows = make_windows(tracks)
    train, val, test = split_by_scene(windows, args.scenes)
    # Fixed work on both devices: every epoch runs (patience above the epoch count).
    config = NeuralConfig(
        epochs=args.epochs, patience=args.epochs + 1, num_threads=os.cpu_count() or 1
    )
    _, cpu = run_device("cpu", config, train, val, test)
    results = [cpu]
    round_trip: dict[str, Any] | None = None
    if not args.cpu_only:
        cuda_model, cuda = run_device("cuda", config, train, val, test)
        results.append(cuda)
        with tempfile.TemporaryDirectory() as tmp:
            cuda_model.save(Path(tmp))
            on_cpu = NeuralForecaster.load(Path(tmp), device="cpu")
        gap = float(
            np.abs(
                on_cpu.predict(test.obs, neighbours=test.neighbours)
                - cuda_model.predict(test.obs, neighbours=test.neighbours)
            ).max()
        )
        round_trip = {"saved_on": "cuda", "loaded_on": "cpu", "max_abs_diff_m": gap}
        print(json.dumps(round_trip), flush=True)
    out = {
        "command": "python bench/neural_device.py " + " ".join(argv or sys.argv[1:]),
        "started_at": started,
        "machine": {
            "cpus": os.cpu_count(),
            "cpu": platform.processor() or platform.machine(),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "data": {
            "scenes": args.scenes,
            "train_windows": len(train),
            "val_windows": len(val),
            "test_windows": len(test),
        },
        "config": asdict(config),
        "results": results,
        "cuda_over_cpu_fit_speedup": (
            round(results[0]["fit_seconds"] / results[1]["fit_seconds"], 2)
            if len(results) == 2
            else None
        ),
        "saved_on_cuda_loaded_on_cpu": round_trip,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
