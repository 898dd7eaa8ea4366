"""The small CNN of Hall, Paul, Goldgof and Goldgof (2020)."""

from __future__ import annotations

import torch
from torch import nn

from .._memory import freed_memory_retained
from ._base import CXRNet, Preprocessing
from ._conv_pool import max_pooled_conv2d
from ._grayscale import GrayscaleConv2d
from ._weights import load_pretrained_file

__all__ = ["Hall2020Features", "build_hall2020_cnn", "HALL2020_PREPROCESSING"]

#: The authors' preprocessing: 100x100 nearest-neighbour, values / 255, gray x3.
HALL2020_PREPROCESSING = Preprocessing(
    input_size=100, interpolation="nearest", mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0)
)


class Hall2020Features(nn.Module):
    """The convolutional part of the small CNN, up to the flatten layer.

    Layer names follow the authors' Keras model (``conv1``, ``conv2``, ``conv4``)
    so their weight files map by name::

        input 100x100x3
        a: conv1 5x5x64 -> LeakyReLU(0.01) -> maxpool 3 -> conv2 2x2x64
           -> LeakyReLU(0.01) -> maxpool 3 -> dropout 0.1           (64 x 10 x 10)
        b: LeakyReLU(0.01)(input) -> maxpool 10 -> dropout 0.1      (3 x 10 x 10)
        concat [b, a] (67 channels) -> conv4 2x2x64 ReLU -> maxpool 3 (64 x 3 x 3)
        flatten in Keras channels-last order -> 576

    The forward pass computes exactly this function, in a cheaper order:

    * **pool before activation.** LeakyReLU and ReLU are monotonic, so
      ``maxpool(act(z)) == act(maxpool(z))`` and the gradients agree too (the
      maximum sits at the same place). Activating the pooled map touches 9x
      (100x for branch b) fewer values, forward and backward.
    * **no unused border.** The last pooling of branch a floors 31 -> 10 rows, so
      conv2's last output row/column, and with it the input's last three rows and
      columns, never reach the output: conv1 runs on the 97 x 97 input corner
      that matters (93 x 93 instead of 96 x 96 outputs). Branch b still pools the
      whole 100 x 100 input.

    * **the first stage in cache-sized chunks.** conv1's output is by far the
      largest tensor (64 x 93 x 93 floats, 2.2 MB per image; 35 MB for a batch
      of 16). Pooling it, zero-filling its gradient and conv1's weight gradient
      each stream it through memory, and glibc serves a buffer that large with a
      fresh ``mmap`` that every step page-faults in again (unless freed memory is
      retained: :func:`cxrkit._memory.retain_freed_memory`, ``tune_malloc``).
      conv1 -> pool -> activation therefore runs on chunks of at most
      ``chunk_bytes`` of conv1 output (8 MiB, four images), which come from the
      heap and stay in cache. Measured (B4, paired runs): ``CXRClassifier.fit``
      1.17x faster with ``tune_malloc`` on, a training step 1.6x without it,
      inference ~2x without it; inference with the heap tuning active was
      0.95x, so ``chunk_bytes="auto"`` (the default) chunks except in
      inference (no autograd) inside :func:`~cxrkit._memory.retain_freed_memory`.
      Per image the arithmetic is the same; conv1's weight gradient is summed
      chunk by chunk (float rounding, ~1e-6 of its scale). An int always chunks
      at that size; ``None`` never does.

    * **sparse gradients through the pooling.** Each convolution is followed by
      a non-overlapping 3x3 max-pool, which passes a gradient to one of every
      nine convolution outputs. In training (a parameter needs a gradient),
      conv -> pool runs through
      :func:`~cxrkit.architectures._conv_pool.max_pooled_conv2d`: only the
      pooled map and the maxima's positions are kept, and the weight, bias and
      input gradients are summed over those positions (compiled loops)
      instead of zero-filling a gradient map the size of the convolution
      output (35 MB for conv1 at batch 16), scattering into it and running
      dense convolution gradients over it. Same forward result, gradients
      within float rounding; a training step 1.7x faster at one thread.
      ``sparse_backward=False`` turns it off.

    ``tests/architectures`` checks outputs and gradients against the literal
    layer order within 1e-5. Together these make a training step about 1.3x
    faster on CPU (``benchmarks/b4_hall2020_training.py``).
    """

    #: Largest conv1 output (bytes) computed at once when chunking; see the class docstring.
    DEFAULT_CHUNK_BYTES = 8 << 20

    def __init__(
        self,
        in_channels: int = 3,
        chunk_bytes: int | str | None = "auto",
        sparse_backward: bool = True,
    ) -> None:
        super().__init__()
        self.chunk_bytes = chunk_bytes
        self.sparse_backward = sparse_backward
        self.conv1 = nn.Conv2d(in_channels, 64, 5)
        self.conv2 = nn.Conv2d(64, 64, 2)
        self.conv4 = nn.Conv2d(64 + in_channels, 64, 2)
        self.act = nn.LeakyReLU(0.01)
        self.pool3 = nn.MaxPool2d(3)
        self.pool10 = nn.MaxPool2d(10)
        self.drop_a = nn.Dropout(0.1)
        self.drop_b = nn.Dropout(0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h_in, w_in = x.shape[-2:]
        # Rows/columns of the input that reach the output through branch a (see above).
        used_h, used_w = _used_extent(h_in), _used_extent(w_in)
        a = x[..., :used_h, :used_w] if (used_h, used_w) != (h_in, w_in) else x
        a = self._first_stage(a)
        a = self.drop_a(self.act(self._conv_pool3(self.conv2, a)))
        b = self.drop_b(self.act(self.pool10(x)))
        h = torch.cat([b, a], dim=1)
        h = torch.relu(self._conv_pool3(self.conv4, h))
        # Keras flattens channels-last: (N, H, W, C) -> (N, H*W*C).
        return h.permute(0, 2, 3, 1).flatten(1)

    def _first_stage(self, a: torch.Tensor) -> torch.Tensor:
        """conv1 -> pool 3 -> activation, in chunks of at most ``chunk_bytes`` of conv1 output."""
        if _exporting():  # a traced graph must not bake in the dummy batch's chunk sizes
            return self.act(self.pool3(self.conv1(a)))
        k = self.conv1.kernel_size
        per_image = (
            self.conv1.out_channels
            * max(1, a.shape[-2] - k[0] + 1)
            * max(1, a.shape[-1] - k[1] + 1)
            * a.element_size()
        )
        limit = getattr(self, "chunk_bytes", "auto")  # models pickled before it existed
        if limit == "auto":
            inference_tuned = freed_memory_retained() and not torch.is_grad_enabled()
            limit = None if inference_tuned else self.DEFAULT_CHUNK_BYTES
        n = a.shape[0] if not limit else max(1, int(limit) // per_image)
        sparse = self._sparse_conv_args(self.conv1, a)
        if sparse is not None:
            x, weight, bias = sparse
            return self.act(max_pooled_conv2d(x, weight, bias, 3, chunk=n))
        if a.shape[0] <= n:
            return self.act(self.pool3(self.conv1(a)))
        return torch.cat([self.act(self.pool3(self.conv1(c))) for c in a.split(n)])

    def _conv_pool3(self, conv: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """``pool3(conv(x))``, with sparse gradients where they apply."""
        sparse = self._sparse_conv_args(conv, x)
        if sparse is None:
            return self.pool3(conv(x))
        return max_pooled_conv2d(*sparse, 3)

    def _sparse_conv_args(
        self, conv: nn.Module, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None] | None:
        """``(input, weight, bias)`` of ``conv`` for :func:`max_pooled_conv2d`, or ``None``."""
        if (
            not getattr(self, "sparse_backward", True)
            or not torch.is_grad_enabled()
            or _exporting()
        ):
            return None
        pool = self.pool3
        if _hooked(conv) or _hooked(pool):  # e.g. Grad-CAM's: the layers themselves must run
            return None
        if (pool.kernel_size, pool.stride, pool.padding, pool.dilation, pool.ceil_mode) != (
            3,
            3,
            0,
            1,
            False,
        ):
            return None
        if (
            getattr(conv, "stride", None) != (1, 1)
            or getattr(conv, "dilation", None) != (1, 1)
            or getattr(conv, "padding", None) not in ((0, 0), "valid")
        ):
            return None
        if isinstance(conv, GrayscaleConv2d):
            if conv.needs_map:
                return None
            return x[:, :1], conv.folded_weight(), conv.bias
        if type(conv) is nn.Conv2d and conv.groups == 1:
            return x, conv.weight, conv.bias
        return None


def _exporting() -> bool:
    """Whether the forward pass is being traced (``torch.jit.trace``, ``torch.onnx.export``)."""
    return bool(torch.jit.is_tracing() or torch.onnx.is_in_onnx_export())


def _hooked(module: nn.Module) -> bool:
    """Whether forward or backward hooks (the module's own or global ones) would see ``module``."""
    from torch.nn.modules import module as _m

    own = (
        module._forward_hooks,
        module._forward_pre_hooks,
        module._backward_hooks,
        getattr(module, "_backward_pre_hooks", None),
    )
    glob = (
        getattr(_m, name, None)
        for name in (
            "_global_forward_hooks",
            "_global_forward_pre_hooks",
            "_global_backward_hooks",
            "_global_backward_pre_hooks",
        )
    )
    return any(bool(h) for h in own) or any(bool(h) for h in glob)


def _used_extent(n: int) -> int:
    """Input rows of branch a that reach the output: conv1 (5) -> pool 3 -> conv2 (2) -> pool 3."""
    c2 = (n - 4) // 3 - 1  # conv2 output rows
    used_c2 = (c2 // 3) * 3  # rows the floor-mode pool reads
    if used_c2 <= 0:
        return n
    return min(n, ((used_c2 + 1) * 3) + 4)


def build_hall2020_cnn(
    pretrained: str | None = None,
    head: str = "hall2020",
    *,
    dropout: float = 0.25,
    pretrained_strict: bool = True,
    chunk_bytes: int | str | None = "auto",
    sparse_backward: bool = True,
    **_: object,
) -> CXRNet:
    """Hall et al. (2020) small CNN: two branches, 39,105 parameters, 100 px input.

    The head is the authors' own (dropout 0.25 -> dense 1); ``head`` is accepted
    for interface compatibility and must be ``"hall2020"``. ``chunk_bytes``: see
    :class:`Hall2020Features` (``CXRClassifier(..., module__chunk_bytes=None)``
    turns the chunking off); ``sparse_backward=False``
    (``module__sparse_backward=False``) runs conv1's plain autograd backward.
    """
    if head not in ("hall2020", None):
        raise ValueError(
            f"Architecture 'hall2020_cnn' has a fixed head (dropout -> dense 1); got head={head!r}. "
            "Use head='hall2020'."
        )
    backbone = Hall2020Features(chunk_bytes=chunk_bytes, sparse_backward=sparse_backward)
    classifier = nn.Sequential()
    classifier.add_module("dropout", nn.Dropout(dropout))
    classifier.add_module("fc", nn.Linear(576, 1))
    net = CXRNet(
        backbone,
        nn.Identity(),
        classifier,
        num_features=576,
        preprocessing=HALL2020_PREPROCESSING,
        name="hall2020_cnn",
    )
    net.first_conv_reads_input = True
    net.fixed_input_size = HALL2020_PREPROCESSING.input_size  # fc reads a 3x3x64 map
    # Grad-CAM explains conv4's map after its ReLU (the forward applies it after pooling).
    net.gradcam_target = "backbone.conv4"  # type: ignore[assignment]
    net.gradcam_activation = "relu"  # type: ignore[assignment]
    # Keras' default initialisation (Glorot uniform), as in the authors' script.
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    load_pretrained_file(net, pretrained, strict=pretrained_strict, arch="hall2020_cnn")
    return net
