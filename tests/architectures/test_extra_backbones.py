"""torchxrayvision, timm and RAD-DINO backbones: offline caches, preprocessing, training."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cxrkit import CXRClassifier
from cxrkit.architectures import create_architecture, get_preprocessing, list_architectures
from cxrkit.errors import WeightsError

from ._offline import hf_snapshot

xrv = pytest.importorskip("torchxrayvision")
timm = pytest.importorskip("timm")
transformers = pytest.importorskip("transformers")

TIMM_NAME = "test_resnet.r160_in1k"
TINY_DINO = {
    "hidden_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "image_size": 518,
    "patch_size": 14,
}


def _png(path: Path, h: int, w: int, seed: int) -> str:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8)).save(path)
    return str(path)


def _received_inputs(
    clf: CXRClassifier, X: list[str], y: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> torch.Tensor:
    """Fit ``clf`` and return the batch its backbone received first (through a hook)."""
    seen: list[torch.Tensor] = []
    real_build = CXRClassifier.build_module

    def build(self, n_outputs=1):  # type: ignore[no-untyped-def]
        net = real_build(self, n_outputs)
        net.backbone.register_forward_pre_hook(
            lambda m, args: seen.append(args[0].detach().clone())
        )
        return net

    monkeypatch.setattr(CXRClassifier, "build_module", build)
    clf.fit(X, y)
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 2) and np.allclose(proba.sum(1), 1)
    assert np.isfinite(clf.history_[:, "train_loss"]).all() and len(clf.history_) == 2
    return torch.cat(seen)[: len(X)].contiguous()


def test_listing_shows_every_family() -> None:
    names = list_architectures()
    assert {
        f"xrv_densenet121_res224_{s}"
        for s in ("all", "nih", "chex", "mimic_ch", "mimic_nb", "pc", "rsna")
    } <= set(names)
    assert {"xrv_resnet50_res512_all", "rad_dino", "timm:*"} <= set(names)
    prep = get_preprocessing(f"timm:{TIMM_NAME}")
    cfg = timm.models.get_pretrained_cfg(TIMM_NAME)
    assert (prep.input_size, prep.interpolation, prep.crop_pct, prep.mean, prep.std) == (
        cfg.input_size[-1],
        cfg.interpolation,
        cfg.crop_pct,
        cfg.mean,
        cfg.std,
    )


def test_missing_library_is_listed_with_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    from cxrkit.architectures import _extras
    from cxrkit.errors import ConfigurationError
    from cxrkit.plugins import reset

    real = _extras.extra_available
    monkeypatch.setattr(_extras, "extra_available", lambda f: f != "xrv" and real(f))
    import cxrkit.architectures._extra_backbones as eb

    monkeypatch.setattr(eb, "extra_available", _extras.extra_available)
    reset()
    try:
        assert "xrv_densenet121_res224_all" not in list_architectures()
        from cxrkit.plugins import get_registry

        entry = get_registry("architecture").get("xrv_densenet121_res224_all")
        assert "pip install 'cxrkit[xrv]'" in entry.summary
        monkeypatch.setattr("importlib.import_module", _raise_import)
        with pytest.raises(ConfigurationError, match=r"pip install 'cxrkit\[xrv\]'"):
            create_architecture("xrv_densenet121_res224_all")
    finally:
        monkeypatch.undo()
        reset()


def _raise_import(name: str, *a: object) -> None:
    raise ImportError(name)


# -- torchxrayvision ---------------------------------------------------------------
def _xrv_cache(home: Path, weights: str, obj: object) -> Path:
    url = xrv.models.model_urls[weights]["weights_url"]
    folder = home / ".torchxrayvision" / "models_data"
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(obj, folder / os.path.basename(url))
    return folder / os.path.basename(url)


def test_xrv_densenet_loads_exactly_the_cached_tensors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_network: None
) -> None:
    torch.manual_seed(0)
    ref = xrv.models.DenseNet(weights=None)  # its files pickle the whole module
    _xrv_cache(tmp_path, "densenet121-res224-all", ref)
    monkeypatch.setenv("HOME", str(tmp_path))
    net = create_architecture("xrv_densenet121_res224_all", pretrained="xrv", head="pathologies")
    ours = net.state_dict()
    for k, v in ref.state_dict().items():
        if k != "op_threshs":
            mine = ours["backbone." + k] if k.startswith("features.") else ours["head." + k]
            assert torch.equal(mine, v), k
    # the library itself, loading from the same cache, computes the same scores
    lib = xrv.models.DenseNet(weights="densenet121-res224-all").eval()
    x = torch.rand(2, 1, 224, 224) * 2048 - 1024
    with torch.no_grad():
        torch.testing.assert_close(net.eval()(x), lib(x), rtol=0, atol=1e-6)
    assert net.pathologies == lib.pathologies


def test_xrv_resnet_loads_exactly_the_cached_tensors(tmp_path: Path, no_network: None) -> None:
    import torchvision

    torch.manual_seed(1)
    ref = torchvision.models.resnet50(num_classes=18, weights=None)
    ref.conv1 = torch.nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    _xrv_cache(tmp_path, "resnet50-res512-all", ref.state_dict())
    net = create_architecture(
        "xrv_resnet50_res512_all",
        pretrained="xrv",
        head="pathologies",
        cache_dir=str(tmp_path / ".torchxrayvision" / "models_data"),
    )
    ours = net.state_dict()
    for k, v in ref.state_dict().items():
        mine = ours["head.classifier." + k[3:]] if k.startswith("fc.") else ours["backbone." + k]
        assert torch.equal(mine, v), k
    assert net.preprocessing.input_size == 512


def test_xrv_empty_cache_names_the_folder_and_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_network: None
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    folder = tmp_path / ".torchxrayvision" / "models_data"
    with pytest.raises(
        WeightsError,
        match=(
            r"torchxrayvision weights 'densenet121-res224-nih' are not in the cache "
            rf"'{folder}/?' and could not be downloaded .*xrv\.models\.get_weights"
            r"\('densenet121-res224-nih'\)"
        ),
    ):
        create_architecture("xrv_densenet121_res224_nih", pretrained="xrv")


def test_xrv_refuses_files_that_pickle_other_code(tmp_path: Path) -> None:
    from cxrkit.architectures._xrv import read_xrv_weights

    path = tmp_path / "bad.pt"
    torch.save({"w": torch.zeros(1), "f": Path("x")}, path)
    with pytest.raises(WeightsError, match="needs the global 'pathlib"):
        read_xrv_weights(path)


def test_xrv_receives_its_own_preprocessing_and_trains(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = [_png(tmp_path / f"{i}.png", 40 + 4 * i, 56 - 2 * i, i) for i in range(6)]
    y = np.array(["a", "b"] * 3)
    clf = CXRClassifier(
        "xrv_densenet121_res224_all", freeze="backbone", max_epochs=2, batch_size=6, random_state=0
    )
    got = _received_inputs(clf, paths, y, monkeypatch)
    crop, resize = xrv.datasets.XRayCenterCrop(), xrv.datasets.XRayResizer(224)
    for i, p in enumerate(paths):
        img = xrv.utils.normalize(np.asarray(Image.open(p)), 255)[None]
        ref = torch.from_numpy(resize(crop(img)))
        # 1e-6 of the [-1024, 1024] range: float32 rounding of resampling before vs after scaling
        torch.testing.assert_close(got[i], ref, rtol=0, atol=2048 * 1e-6)


def test_xrv_resnet_trains_through_the_classifier(tmp_path: Path) -> None:
    X = np.random.default_rng(0).integers(0, 256, (4, 48, 48), dtype=np.uint8)
    clf = CXRClassifier(
        "xrv_resnet50_res512_all",
        freeze="all_but_last",
        input_size=64,
        max_epochs=2,
        batch_size=4,
        random_state=0,
        head="fc",
    )
    clf.fit(X, np.array([0, 1, 0, 1]))
    assert clf.predict_proba(X).shape == (4, 2)
    assert clf.preprocessing_.channels == 1 and clf.preprocessing_.crop == "square"


# -- timm -----------------------------------------------------------------------------
def test_timm_loads_exactly_the_cached_tensors(tmp_path: Path, no_network: None) -> None:
    from safetensors.torch import save_file

    torch.manual_seed(2)
    ref = timm.create_model(TIMM_NAME, pretrained=False)
    snap = hf_snapshot(tmp_path, f"timm/{TIMM_NAME}")
    save_file({k: v.contiguous() for k, v in ref.state_dict().items()}, snap / "model.safetensors")
    net = create_architecture(f"timm:{TIMM_NAME}", pretrained="default", cache_dir=str(tmp_path))
    ours = net.state_dict()
    loaded = {k: v for k, v in ref.state_dict().items() if not k.startswith("fc.")}
    assert loaded and all(torch.equal(ours["backbone." + k], v) for k, v in loaded.items())


def test_timm_empty_cache_names_the_folder_and_the_command(
    tmp_path: Path, no_network: None
) -> None:
    with pytest.raises(
        WeightsError,
        match=(
            rf"timm weights for '{TIMM_NAME}' are not in the cache '{tmp_path}' and could not "
            rf"be downloaded .*timm\.create_model\('{TIMM_NAME}', pretrained=True\)"
        ),
    ):
        create_architecture(f"timm:{TIMM_NAME}", pretrained="default", cache_dir=str(tmp_path))


def test_timm_unknown_model_suggests_names() -> None:
    from cxrkit.errors import UnknownNameError

    with pytest.raises(
        UnknownNameError, match="timm has no model 'test_resnett'.*timm:test_resnet"
    ):
        create_architecture("timm:test_resnett")


def test_timm_receives_its_own_preprocessing_and_trains(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # At the size timm resizes to (160 / crop_pct) its eval transform is exact in uint8.
    cfg = timm.models.get_pretrained_cfg(TIMM_NAME)
    side = int(cfg.input_size[-1] / cfg.crop_pct)
    paths = [_png(tmp_path / f"{i}.png", side, side, i) for i in range(4)]
    clf = CXRClassifier(
        f"timm:{TIMM_NAME}", freeze="backbone", max_epochs=2, batch_size=4, random_state=0
    )
    got = _received_inputs(clf, paths, np.array(["a", "b"] * 2), monkeypatch)
    model = timm.create_model(TIMM_NAME, pretrained=False)
    tf = timm.data.create_transform(**timm.data.resolve_data_config(model=model))
    for i, p in enumerate(paths):
        ref = tf(Image.open(p).convert("RGB"))
        torch.testing.assert_close(got[i], ref, rtol=0, atol=1e-6)


def test_timm_in_chans_1_folds_the_first_convolution() -> None:
    net = create_architecture(f"timm:{TIMM_NAME}", in_chans=1)
    assert net.preprocessing.channels == 1
    assert net(torch.rand(2, 1, 64, 64)).shape == (2,)


# -- RAD-DINO ----------------------------------------------------------------------
def _tiny_dino_cache(cache: Path) -> torch.nn.Module:
    torch.manual_seed(3)
    ref = transformers.Dinov2Model(transformers.Dinov2Config(**TINY_DINO))
    ref.save_pretrained(hf_snapshot(cache, "microsoft/rad-dino"))
    return ref


def test_rad_dino_loads_exactly_the_cached_tensors(tmp_path: Path, no_network: None) -> None:
    ref = _tiny_dino_cache(tmp_path)
    net = create_architecture(
        "rad_dino", pretrained="default", cache_dir=str(tmp_path), pooling="cls_mean"
    )
    ours = net.state_dict()
    assert all(torch.equal(ours["backbone.model." + k], v) for k, v in ref.state_dict().items())
    x = torch.rand(2, 3, 56, 56)
    with torch.no_grad():
        tokens = ref.eval()(pixel_values=x).last_hidden_state
        feats = net.eval().features(x)
    torch.testing.assert_close(feats, torch.cat([tokens[:, 0], tokens[:, 1:].mean(1)], 1))
    assert net.num_features == 64


def test_rad_dino_empty_cache_names_the_folder_and_the_command(
    tmp_path: Path, no_network: None
) -> None:
    with pytest.raises(
        WeightsError,
        match=(
            rf"RAD-DINO weights \('microsoft/rad-dino'\) are not in the cache '{tmp_path}' .*"
            r"hf download microsoft/rad-dino"
        ),
    ):
        create_architecture("rad_dino", pretrained="default", cache_dir=str(tmp_path))


def test_rad_dino_receives_its_own_preprocessing_and_trains(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = [_png(tmp_path / f"{i}.png", 518, 518, i) for i in range(4)]
    clf = CXRClassifier(
        "rad_dino",
        freeze="backbone",
        max_epochs=2,
        batch_size=4,
        random_state=0,
        module__config=TINY_DINO,
    )
    got = _received_inputs(clf, paths, np.array(["a", "b"] * 2), monkeypatch)
    # microsoft/rad-dino's preprocessor_config.json
    proc = transformers.BitImageProcessor(
        do_resize=True,
        size={"shortest_edge": 518},
        resample=3,
        do_center_crop=True,
        crop_size={"height": 518, "width": 518},
        do_rescale=True,
        rescale_factor=1 / 255,
        do_normalize=True,
        image_mean=[0.5307] * 3,
        image_std=[0.2583] * 3,
        do_convert_rgb=True,
    )
    for i, p in enumerate(paths):
        ref = proc(Image.open(p).convert("RGB"), return_tensors="pt")["pixel_values"][0]
        torch.testing.assert_close(got[i], ref, rtol=0, atol=1e-6)


def test_rad_dino_gradcam_uses_the_token_grid() -> None:
    from cxrkit.evaluation.gradcam import gradcam

    net = create_architecture("rad_dino", config=TINY_DINO, head="fc")
    maps = gradcam(net.eval(), torch.rand(1, 3, 56, 56))
    assert maps.shape[0] == 1 and np.isfinite(maps).all()


def test_frozen_backbones_use_the_feature_cache(tmp_path: Path) -> None:
    from cxrkit.estimators import clear_feature_cache, feature_cache_stats

    clear_feature_cache()
    X = np.random.default_rng(0).integers(0, 256, (4, 32, 32), dtype=np.uint8)
    clf = CXRClassifier(
        f"timm:{TIMM_NAME}",
        freeze="backbone",
        max_epochs=2,
        batch_size=4,
        random_state=0,
        input_size=64,
    ).fit(X, [0, 1, 0, 1])
    clf.predict_proba(X)
    stats = feature_cache_stats()
    assert stats["misses"] == 4 and stats["hits"] >= 4
