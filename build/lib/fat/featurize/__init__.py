"""WAV -> log-mel -> store: decoding (`audio`), the CPU log-mel (`logmel`, librosa's numbers
without librosa) and its CUDA twin (`logmel_torch`), and the run over a split (`run`)."""
