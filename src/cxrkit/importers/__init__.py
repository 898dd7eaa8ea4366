"""Importers: bring published networks (Keras HDF5 files, ...) into cxrkit."""

from .keras_hdf5 import (
    HALL2020_KERAS_GRAPH,
    HALL2020_KERAS_MAPPING,
    VGG16_KERAS_MAPPING,
    check_keras_architecture,
    keras_layer_graph,
    load_hall2020_keras,
    load_keras_vgg16_into,
    load_keras_weights,
    read_keras_hdf5,
)
from .published import (
    HALL2020_CLASSES,
    hall2020_weight_files,
    load_hall2020_networks,
    load_hall2020_published,
)

__all__ = [
    "HALL2020_CLASSES",
    "HALL2020_KERAS_GRAPH",
    "HALL2020_KERAS_MAPPING",
    "VGG16_KERAS_MAPPING",
    "check_keras_architecture",
    "hall2020_weight_files",
    "keras_layer_graph",
    "load_hall2020_networks",
    "load_hall2020_keras",
    "load_hall2020_published",
    "load_keras_vgg16_into",
    "load_keras_weights",
    "read_keras_hdf5",
]
