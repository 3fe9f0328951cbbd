"""``SummaryWriter``: the face of ``torch.utils.tensorboard.SummaryWriter`` over the
``tensorboard`` package's ``EventFileWriter``."""

from __future__ import annotations

import os
import socket
import time
from datetime import datetime
from typing import Any

from fnarray.tensorboard import summaries
from fnarray.tensorboard.graph import graph_def


def default_log_dir(comment: str = "") -> str:
    """``runs/<Mon01_12-34-56>_<hostname><comment>``, PyTorch's default run directory."""
    stamp = datetime.now().strftime("%b%d_%H-%M-%S")
    return os.path.join("runs", f"{stamp}_{socket.gethostname()}{comment}")


class SummaryWriter:
    """Writes TensorBoard event files under ``log_dir`` (see the module docstring).

    ``add_scalars`` writes each key to its own run directory ``log_dir/<main_tag>_<key>``,
    so TensorBoard draws the keys as separate runs on one chart, as PyTorch does."""

    def __init__(self, log_dir: str | os.PathLike | None = None, comment: str = "",
                 purge_step: int | None = None, max_queue: int = 10, flush_secs: int = 120,
                 filename_suffix: str = ""):
        summaries.require_tensorboard()
        from tensorboard.compat.proto import event_pb2
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        self._event = event_pb2.Event
        self._session_log = event_pb2.SessionLog
        self._file_writer_class = EventFileWriter
        self.log_dir = os.fspath(log_dir) if log_dir is not None else default_log_dir(comment)
        self._options = dict(max_queue_size=max_queue, flush_secs=flush_secs,
                             filename_suffix=filename_suffix)
        self._writers: dict[str, Any] = {}
        self._closed = False
        self._writer(self.log_dir)
        if purge_step is not None:
            self._add(self.log_dir, self._event(
                step=purge_step, wall_time=time.time(),
                session_log=self._session_log(status=self._session_log.START)))

    # --- plumbing -----------------------------------------------------------------------
    def _writer(self, directory: str):
        if self._closed:
            raise RuntimeError(f"SummaryWriter({self.log_dir!r}) is closed; create a new one")
        if directory not in self._writers:
            self._writers[directory] = self._file_writer_class(directory, **self._options)
        return self._writers[directory]

    def _add(self, directory: str, event) -> None:
        self._writer(directory).add_event(event)

    def _summary(self, summary, global_step, walltime, directory: str | None = None) -> None:
        event = self._event(summary=summary, wall_time=time.time() if walltime is None
                            else float(walltime))
        if global_step is not None:
            event.step = int(summaries.to_numpy(global_step).item())
        self._add(directory or self.log_dir, event)

    def get_logdir(self) -> str:
        """The run directory the writer logs to."""
        return self.log_dir

    # --- records ------------------------------------------------------------------------
    def add_scalar(self, tag: str, scalar_value: Any, global_step: int | None = None,
                   walltime: float | None = None, new_style: bool = False,
                   double_precision: bool = False) -> None:
        """Log one number (a float, an int, or a one-element array/tensor) under ``tag``.
        ``new_style`` and ``double_precision`` are accepted for PyTorch's signature; the value
        is always written as a classic float32 ``simple_value``, which every reader takes."""
        self._summary(summaries.scalar(tag, scalar_value), global_step, walltime)

    def add_scalars(self, main_tag: str, tag_scalar_dict: dict, global_step: int | None = None,
                    walltime: float | None = None) -> None:
        """Log several numbers on one chart: key ``k`` goes to run ``log_dir/<main_tag>_k``
        under the tag ``main_tag``."""
        for key, value in tag_scalar_dict.items():
            directory = os.path.join(self.log_dir, f"{main_tag.replace('/', '_')}_{key}")
            self._summary(summaries.scalar(main_tag, value), global_step, walltime, directory)

    def add_histogram(self, tag: str, values: Any, global_step: int | None = None,
                      bins: Any = "tensorflow", walltime: float | None = None,
                      max_bins: int | None = None) -> None:
        """Log the distribution of ``values`` (see ``summaries.histogram`` for ``bins``)."""
        self._summary(summaries.histogram(tag, values, bins, max_bins), global_step, walltime)

    def add_image(self, tag: str, img_tensor: Any, global_step: int | None = None,
                  walltime: float | None = None, dataformats: str = "CHW") -> None:
        """Log one image: float in [0, 1] or uint8, laid out as ``dataformats``."""
        hwc = summaries.to_hwc(tag, img_tensor, dataformats)
        self._summary(summaries.image(tag, hwc), global_step, walltime)

    def add_images(self, tag: str, img_tensor: Any, global_step: int | None = None,
                   walltime: float | None = None, dataformats: str = "NCHW") -> None:
        """Log a batch of images tiled into one grid (eight to a row)."""
        hwc = summaries.grid(tag, img_tensor, dataformats)
        self._summary(summaries.image(tag, hwc), global_step, walltime)

    def add_figure(self, tag: str, figure: Any, global_step: int | None = None,
                   close: bool = True, walltime: float | None = None) -> None:
        """Log a matplotlib figure (or a list of them, tiled) rendered to RGBA pixels."""
        import numpy as np

        figures = figure if isinstance(figure, (list, tuple)) else [figure]
        pixels = []
        for fig in figures:
            fig.canvas.draw()
            pixels.append(np.asarray(fig.canvas.buffer_rgba()).copy())
            if close:
                import matplotlib.pyplot as plt
                plt.close(fig)
        if isinstance(figure, (list, tuple)):
            self.add_images(tag, np.stack(pixels), global_step, walltime, dataformats="NHWC")
        else:
            self.add_image(tag, pixels[0], global_step, walltime, dataformats="HWC")

    def add_text(self, tag: str, text_string: str, global_step: int | None = None,
                 walltime: float | None = None) -> None:
        """Log a markdown string (TensorBoard's Text tab)."""
        self._summary(summaries.text(tag, text_string), global_step, walltime)

    def add_hparams(self, hparam_dict: dict, metric_dict: dict,
                    hparam_domain_discrete: dict | None = None, run_name: str | None = None,
                    global_step: int | None = None) -> None:
        """Log one hyper-parameter trial: the hparams and their metrics go to the run
        ``log_dir/<run_name>`` (default: the current time), as PyTorch does;
        ``hparam_domain_discrete`` lists the values an hparam can take."""
        if not isinstance(hparam_dict, dict) or not isinstance(metric_dict, dict):
            raise TypeError("add_hparams: hparam_dict and metric_dict must be dicts, got "
                            f"{type(hparam_dict).__name__} and {type(metric_dict).__name__}")
        directory = os.path.join(self.log_dir, run_name or str(time.time()))
        for summary in summaries.hparams(hparam_dict, metric_dict, hparam_domain_discrete):
            self._summary(summary, global_step, None, directory)
        for key, value in metric_dict.items():
            self._summary(summaries.scalar(key, value), global_step, None, directory)

    def add_graph(self, model: Any, input_to_model: Any = None, verbose: bool = False,
                  use_strict_trace: bool = True) -> None:
        """Log ``model``'s computation on ``input_to_model`` as a graph (see ``graph``)."""
        if input_to_model is None:
            raise ValueError("add_graph(model, input_to_model): an example input is needed "
                             "to trace the model; pass a tensor (or a tuple of them)")
        graph = graph_def(model, input_to_model)
        if verbose:
            print(graph)
        self._add(self.log_dir, self._event(graph_def=graph.SerializeToString(),
                                            wall_time=time.time()))

    # --- lifetime -----------------------------------------------------------------------
    def flush(self) -> None:
        """Write everything queued to disk."""
        for writer in self._writers.values():
            writer.flush()

    def close(self) -> None:
        """Flush and close every event file; further ``add_*`` calls raise."""
        if not self._closed:
            for writer in self._writers.values():
                writer.close()
            self._closed = True

    def __enter__(self) -> "SummaryWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
