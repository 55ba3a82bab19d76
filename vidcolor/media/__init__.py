"""Media I/O: ffprobe, luma decoding with PyAV, segment encoding, concat and mux with ffmpeg."""
