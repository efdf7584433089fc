"""Data directories, audio and archives."""

from sidkd.io.ark import ArchiveWriter, iter_archive, load_table
from sidkd.io.audio import AudioOptions, AudioReader, read_audio
from sidkd.io.datadir import DataDir, read_scp, read_spk2utt, read_table, read_utt2spk, write_table

__all__ = [
    "ArchiveWriter", "iter_archive", "load_table", "AudioOptions", "AudioReader", "read_audio",
    "DataDir", "read_scp", "read_spk2utt", "read_table", "read_utt2spk", "write_table",
]
