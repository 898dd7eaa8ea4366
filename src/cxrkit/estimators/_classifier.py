"""CXRClassifier: a skorch-trained CNN behind the scikit-learn API.

The class is assembled from one module per step: parameters and ``fit`` here,
training in :mod:`._training`, prediction in :mod:`._predict`, the target (labels,
loss, probabilities) in :mod:`._targets` and the pickled state in :mod:`._state`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from numbers import Integral, Real
from typing import Any, ClassVar, cast

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils._param_validation import Interval, RealNotInt, StrOptions
from skorch.callbacks import Callback
from skorch.helper import predefined_split

from .._memory import (
    retain_freed_memory,
)
from ..architectures import (
    CXRNet,
    grayscale_first_conv,
)
from ..errors import ConfigurationError, DataError
from ..io import INTERPOLATIONS
from ..transforms import resolve_augment
from ._constructors import ConstructorsMixin
from ._data import (
    as_image_source,
    prepare_images,
)
from ._interrupt import watch_sigint
from ._params import validate_params
from ._predict import PredictionMixin
from ._state import VersionedStateMixin
from ._targets import UNCERTAIN, infer_target
from ._training import _OPTIMIZERS, ROUTED_PREFIXES, TrainingMixin, resolve_device

__all__ = ["CXRClassifier", "resolve_device", "ROUTED_PREFIXES"]
logger = logging.getLogger("cxrkit.estimators")


class CXRClassifier(
    VersionedStateMixin,
    ConstructorsMixin,
    PredictionMixin,
    TrainingMixin,
    ClassifierMixin,
    BaseEstimator,
):
    """Chest X-ray classifier: a registered CNN trained with skorch.

    Binary, multi-class and multi-label: the task follows ``y`` as
    :func:`sklearn.utils.multiclass.type_of_target` reads it. A 1-D ``y`` with
    two labels is binary (one logit scoring ``classes_[1]``, binary
    cross-entropy); with more labels it is multi-class (one logit per class,
    softmax cross-entropy). A 2-D ``(n, k)`` indicator array or a
    :class:`pandas.DataFrame` with one column per finding is multi-label (one
    logit per finding, binary cross-entropy over the observed labels: NaN, a
    missing label, is masked out of the loss; -1, uncertain, follows
    ``uncertain``).

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
    uncertain : {"ignore", "ones", "zeros"}, default="ignore"
        Multi-label only: what an uncertain label (-1) means. ``"ignore"`` masks
        it out of the loss like a missing one; ``"ones"`` and ``"zeros"`` read it
        as positive or negative (U-Ones and U-Zeros, Irvin et al. 2019).
    class_weight : None, "balanced" or dict, default=None
        Loss weights. Multi-class: a weight per class (``"balanced"``:
        ``n / (k * n_class)``, as scikit-learn). Binary and multi-label: the
        positive weight of the binary cross-entropy (``"balanced"``:
        ``n_negative / n_positive`` per finding; a multi-label dict maps each
        finding to its positive weight, a binary one maps both labels to a
        weight and the ratio is used).
    threshold : None, float or sequence of float, default=None
        Probability at or above which ``predict`` says positive: of
        ``classes_[1]`` (binary) or of each finding (multi-label; one number or
        one per finding). ``None``: 0.5. Multi-class ``predict`` takes the most
        probable class.
    **kwargs
        Routed parameters with the prefixes ``optimizer__``, ``module__``
        (architecture factory), ``lr_schedule__``, ``iterator_train__``,
        ``iterator_valid__``, ``callbacks__`` and ``criterion__``.

    Attributes
    ----------
    classes_ : ndarray
        Binary and multi-class: the labels, in the order of the ``predict_proba``
        columns (binary: the network's logit scores ``classes_[1]``).
        Multi-label: ``arange(k)``, as :class:`~sklearn.neural_network.MLPClassifier`.
    task_ : {"binary", "multiclass", "multilabel-indicator"}
        The kind of target ``fit`` saw.
    labels_ : list of str
        The class labels as text, or the finding names (multi-label: the
        DataFrame's columns, else ``finding_0`` ...).
    n_outputs_ : int
        ``k`` for multi-label, else 1.
    target_ : Target
        The target step (loss, probabilities, labels) of the fitted task.
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
        "uncertain": [StrOptions(set(UNCERTAIN))],
        "class_weight": [None, StrOptions({"balanced"}), dict],
        "threshold": [None, Interval(Real, 0, 1, closed="both"), list, tuple, np.ndarray],
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
        uncertain: str = "ignore",
        class_weight: str | dict[Any, float] | None = None,
        threshold: float | Sequence[float] | None = None,
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
        self.uncertain = uncertain
        self.class_weight = class_weight
        self.threshold = threshold
        self.__dict__.update(kwargs)  # routed parameters; validated in fit

    # -- scikit-learn parameter protocol ------------------------------------
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

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = True
        tags.classifier_tags.multi_label = True
        tags.non_deterministic = False
        return tags

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
        target, yy = infer_target(
            y, len(src), uncertain=self.uncertain, class_weight=self.class_weight
        )
        self._set_target(target)
        if groups is not None and len(groups) != len(src):
            raise DataError(f"groups has {len(groups)} entries but X has {len(src)} images.")
        self.device_ = resolve_device(self.device)
        with retain_freed_memory(self._tune_malloc()):
            if self.random_state is not None:
                torch.manual_seed(int(self.random_state))
            module = self.build_module(target.n_logits)
            gray, channels_last = self._training_formats(module)
            if gray:
                module = cast(CXRNet, grayscale_first_conv(module, inplace=True))
            if channels_last:
                module = module.to(memory_format=torch.channels_last)
            self.preprocessing_ = self._make_preprocessing(module)
            module.check_input_size(self.preprocessing_.input_size)
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
