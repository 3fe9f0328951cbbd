"""Summary protos for each kind of record the writer logs, built with ``tensorboard``'s own
protobuf classes (imported on first use, so ``import fnarray`` never needs the package)."""

from __future__ import annotations

import io
from typing import Any

import numpy as np

MISSING = ("fnarray.tensorboard needs the `tensorboard` package: "
           "pip install 'fnarray[tensorboard]' (or pip install tensorboard)")


def require_tensorboard():
    """The ``tensorboard.compat.proto.summary_pb2`` module, or an ImportError naming the extra."""
    try:
        from tensorboard.compat.proto import summary_pb2
    except ImportError as e:
        raise ImportError(MISSING) from e
    return summary_pb2


def to_numpy(value: Any) -> np.ndarray:
    """A NumPy array from an fnarray array, a compat tensor, a NumPy array or a number."""
    if hasattr(value, "detach"):
        value = value.detach()
    if hasattr(value, "numpy"):
        value = value.numpy()
    return np.asarray(value)


def scalar(tag: str, value: Any):
    """A simple-value summary; ``value`` must hold exactly one number."""
    summary_pb2 = require_tensorboard()
    array = to_numpy(value)
    if array.size != 1:
        raise ValueError(f"add_scalar({tag!r}): expected one number, got shape {array.shape}; "
                         "log a reduction (e.g. .mean()) or use add_histogram")
    return summary_pb2.Summary(value=[summary_pb2.Summary.Value(
        tag=tag, simple_value=float(array.reshape(()).item()))])


def tensorflow_edges(lo: float, hi: float) -> np.ndarray:
    """TensorFlow's default histogram buckets: +-1e-12 growing by 10% up to +-1e20, cut to
    the data's range (plus one bucket either side)."""
    positive, v = [], 1e-12
    while v < 1e20:
        positive.append(v)
        v *= 1.1
    edges = np.array([-x for x in reversed(positive)] + [0.0] + positive)
    first = max(int(np.searchsorted(edges, lo, side="left")) - 1, 0)
    last = min(int(np.searchsorted(edges, hi, side="right")) + 1, len(edges))
    return edges[first:last]


def histogram(tag: str, values: Any, bins: Any = "tensorflow", max_bins: int | None = None):
    """A histogram summary.  ``bins`` is ``"tensorflow"`` (the default exponential buckets)
    or anything ``numpy.histogram`` accepts ("auto", an int, explicit edges)."""
    summary_pb2 = require_tensorboard()
    data = to_numpy(values).astype(np.float64).ravel()
    if data.size == 0:
        raise ValueError(f"add_histogram({tag!r}): the values are empty")
    if not np.all(np.isfinite(data)):
        raise ValueError(f"add_histogram({tag!r}): the values contain NaN or infinity")
    if isinstance(bins, str) and bins == "tensorflow":
        bins = tensorflow_edges(float(data.min()), float(data.max()))
    counts, edges = np.histogram(data, bins=bins)
    if max_bins is not None and len(counts) > max_bins:
        step = -(-len(counts) // max_bins)
        counts = np.add.reduceat(counts, np.arange(0, len(counts), step))
        edges = np.append(edges[:-1:step], edges[-1])
    hist = summary_pb2.HistogramProto(
        min=float(data.min()), max=float(data.max()), num=float(data.size),
        sum=float(data.sum()), sum_squares=float(np.dot(data, data)),
        bucket_limit=[float(x) for x in edges[1:]], bucket=[float(c) for c in counts])
    return summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, histo=hist)])


def to_hwc(tag: str, image: Any, dataformats: str) -> np.ndarray:
    """An (H, W, C) uint8 array from a float image in [0, 1] or a uint8 image laid out as
    ``dataformats`` (``CHW``, ``HWC``, ``HW``); one channel is kept grey, four keep alpha."""
    array = to_numpy(image)
    fmt = dataformats.upper()
    if array.ndim != len(fmt) or set(fmt) - set("CHW") or len(set(fmt)) != len(fmt):
        raise ValueError(f"add_image({tag!r}): an image of shape {array.shape} does not match "
                         f"dataformats={dataformats!r}; pass 'CHW', 'HWC' or 'HW'")
    if "C" not in fmt:
        array, fmt = array[..., None], fmt + "C"
    array = np.transpose(array, [fmt.index(axis) for axis in "HWC"])
    if array.shape[2] not in (1, 3, 4):
        raise ValueError(f"add_image({tag!r}): {array.shape[2]} channels; "
                         "images need 1 (grey), 3 (RGB) or 4 (RGBA)")
    if array.dtype != np.uint8:
        array = (np.clip(array.astype(np.float64), 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
    return array


def grid(tag: str, images: Any, dataformats: str) -> np.ndarray:
    """Images laid out as ``dataformats`` (``NCHW``, ``NHWC``) tiled into one (H, W, C) grid,
    eight to a row, as ``torchvision.utils.make_grid`` lays them out for ``add_images``."""
    array = to_numpy(images)
    fmt = dataformats.upper()
    if array.ndim != len(fmt) or fmt[0] != "N":
        raise ValueError(f"add_images({tag!r}): a batch of shape {array.shape} does not match "
                         f"dataformats={dataformats!r}; pass 'NCHW' or 'NHWC'")
    tiles = [to_hwc(tag, one, fmt[1:]) for one in array]
    h, w, c = tiles[0].shape
    cols = min(8, len(tiles))
    rows = -(-len(tiles) // cols)
    canvas = np.zeros((rows * h, cols * w, c), np.uint8)
    for i, tile in enumerate(tiles):
        r, q = divmod(i, cols)
        canvas[r * h:(r + 1) * h, q * w:(q + 1) * w] = tile
    return canvas


def png_bytes(hwc: np.ndarray) -> bytes:
    """PNG-encode an (H, W, C) uint8 image with Pillow, or matplotlib's writer without it."""
    buffer = io.BytesIO()
    squeezed = hwc[..., 0] if hwc.shape[2] == 1 else hwc
    try:
        from PIL import Image
    except ImportError:
        try:
            import matplotlib.image
        except ImportError as e:
            raise ImportError("add_image needs Pillow or matplotlib to encode PNG: "
                              "pip install 'fnarray[images]'") from e
        matplotlib.image.imsave(buffer, squeezed, cmap="gray", vmin=0, vmax=255, format="png")
    else:
        Image.fromarray(squeezed).save(buffer, format="PNG")
    return buffer.getvalue()


def image(tag: str, hwc: np.ndarray):
    """An image summary holding ``hwc`` as a PNG."""
    summary_pb2 = require_tensorboard()
    h, w, c = hwc.shape
    encoded = summary_pb2.Summary.Image(height=h, width=w, colorspace=c,
                                        encoded_image_string=png_bytes(hwc))
    return summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, image=encoded)])


def text(tag: str, text_string: str):
    """A text-plugin summary (markdown rendered by TensorBoard)."""
    summary_pb2 = require_tensorboard()
    from tensorboard.compat.proto import tensor_pb2, tensor_shape_pb2, types_pb2

    metadata = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="text"))
    tensor = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_STRING, string_val=[text_string.encode("utf-8")],
        tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=1)]))
    return summary_pb2.Summary(value=[summary_pb2.Summary.Value(
        tag=tag + "/text_summary", metadata=metadata, tensor=tensor)])


def hparams(hparam_dict: dict, metric_dict: dict, domains: dict | None = None) -> list:
    """The three hparams-plugin summaries (experiment, session start, session end);
    ``domains`` maps an hparam to the discrete values it can take (for the filter UI)."""
    summary_pb2 = require_tensorboard()
    from google.protobuf import struct_pb2
    from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2

    def value(key, v):
        if isinstance(v, bool) or not isinstance(v, (int, float, str)):
            v = to_numpy(v).item() if hasattr(v, "shape") else v
        if isinstance(v, bool):
            return struct_pb2.Value(bool_value=v)
        if isinstance(v, (int, float)):
            return struct_pb2.Value(number_value=float(v))
        if isinstance(v, str):
            return struct_pb2.Value(string_value=v)
        raise TypeError(f"add_hparams: hparam {key!r} is a {type(v).__name__}; "
                        "use a bool, number, string or one-element array")

    def wrap(tag, **plugin_fields):
        content = plugin_data_pb2.HParamsPluginData(version=0, **plugin_fields)
        metadata = summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(
            plugin_name="hparams", content=content.SerializeToString()))
        return summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, metadata=metadata)])

    def info(key):
        if key not in (domains or {}):
            return api_pb2.HParamInfo(name=key)
        listed = struct_pb2.ListValue(values=[value(key, v) for v in domains[key]])
        return api_pb2.HParamInfo(name=key, domain_discrete=listed)

    experiment = api_pb2.Experiment(
        hparam_infos=[info(k) for k in hparam_dict],
        metric_infos=[api_pb2.MetricInfo(name=api_pb2.MetricName(tag=k)) for k in metric_dict])
    start = plugin_data_pb2.SessionStartInfo(
        hparams={k: value(k, v) for k, v in hparam_dict.items()})
    end = plugin_data_pb2.SessionEndInfo(status=api_pb2.STATUS_SUCCESS)
    return [wrap("_hparams_/experiment", experiment=experiment),
            wrap("_hparams_/session_start_info", session_start_info=start),
            wrap("_hparams_/session_end_info", session_end_info=end)]
