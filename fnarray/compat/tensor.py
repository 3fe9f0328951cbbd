"""``Tensor``: a mutable, PyTorch-style handle to an immutable fnarray value.

A tensor holds ``_value`` (an ``fa.Array``, or a tracer of an enclosing transformation)
and, when it takes part in recording, ``_node``/``_index``: the ``CompatNode`` output it
is (a leaf node for user tensors that require grad).  ``Tensor`` subclasses the engine's
``Tracer`` at level 0, so every fnarray function accepts tensors and returns tensors:
``bind`` routes primitives with a tensor operand through ``tape.CompatTrace``, and the
eager path for plain arrays is untouched.

Mutation is functionalised.  An in-place method computes the new value with ordinary
(recorded) operations and rebinds the handle.  Views remember their root tensor and a
view function; writing through a view scatters the new values into the root, and every
live view of a root re-derives its value after the root changes.  A version cell shared
by a root and its views counts in-place changes, so ``backward()`` can refuse a graph
that read an older version.
"""

from __future__ import annotations

import weakref

import numpy as np

from fnarray import api as fa
from fnarray.compat import defaults, dtypes, grad_mode, tape
from fnarray.compat.tape import op_scope
from fnarray.core import tree as tree_util
from fnarray.core.array import Array
from fnarray.core.trace import Tracer
from fnarray.core.shapes import is_float, is_inexact

_COMPAT_DTYPES: dict = {}  # NumPy dtype -> compat dtype, for ``Tensor.dtype``


class Size(tuple):
    """A tensor's shape: a tuple that prints as PyTorch's does, ``torch.Size([2, 3])``."""

    def __repr__(self):
        return f"torch.Size({list(self)})"

    __str__ = __repr__

    def numel(self) -> int:
        n = 1
        for d in self:
            n *= d
        return n


class _CallableSize(int):
    """An int (the element count) that is also PyTorch's ``size(dim=None)`` method."""

    def __new__(cls, n, shape):
        out = super().__new__(cls, n)
        out.shape = shape
        return out

    def __call__(self, dim: int | None = None):
        return Size(self.shape) if dim is None else self.shape[dim]


def _named(name):
    """Method decorator: nodes recorded by the method are named ``name``."""
    def deco(fn):
        def method(*args, **kwargs):
            with op_scope(name):
                return fn(*args, **kwargs)
        method.__name__, method.__doc__ = fn.__name__, fn.__doc__
        return method
    return deco


def _dims(dim):
    if dim is None:
        return None
    if isinstance(dim, (list, tuple)):
        return tuple(dim)
    return dim


def _shape_args(shape) -> tuple:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def _raw(x):
    """The core value of a tensor (anything else unchanged)."""
    return x._value if isinstance(x, Tensor) else x


_BACKWARD: list = []  # compat.autograd.backward, imported on first use (it imports this module)


def _backward_fn():
    from fnarray.compat.autograd import backward
    _BACKWARD.append(backward)
    return backward


class Tensor(Tracer):
    """A PyTorch-style tensor; see the module docstring."""

    # Defaults shared by every tensor until set on one (most tensors are not views, have
    # no .grad and never change): ``_make`` then only writes what differs per tensor.
    _trace = tape.TRACE
    _base = None
    _view_fn = None
    _views = None
    _contig = True
    _grad = None
    _detached = False  # a view through ``detach()``/``.data``: writes are not recorded
    _retains_grad = False

    def __init__(self, *args, dtype=None, device=None, requires_grad: bool = False):
        """PyTorch's legacy constructor: ``Tensor(2, 3)`` or ``Tensor(Size)`` is a tensor
        of the default float dtype (``set_default_dtype``) and that shape (zero-filled:
        fnarray has no uninitialised memory), ``Tensor([1, 2])`` copies Python data as the
        default float, ``Tensor()`` is empty; an array or tensor argument keeps its dtype."""
        if len(args) > 1 or (args and isinstance(args[0], (int, np.integer, Size))
                             and not isinstance(args[0], bool)):
            shape = tuple(args[0]) if isinstance(args[0], Size) else tuple(args)
            value = fa.zeros(shape, dtype or defaults.default_float(), device)
        else:
            data = args[0] if args else None
            if isinstance(data, Tensor):
                data = data._value
            if dtype is None and (data is None or isinstance(data, (list, tuple))):
                dtype = (defaults.default_complex() if _has_complex(data)
                         else defaults.default_float())
            value = fa.asarray([] if data is None else data, dtype=dtype, device=device)
        self._value = value
        self._node, self._index, self._version = None, 0, [0]
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _make(cls, value, node, index):
        """A fresh (non-view) tensor holding ``value``, output ``index`` of ``node``."""
        t = _new_tensor(Tensor)
        t._value, t._node, t._index, t._version = value, node, index, [0]
        return t

    __hash__ = object.__hash__

    # --- what the engine sees -----------------------------------------------------------
    @property
    def aval(self):
        return self._value.aval

    @property
    def weak_type(self) -> bool:
        return False

    def concrete(self, why: str = "a concrete value"):
        v = self._value
        return v if isinstance(v, Array) else v.concrete(why)

    def __fnarray_array__(self):
        return self._value

    # --- attributes -------------------------------------------------------------------
    @property
    def array(self):
        """The core ``fa.Array`` (or tracer) this handle currently holds."""
        return self._value

    @property
    def shape(self) -> Size:
        return Size(self._value.shape)

    @property
    def ndim(self) -> int:
        return len(self._value.shape)

    @property
    def dtype(self) -> dtypes.dtype:
        """PyTorch-style (``torch.float32``); equal to the NumPy dtype (see ``dtypes``)."""
        d = self._value.dtype
        found = _COMPAT_DTYPES.get(d)  # read by every general-path op: a dict hit
        if found is None:
            found = _COMPAT_DTYPES[d] = dtypes.as_dtype(d)
        return found

    @property
    def device(self):
        v = self._value
        return v._device if isinstance(v, Array) else v.device

    @property
    def is_cuda(self) -> bool:
        return self.device.platform == "cuda"

    @property
    def layout(self) -> str:
        return "strided"

    @property
    def size(self) -> "_CallableSize":
        """``t.size()`` (a ``Size``), ``t.size(dim)`` (an int); as an attribute it is the
        element count, which the core's functions read from every array-like."""
        return _CallableSize(self.size_in_elements(), self._value.shape)

    def dim(self) -> int:
        return len(self._value.shape)

    ndimension = dim

    def numel(self) -> int:
        return self.size_in_elements()

    nelement = numel

    def size_in_elements(self) -> int:
        n = 1
        for d in self._value.shape:
            n *= d
        return n

    def element_size(self) -> int:
        return self.dtype.itemsize

    # --- autograd state ---------------------------------------------------------------
    @property
    def requires_grad(self) -> bool:
        return self._node is not None

    @requires_grad.setter
    def requires_grad(self, flag: bool):
        self.requires_grad_(flag)

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        if not self.is_leaf:
            if requires_grad:
                return self
            raise RuntimeError(
                "you can only change requires_grad flags of leaf variables. If you want to "
                "use a computed variable in a subgraph that doesn't require differentiation "
                "use var_no_grad = var.detach().")
        if requires_grad and self._node is None:
            if not is_inexact(self.dtype):
                raise RuntimeError(
                    f"only Tensors of floating point and complex dtype can require gradients "
                    f"(this tensor has dtype {self.dtype})")
            self._node = tape.leaf_node(weakref.ref(self))
        elif not requires_grad:
            self._node = None
        return self

    @property
    def is_leaf(self) -> bool:
        return self._node is None or self._node.prim is None

    @property
    def grad_fn(self):
        node = self._node
        if node is None or node.prim is None:
            return None
        from fnarray.compat.autograd import GradFn
        return GradFn(node)

    @property
    def grad(self):
        node = self._node
        if node is not None and node.prim is not None and not self._retains_grad:
            import warnings
            warnings.warn(
                "The .grad attribute of a Tensor that is not a leaf Tensor is being accessed. "
                "Its .grad attribute won't be populated during autograd.backward(). If you "
                "indeed want the .grad field to be populated for a non-leaf Tensor, use "
                ".retain_grad() on the non-leaf Tensor. If you access the non-leaf Tensor by "
                "mistake, make sure you access the leaf Tensor instead.", UserWarning,
                stacklevel=2)
        return self._grad

    @grad.setter
    def grad(self, value):
        if value is not None and not isinstance(value, Tensor):
            raise TypeError(f"assigned grad must be a Tensor or None, not {type(value).__name__}")
        if value is not None and tuple(value.shape) != tuple(self.shape):
            raise RuntimeError(f"assigned grad has shape {list(value.shape)} but the tensor "
                               f"has shape {list(self.shape)}")
        self._grad = value

    def backward(self, gradient=None, retain_graph=None, create_graph: bool = False,
                 inputs=None):
        """Accumulate d(self)/d(leaf), weighted by ``gradient``, into every leaf's ``.grad``."""
        backward = _BACKWARD[0] if _BACKWARD else _backward_fn()
        backward([self], None if gradient is None else [gradient], retain_graph,
                 create_graph, inputs=inputs)

    def register_hook(self, hook):
        """Call ``hook(grad)`` when this tensor's gradient is computed; a non-None result
        replaces the gradient.  Returns a handle with ``remove()``."""
        if self._node is None:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require "
                               "gradient")
        from fnarray.compat.autograd import add_hook
        return add_hook(self._node, self._index, hook)

    def register_post_accumulate_grad_hook(self, hook):
        """Call ``hook(self)`` right after ``backward()`` has accumulated this leaf's
        ``.grad`` (DistributedDataParallel starts its all-reduce there, while backward
        goes on).  Returns a handle with ``remove()``."""
        if self._node is None:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require "
                               "gradient")
        if not self.is_leaf:
            raise RuntimeError("post accumulate grad hooks cannot be registered on non-leaf "
                               "tensors")
        from fnarray.compat.autograd import add_post_accumulate_hook
        return add_post_accumulate_hook(self, hook)

    def retain_grad(self):
        """Keep this non-leaf tensor's gradient in ``.grad`` after ``backward()``."""
        if self.is_leaf:
            return
        self._retains_grad = True
        ref = weakref.ref(self)

        def keep(g):
            t = ref()
            if t is not None:
                t._grad = g if t._grad is None else t._grad + g
        self.register_hook(keep)

    @property
    def retains_grad(self) -> bool:
        """Whether ``retain_grad()`` was called on this non-leaf tensor."""
        return self._retains_grad

    def detach(self) -> "Tensor":
        """The same values, sharing storage, cut from the graph."""
        return self._view(lambda b: Tensor._make(b._value, None, 0), "Detach")

    def detach_(self) -> "Tensor":
        self._node = None
        return self

    @property
    def data(self) -> "Tensor":
        return self.detach()

    @data.setter
    def data(self, value):
        # An Array (what an optimizer step assigns) is taken as it is, as Tensor(value)
        # would take it.
        if type(value) is not Array:
            value = (value if isinstance(value, Tensor) else Tensor(value))._value
        self._value = value
        self._version[0] += 1
        self._refresh_views()

    # --- conversion -------------------------------------------------------------------
    def item(self):
        if self.size_in_elements() != 1:
            raise ValueError(f"a Tensor with {self.size_in_elements()} elements cannot be "
                             f"converted to Scalar")
        return self.concrete(".item()").item()

    def tolist(self):
        return self.concrete(".tolist()").tolist()

    def numpy(self) -> np.ndarray:
        """A read-only NumPy view of the current value (fnarray values never change)."""
        if self.requires_grad:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use "
                               "tensor.detach().numpy() instead.")
        return np.asarray(self.concrete("numpy()"))

    def __array__(self, dtype=None, copy=None):
        return self.concrete("conversion to a NumPy array").__array__(dtype, copy)

    def __repr__(self):
        from fnarray.compat.formatting import tensor_repr
        return tensor_repr(self)

    __str__ = __repr__

    def __format__(self, spec):
        # PyTorch formats a 0-d plain tensor as its number (``f"{loss}"`` -> ``0.5``)
        if self.dim() == 0 and type(self) is Tensor:
            return format(self.item(), spec)
        return object.__format__(self, spec)

    def __bool__(self):
        if self.size_in_elements() != 1:
            raise RuntimeError(f"Boolean value of Tensor with {self.size_in_elements()} "
                               f"values is ambiguous")
        return bool(self.concrete("bool()"))

    def __len__(self):
        if self.dim() == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._value.shape[0]

    def __iter__(self):
        if self.dim() == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(len(self)))

    def __reduce__(self):
        return (_rebuild, (np.asarray(self.concrete("pickling")), self.requires_grad))

    def __deepcopy__(self, memo):
        out = Tensor._make(self._value, None, 0)
        if self.requires_grad:
            out.requires_grad_(True)
        return out

    def to(self, *args, dtype=None, device=None, non_blocking: bool = False,
           copy: bool = False, memory_format=None) -> "Tensor":
        """``to(dtype)``, ``to(device)``, ``to(device, dtype)``, ``to(other_tensor)`` or the
        keywords ``dtype=``/``device=``; ``self`` when nothing changes (unless ``copy``)."""
        for a in args:
            if isinstance(a, Tensor):
                dtype, device = a.dtype, a.device
            elif _is_dtype(a):
                dtype = a
            elif isinstance(a, (str, int)) or _is_device(a):
                device = f"cuda:{a}" if isinstance(a, int) else a
            elif a is not None:
                raise TypeError(f"Tensor.to: expected a dtype, a device or a tensor, got "
                                f"{type(a).__name__} ({a!r:.40}); e.g. x.to(torch.float64), "
                                f"x.to('cuda') or x.to(other)")
        out = self
        if dtype is not None and np.dtype(dtype) != self.dtype:
            with op_scope("ToCopyBackward0"):
                out = fa.astype(out, np.dtype(dtype))
        if device is not None:
            from fnarray.core.device import get_device
            dev = get_device(device)
            if dev is not out.device:
                out = _moved(out, dev)
        return out.clone() if copy and out is self else out

    def cpu(self) -> "Tensor":
        return self.to("cpu")

    def cuda(self, device=None) -> "Tensor":
        return self.to("cuda" if device is None else
                       (f"cuda:{device}" if isinstance(device, int) else device))

    def type_as(self, other) -> "Tensor":
        return self.to(other.dtype)

    def type(self, dtype=None):
        if dtype is None:
            from fnarray.compat.runtime import typename
            return typename(self)
        return self.to(dtype)

    def clone(self) -> "Tensor":
        with op_scope("CloneBackward0"):
            return fa.add(self, fa.zeros((), self.dtype, self.device)) \
                if self.requires_grad else Tensor._make(self._value, None, 0)

    def contiguous(self) -> "Tensor":
        return self if self._contig else self.clone()

    def is_contiguous(self) -> bool:
        return self._contig

    # --- views --------------------------------------------------------------------------
    def _view(self, fn, name: str, contiguous: bool = True) -> "Tensor":
        root = self if self._base is None else self._base
        with op_scope(name + "Backward0" if name != "Detach" else "DetachBackward0"):
            out = fn(self)
        if self._base is None:
            full = fn
        else:
            inner = self._view_fn

            def full(b, inner=inner, fn=fn):
                return fn(inner(b))
        out._base, out._view_fn, out._version = root, full, root._version
        out._contig = contiguous and self._contig
        if name == "Detach" or self._detached:
            out._detached = True
        if root._views is None:
            # keyed by identity: a WeakSet would compare tensors with ``==`` (elementwise)
            root._views = weakref.WeakValueDictionary()
        root._views[id(out)] = out
        return out

    def view(self, *shape) -> "Tensor":
        shape = _shape_args(shape)
        if not self._contig:
            raise RuntimeError(
                "view size is not compatible with input tensor's size and stride (at least "
                "one dimension spans across two contiguous subspaces). Use .reshape(...) "
                "instead.")
        return self._view(lambda b: fa.reshape(b, shape), "View")

    def view_as(self, other) -> "Tensor":
        return self.view(other.shape)

    def reshape(self, *shape) -> "Tensor":
        shape = _shape_args(shape)
        if self._contig:
            return self._view(lambda b: fa.reshape(b, shape), "View")
        with op_scope("ReshapeAliasBackward0"):
            return fa.reshape(self, shape)

    def reshape_as(self, other) -> "Tensor":
        return self.reshape(other.shape)

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> "Tensor":
        nd = self.dim()
        if nd == 0:
            return self.reshape(1)
        s, e = start_dim % nd, end_dim % nd
        shp = self._value.shape
        n = 1
        for d in shp[s:e + 1]:
            n *= d
        return self.reshape(*shp[:s], n, *shp[e + 1:])

    def unflatten(self, dim: int, sizes) -> "Tensor":
        shp = list(self._value.shape)
        dim %= len(shp)
        return self.view(*shp[:dim], *sizes, *shp[dim + 1:])

    def permute(self, *dims) -> "Tensor":
        dims = tuple(d % max(self.dim(), 1) for d in _shape_args(dims))
        trivial = dims == tuple(range(len(dims)))
        return self._view(lambda b: fa.permute_dims(b, dims), "Permute", trivial)

    def transpose(self, dim0: int, dim1: int) -> "Tensor":
        nd = self.dim()
        order = list(range(nd))
        if nd:
            order[dim0 % nd], order[dim1 % nd] = order[dim1 % nd], order[dim0 % nd]
        order = tuple(order)
        trivial = order == tuple(range(nd))
        return self._view(lambda b: fa.permute_dims(b, order), "Transpose", trivial)

    swapaxes = swapdims = transpose

    def t(self) -> "Tensor":
        if self.dim() > 2:
            raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is "
                               f"{self.dim()}D")
        if self.dim() < 2:
            return self._view(lambda b: b, "T")
        return self._view(lambda b: fa.permute_dims(b, (1, 0)), "T", False)

    @property
    def T(self) -> "Tensor":
        nd = self.dim()
        return self._view(lambda b: fa.permute_dims(b, tuple(range(nd - 1, -1, -1))),
                          "Permute", nd < 2)

    @property
    def mT(self) -> "Tensor":
        return self.transpose(-2, -1)

    def squeeze(self, dim=None) -> "Tensor":
        shp = self._value.shape
        if dim is None:
            axes = tuple(i for i, d in enumerate(shp) if d == 1)
        else:
            dims = dim if isinstance(dim, (tuple, list)) else (dim,)
            axes = tuple(d % max(len(shp), 1) for d in dims if shp and shp[d] == 1)
        return self._view(lambda b: fa.squeeze(b, axes) if axes else fa.reshape(b, shp),
                          "Squeeze")

    def unsqueeze(self, dim: int) -> "Tensor":
        dim = dim % (self.dim() + 1)
        return self._view(lambda b: fa.expand_dims(b, dim), "Unsqueeze")

    def expand(self, *sizes) -> "Tensor":
        sizes = _shape_args(sizes)
        shp = self._value.shape
        lead = len(sizes) - len(shp)
        target = tuple(shp[i - lead] if (s == -1 and i >= lead) else s
                       for i, s in enumerate(sizes))
        return self._view(lambda b: fa.broadcast_to(b, target), "Expand", False)

    def expand_as(self, other) -> "Tensor":
        return self.expand(other.shape)

    def __getitem__(self, key) -> "Tensor":
        key = _raw_key(key)
        if _is_basic(key):
            return self._view(lambda b: fa.getitem(b, key), _index_name(key))
        with op_scope("IndexBackward0"):
            return fa.getitem(self, key)

    def unbind(self, dim: int = 0):
        return tuple(self.select(dim, i) for i in range(self.shape[dim]))

    def select(self, dim: int, index: int) -> "Tensor":
        key = (slice(None),) * (dim % self.dim()) + (index,)
        return self[key]

    def narrow(self, dim: int, start: int, length: int) -> "Tensor":
        key = (slice(None),) * (dim % self.dim()) + (slice(start, start + length),)
        return self[key]

    def chunk(self, chunks: int, dim: int = 0):
        n = self.shape[dim]
        step = -(-n // chunks)
        return tuple(self.narrow(dim, s, min(step, n - s)) for s in range(0, n, step))

    def split(self, split_size, dim: int = 0):
        n = self.shape[dim]
        if isinstance(split_size, int):
            sizes = [min(split_size, n - s) for s in range(0, n, split_size)]
        else:
            sizes = list(split_size)
        out, start = [], 0
        for s in sizes:
            out.append(self.narrow(dim, start, s))
            start += s
        return tuple(out)

    # --- in-place updates ---------------------------------------------------------------
    def _check_inplace(self):
        root = self if self._base is None else self._base
        if self._detached:
            return  # ``p.data.fill_(v)``, ``p.detach().zero_()``: allowed, as in PyTorch
        if grad_mode._state.enabled and root._node is not None and root._node.prim is None:
            which = "a leaf Variable" if root is self else "a view of a leaf Variable"
            raise RuntimeError(f"{which} that requires grad is being used in an in-place "
                               f"operation.")

    def _inplace(self, compute, name: str) -> "Tensor":
        self._check_inplace()
        self._version[0] += 1
        outer, tape._op.updating = tape._op.updating, self._version
        try:
            if self._detached:
                with grad_mode.no_grad():
                    self._apply_update(compute, name)
            else:
                self._apply_update(compute, name)
        finally:
            tape._op.updating = outer
        return self

    def _apply_update(self, compute, name: str) -> None:
        with op_scope(name):
            new = compute(self)
            if not isinstance(new, Tensor):
                new = Tensor._make(fa.asarray(new), None, 0)
            if new.dtype != self.dtype:
                if name in _ARITHMETIC:
                    _check_cast(new.dtype, self.dtype)
                new = fa.astype(new, self.dtype)
            if tuple(new.shape) != tuple(self.shape):
                new = fa.broadcast_to(new, tuple(self.shape))
            _write(self, new)

    def _refresh_views(self):
        if self._views is None:
            return
        with grad_mode.enable_grad():
            for v in list(self._views.values()):
                fresh = v._view_fn(self)
                v._value, v._node, v._index = fresh._value, fresh._node, fresh._index

    def __setitem__(self, key, value):
        key = _raw_key(key)
        self._inplace(lambda s: s.at[key].set(_raw_or_tensor(value, s)), "CopySlices")

    def add_(self, other, alpha=1):
        return self._inplace(lambda s: s + (other if alpha == 1 else other * alpha),
                             "AddBackward0")

    def sub_(self, other, alpha=1):
        return self._inplace(lambda s: s - (other if alpha == 1 else other * alpha),
                             "SubBackward0")

    def mul_(self, other):
        return self._inplace(lambda s: s * other, "MulBackward0")

    def div_(self, other):
        return self._inplace(lambda s: s / other, "DivBackward0")

    def pow_(self, exponent):
        return self._inplace(lambda s: s ** exponent, "PowBackward0")

    def neg_(self):
        return self._inplace(lambda s: -s, "NegBackward0")

    def abs_(self):
        return self._inplace(lambda s: fa.abs(s), "AbsBackward0")

    def sqrt_(self):
        return self._inplace(lambda s: fa.sqrt(s), "SqrtBackward0")

    def exp_(self):
        return self._inplace(lambda s: fa.exp(s), "ExpBackward0")

    def clamp_(self, min=None, max=None):  # noqa: A002
        return self._inplace(lambda s: s.clamp(min, max), "ClampBackward1")

    clip_ = clamp_

    def zero_(self):
        return self._inplace(lambda s: fa.zeros(s.shape, s.dtype, s.device), "ZeroBackward0")

    def fill_(self, value):
        return self._inplace(lambda s: fa.full(s.shape, _raw(value), s.dtype, s.device),
                             "FillBackward0")

    def copy_(self, src):
        src = src if isinstance(src, Tensor) else Tensor(src)
        if src.device is not self.device:
            src = src.to(self.device)
        return self._inplace(lambda s: src, "CopyBackwards")

    def addcmul_(self, t1, t2, value=1):
        return self._inplace(lambda s: s + value * t1 * t2, "AddcmulBackward0")

    def addcdiv_(self, t1, t2, value=1):
        return self._inplace(lambda s: s + value * t1 / t2, "AddcdivBackward0")

    def lerp_(self, end, weight):
        return self._inplace(lambda s: s + weight * (end - s), "LerpBackward0")

    def masked_fill_(self, mask, value):
        return self._inplace(lambda s: s.masked_fill(mask, value), "MaskedFillBackward0")

    def normal_(self, mean: float = 0.0, std: float = 1.0, *, generator=None):
        """Refill with normal values of mean ``mean`` and standard deviation ``std``."""
        from fnarray.compat import random
        return self._inplace(
            lambda s: random.normal(s.shape, s.dtype, s.device, generator) * std + mean,
            "NormalBackward0")

    def uniform_(self, a: float = 0.0, b: float = 1.0, *, generator=None):
        """Refill with values uniform in ``[a, b)``."""
        from fnarray.compat import random
        return self._inplace(
            lambda s: random.uniform(s.shape, s.dtype, s.device, generator) * (b - a) + a,
            "UniformBackward0")

    def bernoulli_(self, p: float = 0.5, *, generator=None):
        """Refill with 0/1 values that are 1 with probability ``p`` (a float or tensor)."""
        from fnarray.compat import random

        def draw(s):
            kind = s.dtype if is_float(s.dtype) else np.dtype(np.float32)
            probs = fa.broadcast_to(fa.asarray(_raw(p), dtype=kind), s.shape)
            return random.bernoulli(probs, s.dtype, s.device, generator)
        return self._inplace(draw, "BernoulliBackward0")

    def __iadd__(self, other):
        return self.add_(other)

    def __isub__(self, other):
        return self.sub_(other)

    def __imul__(self, other):
        return self.mul_(other)

    def __itruediv__(self, other):
        return self.div_(other)


# in-place arithmetic whose result must be castable to the tensor's dtype (PyTorch raises
# for ``int_tensor += 0.5``; copies, fills and item assignment cast silently, as in PyTorch)
_ARITHMETIC = frozenset({"AddBackward0", "SubBackward0", "MulBackward0", "DivBackward0",
                         "PowBackward0", "AddcmulBackward0", "AddcdivBackward0",
                         "LerpBackward0"})


def _check_cast(src, dst) -> None:
    from fnarray.compat.promotion import can_cast, torch_name
    if not can_cast(src, dst):
        raise RuntimeError(f"result type {torch_name(src)} can't be cast to the desired "
                           f"output type {torch_name(dst)}")


def _write(t: Tensor, new: Tensor) -> None:
    """Make ``new`` the value of ``t``; through a view, scatter it into the root."""
    root = t if t._base is None else t._base
    if t is not root:
        with grad_mode.no_grad():
            n = root.size_in_elements()
            pos = t._view_fn(Tensor._make(
                fa.reshape(fa.arange(n, device=root.device), root._value.shape), None, 0))
        with op_scope("CopySlices"):
            flat = fa.reshape(root, (-1,))
            flat = flat.at[fa.reshape(pos._value, (-1,))].set(fa.reshape(new, (-1,)))
            new = fa.reshape(flat, root._value.shape)
    if t._detached or (root._node is not None and root._node.prim is None
                       and new._node is None):
        # a leaf keeps its identity (and its .grad); a write through ``detach()`` changes
        # the values only, never the root's place in the graph
        root._value = new._value
    else:
        root._value, root._node, root._index = new._value, new._node, new._index
    root._refresh_views()


_new_tensor = object.__new__


def _moved(t: Tensor, dev) -> Tensor:
    """``t`` copied to ``dev``.  There is no transfer primitive to record, so a leaf that
    requires grad becomes a new leaf on ``dev``, and a computed tensor must be moved
    before the computation (its graph cannot span two devices)."""
    if t._node is not None and not t.is_leaf and grad_mode._state.enabled:
        raise RuntimeError(
            f"Tensor.to: cannot move a computed tensor (grad_fn={t._node.name}) from "
            f"{t.device} to {dev} while recording gradients; move the leaves (inputs and "
            f"parameters) to {dev} first, or move t.detach()")
    out = Tensor._make(fa.device_put(t._value, dev), None, 0)
    return out.requires_grad_(True) if t._node is not None and t.is_leaf else out


def _is_device(obj) -> bool:
    """A core ``Device`` (it has a ``platform``) or a ``torch.device`` (a string ``type``)."""
    return hasattr(obj, "platform") or isinstance(getattr(obj, "type", None), str)


def _is_dtype(obj) -> bool:
    """A dtype as ``to()`` accepts it: ``torch.float64``, ``np.float32``, ``float``."""
    if isinstance(obj, (np.dtype, dtypes.dtype)):
        return True
    return isinstance(obj, type) and issubclass(obj, (np.generic, bool, int, float, complex))


def _has_complex(data) -> bool:
    if isinstance(data, (list, tuple)):
        return any(_has_complex(d) for d in data)
    return isinstance(data, complex) or (isinstance(data, Tensor) and data.dtype.kind == "c")


def _rebuild(host, requires_grad):
    t = Tensor(host)
    return t.requires_grad_(True) if requires_grad else t


def _raw_key(key):
    if isinstance(key, tuple):
        return tuple(_raw(k) for k in key)
    if isinstance(key, list):
        return _raw(fa.asarray([_raw(k) for k in key]))
    return _raw(key)


def _raw_or_tensor(value, like):
    if isinstance(value, Tensor):
        return value
    return fa.asarray(value, dtype=like.dtype) if not isinstance(value, (int, float, bool)) \
        else value


def _is_basic(key) -> bool:
    items = key if isinstance(key, tuple) else (key,)
    for k in items:
        if not (k is None or k is Ellipsis or isinstance(k, (int, slice, np.integer))):
            return False
        if isinstance(k, bool):
            return False
    return True


def _index_name(key) -> str:
    items = key if isinstance(key, tuple) else (key,)
    if all(isinstance(k, int) for k in items):
        return "Select"
    if any(k is None for k in items):
        return "Unsqueeze"
    return "Slice"


tape.TENSOR = Tensor
tree_util.register_node(Tensor, lambda t: ((t._value,), None),
                        lambda _, c: Tensor._make(_raw(c[0]), None, 0))
