"""File formats: atomic structures (gemmi), SPI datasets (HDF5, skopi/SpiniFEL layout), maps (MRC)."""

from .hdf5 import SPIDataset, read_spi_h5, write_spi_h5
from .mrc import MRCVolume, read_mrc, write_mrc
from .structure import AtomicStructure, list_assemblies, read_structure, write_structure

__all__ = [
    "AtomicStructure",
    "MRCVolume",
    "SPIDataset",
    "list_assemblies",
    "read_mrc",
    "read_spi_h5",
    "read_structure",
    "write_mrc",
    "write_spi_h5",
    "write_structure",
]
