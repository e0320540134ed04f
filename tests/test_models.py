"""The CIFAR-100 zoo: names, parameter counts and state_dict layout of every architecture (the facts sheet's
table), the calling convention, and the forward-pass details that decide whether published weights give the
published logits (shortcut forms, pooling rules, channel split / shuffle order)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from wttm_core.models import MODEL_NAMES, ZooModel, build_model, count_parameters
from wttm_core.models.common import channel_shuffle

# name: (parameters, state_dict keys, (first key, shape), (classifier weight key, shape)) - cifar-zoo.md
ZOO_TABLE: dict[str, tuple[int, int, tuple[str, tuple[int, ...]], tuple[str, tuple[int, ...]]]] = {
    "resnet8": (83_892, 56, ("conv1.weight", (16, 3, 3, 3)), ("fc.weight", (100, 64))),
    "resnet14": (181_108, 92, ("conv1.weight", (16, 3, 3, 3)), ("fc.weight", (100, 64))),
    "resnet20": (278_324, 128, ("conv1.weight", (16, 3, 3, 3)), ("fc.weight", (100, 64))),
    "resnet32": (472_756, 200, ("conv1.weight", (16, 3, 3, 3)), ("fc.weight", (100, 64))),
    "resnet44": (667_188, 272, ("conv1.weight", (16, 3, 3, 3)), ("fc.weight", (100, 64))),
    "resnet56": (861_620, 344, ("conv1.weight", (16, 3, 3, 3)), ("fc.weight", (100, 64))),
    "resnet110": (1_736_564, 668, ("conv1.weight", (16, 3, 3, 3)), ("fc.weight", (100, 64))),
    "resnet8x4": (1_233_540, 62, ("conv1.weight", (32, 3, 3, 3)), ("fc.weight", (100, 256))),
    "resnet32x4": (7_433_860, 206, ("conv1.weight", (32, 3, 3, 3)), ("fc.weight", (100, 256))),
    "ResNet50": (23_705_252, 320, ("conv1.weight", (64, 3, 3, 3)), ("linear.weight", (100, 2048))),
    "wrn_16_1": (180_916, 82, ("conv1.weight", (16, 3, 3, 3)), ("fc.weight", (100, 64))),
    "wrn_16_2": (703_284, 83, ("conv1.weight", (16, 3, 3, 3)), ("fc.weight", (100, 128))),
    "wrn_40_1": (569_780, 226, ("conv1.weight", (16, 3, 3, 3)), ("fc.weight", (100, 64))),
    "wrn_40_2": (2_255_156, 227, ("conv1.weight", (16, 3, 3, 3)), ("fc.weight", (100, 128))),
    "vgg8": (3_965_028, 37, ("block0.0.weight", (64, 3, 3, 3)), ("classifier.weight", (100, 512))),
    "vgg11": (9_277_284, 58, ("block0.0.weight", (64, 3, 3, 3)), ("classifier.weight", (100, 512))),
    "vgg13": (9_462_180, 72, ("block0.0.weight", (64, 3, 3, 3)), ("classifier.weight", (100, 512))),
    "vgg16": (14_774_436, 93, ("block0.0.weight", (64, 3, 3, 3)), ("classifier.weight", (100, 512))),
    "vgg19": (20_086_692, 114, ("block0.0.weight", (64, 3, 3, 3)), ("classifier.weight", (100, 512))),
    "MobileNetV2": (812_836, 320, ("conv1.0.weight", (16, 3, 3, 3)), ("classifier.0.weight", (100, 1280))),
    "ShuffleV1": (949_258, 296, ("conv1.weight", (24, 3, 1, 1)), ("linear.weight", (100, 960))),
    "ShuffleV2": (1_355_528, 338, ("conv1.weight", (24, 3, 1, 1)), ("linear.weight", (100, 1024))),
}

# Further key shapes quoted in the facts sheet.
EXAMPLE_KEYS: dict[str, dict[str, tuple[int, ...]]] = {
    "resnet32x4": {
        "layer1.0.conv1.weight": (64, 32, 3, 3),
        "layer1.0.downsample.0.weight": (64, 32, 1, 1),
        "layer3.4.conv2.weight": (256, 256, 3, 3),
    },
    "resnet20": {"layer2.0.downsample.0.weight": (32, 16, 1, 1)},
    "wrn_40_2": {
        "block1.layer.0.conv1.weight": (32, 16, 3, 3),
        "block1.layer.0.convShortcut.weight": (32, 16, 1, 1),
        "block3.layer.5.conv2.weight": (128, 128, 3, 3),
        "bn1.weight": (128,),
    },
    "ResNet50": {
        "conv1.weight": (64, 3, 3, 3),
        "layer4.2.conv3.weight": (2048, 512, 1, 1),
        "layer1.0.shortcut.0.weight": (256, 64, 1, 1),
    },
    "MobileNetV2": {"blocks.0.0.conv.3.weight": (16, 1, 3, 3), "blocks.6.0.conv.6.weight": (160, 480, 1, 1)},
    "ShuffleV1": {
        "layer1.0.conv1.weight": (54, 24, 1, 1),
        "layer1.0.conv3.weight": (216, 18, 1, 1),
        "linear.weight": (100, 960),
    },
    "ShuffleV2": {
        "layer1.0.conv1.weight": (24, 1, 3, 3),
        "layer1.0.conv2.weight": (58, 24, 1, 1),
        "conv2.weight": (1024, 464, 1, 1),
        "linear.weight": (100, 1024),
    },
}

# Convolutions per VGG block, as listed in the facts sheet.
VGG_BLOCK_CONVS = {
    "vgg8": [1, 1, 1, 1, 1],
    "vgg11": [1, 1, 2, 2, 2],
    "vgg13": [2, 2, 2, 2, 2],
    "vgg16": [2, 2, 3, 3, 3],
    "vgg19": [2, 2, 4, 4, 4],
}

_CACHE: dict[str, ZooModel] = {}


def zoo(name: str) -> ZooModel:
    """Build each architecture once per test session (eval mode, fixed seed)."""
    if name not in _CACHE:
        torch.manual_seed(0)
        _CACHE[name] = build_model(name).eval()
    return _CACHE[name]


def test_model_names_are_the_22_published_spellings() -> None:
    assert list(MODEL_NAMES) == list(ZOO_TABLE)
    assert len(MODEL_NAMES) == 22


@pytest.mark.parametrize("name", list(ZOO_TABLE))
def test_parameter_count_and_state_dict_layout(name: str) -> None:
    params, keys, (first_key, first_shape), (cls_key, cls_shape) = ZOO_TABLE[name]
    model = zoo(name)
    state = model.state_dict()
    assert count_parameters(model) == params
    assert len(state) == keys
    assert next(iter(state)) == first_key
    assert tuple(state[first_key].shape) == first_shape
    assert tuple(state[cls_key].shape) == cls_shape
    for key, shape in EXAMPLE_KEYS.get(name, {}).items():
        assert tuple(state[key].shape) == shape, key


@pytest.mark.parametrize("name", list(ZOO_TABLE))
def test_forward_logits_and_features(name: str) -> None:
    model = zoo(name)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits = model(x)
        logits2, features = model(x, return_features=True)
    assert logits.shape == (2, 100)
    assert torch.isfinite(logits).all()
    classifier_in = ZOO_TABLE[name][3][1][1]
    assert features.shape == (2, classifier_in) == (2, model.feature_dim)
    torch.testing.assert_close(logits2, logits, rtol=0, atol=0)
    # the features really are the classifier's input
    torch.testing.assert_close(model.classify(features), logits, rtol=0, atol=0)


@pytest.mark.parametrize("name", ["resnet8", "wrn_16_1", "vgg8", "ResNet50", "MobileNetV2", "ShuffleV1", "ShuffleV2"])
def test_num_classes_sets_the_classifier_width(name: str) -> None:
    model = build_model(name, num_classes=10)
    cls_key = ZOO_TABLE[name][3][0]
    assert model.state_dict()[cls_key].shape[0] == 10
    assert model.num_classes == 10
    with torch.no_grad():
        assert model.eval()(torch.zeros(1, 3, 32, 32)).shape == (1, 10)


def test_batch_norm_uses_pytorch_defaults_everywhere() -> None:
    """Published running statistics assume eps 1e-5 and momentum 0.1."""
    for name in MODEL_NAMES:
        bns = [m for m in zoo(name).modules() if isinstance(m, nn.BatchNorm2d)]
        assert bns, name
        for bn in bns:
            assert (bn.eps, bn.momentum, bn.affine, bn.track_running_stats) == (1e-5, 0.1, True, True), name


def test_bad_arguments_name_the_argument() -> None:
    with pytest.raises(ValueError, match=r"name: unknown architecture 'resnet33'.*resnet8, resnet14"):
        build_model("resnet33")
    with pytest.raises(ValueError, match="did you mean 'MobileNetV2'"):
        build_model("mobilenetv2")
    with pytest.raises(TypeError, match="name must be a string"):
        build_model(20)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="num_classes must be >= 1"):
        build_model("resnet8", num_classes=0)
    with pytest.raises(TypeError, match="num_classes"):
        build_model("resnet8", num_classes=10.0)  # type: ignore[arg-type]


def test_init_follows_the_reference() -> None:
    """He (fan-out) normal convolutions; VGG/MobileNetV2 linear N(0, 0.01); WRN linear bias zero."""
    torch.manual_seed(0)
    conv = build_model("resnet110").layer2[0].conv2.weight  # 32x32x3x3: std sqrt(2 / (9 * 32))
    assert abs(conv.std().item() / (2 / (9 * 32)) ** 0.5 - 1) < 0.05
    assert abs(zoo("vgg13").classifier.weight.std().item() - 0.01) < 0.001
    assert zoo("MobileNetV2").classifier[0].bias.abs().max() == 0
    assert zoo("wrn_40_2").fc.bias.abs().max() == 0


# --- forward details that a checkpoint alone cannot reveal -------------------------------------------------


def _saturate_bn(bn: nn.BatchNorm2d, *, negative: bool) -> None:
    """Make ``relu(bn(x))`` zero (negative=True) for inputs of moderate size."""
    with torch.no_grad():
        bn.running_mean.zero_()
        bn.running_var.fill_(1.0)
        bn.weight.fill_(1.0)
        bn.bias.fill_(-1e4 if negative else 0.0)


def test_wrn_projection_shortcut_sees_the_preactivated_input() -> None:
    wrn = build_model("wrn_40_2").eval()  # fresh: the BN statistics are modified below
    block = wrn.block2.layer[0]  # 32 -> 64 channels, stride 2, has convShortcut
    assert block.convShortcut is not None
    _saturate_bn(block.bn1, negative=True)  # relu(bn1(x)) == 0 whatever x is
    x1 = torch.rand(1, 32, 16, 16)
    x2 = torch.rand(1, 32, 16, 16) + 5
    with torch.no_grad():
        out1, out2 = block(x1), block(x2)
    # both the residual branch and the shortcut only see the (zero) pre-activation
    torch.testing.assert_close(out1, out2)

    identity = wrn.block2.layer[1]  # 64 -> 64: the shortcut is the raw input
    assert identity.convShortcut is None
    _saturate_bn(identity.bn1, negative=True)
    x = torch.rand(1, 64, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(identity(x) - identity(torch.zeros_like(x)), x)


def test_wrn_1_has_no_shortcut_in_block1() -> None:
    assert not any("block1" in k and "convShortcut" in k for k in zoo("wrn_40_1").state_dict())
    assert "block1.layer.0.convShortcut.weight" in zoo("wrn_16_2").state_dict()


def _input_sizes(model: nn.Module, module_names: list[str], size: int) -> dict[str, tuple[int, ...]]:
    seen: dict[str, tuple[int, ...]] = {}
    handles = [
        getattr(model, n).register_forward_hook(lambda m, i, o, n=n: seen.__setitem__(n, tuple(i[0].shape)))
        for n in module_names
    ]
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, size, size))
    finally:
        for h in handles:
            h.remove()
    return seen


@pytest.mark.parametrize("name", list(VGG_BLOCK_CONVS))
def test_vgg_blocks_and_the_pool_skipped_at_32x32(name: str) -> None:
    model = zoo(name)
    for index, count in enumerate(VGG_BLOCK_CONVS[name]):
        block = getattr(model, f"block{index}")
        convs = [i for i, m in enumerate(block) if isinstance(m, nn.Conv2d)]
        assert convs == [0, 3, 6, 9][:count]
        assert all(block[i].bias is not None for i in convs)
        assert not isinstance(block[-1], nn.ReLU)  # the block's last ReLU is applied outside
    sizes = _input_sizes(model, ["block3", "block4"], 32)
    assert sizes["block3"][2:] == sizes["block4"][2:] == (4, 4)
    sizes = _input_sizes(model, ["block3", "block4"], 64)  # the reference pools after block 3 only at 64x64
    assert sizes["block3"][2:] == (8, 8) and sizes["block4"][2:] == (4, 4)


def test_mobilenetv2_strides_residuals_and_ceil_mode_pool() -> None:
    model = zoo("MobileNetV2")
    strides = [stage[0].conv[3].stride[0] for stage in model.blocks]
    assert strides == [1, 1, 2, 2, 1, 2, 1]
    assert [type(m).__name__ for m in model.blocks[0][0].conv] == [
        "Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "BatchNorm2d",
    ]  # fmt: skip
    residual = [[block.use_residual for block in stage] for stage in model.blocks]
    # residual only inside stages (stride 1, same width); the first block of every stage changes the shape
    assert residual == [[False], [False, True], [False, True, True], [False, True, True, True],
                        [False, True, True], [False, True, True], [False]]  # fmt: skip
    assert _input_sizes(model, ["conv2"], 32)["conv2"][2:] == (2, 2)
    with torch.no_grad():  # 48x48 -> 3x3 before the pool; ceil mode gives 2x2, i.e. 4 * 1280 features
        features = model.forward_features(torch.zeros(1, 3, 48, 48))
    assert features.shape == (1, 4 * 1280)


def test_channel_shuffle_order() -> None:
    x = torch.arange(12.0).reshape(1, 12, 1, 1)
    assert channel_shuffle(x, 3).flatten().tolist() == [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]
    assert channel_shuffle(x, 2).flatten().tolist() == [0, 6, 1, 7, 2, 8, 3, 9, 4, 10, 5, 11]
    assert torch.equal(channel_shuffle(x, 1), x)
    with pytest.raises(ValueError, match="groups"):
        channel_shuffle(x, 5)


def test_shufflev2_keeps_the_first_half_and_interleaves_it() -> None:
    unit = zoo("ShuffleV2").layer2[3]  # a basic unit on 232 channels
    x = torch.randn(2, 232, 4, 4)
    with torch.no_grad():
        out = unit(x)
    # concat [x[:, :116], branch(x[:, 116:])], then shuffle with 2 groups: kept channels land at even indices
    torch.testing.assert_close(out[:, 0::2], x[:, :116], rtol=0, atol=0)
    x_changed = x.clone()
    x_changed[:, :116] += 1.0  # the branch only sees the second half
    with torch.no_grad():
        torch.testing.assert_close(unit(x_changed)[:, 1::2], out[:, 1::2], rtol=0, atol=0)


def test_shufflev2_down_unit_left_branch_has_no_relu_after_depthwise() -> None:
    down = zoo("ShuffleV2").layer1[0]
    assert down.conv1.groups == 24 and down.conv1.stride == (2, 2)
    x = torch.randn(1, 24, 8, 8)
    with torch.no_grad():
        left = F.relu(down.bn2(down.conv2(down.bn1(down.conv1(x)))))
        out = down(x)
    torch.testing.assert_close(out[:, 0::2], left)  # left branch first, then shuffled to even channels


def test_shufflev1_first_unit_groups_and_concatenated_pool_shortcut() -> None:
    model = zoo("ShuffleV1")
    first = model.layer1[0]
    assert first.conv1.groups == 1 and first.conv3.groups == 3 and first.conv2.groups == 54
    assert all(unit.conv1.groups == 3 for layer in (model.layer1, model.layer2, model.layer3) for unit in layer[1:])
    assert model.layer2[0].conv1.groups == 3
    x = torch.rand(2, 240, 16, 16)  # non-negative, as after a ReLU
    with torch.no_grad():
        out = model.layer2[0](x)
    assert out.shape == (2, 480, 8, 8)
    # [branch (240 channels), avg-pooled input (240 channels)], ReLU after the concatenation
    torch.testing.assert_close(out[:, 240:], F.avg_pool2d(x, 3, stride=2, padding=1))


def test_resnet_projection_shortcuts_only_where_shapes_change() -> None:
    keys = zoo("resnet56").state_dict()
    projecting = sorted({k.rsplit(".downsample", 1)[0] for k in keys if ".downsample." in k})
    assert projecting == ["layer2.0", "layer3.0"]
    keys = zoo("resnet8x4").state_dict()
    projecting = sorted({k.rsplit(".downsample", 1)[0] for k in keys if ".downsample." in k})
    assert projecting == ["layer1.0", "layer2.0", "layer3.0"]
    sizes = _input_sizes(zoo("resnet20"), ["layer1", "layer2", "layer3"], 32)
    assert [s[2] for s in sizes.values()] == [32, 32, 16]


def test_models_run_on_cuda_when_available() -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    model = build_model("resnet8").cuda().eval()
    with torch.no_grad():
        assert model(torch.zeros(2, 3, 32, 32, device="cuda")).device.type == "cuda"
