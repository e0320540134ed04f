"""Checkpoints: strict round trips for every architecture, the published (old) layout with numpy scalars,
refusal of pickles that would run code, readable mismatch errors, arch inference, atomic writes."""

from __future__ import annotations

import argparse
import builtins
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from wttm_core.models import (
    MODEL_NAMES,
    CheckpointMismatchError,
    UnsafeCheckpointError,
    build_model,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
    stored_accuracy,
)


def _randomised(name: str, num_classes: int = 100, seed: int = 0) -> nn.Module:
    """A model whose parameters *and* BN running statistics are random, so a round trip that drops or mixes
    up any buffer is caught."""
    torch.manual_seed(seed)
    model = build_model(name, num_classes)
    with torch.no_grad():
        for key, tensor in model.state_dict().items():
            if key.endswith("running_var"):
                tensor.uniform_(0.5, 2.0)
            elif key.endswith("running_mean") or key.endswith(".bias"):
                tensor.normal_(0.0, 0.1)
            elif key.endswith("num_batches_tracked"):
                tensor.fill_(1234)
    return model.eval()


LOGIT_CHECKED = ("resnet8", "ShuffleV1")


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_strict_round_trip_every_architecture(name: str, tmp_path: Path) -> None:
    model = _randomised(name)
    path = save_checkpoint(tmp_path / f"{name}.pth", model, arch=name, epoch=240, accuracy=71.5)
    loaded = load_checkpoint(path)  # arch and class count come from the file
    assert type(loaded) is type(model) and not loaded.training
    original, restored = model.state_dict(), loaded.state_dict()
    assert list(restored) == list(original)
    for key, value in original.items():
        assert torch.equal(restored[key], value), key
    if name in LOGIT_CHECKED:  # equal state implies equal logits; check that end to end on two
        x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)


def test_saved_layout_is_readable_by_other_code_bases(tmp_path: Path) -> None:
    model = _randomised("resnet8", num_classes=10)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for parameter in model.parameters():
        parameter.grad = torch.ones_like(parameter)
    optimizer.step()  # creates momentum buffers, as in the published files
    path = save_checkpoint(
        tmp_path / "sub" / "ckpt.pth",
        nn.DataParallel(model),  # wrapper prefixes never reach the file
        arch="resnet8",
        epoch=np.int64(7),  # type: ignore[arg-type]
        accuracy=torch.tensor(33.25),  # type: ignore[arg-type]
        optimizer_state=optimizer.state_dict(),
        extra={"seed": 3, "history": [1.0, np.float32(2.0)]},  # numpy scalars become Python numbers
    )
    raw = torch.load(path, map_location="cpu", weights_only=True)  # plain weights_only, no allow-list needed
    assert set(raw) == {"model", "epoch", "accuracy", "optimizer", "arch", "num_classes", "seed", "history"}
    assert (raw["epoch"], raw["accuracy"], raw["arch"], raw["num_classes"]) == (7, 33.25, "resnet8", 10)
    assert type(raw["epoch"]) is int and type(raw["accuracy"]) is float and type(raw["history"][1]) is float
    assert next(iter(raw["model"])) == "conv1.weight"
    assert raw["optimizer"]["param_groups"][0]["momentum"] == 0.9
    assert load_checkpoint(path).fc.out_features == 10


def _old_style_file(path: Path, state: dict[str, torch.Tensor]) -> bytes:
    """Write a checkpoint as the published teachers were written: legacy (pre-zip) torch format, DataParallel
    prefix, numpy scalars pickled under numpy 1.x's module name ``numpy.core.multiarray``."""
    payload = {
        "epoch": np.int64(240),
        "model": {f"module.{k}": v for k, v in state.items()},
        "accuracy": np.float64(75.61),
        "best_acc": np.float32(75.7),
        "optimizer": {"state": {0: {"momentum_buffer": torch.ones(3)}}, "param_groups": [{"lr": 0.05}]},
    }
    torch.save(payload, path, _use_new_zipfile_serialization=False)
    data = path.read_bytes()
    # protocol-2 GLOBAL opcodes are "c<module>\n<name>\n": rename the module as numpy 1.x wrote it
    old = data.replace(b"cnumpy._core.multiarray\nscalar\n", b"cnumpy.core.multiarray\nscalar\n")
    path.write_bytes(old)
    return old


def test_old_layout_with_numpy_scalars_loads(tmp_path: Path) -> None:
    folder = tmp_path / "wrn_16_1_vanilla"
    folder.mkdir()
    path = folder / "ckpt_epoch_240.pth"
    model = _randomised("wrn_16_1")
    data = _old_style_file(path, model.state_dict())
    assert b"numpy.core.multiarray\nscalar" in data and b"numpy._core" not in data
    # the file really needs the allow-list: a bare weights_only load refuses it
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, map_location="cpu", weights_only=True)

    checkpoint = read_checkpoint(path)
    assert stored_accuracy(checkpoint) == pytest.approx(75.61)
    assert int(checkpoint["epoch"]) == 240
    assert next(iter(checkpoint["model"])) == "conv1.weight"  # "module." stripped
    loaded = load_checkpoint(path)  # arch from the folder name
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_argparse_namespace_and_bare_state_dict(tmp_path: Path) -> None:
    model = _randomised("resnet8")
    torch.save({"model": model.state_dict(), "opt": argparse.Namespace(lr=0.05, model="resnet8")}, tmp_path / "a.pth")
    assert read_checkpoint(tmp_path / "a.pth")["opt"].lr == 0.05
    torch.save(model.state_dict(), tmp_path / "bare.pth")
    checkpoint = read_checkpoint(tmp_path / "bare.pth")
    assert list(checkpoint) == ["model"]
    assert stored_accuracy(checkpoint) is None
    loaded = load_checkpoint(tmp_path / "bare.pth", arch="resnet8")
    assert torch.equal(loaded.fc.weight, model.fc.weight)


class _Payload:
    """Unpickling this calls ``open(marker, "w")``: a stand-in for any code a malicious file could run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (builtins.open, (str(self.marker), "w"))


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_booby_trapped_pickle_is_refused_and_never_runs(tmp_path: Path, zip_format: bool) -> None:
    marker = tmp_path / "pwned"
    state = build_model("resnet8").state_dict()
    path = tmp_path / "resnet8_vanilla" / "ckpt_epoch_240.pth"
    path.parent.mkdir()
    torch.save({"model": state, "epoch": _Payload(marker)}, path, _use_new_zipfile_serialization=zip_format)

    with pytest.raises(UnsafeCheckpointError, match=r"refusing to load .*open.* not on the allow-list"):
        read_checkpoint(path)
    with pytest.raises(UnsafeCheckpointError):
        load_checkpoint(path)
    assert not marker.exists()

    # control: the payload is live - an unrestricted load would have run it
    control = tmp_path / "control"
    torch.save({"x": _Payload(control)}, tmp_path / "control.pth", _use_new_zipfile_serialization=zip_format)
    torch.load(tmp_path / "control.pth", weights_only=False)
    assert control.exists()


def test_wrong_arch_gives_a_readable_mismatch(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "r8.pth", build_model("resnet8"), arch="resnet8", epoch=1, accuracy=1.0)
    with pytest.raises(CheckpointMismatchError) as info:
        load_checkpoint(path, arch="resnet14")
    message = str(info.value)
    assert "does not fit arch 'resnet14'" in message and "saved as arch 'resnet8'" in message
    assert "missing from the file (30): layer1.1.conv1.weight" in message
    assert "(+22 more)" in message  # long lists are truncated with a count
    assert "match 'resnet8'" in message
    assert len(info.value.missing) == 30 and not info.value.unexpected and not info.value.mismatched
    assert isinstance(info.value, ValueError)

    with pytest.raises(CheckpointMismatchError, match=r"unexpected in the file \(36\)") as info:
        load_checkpoint(save_checkpoint(tmp_path / "r14.pth", build_model("resnet14"), arch="resnet14", epoch=1,
                                        accuracy=1.0), arch="resnet8")  # fmt: skip
    with pytest.raises(CheckpointMismatchError, match=r"wrong shape .*conv1.weight file \[16, 3, 3, 3\] vs model "):
        load_checkpoint(path, arch="resnet8x4")


def test_wrong_num_classes_names_the_right_one(tmp_path: Path) -> None:
    path = tmp_path / "vgg8_vanilla" / "ckpt_epoch_240.pth"
    path.parent.mkdir()
    torch.save({"model": build_model("vgg8", num_classes=10).state_dict(), "epoch": 1}, path)
    with pytest.raises(CheckpointMismatchError) as info:
        load_checkpoint(path)  # 100 classes assumed for the published layout
    message = str(info.value)
    assert "classifier.weight file [10, 512] vs model [100, 512]" in message
    assert "pass num_classes=10" in message
    assert set(info.value.mismatched) == {"classifier.weight", "classifier.bias"}
    assert load_checkpoint(path, num_classes=10).classifier.out_features == 10


def test_arch_inference_order_and_failure(tmp_path: Path) -> None:
    # the file's own arch entry wins over a misleading folder name
    folder = tmp_path / "resnet56_vanilla"
    folder.mkdir()
    save_checkpoint(folder / "mine.pth", build_model("resnet8"), arch="resnet8", epoch=1, accuracy=1.0)
    assert len(load_checkpoint(folder / "mine.pth").layer1) == 1
    # a bare state_dict outside an <arch>_vanilla folder needs arch=
    torch.save(build_model("resnet8").state_dict(), tmp_path / "bare.pth")
    with pytest.raises(ValueError, match=r"arch: cannot tell the architecture .* pass arch="):
        load_checkpoint(tmp_path / "bare.pth")
    with pytest.raises(ValueError, match="arch: unknown architecture 'resnet9'"):
        load_checkpoint(tmp_path / "bare.pth", arch="resnet9")


def test_files_that_are_not_checkpoints(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        read_checkpoint(tmp_path / "missing.pth")
    (tmp_path / "text.pth").write_text("hello")
    with pytest.raises(ValueError, match="not a readable PyTorch checkpoint"):
        read_checkpoint(tmp_path / "text.pth")
    torch.save([torch.ones(1)], tmp_path / "list.pth")
    with pytest.raises(ValueError, match="expected a dict"):
        read_checkpoint(tmp_path / "list.pth")
    torch.save({"weights": [1, 2]}, tmp_path / "odd.pth")
    with pytest.raises(ValueError, match="neither the standard layout"):
        read_checkpoint(tmp_path / "odd.pth")
    with pytest.raises(TypeError, match="path must be"):
        read_checkpoint(3)  # type: ignore[arg-type]


def test_save_rejects_bad_arguments(tmp_path: Path) -> None:
    model = build_model("resnet8")
    target = tmp_path / "x.pth"
    with pytest.raises(ValueError, match="arch: unknown architecture"):
        save_checkpoint(target, model, arch="resnet", epoch=1, accuracy=1.0)
    with pytest.raises(CheckpointMismatchError, match="model does not fit arch 'resnet20'"):
        save_checkpoint(target, model, arch="resnet20", epoch=1, accuracy=1.0)
    with pytest.raises(ValueError, match="epoch"):
        save_checkpoint(target, model, arch="resnet8", epoch=-1, accuracy=1.0)
    with pytest.raises(ValueError, match="accuracy"):
        save_checkpoint(target, model, arch="resnet8", epoch=1, accuracy=float("nan"))
    with pytest.raises(ValueError, match="extra must not redefine"):
        save_checkpoint(target, model, arch="resnet8", epoch=1, accuracy=1.0, extra={"model": 1})
    with pytest.raises(TypeError, match=r"extra\['cfg'\] is a Namespace"):
        save_checkpoint(target, model, arch="resnet8", epoch=1, accuracy=1.0, extra={"cfg": argparse.Namespace()})
    with pytest.raises(TypeError, match="model must be"):
        save_checkpoint(target, {"a": 1}, arch="resnet8", epoch=1, accuracy=1.0)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []  # nothing written by any failed call


def test_save_is_atomic(tmp_path: Path) -> None:
    model = build_model("resnet8")
    target = tmp_path / "ckpt.pth"
    save_checkpoint(target, model, arch="resnet8", epoch=1, accuracy=10.0)
    save_checkpoint(target, model, arch="resnet8", epoch=2, accuracy=20.0)  # replaces in place
    assert read_checkpoint(target)["epoch"] == 2
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pth"]
    # a failure at the final rename (the target is a directory) leaves no temporary file behind
    blocker = tmp_path / "blocker.pth"
    blocker.mkdir()
    with pytest.raises(OSError):
        save_checkpoint(blocker, model, arch="resnet8", epoch=3, accuracy=30.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker.pth", "ckpt.pth"]
    assert list(blocker.iterdir()) == []


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_saved_files_load_on_the_cpu(tmp_path: Path) -> None:
    """The published teachers were saved from GPU tensors; they must load with map_location="cpu"."""
    model = _randomised("resnet8").cuda()
    folder = tmp_path / "resnet8_vanilla"
    folder.mkdir()
    path = folder / "ckpt_epoch_240.pth"
    accuracy = torch.tensor(70.5, device="cuda")
    torch.save(
        {"model": model.state_dict(), "epoch": 240, "accuracy": accuracy}, path, _use_new_zipfile_serialization=False
    )
    checkpoint = read_checkpoint(path)
    assert all(t.device.type == "cpu" for t in checkpoint["model"].values())
    assert stored_accuracy(checkpoint) == 70.5
    loaded = load_checkpoint(path)
    assert all(t.device.type == "cpu" for t in loaded.state_dict().values())
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value.cpu()), key
    # and this project's files are CPU-only whatever device the model was on
    saved = save_checkpoint(tmp_path / "mine.pth", model, arch="resnet8", epoch=1, accuracy=accuracy)
    raw = torch.load(saved, weights_only=True)  # no map_location: the tensors were stored as CPU tensors
    assert raw["accuracy"] == 70.5 and raw["model"]["fc.weight"].device.type == "cpu"
    with open(saved, "rb") as handle:
        assert b"cuda" not in handle.read()
