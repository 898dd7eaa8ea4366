"""CXRClassifier: a skorch-trained CNN behind the scikit-learn API."""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
from collections.abc import Callable, Sequence
from numbers import Integral, Real
from typing import Any, ClassVar, cast

import numpy as np
import torch
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils._param_validation import Interval, RealNotInt, StrOptions
from sklearn.utils.validation import check_is_fitted
from skorch import NeuralNet
from skorch.callbacks import Callback, LRScheduler
from skorch.helper import predefined_split
from torch import nn

from .._config import get_config
from .._memory import (
    glibc_malloc_available,
    release_free_memory,
    retain_freed_memory,
)
from ..architectures import (
    CXRNet,
    Preprocessing,
    create_architecture,
    get_preprocessing,
    grayscale_first_conv,
)
from ..errors import ConfigurationError, DataError, ModelFormatError
from ..io import INTERPOLATIONS
from ..transforms import resolve_augment
from ._cache import (
    FeatureDataset,
    feature_cache_reason,
    get_feature_cache,
    join_session,
    session_for_workers,
)
from ._callbacks import CosineRestarts, EpochAccuracy, FiniteLoss
from ._data import (
    AugmentedImageDataset,
    FlippedSource,
    ImageSource,
    ImageTensorDataset,
    as_image_source,
    iter_prepared,
    prepare_images,
    to_tensor,
)
from ._feature_net import FeatureAwareNet
from ._interrupt import refuse_interrupted, watch_sigint
from ._model_schema import FORMAT, MOVED_TO_CONFIG
from ._optim import RMSprop
from ._params import validate_params
from ._recipes import recipe_params

__all__ = ["CXRClassifier", "resolve_device", "ROUTED_PREFIXES"]
logger = logging.getLogger("cxrkit.estimators")

ROUTED_PREFIXES = (
    "optimizer__",
    "module__",
    "lr_schedule__",
    "iterator_train__",
    "iterator_valid__",
    "callbacks__",
    "criterion__",
)

_OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "sgd": torch.optim.SGD,
    "rmsprop": RMSprop,  # torch.optim.RMSprop, bit for bit, without subnormal stalls
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
}


def resolve_device(device: str | torch.device | None) -> str:
    """``"auto"`` -> ``"cuda"`` when a GPU is visible, else ``"cpu"``."""
    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    dev = str(device)
    if dev.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigurationError(
            f"device={dev!r} was requested but no CUDA GPU is visible. Use device='auto' or 'cpu'."
        )
    return dev


def _predict_channels_last() -> bool:
    """Whether prediction and feature-cache passes run channels-last (config ``channels_last``)."""
    return get_config()["channels_last"] in (True, "auto")


def _logit_of_mean_probability(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``logit((sigmoid(a) + sigmoid(b)) / 2)``, finite for any finite logits."""
    log_p = np.logaddexp(-np.logaddexp(0, -a), -np.logaddexp(0, -b))
    log_q = np.logaddexp(-np.logaddexp(0, a), -np.logaddexp(0, b))
    return log_p - log_q


class CXRClassifier(ClassifierMixin, BaseEstimator):
    """Binary chest X-ray classifier: a registered CNN trained with skorch.

    Parameters
    ----------
    architecture : str, default="resnet50"
        A name from :func:`cxrkit.list_architectures`.
    pretrained : None, "imagenet" or path, default=None
        Initial weights (see :func:`cxrkit.create_architecture`).
    head : {"hall2020", "fc"} or None, default=None
        Classification head; ``None`` keeps the architecture's default.
    freeze : {"none", "backbone", "all_but_last"}, default="none"
        Parameters kept fixed (batch-norm statistics of frozen layers too).
    input_size : int or None, default=None
        Side of the network input; ``None`` uses the architecture's
        (224 for torchvision backbones, 100 for ``hall2020_cnn``).
    interpolation : {"nearest", "bilinear", "bicubic"} or None, default=None
        Resampling to ``input_size``; ``None`` uses the architecture's.
    augment : None, str or torchvision.transforms.v2 pipeline, default=None
        Training-time augmentation, applied to each image every epoch: ``"hflip"``
        flips it horizontally with probability 1/2; ``"cxr_light"`` and
        ``"cxr_strong"`` (or any registered transform name) and any
        ``torchvision.transforms.v2`` pipeline (on a ``(1, S, S)`` tensor in
        ``[0, 1]``, after resizing) are seeded by ``random_state``
        (see :mod:`cxrkit.transforms._augment`). Only ``None`` and ``"hflip"``
        keep the frozen-backbone feature cache.
    transforms : sequence of callables or str, default=()
        Applied to each 2-D image in ``[0, 1]`` before resizing, at fit and
        predict time (registered transform names are looked up).
    optimizer : {"sgd", "rmsprop", "adam", "adamw"} or optimizer class, default="adam"
        Optimizer; its arguments route as ``optimizer__momentum=0.9``.
    lr : float, default=1e-3
        Learning rate (the starting point of a schedule).
    lr_schedule : {None, "cyclic", "cosine_restarts"}, default=None
        ``"cyclic"``: :class:`torch.optim.lr_scheduler.CyclicLR` stepped per batch
        (``lr_schedule__base_lr``, ``__max_lr``, ``__step_size_up``, ``__mode``);
        ``"cosine_restarts"``: cosine annealing restarted every
        ``lr_schedule__cycle_epochs`` epochs (Huang et al. 2017).
    batch_size : int, default=16
    max_epochs : int, default=10
    validation : None, float or int, default=None
        Hold out part of the training data (a fraction, or a number of images
        per class) to record ``valid_loss``/``valid_acc`` each epoch. The split is
        stratified and, when ``groups`` are passed to ``fit``, grouped by patient.
    device : str, default="auto"
        ``"auto"`` picks CUDA when available, else CPU.
    random_state : int or None, default=None
        Seeds weight initialisation, shuffling, augmentation and dropout.
    callbacks : list of skorch callbacks or None, default=None
        Extra callbacks (e.g. a snapshot callback).
    verbose : int, default=0
        skorch's per-epoch table when > 0.
    feature_cache : {"auto", True, False}, default="auto"
        Train only the head on cached backbone features when that is exact
        (frozen backbone, ``augment`` None or ``"hflip"``, deterministic
        transforms); otherwise a log line of ``cxrkit.feature_cache`` says why
        not (INFO for ``"auto"``, WARNING for ``True``). Prediction looks the
        features up too (images seen in training are not passed through the
        backbone again). See :func:`cxrkit.estimators.feature_cache_stats`.
    cache_dir : path or None, default=None
        Also keep cached features as ``.npy`` files there, shared by processes
        (default: the environment variable ``CXRKIT_CACHE_DIR``, if set; without
        either, worker processes of ``n_jobs > 1`` share a temporary folder that
        the main process removes at exit).
    amp : {None, "bf16", "fp16"}, default=None
        Mixed-precision autocast for prediction on CUDA (ignored on CPU).

    Switches that change speed but not results (channels-last memory format,
    the grayscale first convolution, allocator tuning, decoding threads,
    prediction batch size) are not parameters: they are read from
    :func:`cxrkit.get_config` when ``fit`` and prediction run (see
    :func:`cxrkit.set_config`).
    tta : {None, "hflip"}, default=None
        Test-time augmentation: ``"hflip"`` averages the probabilities of each
        image and of its mirror image (prediction reads both through the
        feature cache).
    **kwargs
        Routed parameters with the prefixes ``optimizer__``, ``module__``
        (architecture factory), ``lr_schedule__``, ``iterator_train__``,
        ``iterator_valid__``, ``callbacks__`` and ``criterion__``.

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
        The two labels; ``predict_proba`` columns follow this order and the
        network's logit is the score of ``classes_[1]``.
    net_ : skorch.NeuralNet
        The trained skorch wrapper; ``net_.module_`` is the :class:`CXRNet`.
    history_ : skorch.History
        Per-epoch records: ``train_loss``, ``train_acc``, ``lr`` and, with
        validation, ``valid_loss`` and ``valid_acc``.
    preprocessing_ : Preprocessing
        Input size, interpolation and normalisation actually used.
    device_ : str
        The device training ran on.
    n_features_in_ : int
        Only for 2-D array input: the row width seen in ``fit``.
    interrupted_ : str or None
        ``None`` after a complete ``fit``; otherwise why it did not finish
        (e.g. ``"Ctrl-C after 12 of 100 epochs"``). ``predict`` and
        :func:`cxrkit.save_model` refuse an interrupted estimator.

    Examples
    --------
    >>> import numpy as np
    >>> from cxrkit import CXRClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.integers(0, 255, (20, 16, 16), dtype=np.uint8)
    >>> y = np.array(["covid", "pneumonia"] * 10)
    >>> clf = CXRClassifier("tiny_cnn", input_size=16, max_epochs=1, random_state=0)
    >>> clf.fit(X, y).predict_proba(X).shape
    (20, 2)
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "architecture": [str],
        "pretrained": [None, str, os.PathLike],
        "head": [None, str],
        "freeze": [StrOptions({"none", "backbone", "all_but_last"})],
        "input_size": [None, Interval(Integral, 1, None, closed="left")],
        "interpolation": [None, StrOptions(set(INTERPOLATIONS))],
        "augment": [None, str, callable],
        "transforms": [list, tuple],
        "optimizer": [StrOptions(set(_OPTIMIZERS)), type],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "lr_schedule": [None, StrOptions({"cyclic", "cosine_restarts"})],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "validation": [
            None,
            Interval(RealNotInt, 0, 1, closed="left"),
            Interval(Integral, 0, None, closed="left"),
        ],
        "device": [str, torch.device],
        "random_state": [None, Interval(Integral, None, None, closed="neither")],
        "callbacks": [None, list],
        "verbose": ["verbose"],
        "feature_cache": [StrOptions({"auto"}), "boolean"],
        "cache_dir": [None, str, os.PathLike],
        "amp": [None, StrOptions({"bf16", "fp16"})],
        "tta": [None, StrOptions({"hflip"})],
    }

    def __init__(
        self,
        architecture: str = "resnet50",
        *,
        pretrained: str | None = None,
        head: str | None = None,
        freeze: str = "none",
        input_size: int | None = None,
        interpolation: str | None = None,
        augment: str | None = None,
        transforms: Sequence[Callable[[np.ndarray], np.ndarray] | str] = (),
        optimizer: str | type[torch.optim.Optimizer] = "adam",
        lr: float = 1e-3,
        lr_schedule: str | None = None,
        batch_size: int = 16,
        max_epochs: int = 10,
        validation: float | int | None = None,
        device: str = "auto",
        random_state: int | None = None,
        callbacks: list[Callback] | None = None,
        verbose: int = 0,
        feature_cache: bool | str = "auto",
        cache_dir: str | None = None,
        amp: str | None = None,
        tta: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.architecture = architecture
        self.pretrained = pretrained
        self.head = head
        self.freeze = freeze
        self.input_size = input_size
        self.interpolation = interpolation
        self.augment = augment
        self.transforms = transforms
        self.optimizer = optimizer
        self.lr = lr
        self.lr_schedule = lr_schedule
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.validation = validation
        self.device = device
        self.random_state = random_state
        self.callbacks = callbacks
        self.verbose = verbose
        self.feature_cache = feature_cache
        self.cache_dir = cache_dir
        self.amp = amp
        self.tta = tta
        self.__dict__.update(kwargs)  # routed parameters; validated in fit

    # -- scikit-learn parameter protocol ------------------------------------
    def _routed(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k.startswith(ROUTED_PREFIXES)}

    def _unknown_kwargs(self) -> list[str]:
        known = set(self._get_param_names())
        return [
            k
            for k in vars(self)
            if not k.endswith("_")
            and not k.startswith("_")
            and k not in known
            and not k.startswith(ROUTED_PREFIXES)
        ]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        params = super().get_params(deep=deep)
        params.update(self._routed())
        return params

    def set_params(self, **params: Any) -> CXRClassifier:
        routed = {k: v for k, v in params.items() if k.startswith(ROUTED_PREFIXES)}
        for k, v in routed.items():
            setattr(self, k, v)
        rest = {k: v for k, v in params.items() if k not in routed}
        if rest:
            super().set_params(**rest)
        return self

    def _prefixed(self, prefix: str) -> dict[str, Any]:
        return {k[len(prefix) :]: v for k, v in self._routed().items() if k.startswith(prefix)}

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        tags.non_deterministic = False
        return tags

    def __getstate__(self) -> dict[str, Any]:
        # Worker processes that receive this estimator share cached features in the
        # session folder of the process that sent it (see cxrkit.estimators._cache._session).
        state = dict(super().__getstate__())
        state["_feature_session"] = session_for_workers()
        state["_cxrkit_format"] = FORMAT
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        join_session(state.pop("_feature_session", None))
        fmt = state.pop("_cxrkit_format", None)
        if fmt is None or fmt < FORMAT:
            state = self._upgrade_state(state)
        elif fmt > FORMAT:
            raise ModelFormatError(
                f"This pickled {type(self).__name__} has format {fmt}; this cxrkit reads "
                f"formats up to {FORMAT}. Upgrade cxrkit, or save the model with "
                "cxrkit.save_model in the version that trained it and load that folder."
            )
        super().__setstate__(state)

    @classmethod
    def _upgrade_state(cls, state: dict[str, Any]) -> dict[str, Any]:
        """Bring the state of a pickle written before format 3 up to date.

        Parameters added since get their defaults; the speed switches that became
        :func:`cxrkit.set_config` keys are dropped.
        """
        defaults = {
            name: p.default
            for name, p in inspect.signature(CXRClassifier.__init__).parameters.items()
            if p.default is not inspect.Parameter.empty
        }
        state = {k: v for k, v in state.items() if k not in MOVED_TO_CONFIG}
        return {**{k: v for k, v in defaults.items() if k not in state}, **state}

    @classmethod
    def from_recipe(
        cls, recipe: str, architecture: str | None = None, **overrides: Any
    ) -> CXRClassifier:
        """A classifier configured as in one of the papers.

        ``"hall2020"`` (Hall, Paul, Goldgof & Goldgof 2020): head GAP -> dense 64
        -> ReLU -> dropout 0.5 -> one logit; convolutional layers frozen with their
        batch-norm statistics (``hall2020_cnn`` is trained whole); RMSprop
        (rho 0.9, eps 1e-8) on binary cross-entropy; triangular cyclic learning rate
        1e-4..1e-3 stepped every batch, step size 15 batches; horizontal flips;
        batch 16; 100 epochs (the snapshot ensemble decides the epochs it keeps).
        Default architecture ``resnet50``.

        ``"opacity2020"`` (ResNet-101 airspace-opacity study, 2020): a new fully
        connected layer with two-class softmax, everything else frozen
        (``all_but_last``); SGD with momentum 0.9; mini-batch 10; 8 epochs; learning
        rate 1e-4; shuffled every epoch. Default architecture ``resnet101``.

        Any parameter can be overridden by keyword.
        """
        default_arch = {"hall2020": "resnet50", "opacity2020": "resnet101"}.get(recipe, "resnet50")
        arch = architecture or default_arch
        params = recipe_params(recipe, arch)
        # Overriding the optimizer or the schedule drops the recipe's options for it.
        for key, prefix in (("optimizer", "optimizer__"), ("lr_schedule", "lr_schedule__")):
            if key in overrides and overrides[key] != params.get(key):
                params = {k: v for k, v in params.items() if not k.startswith(prefix)}
        params.update(overrides)
        return cls(arch, **params)

    @classmethod
    def from_module(
        cls,
        module: CXRNet,
        classes: Any,
        *,
        preprocessing: Preprocessing | None = None,
        **params: Any,
    ) -> CXRClassifier:
        """A fitted classifier around an already-trained network.

        ``classes`` are the two labels; the network's logit scores ``classes[1]``.
        """
        est = cls(params.pop("architecture", module.arch_name or "custom"), **params)
        classes = np.asarray(classes)
        if len(classes) != 2 or len(np.unique(classes)) != 2:
            raise DataError(f"from_module needs two distinct classes; got {list(classes)}.")
        est._label_encoder = LabelEncoder().fit(classes)
        est.classes_ = classes
        est.device_ = resolve_device(est.device)
        est.preprocessing_ = preprocessing or module.preprocessing
        est.net_ = est._make_net(module, None)
        est.net_.initialize()
        est.interrupted_ = None
        module.eval()
        return est

    # -- validation of parameters -------------------------------------------
    def _check_params(self) -> None:
        """Validate the parameters (once, at the start of ``fit``)."""
        unknown = self._unknown_kwargs()
        if unknown:
            raise ConfigurationError(
                f"{type(self).__name__} got unexpected parameter(s) {unknown}. Routed parameters "
                f"must start with one of {', '.join(ROUTED_PREFIXES)}."
            )
        validate_params(self)
        resolve_augment(self.augment, self.random_state)  # registered names, owner named

    def _transform_callables(self) -> list[Callable[[np.ndarray], np.ndarray]]:
        from ..transforms import resolve_transforms

        return resolve_transforms(self.transforms, type(self).__name__)

    def _make_preprocessing(self, module: CXRNet | None = None) -> Preprocessing:
        # The built network's own (it may depend on module__ options such as in_chans).
        base = getattr(module, "preprocessing", None) or get_preprocessing(self.architecture)
        changes: dict[str, Any] = {}
        if self.input_size is not None:
            changes["input_size"] = int(self.input_size)
        if self.interpolation is not None:
            changes["interpolation"] = self.interpolation
        return Preprocessing(**{**base.to_dict(), **changes})

    def build_module(self) -> CXRNet:
        """Create the (untrained) network this estimator trains."""
        return create_architecture(
            self.architecture,
            pretrained=self.pretrained,
            head=self.head,
            freeze=self.freeze,
            **self._prefixed("module__"),
        )

    def _lr_callbacks(self) -> list[tuple[str, Callback]]:
        opts = self._prefixed("lr_schedule__")
        if self.lr_schedule == "cyclic":
            kw = {
                "base_lr": self.lr,
                "max_lr": self.lr * 10,
                "step_size_up": 15,
                "mode": "triangular",
                "cycle_momentum": False,
            }
            kw.update(opts)
            return [
                (
                    "lr_schedule",
                    LRScheduler(policy=torch.optim.lr_scheduler.CyclicLR, step_every="batch", **kw),
                )
            ]
        if self.lr_schedule == "cosine_restarts":
            return [("lr_schedule", CosineRestarts(**{"cycle_epochs": self.max_epochs, **opts}))]
        return []

    # -- data ------------------------------------------------------------------
    def _encode_y(self, y: Any, n: int) -> np.ndarray:
        if y is None:
            raise DataError("CXRClassifier requires y to be passed, but the target y is None.")
        y = np.asarray(y)
        if y.ndim != 1:
            if y.ndim == 2 and y.shape[1] == 1:
                y = y.ravel()
            else:
                raise DataError(
                    f"y should be a 1d array (one label per image); got shape {y.shape}."
                )
        if len(y) != n:
            raise DataError(f"X has {n} images but y has {len(y)} labels; they must match.")
        if y.dtype.kind == "f" and np.isnan(y).any():
            raise DataError(
                f"y contains {int(np.isnan(y).sum())} NaN label(s); remove those images."
            )
        if y.dtype == object and any(
            v is None or (isinstance(v, float) and np.isnan(v)) for v in y
        ):
            raise DataError("y contains missing labels (None/NaN); remove those images.")
        self._label_encoder = LabelEncoder().fit(y)
        classes = self._label_encoder.classes_
        if len(classes) != 2:
            shown = [c.item() if hasattr(c, "item") else c for c in classes[:10]]
            kind = "multiclass" if len(classes) > 2 else "a single class"
            raise DataError(
                f"Only binary classification is supported. The type of the target is {kind}: "
                f"CXRClassifier needs exactly two classes in y; got {len(classes)} class(es): "
                f"{shown}. Select two labels (e.g. covid vs pneumonia) or train one classifier "
                "per class."
            )
        self.classes_ = classes
        return self._label_encoder.transform(y).astype(np.float32)

    def _validation_split(self, y: np.ndarray, groups: Any) -> tuple[np.ndarray, np.ndarray]:
        from ..validity.splits import holdout_split

        return holdout_split(y, groups, self.validation or 0, random_state=self.random_state)

    # -- fit ---------------------------------------------------------------------
    def fit(self, X: Any, y: Any, groups: Any = None, **fit_params: Any) -> CXRClassifier:
        """Train the network.

        Parameters
        ----------
        X : sequence of paths, or array of shape (n, H, W) or (n, W)
        y : array-like of shape (n,)
            Two distinct labels of any type.
        groups : array-like of shape (n,), optional
            Patient ids; the internal validation split never separates a patient.
        **fit_params
            Passed to :meth:`skorch.NeuralNet.fit`.

        Raises
        ------
        KeyboardInterrupt
            On Ctrl-C (``SIGINT``) during training, which skorch would otherwise
            treat as the end of training; the estimator is then marked in
            ``interrupted_``. Callbacks that end training early (``EarlyStopping``,
            snapshots) still do so by raising ``KeyboardInterrupt`` themselves.
        """
        self._check_params()
        self.interrupted_: str | None = "fit did not finish"
        with watch_sigint() as sigint:
            try:
                self._fit(X, y, groups, fit_params)
            except KeyboardInterrupt:
                self.interrupted_ = f"Ctrl-C {self._epochs_done()}"
                raise
            except BaseException as exc:
                self.interrupted_ = f"fit raised {type(exc).__name__}"
                raise
        if sigint.seen:  # skorch's partial_fit swallowed the KeyboardInterrupt
            self.interrupted_ = f"Ctrl-C {self._epochs_done()}"
            raise KeyboardInterrupt(f"CXRClassifier.fit interrupted {self._epochs_done()}")
        self.interrupted_ = None
        return self

    def _epochs_done(self) -> str:
        net = self.__dict__.get("net_")
        done = len(net.history) if net is not None and net.initialized_ else 0
        return f"after {done} of {self.max_epochs} epochs"

    def _fit(self, X: Any, y: Any, groups: Any, fit_params: dict[str, Any]) -> None:
        src = as_image_source(X)
        yy = self._encode_y(y, len(src))
        if groups is not None and len(groups) != len(src):
            raise DataError(f"groups has {len(groups)} entries but X has {len(src)} images.")
        self.device_ = resolve_device(self.device)
        with retain_freed_memory(self._tune_malloc()):
            if self.random_state is not None:
                torch.manual_seed(int(self.random_state))
            module = self.build_module()
            gray, channels_last = self._training_formats(module)
            if gray:
                module = cast(CXRNet, grayscale_first_conv(module, inplace=True))
            if channels_last:
                module = module.to(memory_format=torch.channels_last)
            self.preprocessing_ = self._make_preprocessing(module)
            if src.array is not None and src.array.ndim == 2:
                self.n_features_in_ = int(src.array.shape[1])
            images = prepare_images(src, self.preprocessing_, self._transform_callables())
            make_ds = self._dataset_factory(module, images)
            train_ds: Any
            if self.validation:
                tr, va = self._validation_split(yy, groups)
                train_ds = make_ds(tr, yy[tr], self.augment is not None)
                valid_ds = make_ds(va, yy[va], False)
                train_split: Any = predefined_split(valid_ds)
                self.validation_indices_ = va
            else:
                train_ds = make_ds(slice(None), yy, self.augment is not None)
                train_split = None
            self.net_ = self._make_net(module, train_split)
            self.net_.channels_last_input = channels_last
            self.net_.fit(train_ds, None, **fit_params)
            # The held-out images are not part of the model; keeping them would ship them with
            # every pickled copy (joblib/Dask workers return fitted models).
            self.net_.train_split = None

    def _tune_malloc(self) -> bool:
        """Whether ``fit`` and prediction keep freed buffers in the heap (config ``tune_malloc``)."""
        asked = get_config()["tune_malloc"]
        tune = str(self.device_) == "cpu" if asked == "auto" else bool(asked)
        if tune and not glibc_malloc_available():
            logger.log(
                logging.WARNING if asked is True else logging.DEBUG,
                "tune_malloc: the C library is not glibc; the allocator is left as it is.",
            )
            return False
        return tune

    def _training_formats(self, module: nn.Module) -> tuple[bool, bool]:
        """``(grayscale first conv, channels-last)`` for training ``module``."""
        config = get_config()
        trained_whole = self.freeze == "none"
        gray = config["grayscale_conv"]
        if gray == "auto":
            gray = trained_whole and bool(getattr(module, "first_conv_reads_input", False))
        channels_last = config["channels_last"] is True or (
            config["channels_last"] == "auto" and trained_whole
        )
        return bool(gray), channels_last

    def _predict_batch_size(self) -> int:
        """Images per prediction batch: config ``predict_batch_size``, else ``batch_size`` (>= 32)."""
        return int(get_config()["predict_batch_size"] or max(int(self.batch_size), 32))

    def _dataset_factory(self, module: CXRNet, images: np.ndarray) -> Callable[..., Any]:
        """``(index, y, hflip) -> dataset`` of images, or of cached features when exact."""
        views = self._cached_views(module, self.augment, training=True)
        if views is None:
            prep = self.preprocessing_
            aug = resolve_augment(self.augment, self.random_state)
            if aug not in (None, "hflip"):  # a random augmentation, per image and epoch
                return lambda idx, y, train: (
                    AugmentedImageDataset(images[idx], y, prep, aug)
                    if train
                    else ImageTensorDataset(images[idx], y, prep)
                )
            return lambda idx, y, hflip: ImageTensorDataset(images[idx], y, prep, hflip=hflip)
        cache = get_feature_cache()
        feats = cache.features(
            module,
            images,
            self.preprocessing_,
            views=views,
            device=self.device_,
            cache_dir=self.cache_dir,
            batch_size=self._predict_batch_size(),
            channels_last=_predict_channels_last(),
        )
        logging.getLogger("cxrkit.feature_cache").info(
            "Feature cache used: %d images x %d view(s); %s.",
            len(images),
            len(views),
            cache.stats(),
        )
        flipped = feats.get("hflip")
        return lambda idx, y, hflip: FeatureDataset(
            feats["orig"][idx], y, None if flipped is None else flipped[idx], hflip=hflip
        )

    def _cached_views(
        self, module: nn.Module, augment: Any, training: bool = False
    ) -> tuple[str, ...] | None:
        """The views of cached features that training with ``augment`` (or prediction,
        ``None``) reads, or ``None`` when ``feature_cache`` is off or they would not be exact
        (in training with a log line of ``cxrkit.feature_cache`` that says why).
        """
        switch = self.feature_cache
        if switch is False:
            return None
        reason = feature_cache_reason(module, augment, self._transform_callables())
        if reason is not None:
            if training:
                logging.getLogger("cxrkit.feature_cache").log(
                    logging.WARNING if switch is True else logging.INFO,
                    "Feature cache not used: %s.",
                    reason,
                )
            return None
        return ("orig", "hflip") if augment == "hflip" else ("orig",)

    def _make_net(self, module: nn.Module, train_split: Any) -> NeuralNet:
        opt = self.optimizer
        opt_cls = _OPTIMIZERS[opt.lower()] if isinstance(opt, str) else opt
        callbacks: list[Any] = [("accuracy", EpochAccuracy()), ("finite_loss", FiniteLoss())]
        callbacks += self._lr_callbacks()
        callbacks += list(self.callbacks or [])
        extra = {
            k: v
            for k, v in self._routed().items()
            if k.startswith(
                (
                    "optimizer__",
                    "iterator_train__",
                    "iterator_valid__",
                    "callbacks__",
                    "criterion__",
                )
            )
        }
        extra.setdefault("iterator_train__shuffle", True)
        net = self._build_net(
            module=module,
            criterion=nn.BCEWithLogitsLoss,
            optimizer=opt_cls,
            lr=self.lr,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            train_split=train_split,
            callbacks=callbacks,
            device=self.device_,
            verbose=self.verbose,
            **extra,
        )
        # skorch re-initialises an instantiated module only if asked; keep ours.
        return net

    def _build_net(self, **kwargs: Any) -> NeuralNet:
        """Instantiate the skorch net from ``_make_net``'s arguments (a subclass
        may use another net class, e.g. for Accelerate).
        """
        return FeatureAwareNet(**kwargs)

    @property
    def module_(self) -> CXRNet:
        """The trained :class:`CXRNet`."""
        check_is_fitted(self, "net_")
        return self.net_.module_

    @property
    def history_(self) -> Any:
        check_is_fitted(self, "net_")
        return self.net_.history

    # -- prediction --------------------------------------------------------------
    def check_predict_input(self, X: Any) -> ImageSource:
        """Check that the estimator is fitted and ``X`` fits it; return ``X`` as an image source."""
        check_is_fitted(self, "net_")
        refuse_interrupted(self, "predict")
        src = as_image_source(X)
        if hasattr(self, "n_features_in_"):
            if src.array is None or src.array.ndim != 2:
                raise DataError("This CXRClassifier was fitted on 2-D arrays; pass a 2-D array.")
            if src.array.shape[1] != self.n_features_in_:
                raise ValueError(
                    f"X has {src.array.shape[1]} features, but CXRClassifier is expecting "
                    f"{self.n_features_in_} features as input."
                )
        return src

    def iter_prepared(self, src: ImageSource, batch_size: int | None = None):  # type: ignore[no-untyped-def]
        """Yield lists of prepared images (decoded, transformed, resized; float32
        2-D arrays); with files, decoding of the next batches overlaps compute.
        """
        yield from iter_prepared(
            src,
            self.preprocessing_,
            self._transform_callables(),
            batch_size or self._predict_batch_size(),
        )

    def iter_batches(self, src: ImageSource, batch_size: int | None = None):  # type: ignore[no-untyped-def]
        """Yield normalised input batches; decoding of the next batch overlaps compute."""
        prep = self.preprocessing_
        for images in self.iter_prepared(src, batch_size):
            yield torch.stack([to_tensor(img, prep, False) for img in images])

    def iter_cached_features(self, src: ImageSource, batch_size: int | None = None):  # type: ignore[no-untyped-def]
        """Yield batches of pooled backbone features from the feature cache, or
        return ``None`` when cached features would not be exact (the backbone is
        trainable, a transform is random, or ``feature_cache=False``).

        Images seen in training (or in an earlier prediction) with the same
        backbone weights and preprocessing are not passed through the backbone
        again: a fold's held-out images were training images of earlier folds.
        """
        module = self.module_
        if self._cached_views(module, None) is None:
            return None
        cache = get_feature_cache()
        cache_dir = self.cache_dir
        prep = self.preprocessing_
        channels_last = _predict_channels_last()

        def batches():  # type: ignore[no-untyped-def]
            for images in self.iter_prepared(src, batch_size):
                feats = cache.features(
                    module,
                    np.stack(images),
                    prep,
                    views=("orig",),
                    device=self.device_,
                    cache_dir=cache_dir,
                    batch_size=len(images),
                    channels_last=channels_last,
                )
                yield torch.from_numpy(feats["orig"])

        return batches()

    def decision_function(self, X: Any) -> np.ndarray:
        """The network's logit for ``classes_[1]``, shape ``(n,)``; with ``tta="hflip"``
        the logit of the probability averaged over the image and its mirror image.
        """
        src = self.check_predict_input(X)
        logits = self._logits(src)
        if self.tta == "hflip":
            logits = _logit_of_mean_probability(logits, self._logits(FlippedSource(src)))
        return logits

    def _logits(self, src: ImageSource) -> np.ndarray:
        module = self.module_
        was_training = module.training
        module.eval()
        channels_last = _predict_channels_last()
        trim_every = get_config()["trim_every"]
        if channels_last:
            module.to(memory_format=torch.channels_last)
        outs = []
        cached = self.iter_cached_features(src)
        try:
            with torch.inference_mode(), self._autocast(), retain_freed_memory(self._tune_malloc()):
                for feats in cached or ():
                    outs.append(module.forward_head(feats.to(self.device_)).float().cpu())
                for k, xb in enumerate(self.iter_batches(src) if cached is None else ()):
                    if k % trim_every == trim_every - 1:
                        release_free_memory()
                    xb = xb.to(self.device_, non_blocking=True)
                    if channels_last:
                        xb = xb.contiguous(memory_format=torch.channels_last)
                    outs.append(module(xb).float().cpu())
        finally:
            module.train(was_training)
        return torch.cat(outs).numpy().astype(np.float64)

    def _autocast(self) -> Any:
        if self.amp is None or not str(self.device_).startswith("cuda"):
            return contextlib.nullcontext()
        dtypes = {"bf16": torch.bfloat16, "fp16": torch.float16}
        return torch.autocast("cuda", dtype=dtypes[self.amp])

    def predict_proba(self, X: Any) -> np.ndarray:
        """Probabilities of shape ``(n, 2)``, columns in ``classes_`` order."""
        p1 = expit(self.decision_function(X))  # no overflow warning for large logits
        return np.column_stack([1.0 - p1, p1])

    def predict(self, X: Any) -> np.ndarray:
        """The label with the larger probability (threshold 0.5)."""
        proba = self.predict_proba(X)
        return self.classes_[(proba[:, 1] >= 0.5).astype(int)]
