"""``cxrkit serve``: a web page and a JSON API for a saved model.

The application is built with FastAPI and runs under uvicorn (``pip install
"cxrkit[serve]"``); nothing here imports them until :func:`create_app` is called.

>>> from cxrkit.serve import ServeConfig
>>> ServeConfig().max_upload_bytes // 2**20
50
"""

from ._app import PAGE_CSP, ServeConfig, create_app
from ._batching import MAX_BATCH, MAX_QUEUE, MAX_WAIT_MS, MicroBatcher, ServerBusy
from ._guards import LATERAL_VIEWS, decode_upload, dicom_warnings
from ._model import OPERATING_POINT_FILENAME, ServedModel, fit_ood_reference
from ._ood import OOD_FILENAME, OODReference
from ._uploads import ACCEPTED_TYPES, MAX_PIXELS, MAX_UPLOAD_BYTES, Upload, UploadRejected

__all__ = [
    "ACCEPTED_TYPES",
    "LATERAL_VIEWS",
    "MAX_BATCH",
    "MAX_PIXELS",
    "MAX_QUEUE",
    "MAX_UPLOAD_BYTES",
    "MAX_WAIT_MS",
    "MicroBatcher",
    "OOD_FILENAME",
    "OODReference",
    "OPERATING_POINT_FILENAME",
    "PAGE_CSP",
    "ServeConfig",
    "ServedModel",
    "ServerBusy",
    "Upload",
    "UploadRejected",
    "create_app",
    "decode_upload",
    "dicom_warnings",
    "fit_ood_reference",
]
